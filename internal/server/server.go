// Package server serves mounted WSGI apps over an h1.Server: routing of URL
// prefixes to apps, request bodies (memory budget, spill to files), the WSGI
// environ, the hand-off to Python threads, response writing from their
// hand-offs, request timeouts, forwarding to other pools, and the access log.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httputil"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wisp/internal/accesslog"
	"wisp/internal/edge"
	"wisp/internal/h1"
	"wisp/internal/h2"
	"wisp/internal/metrics"
	"wisp/internal/pyembed"
	"wisp/internal/static"
	"wisp/internal/trace"
	"wisp/internal/websocket"
)

// Config holds the server's settings. Zero durations and sizes take the
// defaults from Defaults.
type Config struct {
	// Handler is "threadpool" or "simple" (one thread). Empty: threadpool,
	// unless every app is an ISAPI-WSGI ISAPISimpleHandler, as IIS ran it.
	Handler    string
	Threads    int           // Python threads of the threadpool handler
	Queue      int           // requests that may wait for a thread; beyond: 503
	MaxBody    int64         // request body limit in bytes; beyond: 413
	MemBody    int64         // bodies up to this size stay in memory, larger ones spill to a temp file
	BodyMemory int64         // bodies held in memory at once, all requests together; a body that finds no room within BodyWait spills (0: 2 x Threads x MemBody)
	BodyWait   time.Duration // 0: 1s
	// MinWriteRate is the least a client must take of a response, in bytes
	// per second of waiting for it, after 10 s (see h1.Server.MinWriteRate):
	// a slower reader is cut off and the app's thread freed. 0: 1024; -1: none.
	MinWriteRate      int64
	MaxSpill          int64         // temp-file space for request bodies (beyond: 503) and spilled responses, all requests together (0: 10 GiB)
	MaxHeaderBytes    int           // request line and headers; beyond: 431
	ReadHeaderTimeout time.Duration // time to read the request headers
	ReadTimeout       time.Duration // time to read the whole request, body included
	WriteTimeout      time.Duration // time any single write to the client may take
	IdleTimeout       time.Duration // keep-alive wait for the next request
	Multiprocess      bool          // wsgi.multiprocess
	RequestTimeout    time.Duration // time a request may spend in the app; then 504, its thread's stack logged and TimeoutError raised in it (0: none)
	// OnStuck is called when a timed-out request has still not returned
	// StuckGrace later: its thread is lost to the pool (recycle the process).
	OnStuck    func(uri string)
	StuckGrace time.Duration // 0: 5s
	// MaxStuckThreads bounds the Python threads written off while in a
	// timed-out request (each is replaced by a new thread at the timeout, so
	// the server keeps Threads working ones, and ends when the app returns).
	// When that many are stuck (StuckGrace past the timeout) no more are
	// replaced and Healthy reports false until one returns. 0: Threads.
	MaxStuckThreads int
	// StallBound is how long the interpreter may leave its heartbeat
	// unanswered (a thread holds the GIL in C code) while requests wait or
	// run, and how long a request may wait for a Python thread (every one is
	// busy), before the server counts as stalled (see Unresponsive and
	// Saturated). 0: 1s.
	StallBound time.Duration
	AccessLog  *accesslog.Logger // nil: off; the caller closes it after Shutdown
	// BeforeAccept and ConnChange are passed to the HTTP server: a pool's
	// workers use them to balance connections between them.
	BeforeAccept func()
	ConnChange   func(delta int64)
	// AppBegin and AppEnd bracket a request's run in its app (AppEnd gets
	// what AppBegin returned): a pool's workers publish the request so that
	// the supervisor can name it if the process dies.
	AppBegin func(r *h1.Request) int
	AppEnd   func(token int)
	Log      *slog.Logger // error log
	// Metrics, if set, counts the requests (see package metrics).
	Metrics *metrics.Counters
	// Trace, if set, gets one line per request (and is where the app's
	// output is published, through pyembed's Options.Trace).
	Trace *trace.Hub
	// TrustedProxies are the peers whose Forwarded / X-Forwarded-For and
	// X-Forwarded-Proto set REMOTE_ADDR and wsgi.url_scheme (see proxies.go).
	TrustedProxies []netip.Prefix
	// ForwardedHeaders is the family of headers a trusted proxy's client
	// address and scheme are read from: XForwarded (X-Forwarded-For and
	// X-Forwarded-Proto; "" is the same) or Forwarded (RFC 7239). The
	// other family is never read.
	ForwardedHeaders string
	// MaxStreams is the HTTP/2 streams a client may open at once on one
	// connection (0: 100).
	MaxStreams int
	// Interface is how mounts that say nothing are served: "auto" (or "")
	// detects an ASGI app at import, "wsgi" or "asgi" insist.
	Interface string
	// Lifespan is the ASGI lifespan mode of mounts that say nothing: "auto"
	// (or ""), "on" or "off" (see LifespanAuto).
	Lifespan string
	// Loop is the ASGI event loop: "auto" (or "": uvloop when it imports),
	// "asyncio" or "uvloop".
	Loop string
	// WebSocketCompression offers permessage-deflate (RFC 7692) to the
	// WebSocket clients that ask for it.
	WebSocketCompression bool
	// WebSocketMaxMessage is the largest WebSocket message taken from a
	// client, in bytes; a larger one closes the connection with 1009. 0:
	// DefaultWebSocketMaxMessage.
	WebSocketMaxMessage int64
	// WebSocketPingInterval pings a WebSocket client that often, and
	// WebSocketPingTimeout closes it (1011) when the pong does not come in
	// time. 0: the defaults; negative: no pings.
	WebSocketPingInterval, WebSocketPingTimeout time.Duration
}

// Defaults are the settings used where Config leaves zero.
var Defaults = Config{
	Handler:           "threadpool",
	Threads:           4,
	Queue:             1024,
	MaxBody:           1 << 30,
	MemBody:           1 << 20,
	MaxHeaderBytes:    64 << 10,
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       120 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       60 * time.Second,
}

func (c *Config) fill() error {
	d := Defaults
	if c.Handler == "" {
		c.Handler = d.Handler
	}
	switch c.Handler {
	case "threadpool":
	case "simple":
		c.Threads = 1
	default:
		return fmt.Errorf("handler %q: want threadpool or simple", c.Handler)
	}
	if c.Threads <= 0 {
		c.Threads = d.Threads
	}
	if c.Queue <= 0 {
		c.Queue = d.Queue
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.WebSocketMaxMessage <= 0 {
		c.WebSocketMaxMessage = DefaultWebSocketMaxMessage
	}
	if c.WebSocketPingInterval == 0 {
		c.WebSocketPingInterval = DefaultWebSocketPingInterval
	}
	if c.WebSocketPingTimeout <= 0 {
		c.WebSocketPingTimeout = DefaultWebSocketPingTimeout
	}
	if c.WebSocketPingInterval < 0 {
		c.WebSocketPingInterval = 0
	}
	if c.MemBody <= 0 {
		c.MemBody = d.MemBody
	}
	if c.BodyMemory < c.MemBody {
		c.BodyMemory = 2 * int64(c.Threads) * c.MemBody
	}
	switch {
	case c.MinWriteRate == 0:
		c.MinWriteRate = 1024
	case c.MinWriteRate < 0:
		c.MinWriteRate = 0
	}
	if c.MaxSpill <= 0 {
		c.MaxSpill = 10 << 30
	}
	if c.BodyWait <= 0 {
		c.BodyWait = time.Second
	}
	if c.MaxStuckThreads <= 0 {
		c.MaxStuckThreads = c.Threads
	}
	if c.StallBound <= 0 {
		c.StallBound = DefaultStallBound
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	for _, p := range []struct{ v, d *time.Duration }{{&c.ReadHeaderTimeout, &d.ReadHeaderTimeout},
		{&c.ReadTimeout, &d.ReadTimeout}, {&c.WriteTimeout, &d.WriteTimeout}, {&c.IdleTimeout, &d.IdleTimeout}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if c.ForwardedHeaders == "" {
		c.ForwardedHeaders = XForwarded
	}
	if err := CheckForwardedHeaders(c.ForwardedHeaders); err != nil {
		return err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Mount puts an app under a URL prefix ("" or "/" is the root): a Target
// loaded into this process, or, with Forward set, the unix socket of another
// worker pool that serves the prefix (cross-pool routing).
type Mount struct {
	Prefix  string
	Target  string
	Forward string // unix socket path; Target is then unused
	// Static is a folder served by Go (package static); Target is then
	// unused. CacheControl is its answers' Cache-Control.
	Static, CacheControl string
	Site                 string // the site, named to the pool a request is forwarded to
	// Dotfiles "allow" serves a static folder's dot files ("" or "deny": 404).
	Dotfiles string
	// Timeout bounds each request's time in the app (0: Config.RequestTimeout).
	Timeout time.Duration
	// MaxBody bounds its request bodies (0: Config.MaxBody); MaxConcurrent
	// the requests it runs at once, one more gets 503 at once (0: none).
	MaxBody       int64
	MaxConcurrent int
	// Interface and Lifespan override Config.Interface and Config.Lifespan
	// for this mount's app.
	Interface, Lifespan string
}

type mount struct {
	src      Mount // what it was made from
	prefix   string
	site     string
	route    *metrics.Route // its counters
	static   bool           // proxy serves a folder (counted and traced here)
	app      int
	proxy    h1.Handler    // forwarding mount
	timeout  time.Duration // 0: none
	maxBody  int64         // request body limit
	sem      *slots        // MaxConcurrent (nil: none)
	asgi     bool          // the app is an ASGI app, run on the event loop
	lifespan string        // its lifespan mode ("": Config.Lifespan)
}

// slots bound the requests a mount runs at once.
type slots struct {
	n   atomic.Int64
	cap int64
}

func (s *slots) TryAcquire() bool {
	if s.n.Add(1) > s.cap {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) Release() { s.n.Add(-1) }
func (s *slots) Cap() int { return int(s.cap) }

// Server serves mounted WSGI apps from the embedded interpreter.
type Server struct {
	cfg    Config
	ip     *pyembed.Interpreter
	mounts []mount // longest prefix first, as New made them
	// swapped is the routing table SetMounts put in place of mounts (nil:
	// none yet); remount orders SetMounts calls.
	swapped atomic.Pointer[[]mount]
	remount sync.Mutex
	pool    *pyembed.Pool
	bodies  *memBudget // BodyMemory
	spill   spillSpace // MaxSpill
	h1      *h1.Server
	access  *accesslog.Logger
	log     *slog.Logger
	// proxies are the trusted proxies (Config.TrustedProxies)
	proxies []netip.Prefix

	requests atomic.Uint64 // requests answered
	stuck    atomic.Int32  // Python threads written off in timed-out requests that have not returned
	draining atomic.Bool   // responses carry Connection: close
	stopping atomic.Bool   // the Python threads are stopping (or stopped): a request can no longer be run
	shedding atomic.Bool   // so do they while the server sheds its connections (Shed)

	serving sync.WaitGroup // Serve loops

	// writtenOff counts the Python threads written off at a request
	// timeout whose request has not ended (stuck counts those of them
	// past StuckGrace); MaxStuckThreads bounds it.
	writtenOff atomic.Int32

	// spillOrder orders the bodies of unknown length being spilled: it
	// tells which gives up when the spill space is full.
	spillOrder spillOrder

	// watch measures the ASGI event loop's lag and logs what blocks it
	// (looplag.go), from startASGI to stopASGI.
	watch *loopWatch

	// loop runs the ASGI apps (nil: none is mounted); lifespans are the
	// apps whose lifespan startup ran, for their shutdown.
	loop      *pyembed.Loop
	lifespans []int

	// ws closes the open WebSockets when the server stops; flates lends
	// their compressors.
	ws     wsGoing
	flates *websocket.FlatePool
	// scopeBufs are the buffers ASGI scopes are built in (scopeBuf)
	scopeBufs sync.Pool
}

// New loads every mount's app into ip and starts the Python threads.
func New(cfg Config, ip *pyembed.Interpreter, mounts []Mount) (*Server, error) {
	chosen := cfg.Handler != ""
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	for _, err := range []error{CheckInterface(cfg.Interface), CheckLifespan(cfg.Lifespan), CheckLoop(cfg.Loop)} {
		if err != nil {
			return nil, err
		}
	}
	if len(mounts) == 0 {
		return nil, errors.New("nothing to serve: give an app target or --mount")
	}
	s := &Server{cfg: cfg, ip: ip, log: cfg.Log, proxies: cfg.TrustedProxies, flates: &websocket.FlatePool{}}
	s.ws.going = make(chan struct{})
	var err error
	seen := map[string]bool{}
	hints := map[string]bool{}
	for _, m := range mounts {
		p, err := cleanPrefix(m.Prefix)
		if err != nil {
			return nil, err
		}
		if seen[p] {
			return nil, fmt.Errorf("mount %q: prefix given twice", m.Prefix)
		}
		seen[p] = true
		mt, routed, err := s.routeMount(m, p)
		if err != nil {
			return nil, err
		}
		if routed {
			s.mounts = append(s.mounts, mt)
			continue
		}
		for _, err := range []error{CheckInterface(m.Interface), CheckLifespan(m.Lifespan)} {
			if err != nil {
				return nil, fmt.Errorf("mount %q: %w", cmp.Or(p, "/"), err)
			}
		}
		stop := importProgress(s.log, m.Target)
		app, err := ip.LoadApp(m.Target, cfg.Handler != "simple", cfg.Multiprocess)
		stop()
		if err != nil {
			return nil, err
		}
		if mt.asgi, err = ip.AppInterface(app.ID, cmp.Or(m.Interface, cfg.Interface)); err != nil {
			return nil, fmt.Errorf("load %q: %w", m.Target, err)
		}
		mt.lifespan = m.Lifespan
		if app.Hint != "" && !mt.asgi {
			hints[app.Hint] = true
		}
		mt.app = app.ID
		s.mounts = append(s.mounts, mt)
	}
	sort.SliceStable(s.mounts, func(a, b int) bool { return len(s.mounts[a].prefix) > len(s.mounts[b].prefix) })
	if hints["simple"] && !hints["threadpool"] && !chosen {
		// ISAPISimpleHandler was IIS's single-threaded handler: honour it.
		s.cfg.Handler, s.cfg.Threads = "simple", 1
		for _, m := range s.mounts {
			if m.proxy == nil && !m.asgi {
				ip.SetMultithread(m.app, false)
			}
		}
		s.log.Info("the app uses ISAPISimpleHandler: serving it single-threaded (handler simple; --handler overrides)")
	}
	s.access = cfg.AccessLog
	s.bodies = newMemBudget(s.cfg.BodyMemory)
	s.spill = spillSpace{pyembed.NewBudget(s.cfg.MaxSpill)}
	if s.pool, err = ip.StartPool(s.cfg.Threads, s.cfg.Queue); err != nil {
		return nil, err
	}
	s.pool.SetSpill(s.spill.b, os.TempDir())
	if err := s.startASGI(); err != nil {
		s.pool.Stop()
		return nil, err
	}
	s.h1 = &h1.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		MinWriteRate:      s.cfg.MinWriteRate,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		Log:               cfg.Log,
		Rejected:          s.rejected,
		BeforeAccept:      cfg.BeforeAccept,
		ConnChange:        connChange(cfg),
	}
	s.h1.H2 = h2.New(s.h1, h2.Config{
		MaxConcurrentStreams: cfg.MaxStreams, MaxHeaderBytes: cfg.MaxHeaderBytes,
		IdleTimeout: cfg.IdleTimeout, ReadHeaderTimeout: cfg.ReadHeaderTimeout, WriteTimeout: cfg.WriteTimeout, Log: cfg.Log,
		WebSockets: s.servesWebSockets,
	})
	return s, nil
}

// routeMount makes the mount of m at the clean prefix p; routed reports
// that it is complete: a forwarding or static mount, which needs no app
// (an app's mount is completed by loading the app).
func (s *Server) routeMount(m Mount, p string) (mt mount, routed bool, err error) {
	mt = mount{src: m, prefix: p, site: m.Site, timeout: m.Timeout, route: s.cfg.Metrics.Route(m.Site, cmp.Or(p, "/"))}
	if mt.timeout == 0 {
		mt.timeout = s.cfg.RequestTimeout
	}
	mt.maxBody = cmp.Or(m.MaxBody, s.cfg.MaxBody)
	if m.MaxConcurrent > 0 {
		mt.sem = &slots{cap: int64(m.MaxConcurrent)}
	}
	switch {
	case m.Forward != "":
		mt.proxy = bridge{s: s, h: NewForwarder(m.Forward, m.Site, s.cfg.Log), forward: true}
		return mt, true, nil
	case m.Static != "":
		h, err := static.Handler(m.Static, p, static.Options{CacheControl: m.CacheControl, AllowDotfiles: m.Dotfiles == "allow"})
		if err != nil {
			return mt, false, err
		}
		mt.proxy, mt.static = bridge{s: s, h: h}, true
		return mt, true, nil
	}
	return mt, false, nil
}

// SetMounts replaces the server's routing table at once, between requests
// (a request in flight keeps the table it began with): the vdirs forwarded
// to other pools, and static folders, appear, move or go without new
// workers. The apps are not reloaded: each app mount of ms must be one the
// server loaded, at the same prefix, and none may go (a change of apps
// needs new workers); otherwise nothing changes and the error says why.
// A mount that is the same as before is kept, with its connections.
func (s *Server) SetMounts(ms []Mount) error {
	s.remount.Lock()
	defer s.remount.Unlock()
	cur := s.table()
	find := func(p string) *mount {
		for i := range cur {
			if cur[i].prefix == p {
				return &cur[i]
			}
		}
		return nil
	}
	next := make([]mount, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		p, err := cleanPrefix(m.Prefix)
		if err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("mount %q: prefix given twice", m.Prefix)
		}
		seen[p] = true
		old := find(p)
		if old != nil && old.src == m {
			next = append(next, *old)
			continue
		}
		if old != nil && old.proxy == nil {
			return fmt.Errorf("mount %q: its app %s would change: that needs new workers", cmp.Or(p, "/"), old.src.Target)
		}
		mt, routed, err := s.routeMount(m, p)
		if err != nil {
			return err
		}
		if !routed {
			return fmt.Errorf("mount %q: app %s is not loaded in this process: that needs new workers", cmp.Or(p, "/"), m.Target)
		}
		next = append(next, mt)
	}
	for _, m := range cur {
		if m.proxy == nil && !seen[m.prefix] {
			return fmt.Errorf("mount %q: its app %s would go: that needs new workers", cmp.Or(m.prefix, "/"), m.src.Target)
		}
	}
	sort.SliceStable(next, func(a, b int) bool { return len(next[a].prefix) > len(next[b].prefix) })
	s.swapped.Store(&next)
	kept := map[*httputil.ReverseProxy]bool{} // forwarders (comparable, unlike a static handler)
	for _, m := range next {
		if b, ok := m.proxy.(bridge); ok && b.forward {
			if rp, ok := b.h.(*httputil.ReverseProxy); ok {
				kept[rp] = true
			}
		}
	}
	for _, m := range cur {
		if b, ok := m.proxy.(bridge); ok && b.forward {
			if rp, ok := b.h.(*httputil.ReverseProxy); ok && !kept[rp] {
				closeIdle(rp) // requests in flight on it finish
			}
		}
	}
	return nil
}

// closeIdle closes the idle connections of a forwarder a new routing table
// no longer uses.
func closeIdle(rp *httputil.ReverseProxy) {
	if t, ok := rp.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// rejected logs a request the HTTP layer refused (as nginx does, the access
// log shows malformed and oversized requests too).
func (s *Server) rejected(r *h1.Request, status int, n int64) {
	if s.access != nil {
		s.logAccess(r, nil, status, n, time.Now(), 0, requestID(r))
	}
	s.cfg.Metrics.Refused(strconv.Itoa(status))
}

// cleanPrefix normalizes a mount prefix: "" for the root, else "/a/b" with no
// trailing slash.
func cleanPrefix(p string) (string, error) {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("mount prefix %q must start with /", p)
	}
	return p, nil
}

// Serve accepts connections on ln until Shutdown. It may run on several
// listeners at once.
func (s *Server) Serve(ln net.Listener) error { return s.ServeWith(ln, s, false) }

// ServeWith is Serve with the listener's own handler (a binding's, which
// routes to the sites sharing it) and h2c: HTTP/2 without TLS for a client
// that begins with its preface. HTTP/2 over TLS is served on every TLS
// listener whose configuration offers h2 by ALPN.
func (s *Server) ServeWith(ln net.Listener, h h1.Handler, h2c bool) error {
	s.serving.Add(1)
	defer s.serving.Done()
	err := s.h1.ServeWith(ln, h, h2c)
	if errors.Is(err, h1.ErrServerClosed) {
		return nil
	}
	return err
}

// ErrAbandoned is returned by Shutdown when requests were still running in
// Python after the grace period: the interpreter must not be finalized.
var ErrAbandoned = errors.New("requests still running in Python after the grace period were abandoned")

// Shutdown stops accepting, lets in-flight requests finish until ctx ends
// (then closes what is left), and stops the Python threads. If Python threads
// are still busy then (an app stuck in a call), it returns ErrAbandoned
// without waiting for them.
//
// Keep-alive clients are not cut off: first the listeners close (queued
// connections stay in the shared socket for other workers) and every response
// carries Connection: close, so each client's next request is its last here;
// only connections still open after drainLinger are closed while idle.
func (s *Server) Shutdown(ctx context.Context) error { return s.ShutdownAfter(ctx, nil) }

// ShutdownAfter is Shutdown for a server that another one hands requests to
// (a pool's internal socket, where other pools forward theirs): the Python
// threads stop only once feeder is closed, that other server having
// answered its last request, or ctx ends. Until then a forwarded request is
// run, not refused. A nil feeder is Shutdown.
func (s *Server) ShutdownAfter(ctx context.Context, feeder <-chan struct{}) error {
	s.draining.Store(true)
	s.h1.CloseListeners()
	// Open WebSockets live on through the grace period, then get their
	// close frame with time left for the close handshake.
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		t := time.AfterFunc(left-min(wsCloseMargin, left/2), s.closeWebSockets)
		defer t.Stop()
	} else {
		s.closeWebSockets()
	}
	// A connection accepted just before the close must be counted (and
	// answered) before the server starts shutting down.
	loops := make(chan struct{})
	go func() { s.serving.Wait(); close(loops) }()
	select {
	case <-loops:
	case <-ctx.Done():
	}
	linger := time.NewTimer(drainLinger)
	for s.h1.Conns() > 0 {
		select {
		case <-ctx.Done():
		case <-linger.C:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	linger.Stop()
	err := s.h1.Shutdown(ctx)
	if feeder != nil {
		select {
		case <-feeder:
		case <-ctx.Done():
		}
	}
	s.stopping.Store(true)
	graceful := time.Second
	if dl, ok := ctx.Deadline(); ok {
		graceful = max(time.Until(dl), time.Second)
	}
	s.stopASGI(graceful) // lifespan shutdown, then the loop; its responses use the pool's queue
	stopped := make(chan struct{})
	go func() { s.pool.Stop(); close(stopped) }()
	select {
	case <-stopped:
		return err
	case <-ctx.Done():
	}
	select {
	case <-stopped:
		return err
	case <-time.After(time.Second):
		return ErrAbandoned
	}
}

// route finds the mount of a decoded path and splits it into SCRIPT_NAME and
// PATH_INFO (PEP 3333: "/foo" matches "/foo" and "/foo/x", not "/foobar").
func (s *Server) route(path string) (m *mount, pathInfo string) {
	t := s.table()
	for i := range t {
		if rest, ok := edge.MatchPrefix(path, t[i].prefix); ok {
			return &t[i], rest
		}
	}
	return nil, ""
}

// wsCloseMargin is how long before the end of the grace period the open
// WebSockets are sent their close frame (at most half of the period).
const wsCloseMargin = 2 * time.Second

// drainLinger is how long Shutdown lets keep-alive clients come back for a
// last request (answered with Connection: close) before closing idle ones.
const drainLinger = time.Second

// Requests returns how many requests the server has answered.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// WriteRate maps a minimum write rate where 0 means none (flags, wisp.toml)
// to Config.MinWriteRate, where 0 means the default and -1 none.
func WriteRate(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// Handler returns the handler in use and its number of Python threads.
func (s *Server) Handler() (string, int) { return s.cfg.Handler, s.cfg.Threads }

// importProgress logs, while an app takes long to import, that it is
// importing and for how long ("importing shop.wsgi:application… 4.2s"),
// every two seconds, instead of silence. The returned func stops it.
func importProgress(log *slog.Logger, target string) func() {
	if log == nil {
		return func() {}
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				log.Info(fmt.Sprintf("importing %s… %.1fs", target, time.Since(start).Seconds()), "target", target)
			}
		}
	}()
	return func() { close(done) }
}

// connChange counts open connections into the metrics, and passes the
// change on to the pool's board.
func connChange(cfg Config) func(int64) {
	if cfg.Metrics == nil {
		return cfg.ConnChange
	}
	return func(d int64) {
		cfg.Metrics.Conn(d)
		if cfg.ConnChange != nil {
			cfg.ConnChange(d)
		}
	}
}

// Load is the requests waiting for a Python thread and the threads busy.
func (s *Server) Load() (queued, busy int) { return s.pool.Stats() }

// servesWebSockets reports whether a mount may take a WebSocket: an ASGI
// app's, or one forwarded to another pool (whose app may be one). HTTP/2
// connections offer extended CONNECT (RFC 8441) only then.
func (s *Server) servesWebSockets() bool {
	for _, m := range s.table() {
		if m.asgi {
			return true
		}
		if b, ok := m.proxy.(bridge); ok && b.forward {
			return true
		}
	}
	return false
}

// table is the routing table now: the last SetMounts', else New's.
func (s *Server) table() []mount {
	if t := s.swapped.Load(); t != nil {
		return *t
	}
	return s.mounts
}
