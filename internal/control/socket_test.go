package control

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The control socket replaces only a stale socket; a file that is not a
// socket, a link and a live socket are errors naming the path, and stay.
func TestListenSocketPath(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link.sock")
	os.Symlink(notes, link)
	for _, c := range []struct{ path, want string }{
		{notes, "not a socket (a regular file)"},
		{dir, "not a socket (a folder)"},
		{link, "not a socket (a symbolic link)"},
	} {
		ln, _, err := listenSocket(c.path)
		if err == nil {
			ln.Close()
			t.Errorf("%s: no error", c.path)
		} else if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.path, err, c.want)
		}
	}
	if b, err := os.ReadFile(notes); string(b) != "keep" {
		t.Errorf("notes.txt: %q %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the link is gone: %v", err)
	}

	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	if ln, _, err := listenSocket(live); err == nil {
		ln.Close()
		t.Error("a live socket: no error")
	} else if !strings.Contains(err.Error(), "another server is listening on "+live) {
		t.Errorf("a live socket: %v", err)
	}
	other.Close()

	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	ln, fi, err := listenSocket(stale)
	if err != nil {
		t.Fatalf("a stale socket: %v", err)
	}
	defer ln.Close()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	c, err := net.DialTimeout("unix", stale, time.Second)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	c.Close()
	if left, _ := filepath.Glob(filepath.Join(dir, ".w*")); len(left) != 0 {
		t.Errorf("private folders left: %v", left)
	}
}

// Close removes the socket only while it is still this server's.
func TestRemoveSocketOnlyOurs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, fi, err := listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	os.Remove(path)
	os.WriteFile(path, []byte("another's"), 0o600)
	removeSocket(path, fi)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a file that took the socket's place was removed: %v", err)
	}
	os.Remove(path)
	ln, fi, err = listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	removeSocket(path, fi)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket is still there: %v", err)
	}
}

// An upgrade: the next server serves the same control socket (a duplicate
// of its descriptor) at the same path; the old one's HandOver stops it
// accepting and its Close leaves the file, which the new one removes at its
// Close.
func TestHandOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	old, err := Listen(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := old.DupFD()
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "ctl")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	next, err := Listen(path, Options{Listener: ln.(*net.UnixListener)})
	if err != nil {
		t.Fatal(err)
	}
	old.HandOver()
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the old server's Close removed the socket it handed over: %v", err)
	}
	for range 5 { // every call reaches the new server
		if err := Call(path, "POST", "/v1/upgrade", nil, nil); err == nil || !strings.Contains(err.Error(), "cannot upgrade itself") {
			t.Fatalf("a call after the handover: %v", err)
		}
	}
	next.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the new server's Close left the socket: %v", err)
	}
}
