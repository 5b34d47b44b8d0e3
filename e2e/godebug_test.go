package e2e

import (
	"os"
	"strings"
	"testing"
)

// checkGODEBUG fails the test unless the process was started with
// http2xconnect=1 in its GODEBUG (net/http reads it at init to serve
// WebSockets over HTTP/2) while the app and its subprocesses see the
// user's GODEBUG (want; "-": none).
func checkGODEBUG(t *testing.T, got osEnv, want string) {
	t.Helper()
	if v := got.Proc["GODEBUG"]; !strings.Contains(v, "http2xconnect=1") {
		t.Errorf("the process was started with GODEBUG=%q: no http2xconnect=1", v)
	}
	for name, env := range map[string]map[string]string{"os.environ": got.Environ, "a subprocess": got.Subprocess} {
		v, ok := env["GODEBUG"]
		if !ok {
			v = "-"
		}
		if v != want {
			t.Errorf("%s: GODEBUG=%q, want the user's %q", name, v, want)
		}
	}
}

// Issue 21: `wisp run` re-executes itself with http2xconnect=1 added to its
// GODEBUG, and the app (in the same process) sees none, as the user had
// none. (t.Setenv: not parallel.)
func TestRunGODEBUGXConnect(t *testing.T) {
	t.Setenv("GODEBUG", "")
	os.Unsetenv("GODEBUG")
	w := start(t, app("osenv/app.py"))
	var got osEnv
	w.getJSON(t, "/", &got)
	checkGODEBUG(t, got, "-")
}

// The same for a pool's worker, with a GODEBUG of the user's.
func TestServeGODEBUGXConnect(t *testing.T) {
	t.Setenv("GODEBUG", "gctrace=0")
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 1
threads = 2

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/osenv/app.py"
`)
	var got osEnv
	s.getJSON(t, "/", &got)
	checkGODEBUG(t, got, "gctrace=0")
}
