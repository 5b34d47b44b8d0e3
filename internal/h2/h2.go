// Package h2 serves HTTP/2 in front of wisp's HTTP/1.1 handlers: Go's
// net/http server speaks the protocol (framing, flow control, HPACK, stream
// limits, and the rapid-reset defence of CVE-2023-44487), and each stream's
// exchange is handed to the h1.Server as HTTP/1.1 bytes on an in-memory
// connection (stream). So an HTTP/2 request goes through the same parser,
// limits, timeouts, body handling, WSGI environ (SERVER_PROTOCOL HTTP/2.0),
// access log and trace as an HTTP/1.1 one, and plain HTTP/1.1 keeps its own
// lean path.
//
// Connections come from h1.Server as an h1.Upgrader: TLS ones that
// negotiated "h2" by ALPN, and plain ones that began with the HTTP/2 preface
// on a listener served with h2c.
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"wisp/internal/h1"
)

// XConnect is the GODEBUG setting under which Go's net/http serves extended
// CONNECT (RFC 8441, WebSockets over HTTP/2): it reads it once, at process
// init, so wisp's server processes are started with it (cli's re-exec, the
// supervisor's workers). Without it no connection offers WebSockets; with
// it, Config.WebSockets decides per connection.
const XConnect = "http2xconnect=1"

// Config holds the HTTP/2 limits. Zero values take the defaults noted.
type Config struct {
	// MaxConcurrentStreams is the streams a client may open at once on a
	// connection (SETTINGS_MAX_CONCURRENT_STREAMS). 0: 100.
	MaxConcurrentStreams int
	// MaxHeaderBytes bounds a request's header list (decoded); beyond it
	// the stream is refused (431). 0: 64 KiB.
	MaxHeaderBytes int
	// IdleTimeout closes a connection without streams for that long.
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds the client's preface and settings.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds each write to the connection (a client that does
	// not read its frames is cut off); 0: none.
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// Server serves the HTTP/2 connections of one h1.Server.
type Server struct {
	h1 *h1.Server
	hs *http.Server
	ln *handoff

	serving sync.Once
	mu      sync.Mutex
	done    bool
}

// New returns a Server whose streams h1s serves. Set it as h1s.H2.
func New(h1s *h1.Server, cfg Config) *Server {
	if cfg.MaxConcurrentStreams <= 0 {
		cfg.MaxConcurrentStreams = 100
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	s := &Server{h1: h1s, ln: newHandoff()}
	var protos http.Protocols
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveStream),
		Protocols:         &protos,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		IdleTimeout:       cfg.IdleTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: cfg.MaxConcurrentStreams,
			// a client that does not read: its connection's writes fail
			WriteByteTimeout: cfg.WriteTimeout,
			// 1 MiB per stream and 4 MiB per connection of request body
			// in flight, as the defaults; named so that they are on record
			MaxReceiveBufferPerStream:     1 << 20,
			MaxReceiveBufferPerConnection: 4 << 20,
			SendPingTimeout:               cfg.IdleTimeout / 2,
			PingTimeout:                   15 * time.Second,
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*handedConn); ok {
				return context.WithValue(ctx, connKey{}, hc)
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if hc, ok := c.(*handedConn); ok && (st == http.StateClosed || st == http.StateHijacked) {
				hc.end()
			}
		},
	}
	if cfg.Log != nil {
		s.hs.ErrorLog = slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug)
	}
	return s
}

type connKey struct{}

// ServeConn serves one HTTP/2 connection until it ends (h1.Upgrader).
func (s *Server) ServeConn(nc net.Conn, preface []byte, h h1.Handler) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.serving.Do(func() { go s.hs.Serve(s.ln) })
	s.mu.Unlock()
	hc := &handedConn{Conn: nc, h: h, preface: preface, ended: make(chan struct{})}
	if !s.ln.give(hc) {
		return
	}
	<-hc.ended
}

// Shutdown sends GOAWAY on every connection and waits for their streams
// until ctx ends (h1.Upgrader).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.ln.Close()
	return s.hs.Shutdown(ctx)
}

// serveStream runs one stream's exchange on the h1.Server.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	hc, _ := r.Context().Value(connKey{}).(*handedConn)
	if hc == nil {
		panic(http.ErrAbortHandler) // not a connection handed over by ServeConn
	}
	if r.Context().Err() != nil {
		// reset before it began (rapid reset): the app never sees it
		panic(http.ErrAbortHandler)
	}
	if msg := malformed(r); msg != "" {
		// RFC 9113 8.1.1: a malformed request may get an HTTP response
		// before the stream closes; the app never sees it
		http.Error(w, "400 Bad Request: "+msg, http.StatusBadRequest)
		return
	}
	st := newStream(w, r, hc.Conn)
	h := hc.h
	s.h1.ServeStream(st, h)
	if !st.complete() {
		// the exchange ended before its response did (an aborted body, a
		// response never written): reset the stream, so that the client
		// does not take a cut body for a whole one
		panic(http.ErrAbortHandler)
	}
}

// malformed returns why r breaks a rule of RFC 9113 that net/http does not
// enforce and that the HTTP/1.1 head made of it would hide ("": none).
func malformed(r *http.Request) string {
	// 8.3.1: :path is an absolute path (or "*" for OPTIONS); an absolute
	// URI there would become the HTTP/1.1 target, and its authority the
	// Host, over :authority
	if t := r.RequestURI; r.Method != "CONNECT" && !strings.HasPrefix(t, "/") && !(t == "*" && r.Method == "OPTIONS") {
		return "the :path is not an absolute path"
	}
	// 8.2.1: no field value starts or ends with whitespace
	if strings.ContainsAny(r.Host, " \t") {
		return "whitespace in :authority"
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if v != "" && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
				return "whitespace around the value of " + name
			}
		}
	}
	// 8.1.1: content-length must equal the length of the DATA frames; every
	// value must be the same number (net/http reads only the first, and only
	// when a body follows)
	if vs := r.Header.Values("Content-Length"); len(vs) > 0 {
		for _, v := range vs {
			if v != vs[0] || v == "" || strings.Trim(v, "0123456789") != "" {
				return "malformed or conflicting content-length"
			}
		}
		if n, err := strconv.ParseInt(vs[0], 10, 64); err != nil || r.ContentLength >= 0 && n != r.ContentLength {
			return "content-length differs from the body"
		}
	}
	return ""
}

// handedConn is a connection handed over by h1: the preface bytes h1 read
// come first, and its end is signalled to the h1 goroutine waiting for it.
type handedConn struct {
	net.Conn
	h       h1.Handler
	preface []byte
	once    sync.Once
	ended   chan struct{}
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.preface) > 0 {
		n := copy(p, c.preface)
		c.preface = c.preface[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *handedConn) end() { c.once.Do(func() { close(c.ended) }) }

func (c *handedConn) Close() error {
	err := c.Conn.Close()
	c.end()
	return err
}

// handoff is the listener http.Server accepts handed connections from.
type handoff struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoff() *handoff {
	return &handoff{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoff) give(c *handedConn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoff) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoff) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "h2" }
func (handoffAddr) String() string  { return "h2 handoff" }
