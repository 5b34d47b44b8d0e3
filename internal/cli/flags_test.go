package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wisp/internal/config"
)

// withEnv makes the flags' environment the map for one test.
func withEnv(t *testing.T, env map[string]string) {
	old := envGetter
	envGetter = func(k string) string { return env[k] }
	t.Cleanup(func() { envGetter = old })
}

// printed runs `wisp run --print-config args` and loads what it printed.
func printed(t *testing.T, args ...string) *config.Config {
	t.Helper()
	var out bytes.Buffer
	if err := runCmd(append([]string{"--print-config"}, args...), &out, io.Discard); err != nil {
		t.Fatalf("wisp run --print-config %s: %v", strings.Join(args, " "), err)
	}
	path := filepath.Join(t.TempDir(), "printed.toml")
	os.WriteFile(path, out.Bytes(), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out.String())
	}
	return cfg
}

// gunicorn's names, short flags, flags after the target, a bare number of
// seconds, and the environment: a flag beats its variable, a variable beats
// the default, and an alias's variable (WISP_WORKERS) works.
func TestRunFlagsGunicornAndEnv(t *testing.T) {
	withEnv(t, map[string]string{
		"WISP_WORKERS": "3", "WISP_THREADS": "2", "WISP_BIND": "127.0.0.1:9001, unix:/tmp/wisp-flags-test.sock",
		"WISP_MAX_REQUESTS": "100", "WISP_ENV": "A=1,B=two",
	})
	cfg := printed(t, "app:app", "--threads", "7", "-t", "30", "--graceful-timeout", "2.5", "--access-logfile", "off")
	p := cfg.Pools["default"]
	if p.Processes != 3 || p.Threads != 7 || p.MaxRequests != 100 {
		t.Errorf("processes %d threads %d max_requests %d, want 3 (WISP_WORKERS), 7 (the flag over WISP_THREADS), 100", p.Processes, p.Threads, p.MaxRequests)
	}
	if p.RequestTimeout.String() != "30s" || p.GracefulTimeout.String() != "2.5s" {
		t.Errorf("timeouts %s %s, want 30s and 2.5s", p.RequestTimeout, p.GracefulTimeout)
	}
	if p.Env["A"] != "1" || p.Env["B"] != "two" {
		t.Errorf("env %v", p.Env)
	}
	if b := cfg.Sites[0].Bindings; len(b) != 2 || b[0] != "127.0.0.1:9001" || b[1] != "unix:/tmp/wisp-flags-test.sock" {
		t.Errorf("bindings %v", b)
	}
	if cfg.Server.AccessLog != "off" {
		t.Errorf("access log %q: --access-logfile is --access-log", cfg.Server.AccessLog)
	}
	cfg = printed(t, "-b", "127.0.0.1:9002", "-w", "2", "app:app", "-b", "127.0.0.1:9003")
	if b := cfg.Sites[0].Bindings; len(b) != 2 || cfg.Pools["default"].Processes != 2 {
		t.Errorf("-b twice and -w 2: bindings %v processes %d", b, cfg.Pools["default"].Processes)
	}
}

// A bad value in the environment names the variable and the accepted form.
func TestRunEnvBadValue(t *testing.T) {
	withEnv(t, map[string]string{"WISP_THREADS": "lots"})
	err := runCmd([]string{"app:app"}, io.Discard, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "WISP_THREADS=lots: want a number of Python threads") {
		t.Errorf("got %v", err)
	}
}

// With -c, the file gives the settings, the environment beats the file, and
// a flag beats the environment.
func TestRunConfigOverlay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wisp.toml")
	os.WriteFile(path, []byte(`
[pools.web]
processes = 2
threads = 2
max_requests = 50

[[sites]]
name = "main"
bindings = ["127.0.0.1:9100"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
  pool = "web"
`), 0o644)
	withEnv(t, map[string]string{"WISP_THREADS": "6", "WISP_MAX_REQUESTS": "70"})
	cfg := printed(t, "-c", path, "--max-requests", "90", "--mount", "/api=api:app")
	p := cfg.Pools["web"]
	if p.Processes != 2 || p.Threads != 6 || p.MaxRequests != 90 {
		t.Errorf("processes %d (file: 2) threads %d (env: 6) max_requests %d (flag: 90)", p.Processes, p.Threads, p.MaxRequests)
	}
	if v := cfg.Sites[0].Vdirs; len(v) != 2 || v[1].Path != "/api" || v[1].Pool != "web" {
		t.Errorf("vdirs %+v", v)
	}
	if cfg.Sites[0].Bindings[0] != "127.0.0.1:9100" {
		t.Errorf("bindings %v: the file's, no --bind given", cfg.Sites[0].Bindings)
	}
}
