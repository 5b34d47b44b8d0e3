package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"wisp/internal/h2"
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
// The same re-exec gives the server h2.XConnect in its GODEBUG, which
// net/http reads once, at process init, to serve WebSockets over HTTP/2
// (RFC 8441): a server command started without it re-executes itself even
// with no WISP_* variable, and the GODEBUG the user had (or its absence)
// travels in the memfd and is set again, so that what the app and its
// subprocesses see is the user's. Either way it is one exec, done before
// anything else starts.
//
// It returns normally when there is nothing to do, after reading the
// variables back, or when the re-exec failed (the variables then stay
// readable in /proc/self/environ, and HTTP/2 serves no WebSockets, as
// before; said on stderr).
func scrubEnviron(args []string, stderr io.Writer) {
	if fd := os.Getenv(envFDVar); fd != "" {
		restoreEnviron(fd, stderr)
		return
	}
	if len(args) == 0 || args[0] != "run" && args[0] != "serve" {
		return
	}
	keep, moved, hidden := reexecEnv(os.Environ())
	if len(moved) == 0 {
		return
	}
	fd, err := unix.MemfdCreate("wisp-env", 0) // no CLOEXEC: the new image reads it
	if err == nil {
		f := os.NewFile(uintptr(fd), "wisp-env")
		if _, err = f.Write(moved); err == nil {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				keep = append(keep, envFDVar+"="+strconv.Itoa(fd))
				err = syscall.Exec("/proc/self/exe", os.Args, keep)
			}
		}
		f.Close()
	}
	if hidden {
		fmt.Fprintf(stderr, "wisp: warning: cannot hide the WISP_* variables from /proc/self/environ (re-exec: %v)\n", err)
	} else {
		fmt.Fprintf(stderr, "wisp: warning: cannot enable WebSockets over HTTP/2 (re-exec with GODEBUG=%s: %v)\n", h2.XConnect, err)
	}
}

// reexecEnv splits env for scrubEnviron's re-exec: keep is the new image's
// environment (no WISP_* variable; h2.XConnect added to the first GODEBUG,
// which is the one Go reads), moved the NUL-separated entries the memfd
// carries back (the WISP_* variables, and "GODEBUG=<the user's>", or a bare
// "GODEBUG" when the user had none, when keep's differs). hidden reports
// whether WISP_* variables were moved. No moved entry: no re-exec needed.
func reexecEnv(env []string) (keep []string, moved []byte, hidden bool) {
	debug := false // a GODEBUG entry was seen
	for _, kv := range env {
		if strings.HasPrefix(kv, "WISP_") {
			moved = append(append(moved, kv...), 0)
			hidden = true
			continue
		}
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok && !debug {
			debug = true
			if !strings.Contains(v, h2.XConnect) {
				moved = append(append(moved, kv...), 0)
				if v != "" {
					v += ","
				}
				kv = "GODEBUG=" + v + h2.XConnect
			}
		}
		keep = append(keep, kv)
	}
	if !debug {
		moved = append(moved, "GODEBUG\x00"...)
		keep = append(keep, "GODEBUG="+h2.XConnect)
	}
	return keep, moved, hidden
}

// restoreEnviron sets again the variables scrubEnviron moved to fd, and
// the user's GODEBUG (net/http has read the one with h2.XConnect by now).
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
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case ok && (strings.HasPrefix(k, "WISP_") || k == "GODEBUG"):
			os.Setenv(k, v)
		case kv == "GODEBUG": // the user had none: the one net/http read goes
			os.Unsetenv(k)
		}
	}
}
