package e2e

import (
	"strings"
	"testing"
)

// osEnv is what testdata/apps/osenv reports.
type osEnv struct {
	Environ    map[string]string `json:"environ"`
	Subprocess map[string]string `json:"subprocess"`
}

// checkAppEnv fails the test if the app (or a process it starts) sees a
// WISP_* variable other than WISP_APP_SETTING, or misses that one (-e / env =).
func checkAppEnv(t *testing.T, got osEnv) {
	t.Helper()
	for name, env := range map[string]map[string]string{"os.environ": got.Environ, "a subprocess": got.Subprocess} {
		if len(env) == 0 {
			t.Errorf("%s: empty", name)
		}
		for k := range env {
			if strings.HasPrefix(k, "WISP_") && k != "WISP_APP_SETTING" {
				t.Errorf("%s holds wisp's own %s", name, k)
			}
		}
		if v := env["WISP_APP_SETTING"]; v != "given" {
			t.Errorf("%s: WISP_APP_SETTING=%q, want the app's own \"given\"", name, v)
		}
		if v := env["OSENV_PLAIN"]; v != "kept" {
			t.Errorf("%s: OSENV_PLAIN=%q, want wisp's environment otherwise kept", name, v)
		}
	}
}

// Issue 19, 11: wisp's own variables (the admin token of a Kubernetes
// manifest, its flags, a worker's spec) reached the app's os.environ, where
// debug pages print them. In-process: only -e's WISP_* reaches the app and
// its subprocesses. (t.Setenv: not parallel.)
func TestRunAppEnvHasNoWispVars(t *testing.T) {
	t.Setenv("OSENV_PLAIN", "kept")
	w := startOpts(t, runOpts{Env: []string{"WISP_ADMIN_TOKEN=s3cret", "WISP_THREADS=3"}},
		"-e", "WISP_APP_SETTING=given", app("osenv/app.py"))
	var got osEnv
	w.getJSON(t, "/", &got)
	checkAppEnv(t, got)
}

// The same in a pool's worker (`wisp serve`): the supervisor's environment,
// the worker's spec (WISP_WORKER) and its log format stay out; the pool's
// `env =` comes in, WISP_* included.
func TestServeAppEnvHasNoWispVars(t *testing.T) {
	t.Setenv("WISP_ADMIN_TOKEN", "s3cret")
	t.Setenv("WISP_LOG_FORMAT", "text")
	t.Setenv("OSENV_PLAIN", "kept")
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 1
threads = 2
env = { WISP_APP_SETTING = "given" }

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/osenv/app.py"
`)
	var got osEnv
	s.getJSON(t, "/", &got)
	checkAppEnv(t, got)
}
