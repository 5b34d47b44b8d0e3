package cli

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"wisp/internal/poolstate"
)

// An upgrade's successor takes over only when every pool serves or is idle.
func TestSuccessorReady(t *testing.T) {
	pools := func(states ...poolstate.PoolState) poolstate.Status {
		var st poolstate.Status
		for i, s := range states {
			st.Pools = append(st.Pools, poolstate.PoolStatus{Name: "p" + strconv.Itoa(i), State: s, Reason: "rapid-fail protection"})
		}
		return st
	}
	for _, c := range []struct {
		ready bool
		st    poolstate.Status
		want  string // "" for no error
	}{
		{true, pools(poolstate.PoolRunning, poolstate.PoolIdle), ""},
		{true, pools(), ""},
		{false, pools(poolstate.PoolRunning), "no ready worker"},
		{true, pools(poolstate.PoolRunning, poolstate.PoolStopped), "pool p1 is stopped (rapid-fail protection)"},
	} {
		err := successorReady(c.ready, c.st)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("ready %v %v: %v, want %q", c.ready, c.st.Pools, err, c.want)
		}
	}
}

// takeUpgrade: no handover, nothing; a handover makes the passed sockets
// this process's (LISTEN_PID) and is cleared for the children; a broken one
// is an error naming the variable.
func TestTakeUpgrade(t *testing.T) {
	t.Setenv(upgradeEnv, "")
	if s, err := takeUpgrade(); s != nil || err != nil {
		t.Errorf("no handover: %v %v", s, err)
	}
	t.Setenv(upgradeEnv, `{"from": 42, "bindings": ["127.0.0.1:0"], "ctl_fd": -1, "ctl_path": "/run/wisp/wisp.sock", "ready_fd": -1}`)
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_PID", "0")
	s, err := takeUpgrade()
	if err != nil || s == nil {
		t.Fatalf("handover: %v %v", s, err)
	}
	if s.predecessor() != 42 || s.bindings[0] != "127.0.0.1:0" || s.ctlPath != "/run/wisp/wisp.sock" || s.ctl != nil {
		t.Errorf("handover: %+v", s)
	}
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) || os.Getenv(upgradeEnv) != "" {
		t.Errorf("LISTEN_PID=%s %s=%s", os.Getenv("LISTEN_PID"), upgradeEnv, os.Getenv(upgradeEnv))
	}
	t.Setenv(upgradeEnv, "{")
	if _, err := takeUpgrade(); err == nil || !strings.Contains(err.Error(), upgradeEnv) {
		t.Errorf("a broken handover: %v", err)
	}
	var none *successor
	if none.predecessor() != 0 || none.control("/x") != nil {
		t.Error("no successor: no predecessor, no control socket")
	}
	none.serving()
	none.failed()
}
