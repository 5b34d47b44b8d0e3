package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// listenSocket creates the control socket at path and listens on it. The
// socket is never reachable by others at any moment: it is bound in a
// private folder (0700) made beside path, given mode 0600 there, and then
// linked to path, which fails rather than replace anything that appeared
// there meanwhile. (A umask of 077 around the bind would do the same, but
// the umask is the whole process's: the Python threads and the other
// goroutines creating files at that moment would get it too.)
//
// What is at path already is replaced only if it is a socket nothing answers
// on (a server that crashed left it). Anything else is an error naming the
// path: a file that is not a socket, and a live socket.
//
// It returns the listener, which does not remove path when closed, and the
// socket file's info, which tells Close the file is still this one.
func listenSocket(path string) (*net.UnixListener, os.FileInfo, error) {
	if err := removeStale(path); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".w")
	if err != nil {
		return nil, nil, fmt.Errorf("control socket %s: a private folder to create it in: %w", path, err)
	}
	defer os.Remove(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		if len(tmp) > maxPath {
			return nil, nil, fmt.Errorf("control socket %s: the path is too long: it is created as %s first, and a unix socket's path has at most %d bytes", path, tmp, maxPath)
		}
		return nil, nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	defer os.Remove(tmp)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		return nil, nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(errors.New("something else was created at this path meanwhile; not replacing it"))
		}
		return fail(err)
	}
	os.Remove(tmp)
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// maxPath is the longest path of a unix socket (sun_path, 108 bytes on
// Linux, with its terminating NUL).
const maxPath = 107

// removeStale makes way for the control socket at path: nothing there, or
// a socket nothing answers on (removed). Anything else is an error naming
// path.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: the path exists and is not a socket (%s); not replacing it: choose another path", path, kind(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket: another server is listening on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: a socket is there and it cannot be told whether a server answers on it; not replacing it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: remove the stale socket: %w", path, err)
	}
	return nil
}

// kind names the type of a file that is not a socket, for an error.
func kind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a folder"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "mode " + m.String()
}

// removeSocket removes the control socket at path if it is still the file
// listenSocket created (fi): not one another server put there since (the
// modification time tells a reused inode number apart).
func removeSocket(path string, fi os.FileInfo) {
	cur, err := os.Lstat(path)
	if err == nil && os.SameFile(cur, fi) && cur.Mode().Type() == fs.ModeSocket && cur.ModTime().Equal(fi.ModTime()) {
		os.Remove(path)
	}
}
