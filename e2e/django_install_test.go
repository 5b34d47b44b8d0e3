package e2e

// Issue 20, point 3: a Django project installed the way its users would,
// into a running server that started with no site at all.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveEmpty starts `wisp serve` on a wisp.toml with only [server] (no site,
// no pool: an empty IIS) and waits until its control socket answers.
func serveEmpty(t *testing.T) *poolServer {
	t.Helper()
	s := newPoolServer(t)
	s.writeConfig(t, "[server]\ncontrol_socket = \"wisp.sock\"\naccess_log = \"off\"\n")
	s.launch(t)
	exited := func() bool {
		select {
		case <-s.exited:
			return true
		default:
			return false
		}
	}
	if !eventually(startTimeout, func() bool {
		if exited() {
			return true
		}
		code, _, _ := runWisp(t, 10*time.Second, s.Dir, "status", "--socket", s.Socket)
		return code == 0
	}) || exited() {
		t.Fatalf("wisp serve with no site: its control socket does not answer\n%s", tail(s.Stderr(), 4<<10))
	}
	return s
}

// TestInstallDjangoProject: `wisp install mysite/mysite/wsgi.py --site S
// --vdir /` into a running server with no site: the site and its pool are
// made, the project root (the folder above the package mysite) is the
// pool's folder and on its path, and / answers the project's view.
func TestInstallDjangoProject(t *testing.T) {
	s := serveEmpty(t)
	wsgi := app("django_project/mysite/mysite/wsgi.py")
	code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", wsgi, "--site", "S", "--vdir", "/",
		"--binding", "127.0.0.1:"+s.Ports[0], "--python", python, "-c", s.Config)
	if code != 0 {
		t.Fatalf("wisp install %s: exit %d\n%s\n%s", wsgi, code, out, errOut)
	}
	resp, body := getOnceOK(t, s.url(0, "/"))
	if resp != 200 || !strings.Contains(body, "hello from mysite (settings mysite.settings)") {
		t.Errorf("GET /: %d %q, want the Django view", resp, body)
	}
	root := app("django_project/mysite")
	pool, err := os.ReadFile(filepath.Join(s.Dir, "wisp.d", "default.pool.toml"))
	if err != nil || !strings.Contains(string(pool), "chdir = '"+root+"'") || !strings.Contains(string(pool), "pythonpath = ['"+root+"']") {
		t.Errorf("the pool the install made: %v\n%s", err, pool)
	}
}

// TestInstallPythonpath: a module target found only on --pythonpath (and
// --chdir) installs, into the pool the install makes with them.
func TestInstallPythonpath(t *testing.T) {
	s := serveEmpty(t)
	root := app("django_project/mysite")
	code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", "mysite.wsgi:application", "--site", "S", "--vdir", "/",
		"--pool", "dj", "--pythonpath", root, "--chdir", root, "--binding", "127.0.0.1:"+s.Ports[0], "--python", python, "-c", s.Config)
	if code != 0 {
		t.Fatalf("wisp install --pythonpath: exit %d\n%s\n%s", code, out, errOut)
	}
	if resp, body := getOnceOK(t, s.url(0, "/")); resp != 200 || !strings.Contains(body, "hello from mysite") {
		t.Errorf("GET /: %d %q", resp, body)
	}
}

// getOnceOK GETs url once (the test fails on a transport error).
func getOnceOK(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, body, err := getOnce(t, url, 30*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// TestInstallCheckRunsAsPoolUser: the install's import check runs as the
// pool's user: an app file only root can read does not pass it for a pool
// of user nobody (with no server running, nothing else would notice before
// the next start), while the same file readable by all does.
func TestInstallCheckRunsAsPoolUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a pool of another user)")
	}
	dir, err := os.MkdirTemp("", "wisp-e2e-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // nobody may pass, and read what is readable
	cfg := filepath.Join(dir, "wisp.toml")
	src, err := os.ReadFile(app("pool_app/app.py"))
	if err != nil {
		t.Fatal(err)
	}
	public := filepath.Join(dir, "public.py")
	if err := os.WriteFile(public, src, 0o644); err != nil {
		t.Fatal(err)
	}
	text := "[server]\ncontrol_socket = \"wisp.sock\"\n\n[pools.nob]\npython = \"" + python + "\"\nuser = \"nobody\"\n\n" +
		"[[sites]]\nname = \"main\"\nbindings = [\"127.0.0.1:" + pickPort(t) + "\"]\n\n  [[sites.vdirs]]\n  path = \"/\"\n  app = \"" + public + "\"\n  pool = \"nob\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret.py")
	if err := os.WriteFile(secret, src, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runWisp(t, 60*time.Second, dir, "install", secret, "--site", "S", "--vdir", "/", "--pool", "nob", "-c", cfg)
	if code == 0 {
		t.Fatalf("an app only root can read passed the check of a pool of user nobody\n%s\n%s", out, errOut)
	}
	if !strings.Contains(errOut, "does not import") {
		t.Errorf("the error does not say the app does not import: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "wisp.d", "S--ROOT.toml")); err == nil {
		t.Errorf("the failed install wrote its drop-in")
	}
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runWisp(t, 60*time.Second, dir, "install", secret, "--site", "S", "--vdir", "/", "--pool", "nob", "-c", cfg)
	if code != 0 {
		t.Errorf("the same app readable by all: exit %d\n%s\n%s", code, out, errOut)
	}
}
