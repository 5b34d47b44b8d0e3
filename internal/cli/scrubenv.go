package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envFDVar names the descriptor from which a re-executed wisp reads back
// the WISP_* variables it was started with (scrubEnviron).
const envFDVar = "WISP_ENV_FD"

// scrubEnviron keeps wisp's own WISP_* variables (its flags, the admin
// token of a Kubernetes manifest) out of the memory an app can read as
// /proc/self/environ. Removing them from the environment is not enough:
// the kernel shows the environment the process was started with. So a
// server command (run, serve) started with any WISP_* variable re-executes
// itself, same pid, same descriptors, with those variables moved to a
// memfd it reads back at once and sets again (in memory only). Pool workers
// get no WISP_* variable from the supervisor but their spec and log format
// (supervisor.workerEnv); apps get none at all (pyembed).
//
// It returns normally when there is nothing to do, after reading the
// variables back, or when the re-exec failed (the variables then stay
// readable in /proc/self/environ, as before; said on stderr).
func scrubEnviron(args []string, stderr io.Writer) {
	if fd := os.Getenv(envFDVar); fd != "" {
		restoreEnviron(fd, stderr)
		return
	}
	if len(args) == 0 || args[0] != "run" && args[0] != "serve" {
		return
	}
	var moved bytes.Buffer
	var keep []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WISP_") {
			moved.WriteString(kv)
			moved.WriteByte(0)
		} else {
			keep = append(keep, kv)
		}
	}
	if moved.Len() == 0 {
		return
	}
	fd, err := unix.MemfdCreate("wisp-env", 0) // no CLOEXEC: the new image reads it
	if err == nil {
		f := os.NewFile(uintptr(fd), "wisp-env")
		if _, err = f.Write(moved.Bytes()); err == nil {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				keep = append(keep, envFDVar+"="+strconv.Itoa(fd))
				err = syscall.Exec("/proc/self/exe", os.Args, keep)
			}
		}
		f.Close()
	}
	fmt.Fprintf(stderr, "wisp: warning: cannot hide the WISP_* variables from /proc/self/environ (re-exec: %v)\n", err)
}

// restoreEnviron sets again the variables scrubEnviron moved to fd.
func restoreEnviron(fd string, stderr io.Writer) {
	os.Unsetenv(envFDVar)
	n, err := strconv.Atoi(fd)
	if err != nil || n < 3 {
		fmt.Fprintf(stderr, "wisp: warning: %s=%q is not a descriptor\n", envFDVar, fd)
		return
	}
	f := os.NewFile(uintptr(n), "wisp-env")
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		fmt.Fprintf(stderr, "wisp: warning: read the WISP_* variables back: %v\n", err)
		return
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "WISP_") {
			os.Setenv(k, v)
		}
	}
}
