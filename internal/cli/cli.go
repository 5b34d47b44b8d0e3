// Package cli implements wisp's commands. It is the only place that turns
// errors into exit codes.
//
// The command line is parsed by spf13/cobra and spf13/pflag (as kubectl,
// Hugo and Caddy do): GNU-style flags anywhere on the line, -h/--help on
// every command, shell completion, and gunicorn's flag names as aliases.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const rootLong = `wisp: a WSGI application server with CPython embedded.

  wisp run [flags] TARGET     serve one app (module:callable, file.py, config:app.ini[#name]);
                              with -w/--workers N, as a pool of N supervised worker processes
  wisp serve [-c wisp.toml]   serve the sites and worker pools of a configuration file
  wisp install TARGET         install an app into a site's vdir, live (--site/--server, --vdir,
                              --pool); an ISAPI-WSGI script gives its own parameters
  wisp remove                 take an install away, live (--site S --vdir V, or the script)
  wisp list                   every site, vdir, app and pool, and the file each comes from
  wisp check                  check the configuration and import every app
  wisp pythonpath             the isapi.install shim's folder, for 'python3 myapp.py install'
  wisp status                 show the pools and workers of a running server
  wisp recycle POOL           replace a pool's workers (overlapped: no request is dropped)
  wisp start POOL             start a pool stopped by rapid-fail protection or wisp stop
  wisp stop POOL              stop a pool (503 + Retry-After until wisp start)
  wisp trace                  live output of every app and worker, and one line per request
  wisp reload                 apply the changed configuration file (as SIGHUP does)
  wisp upgrade                run the wisp binary on disk, live (as SIGUSR2 does)
  wisp probe healthz|readyz   ask the admin listener (a container's health check)
  wisp version                the version, the build's commit, Go toolchain and platform
  wisp completion SHELL       shell completion for bash, zsh, fish or powershell

status, recycle, start, stop, reload, upgrade and trace take -c wisp.toml or --socket PATH to find
the server (an in-process wisp run names its socket in its startup line).
Every flag can also be set in the environment: WISP_ and its name in capitals
(WISP_BIND, WISP_WORKERS); a flag on the command line beats the environment,
which beats the configuration file.`

// Main runs the command line args and returns the process exit code:
// 0 success, 1 failure, 2 a mistake in the command line.
func Main(args []string) int {
	scrubEnviron(args, os.Stderr)
	root := newRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	return exitCode(root.Execute(), os.Stderr)
}

// exitCode reports err on stderr (unless already reported) and maps it to
// the exit code.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errSilent):
		return 1
	case errors.Is(err, errUsageShown):
		return 2
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintf(stderr, "wisp: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "wisp: %v\n", err)
		return 1
	}
}

// newRoot is the `wisp` command with every subcommand.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "wisp",
		Short: "a WSGI application server with CPython embedded",
		Long:  rootLong,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (see 'wisp --help')", args[0])}
			}
			c.SetOut(stderr)
			c.Help()
			return errUsageShown
		},
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newRunCommand(stdout, stderr),
		newServeCommand(stdout, stderr),
		newStatusCommand(stdout, stderr),
		newPoolCommand("recycle", "replace a pool's workers, new ones first: no request is dropped", stdout, stderr),
		newPoolCommand("start", "start a pool that rapid-fail protection (or wisp stop) stopped", stdout, stderr),
		newPoolCommand("stop", "stop a pool: its workers drain, its requests get 503 until wisp start", stdout, stderr),
		newTraceCommand(stdout, stderr),
		newReloadCommand(stdout, stderr),
		newUpgradeCommand(stdout, stderr),
		newProbeCommand(stdout, stderr),
		newInstallCommand(stdout, stderr),
		newRemoveCommand(stdout, stderr),
		newListCommand(stdout, stderr),
		newCheckCommand(stdout, stderr),
		newPythonpathCommand(stdout),
		&cobra.Command{
			Use:   "version",
			Short: "print the version, the build's commit, the Go toolchain and the platform",
			Args:  cobra.NoArgs,
			Run:   func(c *cobra.Command, _ []string) { fmt.Fprintln(stdout, versionLine()) },
		},
		&cobra.Command{
			Use:    "worker",
			Short:  "a pool's worker process (started by the supervisor only)",
			Hidden: true,
			Args:   cobra.NoArgs,
			RunE:   func(c *cobra.Command, _ []string) error { return workerCmd(stdout, stderr) },
		},
	)
	setup(root)
	return root
}

// setup gives c and its subcommands wisp's flag conventions: gunicorn's
// aliases, errors that name the flag and the accepted form, and values from
// the environment for flags the command line leaves out.
func setup(c *cobra.Command) {
	c.SilenceErrors, c.SilenceUsage = true, true
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError(c.Flags(), err) })
	c.Flags().SetNormalizeFunc(normalizeFlag)
	c.Flags().SortFlags = false
	if c.RunE != nil {
		run := c.RunE
		c.RunE = func(c *cobra.Command, args []string) error {
			if err := applyEnv(c.Flags(), envGetter); err != nil {
				return err
			}
			return run(c, args)
		}
	}
	for _, sub := range c.Commands() {
		setup(sub)
	}
}

// execute runs one command on its own (tests call commands this way).
func execute(c *cobra.Command, args []string) error {
	setup(c)
	c.SetArgs(args)
	return c.Execute()
}

const version = "0.1.0"

// commit is the git commit the binary was built from ("-dirty" when the tree
// had changes), set by the Makefile with -ldflags -X. Without it, Go's own
// VCS stamp is used when the build made one (not with -buildvcs=false).
var commit string

// versionLine is what `wisp version` prints: the version, the commit the
// binary was built from, the Go toolchain and the platform.
func versionLine() string {
	return fmt.Sprintf("wisp %s (%s, %s, %s/%s)", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildName names this binary's build for `wisp status` and the logs: the
// version and the commit ("0.1.0 commit abc123").
func buildName() string { return version + " " + buildCommit() }

// buildCommit is "commit REV" (from -ldflags, else Go's VCS stamp), or
// "unknown commit".
func buildCommit() string {
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
	return commit
}

// errSilent fails the command after the error was already logged.
var errSilent = errors.New("failed")

// errUsageShown is a mistake whose usage text was already printed (exit 2).
var errUsageShown = errors.New("usage shown")

// usageError is a mistake in the command line (exit code 2).
type usageError struct{ error }

// controlFlags are the flags of the commands that talk to a running server.
type controlFlags struct {
	config, socket string
	json           bool
}

func (cf *controlFlags) define(fs *pflag.FlagSet, withJSON bool) {
	fs.StringVarP(&cf.config, "config", "c", "", "configuration file of the running server, which names its control socket (default: $WISP_CONFIG, else ./wisp.toml, else /etc/wisp/wisp.toml)")
	fs.StringVar(&cf.socket, "socket", "", "control socket (default: the configuration's control_socket)")
	if withJSON {
		fs.BoolVar(&cf.json, "json", false, "print JSON")
	}
}
