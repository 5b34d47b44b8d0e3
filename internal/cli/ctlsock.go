package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// defaultControlSocket makes the place of the control socket `wisp run`
// creates without --control-socket (in-process and as a pool): wisp-PID.sock
// in a folder no other user can write to, so that no one can take the path
// first (in a shared /tmp, anyone could bind /tmp/wisp-PID.sock before wisp
// and keep it from starting). The folder is $XDG_RUNTIME_DIR when it is this
// user's and private, as the XDG spec has it; else a new folder made under
// $TMPDIR with mode 0700 and a name no one can claim first (os.MkdirTemp).
// The startup line names the socket (control=); done removes the folder it
// made, once the socket is gone.
func defaultControlSocket() (sock string, done func(), err error) {
	name := fmt.Sprintf("wisp-%d.sock", os.Getpid())
	if dir := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(dir) && privateFolder(dir) {
		return filepath.Join(dir, name), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "wisp-")
	if err != nil {
		return "", nil, fmt.Errorf("a private folder for the control socket (or pass --control-socket): %w", err)
	}
	return filepath.Join(dir, name), func() { os.Remove(dir) }, nil
}

// privateFolder reports whether dir is a folder (not a link to one) that
// this process's user owns and no one else can write to or enter.
func privateFolder(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
