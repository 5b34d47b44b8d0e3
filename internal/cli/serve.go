package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"wisp/internal/admin"
	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/devreload"
	"wisp/internal/listen"
	"wisp/internal/sdnotify"
	"wisp/internal/supervisor"
)

func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	var path, logFmt, errLogPath, pidPath string
	var check, print bool
	c := &cobra.Command{
		Use:   "serve [-c wisp.toml]",
		Short: "serve the sites and worker pools of a configuration file",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := setLogFormat(logFmt, stderr); err != nil {
				return err
			}
			path = findConfig(path)
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if print {
				return printConfig(cfg, false, stdout)
			}
			if check {
				return checkApps(cfg, stdout, stderr)
			}
			succ, err := takeUpgrade()
			if err != nil {
				return err
			}
			errLog, err := openErrorLog(errLogPath, stderr)
			if err != nil {
				return err
			}
			defer errLog.Close()
			return supervise(cfg, stdout, errLog, superviseOptions{
				reload: func() (*config.Config, error) { return config.Load(path) }, pidFile: pidPath, succ: succ,
			})
		},
	}
	fs := c.Flags()
	fs.StringVarP(&path, "config", "c", "", configHelp)
	fs.StringVar(&logFmt, "log-format", "auto", "error log: text (for a person: tracebacks as lines), logfmt, or auto (text on a terminal)")
	fs.StringVar(&errLogPath, "error-logfile", "-", "error log file, - for stderr (reopened on SIGUSR1)")
	fs.StringVarP(&pidPath, "pid", "p", "", "write the server's process id to this file (removed at exit)")
	fs.BoolVar(&check, "check-config", false, "check the file and import every app in a throwaway process of its pool, and exit: 0 when all is well")
	fs.BoolVar(&print, "print-config", false, "print the effective configuration (defaults filled in) as TOML, and exit")
	return c
}

// newLogger is the error log: level and format as the flags name them (see
// logFormat), with attrs on every record.
func newLogger(w io.Writer, level, format string, attrs ...any) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("log level %q: want debug, info, warn or error", level)}
	}
	format, err := logFormat(format, w)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(newTextHandler(w, opts)).With(attrs...), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)).With(attrs...), nil
}

// stopSignals end a server gracefully: SIGTERM (systemd, Kubernetes), SIGINT
// (a terminal) and SIGQUIT (nginx's graceful stop); a second one during the
// graceful stop ends it at once (as gunicorn and uvicorn do), cutting off
// the requests in flight. Every other signal whose default would end the
// process (SIGHUP, SIGUSR1, SIGUSR2) has a meaning or is logged and ignored,
// so that a stray kill never takes the server down.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}

// superviseOptions are what `wisp run` and `wisp serve` add to a
// configuration.
type superviseOptions struct {
	reload    func() (*config.Config, error) // the configuration a reload applies
	unix      listen.Unix                    // mode and owner of unix socket bindings
	devReload bool                           // --reload: recycle the pools when the apps' files change
	pidFile   string                         // --pid
	inherited *listen.Set                    // the sockets systemd passed, if already taken
	succ      *successor                     // what the previous supervisor handed over (an upgrade), if any
	startDir  string                         // the working folder the process started in ("": the current one)
}

// supervise runs the supervisor for cfg until SIGTERM/SIGINT; SIGHUP and the
// control API's reload apply what opt.reload returns. Under systemd it takes
// the sockets passed to it and reports its state (sd_notify).
func supervise(cfg *config.Config, stdout io.Writer, stderr *logFile, opt superviseOptions) error {
	log, err := newLogger(stderr, cfg.Server.LogLevel, "")
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	// Libraries that write to Go's standard logger (certmagic's warnings)
	// write into the error log, in its format.
	stdlog.SetFlags(0)
	stdlog.SetOutput(slogWriter{log})
	sigs := catchSignals()
	defer signal.Stop(sigs)
	notify := sdnotify.New()
	defer notify.Close()
	inherited := opt.inherited
	if inherited == nil {
		if inherited, err = listen.Inherit(); err != nil {
			return err
		}
	}
	succ := opt.succ
	defer succ.failed() // unless it served
	if succ != nil {
		inherited.Name(succ.bindings)
		log.Info("upgrade: taking over from the previous supervisor", "from", succ.from, "sockets", inherited.Len(), "build", buildName())
	}
	if inherited.Len() > 0 {
		cfg = adoptInherited(cfg, inherited, log)
	}
	pid, err := writePIDFile(opt.pidFile, succ.predecessor())
	if err != nil {
		return err
	}
	defer pid.remove()
	sup, err := supervisor.Start(cfg, supervisor.Options{
		Log: log, Stdout: stdout, Stderr: stderr, Inherited: inherited, Unix: opt.unix,
		DevReload: opt.devReload, ErrorLog: stderr.path, Build: buildName(), Owned: succ.ownedSockets(),
	})
	if err != nil {
		return err
	}
	// One change at a time (SIGHUP, the control API, --reload); cfg is
	// what runs.
	var cmu sync.Mutex
	applyConfig := func(nc *config.Config) error {
		notify.Reloading()
		defer notify.Ready("serving; reloaded")
		for _, w := range nc.Warnings {
			log.Warn(w)
		}
		if inherited.Len() > 0 {
			nc = adoptInherited(nc, inherited, log)
		}
		err := sup.Reload(nc)
		if err == nil {
			err = sup.AwaitReload() // the new workers are ready, or the reason they are not
		}
		if err != nil {
			log.Error("reload failed: the running configuration stays", "err", err)
			return err
		}
		cfg = nc
		return nil
	}
	apply := func() error {
		cmu.Lock()
		defer cmu.Unlock()
		nc, err := opt.reload()
		if err != nil {
			log.Error("reload refused: the running configuration stays", "err", err)
			return err
		}
		return applyConfig(nc)
	}
	// The admin listener, and binary upgrades (SIGUSR2, wisp upgrade): one
	// at a time, with no configuration change meanwhile.
	adm := &adminSlot{log: log, opts: admin.Options{Addr: cfg.Server.Admin, Token: cfg.Server.AdminToken, Hosts: cfg.Server.AdminHosts},
		src: poolHealth{sup, func() *config.Config {
			cmu.Lock()
			defer cmu.Unlock()
			return cfg
		}}}
	up := &upgrader{log: log, sup: sup, notify: notify, admin: adm, dir: opt.startDir, lock: &cmu,
		current: func() *config.Config { return cfg }, handed: make(chan int, 1)}
	ctl, err := control.Listen(cfg.Server.ControlSocket, control.Options{
		Target: sup, Reload: apply, Trace: sup.Trace, Log: log, Upgrade: up.run, Listener: succ.control(cfg.Server.ControlSocket),
		Config: func() *config.Config {
			cmu.Lock()
			defer cmu.Unlock()
			return cfg
		},
		Apply: func(nc *config.Config) error {
			cmu.Lock()
			defer cmu.Unlock()
			log.Info("configuration changed through the control API")
			return applyConfig(nc)
		},
	})
	if err != nil {
		sup.Shutdown(context.Background())
		return err
	}
	defer ctl.Close()
	up.ctl = ctl
	if err := adm.open(); err != nil {
		sup.Shutdown(context.Background())
		return err
	}
	defer adm.close()
	if opt.devReload {
		w, err := watchApps(cfg, sup, apply, log)
		if err != nil {
			log.Warn("--reload: cannot watch the app's files", "err", err)
		} else {
			defer w.Close()
		}
	}
	ready := sup.WaitReady(5 * time.Minute)
	if succ != nil {
		// an upgrade's successor serves every pool, or leaves the
		// previous supervisor serving
		if err := successorReady(ready, sup.Status()); err != nil {
			sup.Shutdown(context.Background())
			return err
		}
		succ.serving()
	}
	addrs := sup.Addrs()
	keys := sortedKeys(addrs)
	for _, k := range keys {
		log.Info("listening", "addr", addrs[k], "binding", k, "control", cfg.Server.ControlSocket)
	}
	if len(keys) == 0 { // an empty server, as an IIS with no site
		log.Info("serving no site yet: wisp install adds one", "control", cfg.Server.ControlSocket)
	}
	notify.Ready(fmt.Sprintf("serving %d site(s), %d pool(s)", len(cfg.Sites), len(cfg.Pools)))
	notify.StartWatchdog(sup.Responsive)
	upgraded := false
loop:
	for {
		var sig os.Signal
		select {
		case pid := <-up.handed:
			log.Info("upgraded: the old workers drain", "new_pid", pid)
			upgraded = true
			break loop
		case sig = <-sigs:
		}
		switch sig {
		case syscall.SIGHUP:
			log.Info("SIGHUP: reloading the configuration")
			go apply() // the loop stays free for SIGTERM while new workers start
			continue
		case syscall.SIGUSR1:
			if err := stderr.Reopen(); err != nil {
				log.Error("SIGUSR1: cannot reopen the error log", "err", err)
			}
			n := sup.SignalWorkers(syscall.SIGUSR1)
			log.Info("SIGUSR1: the workers reopen their log files", "workers", n)
			continue
		case syscall.SIGUSR2:
			log.Info("SIGUSR2: upgrading to the wisp binary on disk")
			go func() { // it logs its verdict; the loop stays free for SIGTERM
				if _, err := up.run(); errors.Is(err, errUpgrading) {
					log.Warn("SIGUSR2 ignored", "err", err)
				}
			}()
			continue
		}
		log.Info("stopping", "signal", sig.String())
		up.stopped.Store(true)
		break loop
	}
	var second os.Signal // a second stop signal during the drain delay
	if !upgraded {
		notify.Stopping()
		if d := time.Duration(cfg.Server.DrainDelay); d > 0 {
			sup.Drain()
			log.Info("draining: /readyz answers 503; serving on until the drain delay is over", "drain_delay", d.String())
			second = drainWait(d, sigs)
		}
	}
	grace := time.Duration(cfg.Server.GracefulTimeout)
	for _, p := range cfg.Pools {
		grace = max(grace, time.Duration(p.GracefulTimeout))
	}
	return stopPools(sup, grace, sigs, second, log)
}

// stopPools shuts the supervisor down: its workers finish their requests
// within grace. A second stop signal (second, if one came already, or one
// of sigs) kills them at once, naming the requests cut off, and is an error.
func stopPools(sup *supervisor.Supervisor, grace time.Duration, sigs <-chan os.Signal, second os.Signal, log *slog.Logger) error {
	log.Info("shutting down", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace+5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sup.Shutdown(ctx) }()
	for {
		sig := second
		second = nil
		if sig == nil {
			select {
			case err := <-done:
				if err != nil {
					log.Warn("shutdown", "err", err)
				}
				log.Info("stopped")
				return nil
			case sig = <-sigs:
			}
			if !slices.Contains(stopSignals, sig) {
				log.Info("already shutting down: signal ignored", "signal", sig.String())
				continue
			}
		}
		// a second stop signal: stop now, as gunicorn and uvicorn do
		log.Warn("second stop signal: stopping now, cutting off the requests in flight", "signal", sig.String())
		n := sup.Abort("second " + sig.String())
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		return fmt.Errorf("stopped at once by a second %s: %d request(s) in flight cut off (see the log)", sig, n)
	}
}

// adoptInherited makes the sockets systemd passed part of the configuration:
// sockets that match no binding (by name or address) are added to the first
// site, so that no connection systemd accepts for wisp goes unanswered.
func adoptInherited(cfg *config.Config, set *listen.Set, log *slog.Logger) *config.Config {
	bySite := map[string][]string{}
	for _, st := range cfg.Sites {
		bySite[st.Name] = st.Bindings
	}
	extra := set.Extra(bySite)
	if len(extra) == 0 {
		return cfg
	}
	c := *cfg
	sites := append([]*config.Site(nil), cfg.Sites...)
	first := *sites[0]
	first.Bindings = append(append([]string(nil), first.Bindings...), extra...)
	for _, b := range extra {
		log.Info("socket activation: a passed socket matches no binding; site serves it", "site", first.Name, "addr", b)
	}
	sites[0] = &first
	c.Sites = sites
	return &c
}

// workerCmd is `wisp worker`, started by the supervisor only.
func workerCmd(stdout, stderr io.Writer) error {
	spec, err := supervisor.ReadWorkerSpec()
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, spec.LogLevel, "", "pool", spec.Pool, "worker", spec.ID, "pid", os.Getpid())
	if err != nil {
		return err
	}
	tuneRuntime(spec.Processes)
	supervisor.ReportBuild(buildName())
	if err := supervisor.RunWorker(spec, log, stdout); err != nil {
		log.Error("worker failed", "err", err)
		return errSilent
	}
	return nil
}

// tuneRuntime sets Go's runtime for a process that is one of processes
// sharing the CPUs, where GOMAXPROCS and GOGC leave it to wisp.
//
// Processors: Python threads run in C and need no Go processor, and one CPU
// of the share goes to the Python thread holding the GIL, so Go gets the rest
// of the share, at least one.
//
// Garbage collection: wisp's Go heap is small and short-lived (per-request
// state; Python's memory is not in it), so half the default target keeps
// about 2 MiB less resident (hello); its CPU cost was within the noise of
// three A/B pairs.
func tuneRuntime(processes int) {
	if os.Getenv("GOMAXPROCS") == "" {
		n := runtime.GOMAXPROCS(0)/max(processes, 1) - 1 // the default honours CPU affinity and cgroup limits
		runtime.GOMAXPROCS(max(n, 1))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// watchApps is `wisp run --reload`: when a Python, ini or TOML file under
// the apps' folders changes, every pool's workers are replaced (overlapped,
// so requests keep being served); a change of the -c file reloads it.
func watchApps(cfg *config.Config, sup *supervisor.Supervisor, apply func() error, log *slog.Logger) (*devreload.Watcher, error) {
	var roots, files []string
	for _, p := range cfg.Pools {
		roots = append(append(roots, p.Chdir), p.PythonPath...)
	}
	for _, st := range cfg.Sites {
		for _, v := range st.Vdirs {
			if dir := targetDir(v.App); dir != "" {
				roots = append(roots, dir)
			}
		}
	}
	if cfg.File != "flags" && cfg.File != "" {
		files = append(files, cfg.File)
	}
	cfgFile, _ := filepath.Abs(cfg.File)
	var mu sync.Mutex
	w, err := devreload.Watch(roots, files, log, func(paths []string) {
		go func() {
			mu.Lock() // one reload at a time; changes meanwhile bring the next
			defer mu.Unlock()
			log.Info("--reload: files changed: loading the app again", "files", strings.Join(paths, " "))
			if slices.Contains(paths, cfgFile) {
				apply()
				return
			}
			for _, p := range sup.Status().Pools {
				if err := sup.Recycle(p.Name); err != nil {
					log.Error("--reload: the new workers failed", "pool", p.Name, "err", err)
				}
			}
		}()
	})
	if err != nil {
		return nil, err
	}
	log.Info("--reload: watching the app's files (for development only)", "folders", w.Dirs())
	return w, nil
}

// targetDir is the folder of an app target that names a file (app.py,
// config:app.ini), else "".
func targetDir(target string) string {
	t := strings.TrimPrefix(target, "config:")
	if i := strings.IndexByte(t, '#'); i >= 0 && strings.HasPrefix(target, "config:") {
		t = t[:i]
	}
	if strings.HasSuffix(t, ".py") || strings.HasSuffix(t, ".ini") || strings.Contains(t, ".py:") {
		if i := strings.Index(t, ".py:"); i >= 0 {
			t = t[:i+3]
		}
		return filepath.Dir(t)
	}
	return ""
}

// catchSignals catches, from the start, the signals a server acts on: a
// SIGHUP or SIGUSR1 that arrives while the apps import must not end the
// process (their default action). SIGPIPE is caught too (see supervisor.
// CatchSIGPIPE): a closed log pipe must not end the server.
func catchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, stopSignals...)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	supervisor.CatchSIGPIPE()
	return sigs
}

// drainWait waits out the drain delay. A second stop signal cuts it short
// and is returned: the server stops at once (nil: the delay is over).
func drainWait(d time.Duration, sigs <-chan os.Signal) os.Signal {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case sig := <-sigs:
			if slices.Contains(stopSignals, sig) {
				return sig
			}
		}
	}
}

// slogWriter turns the lines of Go's standard logger into warnings.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimRight(string(p), "\n"), "from", "library")
	return len(p), nil
}
