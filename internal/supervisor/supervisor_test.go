package supervisor

import (
	"os/exec"
	"testing"

	"wisp/internal/config"
	"wisp/internal/poolstate"
)

func TestRoutePool(t *testing.T) {
	site := &config.Site{Name: "s", Vdirs: []*config.Vdir{
		{Path: "/", Pool: "root"}, {Path: "/api", Pool: "api"}, {Path: "/api/v2", Pool: "v2"},
	}}
	for path, want := range map[string]string{
		"/": "root", "/x": "root", "/api": "api", "/api/": "api", "/apix": "root",
		"/api/v2": "v2", "/api/v2/users": "v2", "/api/v20": "api",
	} {
		if got := routePool(site, path); got != want {
			t.Errorf("routePool(%q) = %q, want %q", path, got, want)
		}
	}
	if got := primaryPool(site); got != "root" {
		t.Errorf("primaryPool = %q, want root (the shortest vdir)", got)
	}
	if got := routePool(&config.Site{Vdirs: []*config.Vdir{{Path: "/only", Pool: "p"}}}, "/other"); got != "" {
		t.Errorf("routePool without a root vdir = %q, want none", got)
	}
}

func TestLive(t *testing.T) {
	p := &pool{restarting: 1}
	old := &worker{state: poolstate.Ready}
	repl := &worker{state: poolstate.Starting, replaces: old}
	old.replacedBy = repl
	p.workers = []*worker{old, repl, {state: poolstate.Starting}, {state: poolstate.Draining}, {state: poolstate.Stopped}}
	// the restart, the ready worker being replaced (once), the new starting slot
	if got := p.live(); got != 3 {
		t.Errorf("live() = %d, want 3", got)
	}
}

func TestExitText(t *testing.T) {
	c := exec.Command("sh", "-c", "exit 3")
	c.Run()
	if got := exitText(c.ProcessState, nil); got != "exited with status 3" {
		t.Errorf("exitText = %q", got)
	}
	c = exec.Command("sh", "-c", "kill -9 $$")
	c.Run()
	if got := exitText(c.ProcessState, nil); got != "killed by signal SIGKILL" {
		t.Errorf("exitText = %q", got)
	}
}
