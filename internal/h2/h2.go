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
	// WebSockets, if set, is asked as each connection starts whether the
	// server serves WebSockets now (an app that takes them is mounted).
	// Only then does the connection offer extended CONNECT (RFC 8441:
	// SETTINGS_ENABLE_CONNECT_PROTOCOL), which a browser takes as a promise
	// to keep (golang/go#71128), and a WebSocket's extended CONNECT goes to
	// h1 as its HTTP/1.1 upgrade request (see stream). nil or false: the
	// setting is taken out of the SETTINGS frame, and an extended CONNECT
	// the client sends anyway is malformed (400). The process must have
	// XConnect in its GODEBUG for either.
	WebSockets func() bool
}

// Server serves the HTTP/2 connections of one h1.Server.
type Server struct {
	h1 *h1.Server
	hs *http.Server
	ln *handoff
	ws func() bool
	// serve serves one stream's exchange: h1.ServeStream (a stand-in in tests)
	serve func(nc net.Conn, h h1.Handler)

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
	s := &Server{h1: h1s, ln: newHandoff(), ws: cfg.WebSockets, serve: h1s.ServeStream}
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
	hc.ws = s.ws != nil && s.ws()
	hc.settingsDone = hc.ws // the setting stays in: nothing to take out
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
	ws := false
	if p, ok := r.Header[":protocol"]; ok {
		switch {
		case !hc.ws:
			// RFC 8441 3: extended CONNECT that was not offered is
			// malformed; net/http lets a handler answer, not reset the
			// stream with PROTOCOL_ERROR, so a 400 as above
			http.Error(w, "400 Bad Request: extended CONNECT was not offered", http.StatusBadRequest)
			return
		case len(p) != 1 || !strings.EqualFold(p[0], "websocket"):
			http.Error(w, "501 Not Implemented: the protocol "+strconv.Quote(strings.Join(p, ","))+" over HTTP/2", http.StatusNotImplemented)
			return
		}
		ws = true
	}
	st := newStream(w, r, hc.Conn, ws)
	s.serve(st, hc.h)
	st.end()
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
	// (RFC 8441 4: so is an extended CONNECT's; only a plain CONNECT's is
	// an authority)
	_, extended := r.Header[":protocol"]
	if t := r.RequestURI; (r.Method != "CONNECT" || extended) && !strings.HasPrefix(t, "/") && !(t == "*" && r.Method == "OPTIONS") {
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
// Unless it offers WebSockets, SETTINGS_ENABLE_CONNECT_PROTOCOL is taken
// out of the first SETTINGS frame the server writes on it.
type handedConn struct {
	net.Conn
	h       h1.Handler
	preface []byte
	once    sync.Once
	ended   chan struct{}

	ws           bool   // the connection offers WebSockets (Config.WebSockets)
	settingsDone bool   // the first frame went out (the server's writes are serial)
	first        []byte // the first frame's bytes so far
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.preface) > 0 {
		n := copy(p, c.preface)
		c.preface = c.preface[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Write writes p, holding the first frame back until it is whole, to take
// the setting out of it.
func (c *handedConn) Write(p []byte) (int, error) {
	if c.settingsDone {
		return c.Conn.Write(p)
	}
	c.first = append(c.first, p...)
	out, ok := withoutConnectProtocol(c.first)
	if !ok {
		return len(p), nil // the rest of the frame is in the next write
	}
	c.settingsDone, c.first = true, nil
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// settingEnableConnectProtocol is SETTINGS_ENABLE_CONNECT_PROTOCOL's id
// (RFC 8441 3).
const settingEnableConnectProtocol = 0x8

// withoutConnectProtocol returns b, the server's first bytes on a
// connection, with SETTINGS_ENABLE_CONNECT_PROTOCOL taken out of its first
// frame if that is a SETTINGS frame (RFC 9113 6.5); ok false: b does not
// hold the whole frame yet. Frames after it are returned as they are.
func withoutConnectProtocol(b []byte) (out []byte, ok bool) {
	const headerLen, entryLen, typeSettings, flagAck = 9, 6, 0x4, 0x1
	if len(b) < headerLen {
		return nil, false
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if len(b) < headerLen+n {
		return nil, false
	}
	if b[3] != typeSettings || b[4]&flagAck != 0 || n%entryLen != 0 {
		return b, true
	}
	out = append(make([]byte, 0, len(b)), b[:headerLen]...)
	for e := b[headerLen : headerLen+n]; len(e) >= entryLen; e = e[entryLen:] {
		if int(e[0])<<8|int(e[1]) != settingEnableConnectProtocol {
			out = append(out, e[:entryLen]...)
		}
	}
	m := len(out) - headerLen
	out[0], out[1], out[2] = byte(m>>16), byte(m>>8), byte(m)
	return append(out, b[headerLen+n:]...), true
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
