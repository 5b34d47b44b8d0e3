package e2e

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// controlRE finds the control socket the startup line names.
var controlRE = regexp.MustCompile(`control="?([^" \n]+)"?`)

// controlSocketOf returns the control socket w's startup line names.
func controlSocketOf(t testing.TB, w *wisp) string {
	t.Helper()
	for _, line := range strings.Split(w.Stderr(), "\n") {
		if m := controlRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "msg=listening") {
			return m[1]
		}
	}
	t.Fatalf("the startup line names no control socket:\n%s", w.Stderr())
	return ""
}

// refused waits (bounded) for w to exit without ever listening and returns
// its stderr; a server that starts fails the test.
func refused(t *testing.T, w *wisp, what string) string {
	t.Helper()
	if err := w.waitListening(startTimeout); err == nil {
		t.Errorf("%s: the server started", what)
		return w.Stderr()
	}
	if code, ok := w.wait(30 * time.Second); !ok || code == 0 {
		t.Errorf("%s: exit %d (exited: %v), want an error exit", what, code, ok)
	}
	return w.Stderr()
}

// A control socket path is only ever a socket wisp makes: a file already
// there (a notes file, the configuration itself) is an error naming it and
// stays as it was, in-process, as a pool, and for wisp serve; a socket a
// server answers on is an error; a stale one (nothing answers) is replaced.
func TestControlSocketPathIsNotDeleted(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		dir := t.TempDir()
		notes := filepath.Join(dir, "notes.txt")
		os.WriteFile(notes, []byte("keep me\n"), 0o644)
		w := launch(t, runOpts{Dir: dir}, append([]string{"--control-socket", "notes.txt", app("pool_app/app.py")}, extra...)...)
		errOut := refused(t, w, "--control-socket on a regular file")
		if !strings.Contains(errOut, "notes.txt") || !strings.Contains(errOut, "not a socket") {
			t.Errorf("%v: the error does not name the file as not a socket:\n%s", extra, errOut)
		}
		if b, err := os.ReadFile(notes); err != nil || string(b) != "keep me\n" {
			t.Errorf("%v: notes.txt after the refusal: %q, %v", extra, b, err)
		}

		// a live socket: someone answers on it
		live := filepath.Join(dir, "live.sock")
		ln, err := net.Listen("unix", live)
		if err != nil {
			t.Fatal(err)
		}
		w = launch(t, runOpts{Dir: dir}, append([]string{"--control-socket", live, app("pool_app/app.py")}, extra...)...)
		if errOut := refused(t, w, "--control-socket on a live socket"); !strings.Contains(errOut, "another server is listening on "+live) {
			t.Errorf("%v: want \"another server is listening on %s\":\n%s", extra, live, errOut)
		}
		if c, err := net.DialTimeout("unix", live, time.Second); err != nil {
			t.Errorf("%v: the live socket no longer answers: %v", extra, err)
		} else {
			c.Close()
		}
		ln.Close()

		// a stale socket: bound, then closed without removing it
		stale := filepath.Join(dir, "stale.sock")
		sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		sl.SetUnlinkOnClose(false)
		sl.Close()
		if fi, err := os.Lstat(stale); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("the stale socket is not there: %v", err)
		}
		w = startOpts(t, runOpts{Dir: dir}, append([]string{"--control-socket", stale, app("pool_app/app.py")}, extra...)...)
		if code, out, errOut := runWisp(t, 30*time.Second, dir, "status", "--socket", stale); code != 0 {
			t.Errorf("%v: wisp status on the replaced stale socket: exit %d %s%s", extra, code, out, errOut)
		}
		w.stop()
		if _, err := os.Lstat(stale); !os.IsNotExist(err) {
			t.Errorf("%v: the control socket is still there after exit: %v", extra, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".w*")); len(left) != 0 {
			t.Errorf("%v: private folders left beside the socket: %v", extra, left)
		}
	}

	// wisp serve with control_socket naming its own configuration file
	s := newPoolServer(t)
	s.writeConfig(t, `
[server]
control_socket = "wisp.toml"

[pools.default]
python = "@PY@"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
`)
	before := s.configText()
	s.launch(t)
	errOut := refused(t, s.wisp, "control_socket = the configuration file")
	if !strings.Contains(errOut, s.Config) || !strings.Contains(errOut, "not a socket") {
		t.Errorf("wisp serve: the error does not name %s as not a socket:\n%s", s.Config, errOut)
	}
	if s.configText() != before {
		t.Errorf("wisp serve: the configuration file changed: %q", s.configText())
	}
}

// The control socket is 0600 (only its user can talk to the server), and
// its default place is a folder no other user can create files in: the
// user's $XDG_RUNTIME_DIR, or a private folder (0700, owned by the server's
// user) that goes away with the server. wisp status reaches the server by
// the socket the startup line names.
func TestControlSocketDefaultIsPrivate(t *testing.T) {
	xdg := t.TempDir()
	os.Chmod(xdg, 0o700)
	for _, c := range []struct {
		name  string
		env   []string
		extra []string
	}{
		{"no XDG_RUNTIME_DIR", []string{"XDG_RUNTIME_DIR="}, nil},
		{"no XDG_RUNTIME_DIR, pool", []string{"XDG_RUNTIME_DIR="}, []string{"-w", "1"}},
		{"XDG_RUNTIME_DIR", []string{"XDG_RUNTIME_DIR=" + xdg}, nil},
		{"XDG_RUNTIME_DIR of another user", []string{"XDG_RUNTIME_DIR=" + otherUsersFolder(t)}, nil},
	} {
		w := startOpts(t, runOpts{Env: c.env}, append([]string{app("pool_app/app.py")}, c.extra...)...)
		sock := controlSocketOf(t, w)
		fi, err := os.Lstat(sock)
		if err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("%s: control socket %s: %v", c.name, sock, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: control socket mode %o, want 0600 or stricter", c.name, perm)
		}
		parent := filepath.Dir(sock)
		if c.name == "XDG_RUNTIME_DIR" {
			if parent != xdg {
				t.Errorf("%s: control socket %s, want it in %s", c.name, sock, xdg)
			}
		} else {
			pi, err := os.Lstat(parent)
			if err != nil || !pi.IsDir() {
				t.Fatalf("%s: folder of %s: %v", c.name, sock, err)
			}
			st := pi.Sys().(*syscall.Stat_t)
			if pi.Mode().Perm() != 0o700 || int(st.Uid) != os.Geteuid() {
				t.Errorf("%s: the control socket's folder %s has mode %o, owner %d; want 0700 and %d (no other user may create the path first)",
					c.name, parent, pi.Mode().Perm(), st.Uid, os.Geteuid())
			}
		}
		if code, out, errOut := runWisp(t, 30*time.Second, "", "status", "--socket", sock); code != 0 || !strings.Contains(out, "wisp pid") {
			t.Errorf("%s: wisp status --socket %s: exit %d %s%s", c.name, sock, code, out, errOut)
		}
		w.stop()
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("%s: the control socket is still there after exit: %v", c.name, err)
		}
		if c.name != "XDG_RUNTIME_DIR" {
			if _, err := os.Lstat(parent); !os.IsNotExist(err) {
				t.Errorf("%s: the private folder %s is still there after exit: %v", c.name, parent, err)
			}
		}
	}
}

// otherUsersFolder is a 0700 folder owned by nobody: an $XDG_RUNTIME_DIR
// this process must not take as its own.
func otherUsersFolder(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run-nobody")
	os.Mkdir(dir, 0o700)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skipf("chown to nobody: %v", err)
	}
	return dir
}
