package e2e

// A binary upgrade of a pool (issue 20, point 6): SIGUSR2 or `wisp upgrade`
// execs the wisp binary on disk as the next supervisor, which takes over the
// listening sockets and the control socket; no request fails, and a binary
// that does not start changes nothing.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upgradeStatus is the part of `wisp status --json` an upgrade changes.
type upgradeStatus struct {
	PID   int    `json:"pid"`
	Build string `json:"build"`
	Pools []struct {
		Name    string `json:"name"`
		Workers []struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
			Build string `json:"build"`
		} `json:"workers"`
	} `json:"pools"`
}

func (s *poolServer) upgradeStatus(t *testing.T) upgradeStatus {
	t.Helper()
	code, out, errOut := s.ctl(t, "status", "--json")
	if code != 0 {
		t.Fatalf("wisp status: exit %d: %s%s", code, out, errOut)
	}
	var st upgradeStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("wisp status --json: %v\n%s", err, out)
	}
	return st
}

// workerBuilds are the builds the ready workers of a status report.
func (st upgradeStatus) workerBuilds() []string {
	var out []string
	for _, p := range st.Pools {
		for _, w := range p.Workers {
			if w.State == "ready" {
				out = append(out, w.Build)
			}
		}
	}
	return out
}

// copyExe copies the binary src to dst (mode 0755), through a temporary
// file renamed over dst, as a package upgrade replaces a binary.
func copyExe(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// upgradeServer runs `wisp serve` from a copy of the test binary in its own
// folder (the binary the test replaces) with a pool of 2 pool_app workers,
// and the admin listener on the second port.
func upgradeServer(t *testing.T) (*poolServer, string) {
	t.Helper()
	s := newPoolServer(t)
	bin := filepath.Join(t.TempDir(), "wisp")
	copyExe(t, wispBin, bin)
	s.Bin = bin
	s.writeConfig(t, strings.Replace(onePoolConfig("processes = 2\nthreads = 4"), `access_log = "off"`,
		"access_log = \"off\"\nadmin = \"127.0.0.1:@PORT1@\"", 1))
	s.start(t)
	return s, bin
}

// adminServes checks that the admin listener at addr answers /healthz.
func adminServes(t *testing.T, addr, when string) {
	t.Helper()
	if code, body := get(&http.Client{Timeout: 10 * time.Second}, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("admin /healthz %s: %d %q", when, code, body)
	}
}

// stopSuccessor ends the supervisor an upgrade started (not the test's child).
func stopSuccessor(t *testing.T, pid int) {
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		if !eventually(stopTimeout, func() bool { return !pidAlive(pid) }) {
			t.Errorf("the new supervisor (pid %d) did not exit within %v of SIGTERM; killing it", pid, stopTimeout)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestUpgradeUnderLoad: a binary replaced on disk runs in the workers a
// recycle starts, and the supervisor says so (log, status); `wisp upgrade`
// then runs it as a new supervisor with new workers, under 4 looping
// clients (a new connection for each request): no request fails, the
// supervisor's pid changes, and the status names the new build for the
// supervisor and every worker.
func TestUpgradeUnderLoad(t *testing.T) {
	const commit = "e2e-upgrade-commit"
	newBin := filepath.Join(t.TempDir(), "wisp")
	build := exec.Command("go", "build", "-ldflags", "-X wisp/internal/cli.commit="+commit, "-o", newBin, "./cmd/wisp")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the new binary: %v\n%s", err, out)
	}
	s, bin := upgradeServer(t)
	st0 := s.upgradeStatus(t)
	if st0.Build == "" || strings.Contains(st0.Build, commit) {
		t.Fatalf("supervisor build before the upgrade: %q", st0.Build)
	}
	load := startFreshLoad(t, s.url(0, "/info"), 4, nil)
	time.Sleep(300 * time.Millisecond)

	// The binary on disk replaced: a recycle runs it in the workers only.
	copyExe(t, newBin, bin)
	if code, out, errOut := s.ctl(t, "recycle", "default"); code != 0 {
		t.Fatalf("wisp recycle: exit %d: %s%s", code, out, errOut)
	}
	if !s.waitStderr("the worker runs another build than the supervisor", 10*time.Second) {
		t.Errorf("no log line says the recycled workers run another build than the supervisor")
	}
	mixed := s.upgradeStatus(t)
	if mixed.PID != st0.PID || mixed.Build != st0.Build {
		t.Errorf("supervisor after the recycle: pid %d build %q, want pid %d build %q", mixed.PID, mixed.Build, st0.PID, st0.Build)
	}
	if b := mixed.workerBuilds(); len(b) != 2 || !strings.Contains(b[0], commit) || !strings.Contains(b[1], commit) {
		t.Errorf("ready workers' builds after the recycle: %q, want 2 of the new commit %s", b, commit)
	}
	if code, out, _ := s.ctl(t, "status"); code != 0 || !strings.Contains(out, "not the supervisor's") {
		t.Errorf("wisp status does not point out the workers' other build:\n%s", out)
	}

	// The upgrade.
	t0 := time.Now()
	code, out, errOut := s.ctl(t, "upgrade")
	if code != 0 {
		t.Fatalf("wisp upgrade: exit %d: %s%s", code, out, errOut)
	}
	t.Logf("wisp upgrade (%v): %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(out))
	st1 := s.upgradeStatus(t)
	if st1.PID == st0.PID || st1.PID == 0 {
		t.Fatalf("supervisor pid after the upgrade: %d, want a new one (was %d)", st1.PID, st0.PID)
	}
	stopSuccessor(t, st1.PID)
	if !strings.Contains(st1.Build, commit) {
		t.Errorf("supervisor build after the upgrade: %q, want commit %s", st1.Build, commit)
	}
	if !eventually(10*time.Second, func() bool {
		b := s.upgradeStatus(t).workerBuilds()
		for _, x := range b {
			if !strings.Contains(x, commit) {
				return false
			}
		}
		return len(b) == 2
	}) {
		t.Errorf("worker builds after the upgrade: %q, want 2 workers of commit %s", s.upgradeStatus(t).workerBuilds(), commit)
	}
	if !eventually(20*time.Second, func() bool { return !pidAlive(st0.PID) }) {
		t.Errorf("the old supervisor (pid %d) still runs", st0.PID)
	}
	time.Sleep(500 * time.Millisecond) // served by the new supervisor alone
	load.stop()
	total, ok := load.counts()
	t.Logf("load: %s", load.summary())
	if total == 0 || ok != total {
		t.Errorf("requests across the upgrade: %s", load.summary())
	}
	if code, _, _ := runWisp(t, 10*time.Second, "", "status", "--socket", s.Socket); code != 0 {
		t.Errorf("the control socket does not answer after the old supervisor exited")
	}
	adminServes(t, "127.0.0.1:"+s.Ports[1], "after the upgrade (the new supervisor's)")
}

// TestUpgradeFailingBinary: the binary on disk fails to start (a script that
// exits 1): `wisp upgrade` fails with the reason, and SIGUSR2 logs it; the
// running supervisor and its workers keep serving, and no request fails.
func TestUpgradeFailingBinary(t *testing.T) {
	s, bin := upgradeServer(t)
	st0 := s.upgradeStatus(t)
	load := startFreshLoad(t, s.url(0, "/info"), 4, nil)
	time.Sleep(300 * time.Millisecond)
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'e2e-broken-binary: cannot start' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyExe(t, broken, bin)
	code, out, errOut := s.ctl(t, "upgrade")
	if code != 1 {
		t.Errorf("wisp upgrade to a binary that exits 1: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"upgrade failed", "exited before it was ready", "exit status 1", "keeps serving"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("wisp upgrade's error lacks %q: %s", want, errOut)
		}
	}
	// the failed binary wrote to the supervisor's stderr, which the test
	// reads through a pipe: wait for the copy
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Stderr(), "e2e-broken-binary: cannot start") }) {
		t.Errorf("the error log lacks the failed binary's output")
	}
	s.signal(syscall.SIGUSR2)
	if !eventually(10*time.Second, func() bool {
		return strings.Count(s.Stderr(), "upgrade failed: the running supervisor keeps serving") >= 2
	}) {
		t.Errorf("SIGUSR2 with a binary that exits 1: no 'upgrade failed' line")
	}
	time.Sleep(300 * time.Millisecond)
	adminServes(t, "127.0.0.1:"+s.Ports[1], "after the failed upgrades (opened again)")
	st1 := s.upgradeStatus(t)
	if st1.PID != st0.PID || st1.Build != st0.Build {
		t.Errorf("after the failed upgrades: supervisor pid %d build %q, want pid %d build %q", st1.PID, st1.Build, st0.PID, st0.Build)
	}
	load.stop()
	total, ok := load.counts()
	t.Logf("load: %s", load.summary())
	if total == 0 || ok != total {
		t.Errorf("requests across the failed upgrades: %s", load.summary())
	}
	// the old binary back: the server is intact and stops as usual
	copyExe(t, wispBin, bin)
	s.signal(syscall.SIGTERM)
	if code, done := s.wait(stopTimeout); !done || code != 0 {
		t.Errorf("SIGTERM after the failed upgrades: exit %d (done %v), want 0", code, done)
	}
}

// TestUpgradeRunPoolNotify: `wisp run --workers 2` on port 0 with its
// default control socket, as a systemd notify service with a watchdog: an
// upgrade under load keeps the port (the socket handed over by its binding)
// and the control socket's path, fails no request, tells systemd the new
// main pid (MAINPID=, from the old supervisor), and the new supervisor pings
// the watchdog once the old one is gone.
func TestUpgradeRunPoolNotify(t *testing.T) {
	n := listenNotify(t)
	admin := "127.0.0.1:" + pickPort(t)
	w := startOpts(t, runOpts{Env: []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=400000"}},
		"--workers", "2", "--admin", admin, app("pool_app/app.py"))
	m := controlRE.FindStringSubmatch(w.Stderr())
	if m == nil {
		t.Fatalf("no control= in the startup line:\n%s", w.Stderr())
	}
	sock := m[1]
	s := &poolServer{wisp: w, Socket: sock, Dir: t.TempDir()}
	n.wait(t, "READY=1", 0, startTimeout)
	st0 := s.upgradeStatus(t)
	load := startFreshLoad(t, w.URL+"/info", 4, nil)
	time.Sleep(300 * time.Millisecond)
	if code, out, errOut := s.ctl(t, "upgrade"); code != 0 {
		t.Fatalf("wisp upgrade: exit %d: %s%s", code, out, errOut)
	}
	st1 := s.upgradeStatus(t)
	if st1.PID == st0.PID || st1.PID == 0 {
		t.Fatalf("supervisor pid after the upgrade: %d, want a new one (was %d)", st1.PID, st0.PID)
	}
	stopSuccessor(t, st1.PID)
	i := n.wait(t, "MAINPID="+strconv.Itoa(st1.PID), 0, 10*time.Second)
	if !eventually(20*time.Second, func() bool { return !pidAlive(st0.PID) }) {
		t.Fatalf("the old supervisor (pid %d) still runs", st0.PID)
	}
	n.mu.Lock()
	j := len(n.msgs)
	n.mu.Unlock()
	n.wait(t, "WATCHDOG=1", max(i, j), 2*time.Second) // the old one is gone: the new one pings
	load.stop()
	total, ok := load.counts()
	t.Logf("load: %s", load.summary())
	if total == 0 || ok != total {
		t.Errorf("requests across the upgrade: %s", load.summary())
	}
	if b := s.upgradeStatus(t).workerBuilds(); len(b) == 0 {
		t.Errorf("no ready worker after the upgrade")
	}
	adminServes(t, admin, "after the upgrade (the new supervisor's)")
}

// TestUpgradeInProcessRefused: an in-process server has no supervisor to
// hand over from: `wisp upgrade` fails saying so, SIGUSR2 is logged and
// ignored, and it serves on.
func TestUpgradeInProcessRefused(t *testing.T) {
	t.Parallel()
	w := start(t, app("pool_app/app.py"))
	m := controlRE.FindStringSubmatch(w.Stderr())
	if m == nil {
		t.Fatalf("no control= in the startup line:\n%s", w.Stderr())
	}
	code, out, errOut := runWisp(t, 30*time.Second, "", "upgrade", "--socket", m[1])
	if code != 1 || !strings.Contains(errOut, "cannot upgrade itself live") {
		t.Errorf("wisp upgrade in-process: exit %d, want 1 and why\n%s%s", code, out, errOut)
	}
	w.signal(syscall.SIGUSR2)
	if !w.waitStderr("SIGUSR2 ignored", 5*time.Second) {
		t.Errorf("SIGUSR2 in-process: no 'ignored' line")
	}
	if code, body := get(w.Client, w.URL+"/info"); code != 200 {
		t.Errorf("after SIGUSR2: %d %q", code, body)
	}
}

// TestUpgradeUnixSocketAndPidFile: `wisp run --workers 1` on a unix socket
// with --pid: across an upgrade the socket file stays and serves, the pid
// file names the new supervisor, and when the new one stops it removes both,
// as the one that created them would have.
func TestUpgradeUnixSocketAndPidFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock, pidFile := filepath.Join(dir, "app.sock"), filepath.Join(dir, "wisp.pid")
	w := launch(t, runOpts{}, "--workers", "1", "-b", "unix:"+sock, "--pid", pidFile, app("pool_app/app.py"))
	if !w.waitStderr("msg=listening", startTimeout) {
		t.Fatalf("not listening:\n%s", w.Stderr())
	}
	m := controlRE.FindStringSubmatch(w.Stderr())
	if m == nil {
		t.Fatalf("no control= in the startup line:\n%s", w.Stderr())
	}
	s := &poolServer{wisp: w, Socket: m[1], Dir: dir}
	serves := func(when string) {
		t.Helper()
		resp, err := unixClient(sock).Get("http://app.test/info")
		if err != nil {
			t.Fatalf("GET on the unix socket %s: %v", when, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET on the unix socket %s: %d", when, resp.StatusCode)
		}
	}
	serves("before the upgrade")
	if code, out, errOut := s.ctl(t, "upgrade"); code != 0 {
		t.Fatalf("wisp upgrade: exit %d: %s%s", code, out, errOut)
	}
	pid := s.upgradeStatus(t).PID
	stopSuccessor(t, pid)
	if !eventually(20*time.Second, func() bool { return !pidAlive(w.Pid()) }) {
		t.Fatalf("the old supervisor still runs")
	}
	serves("after the old supervisor exited")
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Errorf("pid file after the upgrade: %q, want the new supervisor's %d", b, pid)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !eventually(stopTimeout, func() bool { return !pidAlive(pid) }) {
		t.Fatalf("the new supervisor did not stop")
	}
	for _, f := range []string{sock, pidFile} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the new supervisor stopped: %v", f, err)
		}
	}
}
