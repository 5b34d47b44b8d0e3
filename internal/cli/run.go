package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/pyembed"
	"wisp/internal/server"
)

// runCmd is `wisp run`: one process, the apps in its embedded interpreter.
func runCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	d := server.Defaults
	var binds listFlag
	fs.Var(&binds, "bind", "address to listen on, host:port (repeatable; default 127.0.0.1:8000)")
	threads := fs.Int("threads", d.Threads, "Python threads of the threadpool handler")
	handler := fs.String("handler", "", "threadpool (N threads; the default) or simple (one thread; the default for an ISAPISimpleHandler script)")
	python := fs.String("python", "", "Python interpreter, virtualenv folder or command (default python3 on PATH)")
	chdir := fs.String("chdir", "", "change to this folder before loading the apps")
	var pypath, mounts listFlag
	fs.Var(&pypath, "pythonpath", "folder to prepend to sys.path (repeatable)")
	fs.Var(&mounts, "mount", "PREFIX=TARGET: serve TARGET under URL prefix PREFIX (repeatable)")
	queue := fs.Int("queue", d.Queue, "requests that may wait for a Python thread; beyond: 503")
	maxBody := fs.Int64("max-body", d.MaxBody, "request body limit in bytes; beyond: 413")
	memBody := fs.Int64("mem-body", d.MemBody, "bodies up to this many bytes stay in memory; larger ones go to a temp file")
	minRate := fs.Int64("min-write-rate", 1024, "bytes per second a client must take of a response (counted while writes wait for it, after 10s of waiting); a slower reader is cut off so it cannot hold a Python thread (0: no minimum)")
	maxSpill := fs.Int64("max-spill", 10<<30, "temp-file space in bytes, all requests together, for request bodies (beyond: 503 + Retry-After) and for responses a slow client does not take (beyond: the app waits for the client)")
	maxHeader := fs.Int("max-header-bytes", d.MaxHeaderBytes, "request line and headers limit in bytes; beyond: 431")
	rht := fs.Duration("read-header-timeout", d.ReadHeaderTimeout, "time to read the request headers")
	rt := fs.Duration("read-timeout", d.ReadTimeout, "time to read a whole request, body included")
	wt := fs.Duration("write-timeout", d.WriteTimeout, "time any single write to a client may take")
	it := fs.Duration("idle-timeout", d.IdleTimeout, "keep-alive wait for the next request")
	grace := fs.Duration("graceful-timeout", 30*time.Second, "on SIGTERM/SIGINT, time in-flight requests get to finish")
	accessLog := fs.String("access-log", "-", "access log file, - for stdout, off for none")
	level := fs.String("log-level", "info", "error log level: debug, info, warn, error")
	logFmt := fs.String("log-format", "auto", "error log: text (for a person: tracebacks as lines), logfmt, or auto (text on a terminal)")
	timeout := fs.Duration("timeout", 0, "time a request may spend in the app: then 504, its Python stack is logged and TimeoutError raised in it (0: none)")
	maxStuck := fs.Int("max-stuck-threads", 0, "Python threads stuck in timed-out requests (in C code, past --timeout and 5s) that are replaced by new ones; beyond, the server reports itself unhealthy (0: --threads)")
	// Pool flags: with --processes, wisp runs the app as a supervised pool of worker processes.
	processes := fs.Int("processes", 0, "run N supervised worker processes (a pool, as 'wisp serve' does); 0: in this process")
	maxReq := fs.Int("max-requests", 0, "pool: recycle a worker after this many requests (0: never)")
	maxReqJitter := fs.Int("max-requests-jitter", 0, "pool: add up to this many requests to --max-requests, per worker")
	maxRSS := fs.Int("max-rss", 0, "pool: recycle a worker whose memory exceeds this many MB (0: never)")
	maxRSSHard := fs.Int("max-rss-hard", 0, "pool: kill and replace a worker whose memory exceeds this many MB at once")
	maxUptime := fs.Duration("max-uptime", 0, "pool: recycle a worker after this long (0: never)")
	poolIdle := fs.Duration("pool-idle-timeout", 0, "pool: stop every worker after this long without requests; the next request starts them (0: never)")
	startTimeout := fs.Duration("start-timeout", 60*time.Second, "pool: time a worker may take to import its apps")
	cpuAffinity := fs.Bool("cpu-affinity", false, "pool: pin each worker to its share of the CPUs (with 2 or more processes)")
	rapidFail := fs.Bool("rapid-fail", true, "pool: stop the pool (503 + Retry-After) when workers keep dying while starting or soon after, until 'wisp start'")
	rapidFailMax := fs.Int("rapid-fail-max", 5, "pool: early worker deaths within --rapid-fail-window that stop the pool")
	rapidFailWindow := fs.Duration("rapid-fail-window", 5*time.Minute, "pool: the window of --rapid-fail-max")
	ctlSocket := fs.String("control-socket", "", "pool: control socket for wisp status/recycle (default $TMPDIR/wisp-PID.sock)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wisp run [flags] [TARGET]\n\nTARGET is module:callable, path/to/app.py or config:app.ini[#name].\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkRunFlags(fs, *processes); err != nil {
		return err
	}
	if len(binds) == 0 {
		binds = listFlag{"127.0.0.1:8000"}
	}
	for _, b := range binds {
		if err := checkBind(b); err != nil {
			return usageError{err}
		}
	}
	var ms []server.Mount
	switch fs.NArg() {
	case 0:
	case 1:
		ms = append(ms, server.Mount{Prefix: "", Target: fs.Arg(0)})
	default:
		return usageError{fmt.Errorf("run takes one TARGET, got %d: %s", fs.NArg(), strings.Join(fs.Args(), " "))}
	}
	for _, m := range mounts {
		prefix, target, ok := strings.Cut(m, "=")
		if !ok || target == "" {
			return usageError{fmt.Errorf("--mount %q: want PREFIX=TARGET", m)}
		}
		ms = append(ms, server.Mount{Prefix: prefix, Target: target})
	}
	if len(ms) == 0 {
		return usageError{fmt.Errorf("nothing to serve: give a TARGET or --mount PREFIX=TARGET")}
	}
	if err := setLogFormat(*logFmt, stderr); err != nil {
		return err
	}
	if _, err := newLogger(stderr, *level, ""); err != nil {
		return err
	}
	if *processes > 0 {
		if *chdir != "" {
			if err := os.Chdir(*chdir); err != nil {
				return fmt.Errorf("--chdir: %w", err)
			}
		}
		sock := *ctlSocket
		if sock == "" {
			sock = filepath.Join(os.TempDir(), fmt.Sprintf("wisp-%d.sock", os.Getpid()))
		}
		toml, err := poolTOML(runPool{
			binds: binds, mounts: ms, python: *python, pythonpath: pypath, processes: *processes, threads: *threads,
			handler: *handler, queue: *queue, maxBody: *maxBody, maxHeader: *maxHeader, timeout: *timeout,
			maxReq: *maxReq, maxReqJitter: *maxReqJitter, maxRSS: *maxRSS, maxRSSHard: *maxRSSHard,
			maxUptime: *maxUptime, idle: *poolIdle, start: *startTimeout, grace: *grace, socket: sock,
			access: *accessLog, level: *level, rht: *rht, rt: *rt, wt: *wt, it: *it, cpuAffinity: *cpuAffinity,
			minWriteRate: *minRate, maxSpill: *maxSpill, rapidFail: *rapidFail, rapidFailMax: *rapidFailMax, rapidFailWindow: *rapidFailWindow,
		})
		if err != nil {
			return usageError{err}
		}
		cfg, err := config.Parse("flags", []byte(toml))
		if err != nil {
			return fmt.Errorf("pool settings: %w", err)
		}
		return supervise(cfg, stdout, stderr, func() (*config.Config, error) { return cfg, nil })
	}
	log, err := newLogger(stderr, *level, "")
	if err != nil {
		return err
	}
	access, closeAccess, reopenAccess, err := server.OpenAccessLog(*accessLog, stdout)
	if err != nil {
		return err
	}
	defer closeAccess()
	cfg := server.Config{
		Handler: *handler, Threads: *threads, Queue: *queue, MaxBody: *maxBody, MemBody: *memBody,
		MaxHeaderBytes: *maxHeader, ReadHeaderTimeout: *rht, ReadTimeout: *rt, WriteTimeout: *wt,
		IdleTimeout: *it, AccessLog: access, Log: log, RequestTimeout: *timeout, MaxStuckThreads: *maxStuck, MaxSpill: *maxSpill, MinWriteRate: server.WriteRate(*minRate),
	}
	if cfg.Handler != "" && cfg.Handler != "threadpool" && cfg.Handler != "simple" {
		return usageError{fmt.Errorf("--handler %q: want threadpool or simple", cfg.Handler)}
	}
	if *chdir != "" {
		if err := os.Chdir(*chdir); err != nil {
			return fmt.Errorf("--chdir: %w", err)
		}
	}
	cwd, _ := os.Getwd()
	paths := []string{cwd}
	for _, p := range pypath {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		paths = append(paths, p)
	}
	tuneRuntime(1)

	ip, err := pyembed.Start(pyembed.Options{Python: *python, Paths: paths, Logger: log})
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, ip, ms)
	if err != nil {
		return err
	}
	var lns []net.Listener
	for _, b := range binds {
		ln, err := net.Listen("tcp", b)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			srv.Shutdown(context.Background())
			return fmt.Errorf("listen on %s: %w", b, err)
		}
		lns = append(lns, ln)
	}
	handlerName, threadCount := srv.Handler()
	pythonFrom := "python3 on PATH (use --python to choose)"
	if *python != "" {
		pythonFrom = "--python " + *python
	}
	for _, ln := range lns {
		log.Info("listening", "addr", ln.Addr().String(), "python", ip.Info.Release(), "interpreter", ip.Info.Executable,
			"from", pythonFrom, "lib", ip.Info.Lib, "handler", handlerName, "threads", threadCount)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, stopSignals...)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
wait:
	for {
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				if err := reopenAccess(); err != nil {
					log.Error("SIGUSR1: cannot reopen the access log; writing on to the old file", "err", err)
				} else {
					log.Info("SIGUSR1: log files reopened")
				}
			case syscall.SIGHUP:
				log.Warn("SIGHUP ignored: in-process wisp cannot reload its app without a restart (Python cannot be re-initialized in one process); run a pool (--processes N, or wisp serve) to reload live")
			case syscall.SIGUSR2:
				log.Warn("SIGUSR2 ignored: it has no meaning for wisp")
			default:
				log.Info("stopping", "signal", sig.String())
				break wait
			}
		}
	}
	signal.Stop(sigs)
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	switch {
	case errors.Is(err, server.ErrAbandoned):
		log.Warn("grace period over: exiting with requests still running in Python", "grace", grace.String())
		return nil // Python cannot be finalized under running threads
	case err != nil:
		log.Warn("grace period over; closed the remaining connections", "err", err)
	}
	if err := ip.Close(5 * time.Second); err != nil {
		log.Warn("python shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// runPool is `wisp run` with --processes: the flags of a one-pool server.
type runPool struct {
	python, handler, socket, access, level   string
	binds                                    []string
	mounts                                   []server.Mount
	pythonpath                               []string
	processes, threads, queue, maxHeader     int
	maxReq, maxReqJitter, maxRSS, maxRSSHard int
	maxBody, minWriteRate, maxSpill          int64
	timeout, maxUptime, idle, start, grace   time.Duration
	rht, rt, wt, it                          time.Duration
	cpuAffinity, rapidFail                   bool
	rapidFailMax                             int
	rapidFailWindow                          time.Duration
}

// poolTOML writes the flags as the configuration file they stand for, so that
// they get the same defaults and validation as 'wisp serve'.
func poolTOML(p runPool) (string, error) {
	var b strings.Builder
	q := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	for _, s := range append(append([]string{p.python, p.socket, p.access}, p.binds...), p.pythonpath...) {
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
			return "", fmt.Errorf("control characters in %q", s)
		}
	}
	d := func(v time.Duration) string { return q(v.String()) }
	fmt.Fprintf(&b, "[server]\ncontrol_socket = %s\naccess_log = %s\nlog_level = %s\n", q(p.socket), q(p.access), q(p.level))
	fmt.Fprintf(&b, "read_header_timeout = %s\nread_timeout = %s\nwrite_timeout = %s\nidle_timeout = %s\ngraceful_timeout = %s\n",
		d(p.rht), d(p.rt), d(p.wt), d(p.it), d(p.grace))
	fmt.Fprintf(&b, "\n[pools.default]\nprocesses = %d\nthreads = %d\nqueue = %d\nmax_body = %d\nmax_header_bytes = %d\n",
		p.processes, p.threads, p.queue, p.maxBody, p.maxHeader)
	if p.handler != "" {
		fmt.Fprintf(&b, "handler = %s\n", q(p.handler))
	}
	if p.python != "" {
		fmt.Fprintf(&b, "python = %s\n", q(p.python))
	}
	if len(p.pythonpath) > 0 {
		var qs []string
		for _, s := range p.pythonpath {
			qs = append(qs, q(s))
		}
		fmt.Fprintf(&b, "pythonpath = [%s]\n", strings.Join(qs, ", "))
	}
	fmt.Fprintf(&b, "max_requests = %d\nmax_requests_jitter = %d\nmax_rss_mb = %d\nmax_rss_hard_mb = %d\n",
		p.maxReq, p.maxReqJitter, p.maxRSS, p.maxRSSHard)
	fmt.Fprintf(&b, "cpu_affinity = %v\n", p.cpuAffinity)
	fmt.Fprintf(&b, "max_uptime = %s\nidle_timeout = %s\nrequest_timeout = %s\nstart_timeout = %s\ngraceful_timeout = %s\n",
		d(p.maxUptime), d(p.idle), d(p.timeout), d(p.start), d(p.grace))
	fmt.Fprintf(&b, "min_write_rate = %d\nmax_spill = %d\n", p.minWriteRate, p.maxSpill)
	fmt.Fprintf(&b, "rapid_fail = %v\nrapid_fail_max = %d\nrapid_fail_window = %s\n", p.rapidFail, p.rapidFailMax, d(p.rapidFailWindow))
	var bq []string
	for _, s := range p.binds {
		bq = append(bq, q(s))
	}
	fmt.Fprintf(&b, "\n[[sites]]\nname = \"default\"\nbindings = [%s]\n", strings.Join(bq, ", "))
	for _, m := range p.mounts {
		path := m.Prefix
		if path == "" {
			path = "/"
		}
		fmt.Fprintf(&b, "\n  [[sites.vdirs]]\n  path = %s\n  app = %s\n  pool = \"default\"\n", q(path), q(m.Target))
	}
	return b.String(), nil
}
