// Package cli implements wisp's commands. It is the only place that turns
// errors into exit codes.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

const usage = `wisp: a WSGI application server with CPython embedded

Usage:
  wisp run [flags] TARGET     serve one app (module:callable, file.py, config:app.ini[#name]);
                              with --processes N, as a pool of N supervised worker processes
  wisp serve [-c wisp.toml]   serve the sites and worker pools of a configuration file
  wisp status                 show the pools and workers of a running 'wisp serve'
  wisp recycle POOL           replace a pool's workers (overlapped: no request is dropped)
  wisp start POOL             start a pool stopped by rapid-fail protection
  wisp reload                 apply the changed configuration file (as SIGHUP does)
  wisp version                the version, the build's commit, Go toolchain and platform
  wisp help [command]

status, recycle, start and reload take -c wisp.toml or --socket PATH to find the server.

Run 'wisp run -h' for the flags.
`

// Main runs the command line args and returns the process exit code.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(args[1:], os.Stdout, os.Stderr)
	case "serve":
		err = serveCmd(args[1:], os.Stdout, os.Stderr)
	case "worker":
		err = workerCmd(os.Stdout, os.Stderr)
	case "status":
		err = statusCmd(args[1:], os.Stdout, os.Stderr)
	case "recycle", "start":
		err = poolCmd(args[0], args[1:], os.Stdout, os.Stderr)
	case "reload":
		err = reloadCmd(args[1:], os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "run" {
			err = runCmd([]string{"-h"}, os.Stdout, os.Stderr)
		} else {
			fmt.Fprint(os.Stdout, usage)
		}
	case "version", "--version":
		fmt.Println(versionLine())
	default:
		fmt.Fprintf(os.Stderr, "wisp: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errSilent):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "wisp: %v\n", err)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "wisp: %v\n", err)
		return 1
	}
}

const version = "0.1.0"

// commit is the git commit the binary was built from ("-dirty" when the tree
// had changes), set by the Makefile with -ldflags -X. Without it, Go's own
// VCS stamp is used when the build made one (not with -buildvcs=false).
var commit string

// versionLine is what `wisp version` prints: the version, the commit the
// binary was built from, the Go toolchain and the platform.
func versionLine() string {
	commit := commit
	if commit != "" {
		commit = "commit " + commit
	} else if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			commit = "commit " + rev + dirty
		}
	}
	if commit == "" {
		commit = "unknown commit"
	}
	return fmt.Sprintf("wisp %s (%s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// errSilent fails the command after the error was already logged.
var errSilent = errors.New("failed")

// usageError is a mistake in the command line (exit code 2).
type usageError struct{ error }

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
