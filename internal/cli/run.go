package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"wisp/internal/accesslog"
	"wisp/internal/admin"
	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/cpusched"
	"wisp/internal/edge"
	"wisp/internal/h1"
	"wisp/internal/listen"
	"wisp/internal/metrics"
	"wisp/internal/poolstate"
	"wisp/internal/pyembed"
	"wisp/internal/sdnotify"
	"wisp/internal/server"
	"wisp/internal/tlsconf"
	"wisp/internal/trace"
)

const runLong = `Serve one WSGI app: in this process (the default), or with -w/--workers N
as a pool of N supervised worker processes.

TARGET is module:callable (module:factory() calls a factory), path/to/app.py
(its application, app, or ISAPI-WSGI __ExtensionFactory__()), or
config:path/app.ini[#name] (Paste Deploy). Flags may come before or after it.

gunicorn's flags work as they do there: -b/--bind, -w/--workers, -t/--timeout
(a bare number is seconds), -c/--config, -e/--env, -u/--user, -g/--group,
-p/--pid, --chdir, --access-logfile, --error-logfile, --log-level,
--graceful-timeout, --max-requests, --max-requests-jitter, --check-config,
--print-config, --reload.

Every flag can also be set in the environment as WISP_ and its name in
capitals (WISP_BIND, WISP_WORKERS, WISP_TIMEOUT; a repeatable flag takes a
comma-separated list). The order: a flag on the command line beats the
environment, which beats the -c configuration file, which beats the defaults.`

// runOptions are the flags of `wisp run`.
type runOptions struct {
	config                                                 string
	binds, mounts, pypath, env, proxies, statics           []string
	threads, processes, queue, maxHeader, maxStuck         int
	maxReq, maxReqJitter, maxRSS, maxRSSHard, rapidFailMax int
	handler, python, chdir, accessLog, errorLog, level     string
	logFmt, ctlSocket, user, group, pidFile, accessFormat  string
	socketMode, socketOwner, adminAddr, adminToken         string
	adminHosts                                             []string
	certFile, keyFile, forwardedHeaders                    string
	h2c, proxyProtocol                                     bool
	maxStreams                                             int
	maxBody, memBody, minRate, maxSpill                    int64
	rht, rt, wt, it, grace, timeout, drainDelay            time.Duration
	maxUptime, poolIdle, startTimeout, rapidFailWindow     time.Duration
	cpuAffinity, rapidFail, checkConfig, printConfig       bool
	schedPolicy                                            string
	reload                                                 bool
	iface, lifespan, loop                                  string // ASGI
	mountIface, mountLifespan                              []string
	wsCompression                                          bool // WebSockets
	wsMaxMessage                                           int64
	wsPingInterval, wsPingTimeout                          time.Duration
}

func (o *runOptions) define(fs *pflag.FlagSet) {
	d := server.Defaults
	fs.StringVarP(&o.config, "config", "c", "", "wisp.toml to take sites and pools from; the flags given override it (then the server runs as a pool)")
	fs.StringArrayVarP(&o.binds, "bind", "b", nil, "address to listen on: host:port or unix:PATH (repeatable; default 127.0.0.1:8000, or the sockets systemd passes)")
	fs.StringVar(&o.socketMode, "socket-mode", "0660", "permissions of the unix sockets --bind unix:PATH creates")
	fs.StringVar(&o.socketOwner, "socket-owner", "", "owner of the unix sockets --bind creates: USER, USER:GROUP or :GROUP")
	fs.IntVarP(&o.processes, "processes", "w", 0, "run N supervised worker processes, a pool as 'wisp serve' runs (alias --workers); 0: in this process")
	fs.IntVar(&o.threads, "threads", d.Threads, "Python threads of the threadpool handler")
	fs.StringVar(&o.handler, "handler", "", "threadpool (N threads; the default) or simple (one thread; the default for an ISAPISimpleHandler script)")
	fs.StringVar(&o.iface, "interface", "auto", "how the apps are served: auto (an ASGI app, a coroutine callable taking (scope, receive, send), is detected at import), wsgi or asgi")
	fs.StringVar(&o.lifespan, "lifespan", "auto", "ASGI lifespan protocol: auto (run it; an app without it is served anyway), on (an app that fails it does not start) or off")
	// wisp check's: a vdir's own interface and lifespan keys (PREFIX=VALUE)
	fs.StringArrayVar(&o.mountIface, "mount-interface", nil, "PREFIX=auto|wsgi|asgi: --interface for one --mount")
	fs.StringArrayVar(&o.mountLifespan, "mount-lifespan", nil, "PREFIX=auto|on|off: --lifespan for one --mount")
	fs.MarkHidden("mount-interface")
	fs.MarkHidden("mount-lifespan")
	fs.StringVar(&o.loop, "loop", "auto", "ASGI event loop, one per process: auto (uvloop when it imports), asyncio or uvloop")
	fs.BoolVar(&o.wsCompression, "websocket-compression", true, "offer permessage-deflate to WebSocket clients that ask for it (--websocket-compression=false: never)")
	newSize(fs, &o.wsMaxMessage, "websocket-max-message", server.DefaultWebSocketMaxMessage, "largest WebSocket message taken from a client (bytes, or 64KiB, 16MiB); beyond: the connection closes with 1009")
	newDuration(fs, &o.wsPingInterval, "websocket-ping-interval", "", server.DefaultWebSocketPingInterval, "ping open WebSockets this often (0: no pings)")
	newDuration(fs, &o.wsPingTimeout, "websocket-ping-timeout", "", server.DefaultWebSocketPingTimeout, "close a WebSocket (1011) whose client does not answer a ping within this")
	newDuration(fs, &o.timeout, "timeout", "t", 0, "time a request may spend in the app: then 504, its Python stack is logged and TimeoutError raised in it (a number is seconds; 0: none)")
	fs.StringVar(&o.python, "python", "", "Python interpreter, virtualenv folder or command (default python3 on PATH)")
	fs.StringVar(&o.chdir, "chdir", "", "change to this folder before loading the apps")
	fs.StringArrayVar(&o.pypath, "pythonpath", nil, "folder to prepend to sys.path (repeatable)")
	fs.StringArrayVar(&o.mounts, "mount", nil, "PREFIX=TARGET: serve TARGET under URL prefix PREFIX (repeatable)")
	fs.StringArrayVar(&o.statics, "static", nil, "PREFIX=FOLDER: serve a folder under URL prefix PREFIX, by Go (ETag, Range, precompressed .br/.gz siblings, no listings; repeatable)")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "KEY=VALUE: set an environment variable for the app (repeatable)")
	fs.StringVarP(&o.user, "user", "u", "", "run the app as this user (name or uid); wisp must start as root")
	fs.StringVarP(&o.group, "group", "g", "", "run the app as this group (name or gid; default the user's group)")
	fs.StringVarP(&o.pidFile, "pid", "p", "", "write the server's process id to this file (removed at exit)")
	fs.IntVar(&o.queue, "queue", d.Queue, "requests that may wait for a Python thread; beyond: 503")
	newSize(fs, &o.maxBody, "max-body", d.MaxBody, "request body limit (bytes, or 64MiB, 1GiB, 10MB); beyond: 413")
	newSize(fs, &o.memBody, "mem-body", d.MemBody, "bodies up to this size stay in memory; larger ones go to a temp file")
	fs.Int64Var(&o.minRate, "min-write-rate", 1024, "bytes per second a client must take of a response (counted while writes wait for it, after 10s of waiting); a slower reader is cut off so it cannot hold a Python thread (0: no minimum)")
	newSize(fs, &o.maxSpill, "max-spill", 10<<30, "temp-file space (bytes, or 10GiB), all requests together, for request bodies (beyond: 503 + Retry-After) and for responses a slow client does not take (beyond: the app waits for the client)")
	fs.IntVar(&o.maxHeader, "max-header-bytes", d.MaxHeaderBytes, "request line and headers limit in bytes; beyond: 431")
	newDuration(fs, &o.rht, "read-header-timeout", "", d.ReadHeaderTimeout, "time to read the request headers")
	newDuration(fs, &o.rt, "read-timeout", "", d.ReadTimeout, "time to read a whole request, body included")
	newDuration(fs, &o.wt, "write-timeout", "", d.WriteTimeout, "time any single write to a client may take")
	newDuration(fs, &o.it, "idle-timeout", "", d.IdleTimeout, "keep-alive wait for the next request")
	newDuration(fs, &o.grace, "graceful-timeout", "", 30*time.Second, "on SIGTERM/SIGINT, time in-flight requests get to finish")
	newDuration(fs, &o.drainDelay, "drain-delay", "", 0, "on SIGTERM, keep serving this long with /readyz answering 503 before the listeners close (the time a load balancer or Kubernetes Service takes to stop sending)")
	fs.StringVar(&o.accessLog, "access-log", "-", "access log file, - for stdout, off for none (alias --access-logfile)")
	fs.StringVar(&o.accessFormat, "access-log-format", "combined", "access log format: combined, w3c (IIS's W3C Extended, with its #Fields header) or json (one object per line)")
	fs.StringVar(&o.errorLog, "error-logfile", "-", "error log file, - for stderr (reopened on SIGUSR1)")
	fs.StringVar(&o.level, "log-level", "info", "error log level: debug, info, warn, error")
	fs.StringVar(&o.logFmt, "log-format", "auto", "error log: text (for a person: tracebacks as lines), logfmt, or auto (text on a terminal)")
	fs.IntVar(&o.maxStuck, "max-stuck-threads", 0, "Python threads of timed-out requests that are replaced by new ones at the timeout (each ends when its request returns); when that many are stuck past --timeout and 5s, the server reports itself unhealthy (0: --threads)")
	fs.StringVar(&o.certFile, "certfile", "", "serve TLS with this PEM certificate (with --keyfile); a change of the files is served at the next handshake")
	fs.StringVar(&o.keyFile, "keyfile", "", "the PEM private key of --certfile")
	fs.IntVar(&o.maxStreams, "http2-max-streams", 100, "HTTP/2 streams a client may have open at once on one connection (1 to 10000)")
	fs.BoolVar(&o.h2c, "h2c", false, "serve HTTP/2 without TLS to clients that begin with its preface (prior knowledge), for a proxy in front that speaks HTTP/2; over TLS, HTTP/2 is always offered")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", false, "expect the PROXY protocol (v1 or v2) first on every connection, from a load balancer in front; with --forwarded-allow-ips only from those peers")
	fs.StringSliceVar(&o.proxies, "forwarded-allow-ips", nil, "trusted proxies (IPs, CIDR prefixes, or *), comma-separated: from them only, the --forwarded-headers set REMOTE_ADDR and the scheme")
	fs.StringVar(&o.forwardedHeaders, "forwarded-headers", "x-forwarded", "the headers a trusted proxy's client address and scheme are read from: x-forwarded (X-Forwarded-For, X-Forwarded-Proto) or forwarded (RFC 7239); the other family is never read")
	fs.StringVar(&o.adminAddr, "admin", "", "admin listener, host:port: /healthz and /readyz (loopback, or with --admin-token)")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token the admin listener requires (needed when --admin is not loopback)")
	fs.StringArrayVar(&o.adminHosts, "admin-host", nil, "a host name (or IP) the admin listener answers to besides loopback names and its own address, as the browser writes it in the URL (repeatable)")
	fs.BoolVar(&o.checkConfig, "check-config", false, "check the flags (and the -c file), import the app(s), and exit: 0 when all is well")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective configuration as the wisp.toml it stands for, and exit")
	fs.BoolVar(&o.reload, "reload", false, "FOR DEVELOPMENT ONLY: restart the app when its Python, ini or toml files change (runs it in a worker process); an import error is served as a 500 page until fixed")
	// Pool flags: with --processes, wisp runs the app as a supervised pool of worker processes.
	fs.IntVar(&o.maxReq, "max-requests", 0, "pool: recycle a worker after this many requests (0: never)")
	fs.IntVar(&o.maxReqJitter, "max-requests-jitter", 0, "pool: add up to this many requests to --max-requests, per worker")
	fs.IntVar(&o.maxRSS, "max-rss", 0, "pool: recycle a worker whose memory exceeds this many MB (0: never)")
	fs.IntVar(&o.maxRSSHard, "max-rss-hard", 0, "pool: kill and replace a worker whose memory exceeds this many MB at once")
	newDuration(fs, &o.maxUptime, "max-uptime", "", 0, "pool: recycle a worker after this long (0: never)")
	newDuration(fs, &o.poolIdle, "pool-idle-timeout", "", 0, "pool: stop every worker after this long without requests; the next request starts them (0: never)")
	newDuration(fs, &o.startTimeout, "start-timeout", "", 60*time.Second, "pool: time a worker may take to import its apps")
	fs.BoolVar(&o.cpuAffinity, "cpu-affinity", false, "pool: pin each worker to its share of the CPUs (with 2 or more processes)")
	fs.StringVar(&o.schedPolicy, "sched-policy", "batch", `pool: the workers' Linux scheduling policy, "batch" (a woken server thread does not preempt the app's) or "normal"`)
	fs.BoolVar(&o.rapidFail, "rapid-fail", true, "pool: stop the pool (503 + Retry-After) when workers keep dying while starting or soon after, until 'wisp start'")
	fs.IntVar(&o.rapidFailMax, "rapid-fail-max", 5, "pool: early worker deaths within --rapid-fail-window that stop the pool")
	newDuration(fs, &o.rapidFailWindow, "rapid-fail-window", "", 5*time.Minute, "pool: the window of --rapid-fail-max")
	fs.StringVar(&o.ctlSocket, "control-socket", "", "control socket for wisp status, trace, recycle (default wisp-PID.sock in $XDG_RUNTIME_DIR, else in a private folder made in $TMPDIR; the startup line names it)")
}

func newRunCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "run [flags] [TARGET]",
		Short: "serve one app, in this process or as a pool of worker processes",
		Long:  runLong,
		Args:  cobra.ArbitraryArgs,
		RunE:  func(c *cobra.Command, args []string) error { return o.run(c.Flags(), args, stdout, stderr) },
	}
	o.define(c.Flags())
	return c
}

// runCmd is `wisp run` with args.
func runCmd(args []string, stdout, stderr io.Writer) error {
	return execute(newRunCommand(stdout, stderr), args)
}

// pooled reports whether the app runs in worker processes: with
// --processes, a -c file, or --reload (a process can load Python once, so
// new code needs a new process).
func (o *runOptions) pooled() bool { return o.processes > 0 || o.config != "" || o.reload }

// check refuses what cannot work before anything starts: bad values, a
// pool-only flag in-process, a bad --bind, --env or socket owner.
func (o *runOptions) check(fs *pflag.FlagSet, args []string) ([]server.Mount, listen.Unix, error) {
	var unix listen.Unix
	if err := checkRunFlags(fs, o.pooled()); err != nil {
		return nil, unix, err
	}
	var errs []string
	for _, b := range o.binds {
		if err := listen.Check(b); err != nil {
			errs = append(errs, "--bind: "+err.Error())
		}
	}
	mode, err := listen.ParseMode(o.socketMode)
	if err != nil {
		errs = append(errs, "--socket-mode: "+err.Error())
	}
	unix = listen.Unix{Mode: mode, Owner: o.socketOwner}
	if _, _, err := listen.ParseOwner(o.socketOwner); err != nil {
		errs = append(errs, "--socket-owner: "+err.Error())
	}
	for _, kv := range o.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			errs = append(errs, fmt.Sprintf("--env %q: want KEY=VALUE", kv))
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		errs = append(errs, "--certfile and --keyfile go together: give both")
	}
	for _, b := range o.binds {
		if scheme, _ := listen.Scheme(b); scheme == "https" && o.certFile == "" {
			errs = append(errs, fmt.Sprintf("--bind %s: an https binding needs --certfile and --keyfile", b))
		}
	}
	if o.maxStreams < 1 || o.maxStreams > 10000 {
		errs = append(errs, fmt.Sprintf("--http2-max-streams %d: want a number from 1 to 10000", o.maxStreams))
	}
	if _, err := server.ParseProxies(o.proxies); err != nil {
		errs = append(errs, "--forwarded-allow-ips: "+err.Error())
	}
	if err := server.CheckForwardedHeaders(o.forwardedHeaders); err != nil {
		errs = append(errs, "--forwarded-headers: "+err.Error())
	}
	if err := accesslog.CheckFormat(o.accessFormat); err != nil {
		errs = append(errs, "--access-log-format: "+err.Error())
	}
	if o.adminAddr != "" {
		if err := admin.Check(o.adminAddr, o.adminToken); err != nil {
			errs = append(errs, "--admin: "+err.Error())
		}
	}
	for _, h := range o.adminHosts {
		if err := admin.CheckHost(h); err != nil {
			errs = append(errs, "--admin-host: "+err.Error())
		}
	}
	if o.handler != "" && o.handler != "threadpool" && o.handler != "simple" {
		errs = append(errs, fmt.Sprintf("--handler %q: want threadpool or simple", o.handler))
	}
	for _, err := range []error{server.CheckInterface(o.iface), server.CheckLifespan(o.lifespan), server.CheckLoop(o.loop)} {
		if err != nil {
			errs = append(errs, "--"+err.Error())
		}
	}
	if !cpusched.Valid(o.schedPolicy) {
		errs = append(errs, fmt.Sprintf("--sched-policy %q: want batch or normal", o.schedPolicy))
	}
	if o.config != "" && changedFlags(fs)["processes"] && o.processes == 0 {
		errs = append(errs, "--processes 0 with --config: a configuration file is served by worker processes; give 1 or more")
	}
	var ms []server.Mount
	switch len(args) {
	case 0:
	case 1:
		ms = append(ms, server.Mount{Prefix: "", Target: args[0], Interface: o.iface, Lifespan: o.lifespan})
	default:
		errs = append(errs, fmt.Sprintf("run takes one TARGET, got %d: %s", len(args), strings.Join(args, " ")))
	}
	for _, m := range o.mounts {
		prefix, target, ok := strings.Cut(m, "=")
		if !ok || target == "" {
			errs = append(errs, fmt.Sprintf("--mount %q: want PREFIX=TARGET", m))
			continue
		}
		ms = append(ms, server.Mount{Prefix: prefix, Target: target, Interface: o.iface, Lifespan: o.lifespan})
	}
	for _, kv := range [][2]any{{o.mountIface, "interface"}, {o.mountLifespan, "lifespan"}} {
		for _, v := range kv[0].([]string) {
			prefix, val, _ := strings.Cut(v, "=")
			found := false
			for i := range ms {
				if strings.TrimRight(ms[i].Prefix, "/") == strings.TrimRight(prefix, "/") {
					found = true
					if kv[1] == "interface" {
						ms[i].Interface = val
					} else {
						ms[i].Lifespan = val
					}
				}
			}
			if !found {
				errs = append(errs, fmt.Sprintf("--mount-%s %q: no --mount at that prefix", kv[1], v))
			}
		}
	}
	for _, st := range o.statics {
		prefix, folder, ok := strings.Cut(st, "=")
		if !ok || folder == "" {
			errs = append(errs, fmt.Sprintf("--static %q: want PREFIX=FOLDER", st))
			continue
		}
		if info, err := os.Stat(folder); err != nil || !info.IsDir() {
			errs = append(errs, fmt.Sprintf("--static %q: %s is not a folder", st, folder))
			continue
		}
		ms = append(ms, server.Mount{Prefix: prefix, Static: absPath(folder)})
	}
	if len(ms) == 0 && o.config == "" && len(errs) == 0 {
		errs = append(errs, "nothing to serve: give a TARGET or --mount PREFIX=TARGET")
	}
	if len(errs) > 0 {
		return nil, unix, usageError{errors.New(strings.Join(errs, "\n  "))}
	}
	return ms, unix, nil
}

func (o *runOptions) run(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
	ms, unix, err := o.check(fs, args)
	if err != nil {
		return err
	}
	if err := setLogFormat(o.logFmt, stderr); err != nil {
		return err
	}
	if _, err := newLogger(stderr, o.level, ""); err != nil {
		return err
	}
	// Sockets systemd passed (socket activation): with no --bind, they are
	// what the server listens on.
	succ, err := takeUpgrade() // an upgrade's successor (only pools upgrade)
	if err != nil {
		return err
	}
	inherited, err := listen.Inherit()
	if err != nil {
		return err
	}
	if succ != nil {
		inherited.Name(succ.bindings)
	}
	if len(o.binds) == 0 && inherited.Len() > 0 {
		o.binds = inherited.Extra(nil)
	}
	if o.pooled() || o.printConfig {
		// Relative paths (TARGET, --python) are taken in --chdir, as the
		// in-process server takes them. With -c they follow the file.
		startDir, _ := os.Getwd() // where an upgrade's successor starts, to take --chdir as this process did
		if o.chdir != "" && o.config == "" {
			if err := os.Chdir(o.chdir); err != nil {
				return fmt.Errorf("--chdir: %w", err)
			}
		}
		// The control socket: --control-socket, or its default made now; a
		// printed configuration (a file for wisp serve) names wisp.sock in
		// the working folder, as wisp serve has it beside its file.
		sock := o.ctlSocket
		if sock == "" && o.config == "" {
			sock = "wisp.sock"
			if succ != nil && succ.ctlPath != "" {
				// the default of the supervisor an upgrade takes over from;
				// its private folder (empty once the socket is gone) is ours
				sock = succ.ctlPath
				if dir := filepath.Dir(sock); strings.HasPrefix(filepath.Base(dir), "wisp-") {
					defer os.Remove(dir)
				}
			} else if !o.printConfig && !o.checkConfig {
				s, done, err := defaultControlSocket()
				if err != nil {
					return err
				}
				defer done()
				sock = s
			}
		}
		cfg, err := o.poolConfig(fs, ms, sock)
		if err != nil {
			return err
		}
		if o.printConfig {
			return printConfig(cfg, !o.pooled(), stdout)
		}
		if o.checkConfig {
			return checkApps(cfg, stdout, stderr)
		}
		errLog, err := openErrorLog(o.errorLog, stderr)
		if err != nil {
			return err
		}
		defer errLog.Close()
		return supervise(cfg, stdout, errLog, superviseOptions{
			reload: func() (*config.Config, error) {
				if o.config == "" {
					return cfg, nil
				}
				return o.poolConfig(fs, ms, sock)
			},
			unix: unix, devReload: o.reload, pidFile: o.pidFile, inherited: inherited, succ: succ, startDir: startDir,
		})
	}
	return o.inProcess(ms, unix, inherited, stdout, stderr)
}

// inProcess serves the apps in this process's embedded interpreter.
func (o *runOptions) inProcess(ms []server.Mount, unix listen.Unix, inherited *listen.Set, stdout, stderr io.Writer) error {
	errLog, err := openErrorLog(o.errorLog, stderr)
	if err != nil {
		return err
	}
	defer errLog.Close()
	log, err := newLogger(errLog, o.level, "")
	if err != nil {
		return err
	}
	sigs := catchSignals()
	defer signal.Stop(sigs)
	notify := sdnotify.New()
	defer notify.Close()
	access, err := accesslog.Open(o.accessLog, o.accessFormat, "", stdout)
	if err != nil {
		return usageError{err}
	}
	defer access.Close() // after the server's shutdown
	cfg := server.Config{
		Handler: o.handler, Threads: o.threads, Queue: o.queue, MaxBody: o.maxBody, MemBody: o.memBody,
		MaxHeaderBytes: o.maxHeader, ReadHeaderTimeout: o.rht, ReadTimeout: o.rt, WriteTimeout: o.wt,
		IdleTimeout: o.it, AccessLog: access, Log: log, RequestTimeout: o.timeout, MaxStuckThreads: o.maxStuck,
		MaxSpill: o.maxSpill, MinWriteRate: server.WriteRate(o.minRate), MaxStreams: o.maxStreams,
		ForwardedHeaders: o.forwardedHeaders, Loop: o.loop, WebSocketCompression: o.wsCompression,
		WebSocketMaxMessage: o.wsMaxMessage, WebSocketPingInterval: config.PingInterval(o.wsPingInterval),
		WebSocketPingTimeout: o.wsPingTimeout,
	}
	// the requests a second stop signal cuts off: named through the hooks a
	// pool's workers publish theirs on the board with
	flights := &inFlight{}
	cfg.AppBegin, cfg.AppEnd = flights.begin, flights.end
	cfg.TrustedProxies, _ = server.ParseProxies(o.proxies) // checked
	if o.chdir != "" {
		if err := os.Chdir(o.chdir); err != nil {
			return fmt.Errorf("--chdir: %w", err)
		}
	}
	for _, kv := range o.env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	cwd, _ := os.Getwd()
	paths := []string{cwd}
	for _, p := range o.pypath {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		paths = append(paths, p)
	}
	if o.checkConfig {
		return checkInProcess(o.python, o.loop, paths, o.env, ms, log, stdout)
	}
	// Sockets first (a port below 1024 or a root-owned folder may need
	// root), then the certificate, then the identity the app runs as, then
	// Python.
	var certs *tlsconf.Store
	lns, binds, err := openListeners(o.binds, inherited, unix, log)
	if err != nil {
		return err
	}
	defer func() {
		for _, b := range binds {
			listen.Remove(b)
		}
	}()
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if o.certFile != "" {
		store, err := tlsconf.Load(o.certFile, o.keyFile, log)
		if err != nil {
			closeAll()
			return err
		}
		certs = store
	}
	if err := switchUser(o.user, o.group); err != nil {
		closeAll()
		return err
	}
	pid, err := writePIDFile(o.pidFile, 0)
	if err != nil {
		closeAll()
		return err
	}
	defer pid.remove()
	tuneRuntime(1)

	hub := trace.NewHub("")
	cfg.Trace = hub
	counters := metrics.New()
	cfg.Metrics = counters
	ip, err := pyembed.Start(pyembed.Options{Python: o.python, Paths: paths, Logger: log, Trace: hub.Python(), Env: o.env})
	if err != nil {
		closeAll()
		return err
	}
	srv, err := server.New(cfg, ip, ms)
	if err != nil {
		closeAll()
		return err
	}
	sock := o.ctlSocket
	if sock == "" {
		s, done, err := defaultControlSocket()
		if err != nil {
			closeAll()
			srv.Shutdown(context.Background())
			return err
		}
		defer done()
		sock = s
	}
	copts := control.Options{Target: inProcessTarget{}, Trace: hub.Stream, Log: log,
		Upgrade: func() (any, error) { return nil, errNoUpgrade }}
	if certs != nil {
		// `wisp reload` reads the certificate files again (the app cannot
		// be reloaded in-process: see SIGHUP)
		copts.Reload = func() error {
			if err := certs.Reload(); err != nil {
				return fmt.Errorf("the TLS certificate does not load; the previous one keeps serving: %w", err)
			}
			log.Info("reload: TLS certificate read again (the app is not reloaded in-process)")
			return nil
		}
	}
	ctl, err := control.Listen(sock, copts)
	if err != nil {
		closeAll()
		srv.Shutdown(context.Background())
		return err
	}
	defer ctl.Close()
	handlerName, threadCount := srv.Handler()
	pythonFrom := "python3 on PATH (use --python to choose)"
	if o.python != "" {
		pythonFrom = "--python " + o.python
	}
	for _, ln := range lns {
		log.Info("listening", "addr", addrString(ln), "python", ip.Info.Release(), "interpreter", ip.Info.Executable,
			"from", pythonFrom, "lib", ip.Info.Lib, "handler", handlerName, "threads", threadCount, "control", sock)
	}

	errc := make(chan error, len(lns))
	for i, ln := range lns {
		site := edge.Site{Name: "default", Handler: srv}
		tls := certs != nil
		if i < len(o.binds) {
			switch scheme, _ := listen.Scheme(o.binds[i]); scheme {
			case "http":
				tls = false
			case "https":
				tls = true
			}
		}
		if tls {
			site.Certs = certs
		}
		b, err := edge.New(edge.Binding{Addr: addrString(ln), TLS: tls, H2C: o.h2c, ProxyProtocol: o.proxyProtocol,
			Trusted: cfg.TrustedProxies, HeaderTimeout: o.rht, Sites: []edge.Site{site}})
		if err != nil {
			closeAll()
			srv.Shutdown(context.Background())
			return err
		}
		go func() { errc <- srv.ServeWith(b.Listener(ln), b.Handler(), b.H2C) }()
	}
	var draining atomic.Bool
	adm, err := startAdmin(admin.Options{Addr: o.adminAddr, Token: o.adminToken, Hosts: o.adminHosts}, processHealth{srv, &draining, counters, func(s *metrics.Snapshot) {
		s.LogDropped, s.TraceDropped = access.Dropped(), hub.Dropped()
		q, b := srv.Load()
		s.Queued, s.Busy = int64(q), int64(b)
		if n := ip.GCCollections(); n >= 0 {
			s.GC = uint64(n)
		}
	}, hub.Stream}, log)
	if err != nil {
		closeAll()
		srv.Shutdown(context.Background())
		return err
	}
	if adm != nil {
		defer adm.Close()
	}
	notify.Ready(fmt.Sprintf("serving %d app(s) on %s", len(ms), strings.Join(addrsOf(lns), ", ")))
	notify.StartWatchdog(func() bool { ok, _ := srv.Healthy(); return ok })
wait:
	for {
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				err := access.Reopen()
				if err == nil {
					err = errLog.Reopen()
				}
				if err != nil {
					log.Error("SIGUSR1: cannot reopen the log files; writing on to the old ones", "err", err)
				} else {
					log.Info("SIGUSR1: log files reopened")
				}
			case syscall.SIGHUP:
				if certs != nil {
					if err := certs.Reload(); err != nil {
						log.Error("SIGHUP: the TLS certificate does not load; the previous one keeps serving", "err", err)
					} else {
						log.Info("SIGHUP: TLS certificate reloaded")
					}
				}
				log.Warn("SIGHUP ignored for the app: in-process wisp cannot reload its app without a restart (Python cannot be re-initialized in one process); run a pool (--processes N, or wisp serve) to reload live")
			case syscall.SIGUSR2:
				log.Warn("SIGUSR2 ignored: " + errNoUpgrade.Error())
			default:
				log.Info("stopping", "signal", sig.String())
				break wait
			}
		}
	}
	draining.Store(true)
	notify.Stopping()
	if o.drainDelay > 0 {
		log.Info("draining: /readyz answers 503; serving on until the drain delay is over", "drain_delay", o.drainDelay.String())
		if sig := drainWait(o.drainDelay, sigs); sig != nil && cutOff(sig, flights, log) {
			return fmt.Errorf("stopped at once by a second %s: %d request(s) in flight cut off (see the log)", sig, len(flights.list()))
		}
	}
	// Signals stay caught while requests finish: with signal.Stop, Go would
	// put back the default actions, and a SIGHUP would end the process with
	// the requests in flight; the grace period bounds the wait. A second
	// stop signal ends it at once (as gunicorn and uvicorn do), naming the
	// requests it cuts off.
	log.Info("shutting down", "grace", o.grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
stopping:
	for {
		select {
		case err = <-shut:
			break stopping
		case sig := <-sigs:
			if !cutOff(sig, flights, log) {
				continue
			}
			return fmt.Errorf("stopped at once by a second %s: %d request(s) in flight cut off (see the log)", sig, len(flights.list()))
		}
	}
	switch {
	case errors.Is(err, server.ErrAbandoned):
		log.Warn("grace period over: exiting with requests still running in Python", "grace", o.grace.String())
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

// openListeners opens the bindings, taking the sockets systemd passed where
// they match (by name or address). With no --bind, the passed sockets are
// served, else 127.0.0.1:8000. It returns the listeners and the unix socket
// bindings it created (to remove at exit).
func openListeners(binds []string, inherited *listen.Set, unix listen.Unix, log interface{ Info(string, ...any) }) ([]net.Listener, []string, error) {
	var lns []net.Listener
	var created []string
	fail := func(err error) ([]net.Listener, []string, error) {
		for _, l := range lns {
			l.Close()
		}
		for _, b := range created {
			listen.Remove(b)
		}
		return nil, nil, err
	}
	if len(binds) == 0 && inherited.Len() == 0 {
		binds = []string{"127.0.0.1:8000"}
	}
	for _, b := range binds {
		if a, ok := inherited.Take(b, ""); ok {
			log.Info("socket activation: serving the socket systemd passed", "binding", b, "name", a.Name)
			lns = append(lns, a.Ln)
			continue
		}
		ln, err := listen.Open(b, unix)
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", b, err))
		}
		lns = append(lns, ln)
		if _, ok := listen.UnixPath(b); ok {
			created = append(created, b)
		}
	}
	for _, a := range inherited.Rest() {
		log.Info("socket activation: serving the socket systemd passed", "addr", a.Addr(), "name", a.Name)
		lns = append(lns, a.Ln)
	}
	return lns, created, nil
}

// addrString is a listener's address as a binding: host:port or unix:PATH.
func addrString(ln net.Listener) string {
	if u, ok := ln.Addr().(*net.UnixAddr); ok {
		return "unix:" + u.Name
	}
	return ln.Addr().String()
}

func addrsOf(lns []net.Listener) []string {
	var out []string
	for _, l := range lns {
		out = append(out, addrString(l))
	}
	return out
}

// checkInProcess is --check-config in-process: start the interpreter and
// import every app (with env, the app's variables), then stop.
func checkInProcess(python, loop string, paths, env []string, ms []server.Mount, log *slog.Logger, stdout io.Writer) error {
	ip, err := pyembed.Start(pyembed.Options{Python: python, Paths: paths, Logger: log, Env: env})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Log: log, Threads: 1, Loop: loop}, ip, ms)
	if err != nil {
		return err
	}
	srv.Shutdown(context.Background())
	ip.Close(5 * time.Second)
	for _, m := range ms {
		fmt.Fprintf(stdout, "ok: %s imports (%s)\n", m.Target, ip.Info.Executable)
	}
	return nil
}

// inProcessTarget is the control API's view of an in-process server: its
// status and trace; it has no pools to act on.
type inProcessTarget struct{}

func (inProcessTarget) Status() poolstate.Status {
	return poolstate.Status{PID: os.Getpid(), Config: "in-process (wisp run)", Build: buildName()}
}

var errNoPools = errors.New("this is an in-process server (wisp run without --workers): it has no pools")

// cutOff handles a signal during an in-process graceful stop: true for a
// second stop signal, which ends the process at once (it logs the requests
// it cuts off; Python is not finalized under running threads: the process
// ends with them), false for another signal, logged and ignored.
func cutOff(sig os.Signal, flights *inFlight, log *slog.Logger) bool {
	if !slices.Contains(stopSignals, sig) {
		log.Info("already shutting down: signal ignored", "signal", sig.String())
		return false
	}
	cut := flights.list()
	log.Warn("second stop signal: stopping now, cutting off the requests in flight", "signal", sig.String(), "requests_in_flight", len(cut))
	for _, f := range cut {
		log.Warn("request cut off", "method", f.method, "target", f.target, "request_id", f.id,
			"running", time.Since(f.start).Round(time.Millisecond).String())
	}
	return true
}

// errNoUpgrade refuses a binary upgrade of an in-process server.
var errNoUpgrade = errors.New("an in-process server (wisp run without --workers) cannot upgrade itself live: run it as a pool (--workers N, or wisp serve) to upgrade with SIGUSR2 or wisp upgrade, or restart it")

// inFlight is the requests an in-process server is running in its apps, to
// name those a second stop signal cuts off.
type inFlight struct {
	slots [inFlightSlots]atomic.Pointer[flight]
	hint  atomic.Uint32 // where begin looks first
}

// inFlightSlots bounds the requests an inFlight names at once (threads,
// written-off threads and ASGI requests); past it a request runs unnamed.
const inFlightSlots = 1024

// flight is one request in an inFlight.
type flight struct {
	method, target, id string
	start              time.Time
}

// begin names r as running in its app (server.Config.AppBegin), in a free
// slot taken without a lock; -1 when every slot is taken.
func (f *inFlight) begin(r *h1.Request) int {
	fl := &flight{method: r.Method, target: r.Target, id: server.GivenRequestID(r), start: time.Now()}
	h := int(f.hint.Add(1))
	for n := range inFlightSlots {
		k := (h + n) % inFlightSlots
		if f.slots[k].CompareAndSwap(nil, fl) {
			return k
		}
	}
	return -1
}

// end withdraws a request of begin (server.Config.AppEnd).
func (f *inFlight) end(k int) {
	if k >= 0 {
		f.slots[k].Store(nil)
	}
}

// list returns the requests running, the oldest first.
func (f *inFlight) list() []flight {
	var out []flight
	for k := range f.slots {
		if fl := f.slots[k].Load(); fl != nil {
			out = append(out, *fl)
		}
	}
	slices.SortFunc(out, func(a, b flight) int { return a.start.Compare(b.start) })
	return out
}

func (inProcessTarget) Recycle(string) error   { return errNoPools }
func (inProcessTarget) StartPool(string) error { return errNoPools }
func (inProcessTarget) StopPool(string) error  { return errNoPools }
