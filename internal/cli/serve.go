package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/supervisor"
)

// serveCmd is `wisp serve -c wisp.toml`: the supervisor of the worker pools.
func serveCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	path := fs.String("c", "wisp.toml", "configuration file")
	logFmt := fs.String("log-format", "auto", "error log: text (for a person: tracebacks as lines), logfmt, or auto (text on a terminal)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := setLogFormat(*logFmt, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	return supervise(cfg, stdout, stderr, func() (*config.Config, error) { return config.Load(*path) })
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
// (a terminal) and SIGQUIT (nginx's graceful stop). Every other signal whose
// default would end the process (SIGHUP, SIGUSR1, SIGUSR2) has a meaning or
// is logged and ignored, so that a stray kill never takes the server down.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}

// supervise runs the supervisor for cfg until SIGTERM/SIGINT; SIGHUP and the
// control API's reload apply what reload returns.
func supervise(cfg *config.Config, stdout, stderr io.Writer, reload func() (*config.Config, error)) error {
	log, err := newLogger(stderr, cfg.Server.LogLevel, "")
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	sup, err := supervisor.Start(cfg, supervisor.Options{Log: log, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return err
	}
	apply := func() error {
		nc, err := reload()
		if err != nil {
			log.Error("reload refused: the running configuration stays", "err", err)
			return err
		}
		for _, w := range nc.Warnings {
			log.Warn(w)
		}
		if err := sup.Reload(nc); err != nil {
			log.Error("reload failed: the running configuration stays", "err", err)
			return err
		}
		cfg = nc
		return nil
	}
	ctl, err := control.Listen(cfg.Server.ControlSocket, sup, apply, log)
	if err != nil {
		sup.Shutdown(context.Background())
		return err
	}
	defer ctl.Close()
	sup.WaitReady(5 * time.Minute)
	addrs := sup.Addrs()
	keys := make([]string, 0, len(addrs))
	for k := range addrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		log.Info("listening", "addr", addrs[k], "binding", k, "control", cfg.Server.ControlSocket)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, stopSignals...)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			log.Info("SIGHUP: reloading the configuration")
			apply()
			continue
		case syscall.SIGUSR1:
			n := sup.SignalWorkers(syscall.SIGUSR1)
			log.Info("SIGUSR1: the workers reopen their log files", "workers", n)
			continue
		case syscall.SIGUSR2:
			log.Warn("SIGUSR2 ignored: it has no meaning for wisp")
			continue
		}
		log.Info("stopping", "signal", sig.String())
		break
	}
	grace := time.Duration(cfg.Server.GracefulTimeout)
	for _, p := range cfg.Pools {
		grace = max(grace, time.Duration(p.GracefulTimeout))
	}
	log.Info("shutting down", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace+5*time.Second)
	defer cancel()
	if err := sup.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
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
