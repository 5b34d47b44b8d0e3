// Package h1 is wisp's HTTP/1.1 server side (RFC 9112): it accepts client
// connections, reads requests strictly (anything ambiguous about where a
// message ends is refused and the connection closed, so that no request can
// be smuggled past a proxy), frames responses, keeps connections alive and
// enforces the timeouts and size limits of a public-facing server.
//
// It knows nothing about WSGI: a Handler gets each Request, reads its Body and
// writes its Response. Compared to net/http it reads a request with one
// syscall, allocates one string for the whole header section, writes a small
// response with one syscall, and watches for a vanished client only while a
// handler is slow (net/http starts a background read for every request).
package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one request. It must not keep r or w after it returns.
type Handler interface {
	ServeH1(w *Response, r *Request)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(w *Response, r *Request)

// ServeH1 calls f.
func (f HandlerFunc) ServeH1(w *Response, r *Request) { f(w, r) }

// Server serves HTTP/1.x on any number of listeners. Zero durations mean no
// limit; MaxHeaderBytes 0 means 64 KiB.
type Server struct {
	Handler           Handler
	ReadHeaderTimeout time.Duration // from a request's first byte to the end of its headers
	ReadTimeout       time.Duration // from a request's first byte to the end of its body
	WriteTimeout      time.Duration // each write of the response
	// MinWriteRate is the least a client must take of a response, in bytes
	// per second of the time the writes wait for it (time the handler takes to
	// produce the bytes, and writes the kernel's buffers take at once, do not
	// count), with MinRateGrace of waiting allowed on top; a
	// client slower than that is cut off, so that a slow reader cannot hold
	// what feeds the response (a Python thread) for long. 0: no minimum.
	MinWriteRate   int64
	MinRateGrace   time.Duration // 0: 10s
	IdleTimeout    time.Duration // keep-alive wait for the next request
	MaxHeaderBytes int           // request line and header section; beyond: 431 (414 for the request line)
	Log            *slog.Logger  // protocol errors at debug level; nil: slog.Default()
	// BeforeAccept, if set, is called before each accept (it may wait, to let
	// other processes sharing the listener go first).
	BeforeAccept func()
	// Rejected, if set, is called for each request refused before the
	// handler (malformed, too large, timed out: 4xx/5xx and the connection
	// closes), with what of the request was parsed (Method "" if nothing)
	// and the status and body bytes sent. The Request must not be kept.
	Rejected func(r *Request, status int, n int64)
	// ConnChange, if set, is called with +1 and -1 as connections open and close.
	ConnChange func(delta int64)
	// H2, if set, serves the connections that speak HTTP/2: over TLS by
	// ALPN, and on listeners served with h2c by the client's preface.
	H2 Upgrader

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	nconns    atomic.Int64
	shutting  atomic.Bool
	stopped   atomic.Bool    // CloseListeners was called: Serve accepts nothing more
	loops     sync.WaitGroup // the accept loops (ServeWith)
	connsDone chan struct{}  // closed when the last connection ends after Shutdown began
}

// Upgrader serves connections that switched to HTTP/2 (package h2).
type Upgrader interface {
	// ServeConn serves nc until it ends. preface holds the bytes of an h2c
	// connection read so far (nil for TLS); h is the listener's handler,
	// which every stream's exchange goes to (see Server.ServeStream).
	ServeConn(nc net.Conn, preface []byte, h Handler)
	// Shutdown ends the connections gracefully (GOAWAY) and waits for them
	// until ctx ends.
	Shutdown(ctx context.Context) error
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("h1: server closed")

// Serve accepts connections on ln and serves each on its own goroutine until
// ln fails or the server shuts down (then it returns ErrServerClosed).
func (s *Server) Serve(ln net.Listener) error { return s.ServeWith(ln, s.Handler, false) }

// ServeStream serves one exchange that arrived on another protocol's
// stream (an HTTP/2 stream as HTTP/1.1 bytes on nc, see package h2) with h,
// on the calling goroutine, and closes nc. It is tracked for Shutdown but
// not counted as a connection (ConnChange).
func (s *Server) ServeStream(nc net.Conn, h Handler) {
	c := newConn(s, nc, h)
	c.stream = true
	s.track(c, true)
	c.serve()
}

// ServeWith is Serve with the listener's own handler, and h2c: a client may
// begin with the HTTP/2 preface (H2 serves it).
func (s *Server) ServeWith(ln net.Listener, h Handler, h2c bool) error {
	s.mu.Lock()
	if s.stopped.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	s.loops.Add(1) // before stopped is set (under mu): Shutdown's Wait comes after
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		s.loops.Done()
	}()
	var backoff time.Duration
	for {
		if s.BeforeAccept != nil {
			s.BeforeAccept()
		}
		nc, err := ln.Accept()
		if err != nil {
			if s.stopped.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// EMFILE and the like: wait, as net/http does, rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc, h)
		c.h2c = h2c
		s.track(c, true)
		go c.serve()
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// track adds or removes a connection. One accepted while Shutdown runs is
// still served (its response closes it).
func (s *Server) track(c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	if add {
		s.conns[c] = struct{}{}
		s.nconns.Add(1)
		if s.ConnChange != nil && !c.stream {
			s.ConnChange(1)
		}
		return
	}
	delete(s.conns, c)
	s.nconns.Add(-1)
	if s.ConnChange != nil && !c.stream {
		s.ConnChange(-1)
	}
	if len(s.conns) == 0 && s.connsDone != nil {
		close(s.connsDone)
		s.connsDone = nil
	}
}

// Conns returns the number of open client connections.
func (s *Server) Conns() int64 { return s.nconns.Load() }

// CloseListeners stops accepting (queued connections stay in a shared socket
// for other processes). Connections already accepted are served on.
func (s *Server) CloseListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// Shutdown stops accepting, closes idle connections at once and the others
// after their current response (which says Connection: close), and waits for
// them until ctx ends; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	s.stopped.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	// a connection accepted just before the close is tracked (and waited
	// for) once its loop has returned: else Shutdown could end with it
	// still open, its request read and never answered
	loops := make(chan struct{})
	go func() { s.loops.Wait(); close(loops) }()
	select {
	case <-loops:
	case <-ctx.Done():
	}
	s.mu.Lock()
	var done chan struct{}
	if len(s.conns) > 0 {
		if s.connsDone == nil { // a second Shutdown waits for the same end
			s.connsDone = make(chan struct{})
		}
		done = s.connsDone
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	s.mu.Unlock()
	if s.H2 != nil {
		go s.H2.Shutdown(ctx) // GOAWAY: each HTTP/2 connection ends after its streams
	}
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// CloseIdle closes the keep-alive connections that wait for their next
// request and have received nothing of it, so that their clients' next
// requests open new connections (which another process sharing the
// listeners may accept): a process that cannot serve for a while sheds them.
// A connection with a request under way, or that has not had its first one
// yet, is left alone. Closing an idle keep-alive connection is ordinary HTTP
// (RFC 9112 9.3.1; clients retry an idempotent request that meets it); a
// request whose first bytes arrive in the instant between the check and the
// close meets it too. It returns how many it closed.
func (s *Server) CloseIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.closeIfIdle() {
			n++
		}
	}
	return n
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting.Store(true)
	s.stopped.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
}

// dateCache holds the Date header value of the current second.
type dateCache struct {
	sec  int64
	line []byte // "Date: ...\r\n"
}

var date atomic.Pointer[dateCache]

// appendDate appends the Date header of now (RFC 9110 5.6.7), formatted once a second.
func appendDate(b []byte) []byte {
	now := time.Now()
	d := date.Load()
	if d == nil || d.sec != now.Unix() {
		line := make([]byte, 0, 40)
		line = append(line, "Date: "...)
		line = now.UTC().AppendFormat(line, "Mon, 02 Jan 2006 15:04:05 GMT")
		line = append(line, "\r\n"...)
		d = &dateCache{sec: now.Unix(), line: line}
		date.Store(d)
	}
	return append(b, d.line...)
}
