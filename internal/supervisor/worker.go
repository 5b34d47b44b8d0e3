package supervisor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"wisp/internal/accesslog"
	"wisp/internal/cpusched"
	"wisp/internal/h1"
	"wisp/internal/metrics"
	"wisp/internal/pyembed"
	"wisp/internal/server"
	"wisp/internal/trace"
)

// CatchSIGPIPE keeps a server serving when the pipe its standard output or
// error goes to is closed (`wisp run | head`, a log shipper that restarts):
// Go ends a process that writes to a broken pipe on descriptor 1 or 2 unless
// SIGPIPE is caught, and then the write fails with EPIPE and the log line is
// lost. Caught, not ignored: a process the app starts gets the default action.
func CatchSIGPIPE() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) // never read: the signal only needs a catcher
}

// RunWorker is the body of a worker process (`wisp worker`): it starts the
// pool's interpreter, loads every app of its sites, serves the inherited
// listeners, reports "ready" and then its request count on the status pipe,
// and drains on SIGTERM. log is the process's error log.
func RunWorker(spec *WorkerSpec, log *slog.Logger, stdout io.Writer) (err error) {
	restoreGODEBUG() // before Python copies the environment
	// A signal sent to the whole process group must not end a worker: the
	// supervisor decides (SIGHUP reloads, SIGUSR2 means nothing), and SIGUSR1,
	// which it forwards, reopens the access log (logrotate's convention).
	// (Caught, not ignored: a process the app starts gets default actions.)
	usr1 := make(chan os.Signal, 4)
	signal.Notify(usr1, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(usr1)
	CatchSIGPIPE()
	status := os.NewFile(3, "status")
	var mu sync.Mutex
	report := func(m statusMsg) {
		b, _ := json.Marshal(m)
		mu.Lock()
		status.Write(append(b, '\n'))
		mu.Unlock()
	}
	ready := false
	defer func() {
		if err != nil && !ready {
			// the supervisor tells `wisp reload` and `wisp recycle` why
			report(statusMsg{Event: "failed", Reason: lastLine(err.Error())})
		}
	}()
	if spec.Chdir != "" {
		if err := os.Chdir(spec.Chdir); err != nil {
			return fmt.Errorf("chdir: %w", err)
		}
	}
	if len(spec.CPUs) > 0 {
		// before the interpreter and its threads start: they inherit it
		if err := pinProcess(spec.CPUs); err != nil {
			log.Warn("cannot pin the worker to its CPUs", "cpus", spec.CPUs, "err", err)
		} else {
			log.Debug("pinned to CPUs", "cpus", spec.CPUs)
		}
	}
	// the same for the scheduling policy, before the threads start
	if err := cpusched.SetProcess(spec.SchedPolicy); err != nil {
		log.Warn("cannot set the scheduling policy; the worker runs under the one it started with", "sched_policy", spec.SchedPolicy, "err", err)
	}
	cwd, _ := os.Getwd()
	hub := trace.NewHub(spec.Pool)
	if spec.TraceFD > 0 {
		f := os.NewFile(uintptr(spec.TraceFD), "trace")
		if ln, err := net.FileListener(f); err == nil {
			go hub.Serve(ln)
		} else {
			log.Warn("no trace: the trace socket is not usable", "err", err)
		}
		f.Close()
	}
	var env []string
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	ip, err := pyembed.Start(pyembed.Options{Python: spec.Python, Paths: append([]string{cwd}, spec.PythonPath...), Logger: log, Trace: hub.Python(), Env: env})
	if err != nil {
		return err
	}
	// A fatal signal in app code is reported on the status pipe, which the
	// supervisor logs when it sees the worker die (see readStatus).
	if err := pyembed.CrashReportsTo(3, crashPrefix); err != nil {
		log.Warn("crash reports go to the error log unprefixed", "err", err)
	}
	logs := accesslog.NewSet(spec.Pool, stdout)
	defer logs.Close() // after the servers' shutdown (deferred later, run first)
	access, err := logs.Get(spec.AccessLog, spec.AccessFormat)
	if err != nil {
		return err
	}
	reopenDone := make(chan struct{})
	defer close(reopenDone)
	go func() {
		for {
			select {
			case sig := <-usr1:
				if sig != syscall.SIGUSR1 {
					log.Debug("signal ignored by a worker: the supervisor acts on it", "signal", sig.String())
					continue
				}
				err := logs.Reopen()
				if err == nil && spec.ErrorLog != "" {
					err = reopenStderr(spec.ErrorLog)
				}
				if err != nil {
					log.Error("SIGUSR1: cannot reopen the log files", "err", err)
				} else {
					log.Info("SIGUSR1: log files reopened")
				}
			case <-reopenDone:
				return
			}
		}
	}()
	stuck := make(chan struct{}, 1)
	onStuck := func(uri string) {
		select {
		case stuck <- struct{}{}:
		default:
		}
	}
	// The pool's board: connections are balanced between its workers.
	var slot *slotView
	if spec.BoardSlot >= 0 {
		if slot, err = openSlot(uintptr(4+len(spec.Listeners)), spec.BoardSlot); err != nil {
			log.Warn("no connection balancing with the pool's other workers", "err", err)
			slot = nil
		}
	}
	counters := metrics.New()
	var all []*server.Server // the sites' servers
	snapshot := func() *metrics.Snapshot {
		m := counters.Snapshot()
		m.LogDropped, m.TraceDropped = logs.Dropped(), hub.Dropped()
		if n := ip.GCCollections(); n >= 0 {
			m.GC = uint64(n)
		}
		for _, s := range all {
			q, b := s.Load()
			m.Queued += int64(q)
			m.Busy += int64(b)
		}
		return &m
	}
	proxies, err := server.ParseProxies(spec.TrustedProxies)
	if err != nil {
		return err
	}
	cfg := server.Config{
		Handler: spec.Handler, Threads: spec.Threads, Queue: spec.Queue, MaxBody: spec.MaxBody,
		MinWriteRate: server.WriteRate(spec.MinWriteRate), MaxSpill: spec.MaxSpill, TrustedProxies: proxies, ForwardedHeaders: spec.ForwardedHeaders, Trace: hub, Metrics: counters,
		MaxHeaderBytes: spec.MaxHeaderBytes, ReadHeaderTimeout: spec.ReadHeader, ReadTimeout: spec.Read,
		WriteTimeout: spec.Write, IdleTimeout: spec.Idle, Multiprocess: spec.Multiprocess,
		RequestTimeout: spec.RequestTimeout, OnStuck: onStuck, AccessLog: access, Log: log, MaxStreams: spec.MaxStreams,
		Loop: spec.Loop, WebSocketCompression: !spec.NoWebSocketCompression, WebSocketMaxMessage: spec.WebSocketMaxMessage,
		WebSocketPingInterval: spec.WebSocketPingInterval, WebSocketPingTimeout: spec.WebSocketPingTimeout,
	}
	if slot != nil {
		cfg.BeforeAccept, cfg.ConnChange = slot.gate, slot.add
		cfg.AppBegin, cfg.AppEnd = slot.begin, slot.end
	}
	sites := map[string]*server.Server{}
	fallback := map[string]*h1.Server{} // --reload: sites whose apps failed to import
	for _, st := range spec.Sites {
		ms := serverMounts(st)
		c := cfg
		if st.AccessLog != "" || st.AccessFormat != "" {
			if c.AccessLog, err = logs.Get(cmp.Or(st.AccessLog, spec.AccessLog), cmp.Or(st.AccessFormat, spec.AccessFormat)); err != nil {
				return err
			}
		}
		srv, err := server.New(c, ip, ms)
		if err != nil {
			if !spec.DevReload {
				return err
			}
			log.Error("the app does not import: its error is served as a 500 page until a file changes (--reload)", "site", st.Name, "err", err)
			fallback[st.Name] = importErrorPage(err, spec)
			continue
		}
		sites[st.Name] = srv
		all = append(all, srv)
	}
	// The pool's unix socket: requests forwarded by other pools name their site.
	const unknownSite = "502 Bad Gateway: unknown site\n"
	internal := &h1.Server{Handler: h1.HandlerFunc(func(w *h1.Response, r *h1.Request) {
		srv := sites[r.Header("X-Wisp-Site")]
		if srv == nil {
			w.SetStatus(502, "")
			w.SetContentLength(int64(len(unknownSite)))
			w.Write([]byte(unknownSite))
			return
		}
		r.Trusted = true
		srv.ServeH1(w, r)
	}), ReadHeaderTimeout: spec.ReadHeader, ReadTimeout: spec.Read, WriteTimeout: spec.Write,
		// the forwarder adds X-Wisp-* headers to a head the front accepted,
		// and keeps its connections open as long as it likes
		MaxHeaderBytes: max(spec.MaxHeaderBytes, server.Defaults.MaxHeaderBytes) + 4096, Log: log}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP) // the supervisor reloaded: read the certificates and routes again
	certs, err := newSiteCerts(spec, log)
	if err != nil {
		return err
	}
	errc := make(chan error, len(spec.Listeners))
	gate := &acceptGate{} // paused while this worker is saturated (watchStalls)
	for i, l := range spec.Listeners {
		f := os.NewFile(uintptr(4+i), l.Addr)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.Addr, err)
		}
		ln = gate.wrap(ln)
		if len(l.Sites) == 0 {
			go func() { errc <- internal.Serve(ln) }()
			continue
		}
		b, owner, err := certs.binding(l, proxies, spec.ReadHeader, func(name string) h1.Handler {
			if srv := sites[name]; srv != nil {
				return srv
			}
			if h := fallback[name]; h != nil {
				return h.Handler
			}
			return nil
		})
		if err != nil {
			return err
		}
		if srv := firstServer(l.Sites, sites); srv != nil {
			go func() { errc <- srv.ServeWith(b.Listener(ln), b.Handler(), b.H2C) }()
		} else if h := fallback[owner]; h != nil {
			// --reload, every site's app failed to import: their error pages
			go func() { errc <- h.ServeWith(b.Listener(ln), b.Handler(), false) }()
		} else {
			ln.Close()
		}
	}
	if slot != nil {
		slot.accepting(true)
	}
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	if slot != nil {
		saturated := func() string {
			for _, s := range all {
				if why := s.Saturated(); why != "" {
					return why
				}
			}
			return ""
		}
		// the sites' keep-alive connections, and the idle ones forwarded
		// from other pools (their responses say Connection: close already:
		// the sites' servers answer them)
		shed := func(on bool) int {
			n := 0
			for _, s := range all {
				n += s.Shed(on)
			}
			if on {
				n += internal.CloseIdle()
			}
			return n
		}
		go watchStalls(saturated, shed, gate, slot, log, stopWatch, watchDone)
	} else {
		close(watchDone)
	}
	// SIGTERM drains for a restart (recycle, reload, upgrade: WebSockets
	// close with 1012, reconnect), SIGINT and SIGQUIT for a stop (1001)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	restart := false
	report(statusMsg{Event: "ready"})
	ready = true
	log.Info("apps loaded; serving")

	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	count := func() uint64 {
		var n uint64
		for _, s := range all {
			n += s.Requests()
		}
		return n
	}
	for done := false; !done; {
		select {
		case sig := <-sigs:
			done = true
			restart = sig == syscall.SIGTERM
		case <-hup:
			certs.reload()
			applyRoutes(spec, sites, log) // a reload changed the routes of this pool
		case err := <-errc:
			if err != nil && !errors.Is(err, h1.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
		case <-stuck:
			report(statusMsg{Event: "stuck", Requests: count()})
		case <-tick.C:
			// the counters every second (the supervisor's /metrics is at
			// most this old); a stats line is a few hundred bytes
			n := count()

			report(statusMsg{Event: "stats", Requests: n, Metrics: snapshot()})
		}
	}
	// Drain: no new connections, in-flight requests finish with Connection: close.
	close(stopWatch) // waited for below: the listeners close first
	ctx, cancel := context.WithTimeout(context.Background(), spec.Graceful)
	defer cancel()
	var wg sync.WaitGroup
	abandoned := false
	var amu sync.Mutex
	// the sites' Python threads run what the pool's socket still hands
	// them: they stop once it has answered its last request
	internalDone := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); defer close(internalDone); internal.Shutdown(ctx) }()
	for _, h := range fallback {
		wg.Add(1)
		go func() { defer wg.Done(); h.Shutdown(ctx) }()
	}
	certs.stop()
	for _, s := range all {
		s.SetRestart(restart)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ShutdownAfter(ctx, internalDone); errors.Is(err, server.ErrAbandoned) {
				amu.Lock()
				abandoned = true
				amu.Unlock()
			}
		}()
	}
	<-watchDone // it no longer touches the slot
	if slot != nil {
		slot.accepting(false)
	}
	wg.Wait()
	report(statusMsg{Event: "stats", Requests: count(), Metrics: snapshot()})
	if abandoned {
		log.Warn("grace period over: exiting with requests still running in Python")
		return nil
	}
	if err := ip.Close(5 * time.Second); err != nil {
		log.Warn("python shutdown", "err", err)
	}
	return nil
}

// stallCheck is how often watchStalls looks at the worker's servers.
const stallCheck = 100 * time.Millisecond

// watchStalls stops this worker's accepts (the gate, and its board slot
// says it does not accept) while saturated() gives a reason: its
// interpreter has not answered its heartbeat for the stall bound (a thread
// holds the GIL in C code), or a request has waited that long for a Python
// thread (every thread is busy); see server.Server.Saturated. The pool's
// other workers take the new connections meanwhile, and the worker accepts
// again once it recovers. The last worker of the pool that accepts goes on
// accepting: nobody else would. Its keep-alive connections are shed
// meanwhile (shed(true): closed when idle, Connection: close on each
// response), so that their clients reconnect to the siblings; a request
// under way stays. It closes done when stop is closed. saturated must look
// only at atomics and counters, never wait for the GIL.
func watchStalls(saturated func() string, shed func(on bool) int, gate *acceptGate, slot *slotView, log *slog.Logger, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(stallCheck)
	defer t.Stop()
	paused := false
	// held: this worker went on accepting while saturated because no other
	// did; it pauses again only after it has recovered once (two saturated
	// workers would otherwise take turns at pausing).
	held := false
	for {
		select {
		case <-stop:
			return // paused or not: the drain closes the listeners and sheds every connection
		case <-t.C:
		}
		why := saturated()
		switch {
		case why == "":
			held = false
			if paused {
				paused = false
				shed(false)
				gate.resume()
				slot.accepting(true)
				log.Info("accepting new connections again: the worker has recovered")
			}
		case !paused && !held && slot.othersAccepting():
			slot.accepting(false)
			if !slot.othersAccepting() { // another paused at the same moment
				slot.accepting(true)
				held = true
				continue
			}
			paused = true
			gate.pause()
			n := shed(true)
			log.Warn("not accepting new connections until this worker recovers; the pool's other workers take them", "reason", why,
				"idle_closed", n)
		case paused && !slot.othersAccepting():
			paused, held = false, true
			shed(false)
			gate.resume()
			slot.accepting(true)
			log.Warn("accepting new connections again although still saturated: no other worker of the pool accepts", "reason", why)
		}
	}
}

// lastLine is the last non-blank line of an error's text: a traceback's
// exception line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// reopenStderr points the worker's fd 2 (its error log, and Python's
// sys.stderr) at a new open of path, after logrotate moved the old file.
func reopenStderr(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return syscall.Dup3(int(f.Fd()), 2, 0)
}

// importErrorPage serves, for `wisp run --reload`, the error of an app that
// failed to import as a readable 500 page, until a change of its files
// brings a new worker.
func importErrorPage(err error, spec *WorkerSpec) *h1.Server {
	page := []byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>500: the app failed to import</title>" +
		"<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head>\n" +
		"<body><h1>500: the app failed to import</h1>\n<pre>" + html.EscapeString(err.Error()) + "</pre>\n" +
		"<p>wisp --reload serves this page until a file of the app changes; then it loads the app again.</p></body></html>\n")
	return &h1.Server{Handler: h1.HandlerFunc(func(w *h1.Response, r *h1.Request) {
		w.SetStatus(500, "")
		w.AddHeader("Content-Type", "text/html; charset=utf-8")
		w.AddHeader("Cache-Control", "no-store")
		w.SetContentLength(int64(len(page)))
		if r.Method != "HEAD" {
			w.Write(page)
		}
	}), ReadHeaderTimeout: spec.ReadHeader, ReadTimeout: spec.Read, WriteTimeout: spec.Write, IdleTimeout: spec.Idle,
		MaxHeaderBytes: spec.MaxHeaderBytes}
}

// firstServer is the server of the first site of names this worker loaded:
// it accepts the binding's connections (its settings are the pool's, as
// every site's here) and the binding routes each request to its site.
func firstServer(names []string, sites map[string]*server.Server) *server.Server {
	for _, n := range names {
		if srv := sites[n]; srv != nil {
			return srv
		}
	}
	return nil
}
