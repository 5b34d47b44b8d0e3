package server

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"wisp/internal/h1"
	"wisp/internal/h2"
	"wisp/internal/pyembed"
	"wisp/internal/trace"
)

// Lifespan modes (Config.Lifespan, Mount.Lifespan).
const (
	LifespanAuto = "auto" // run it; an app that does not speak it is served anyway
	LifespanOn   = "on"   // run it; an app that fails it does not start
	LifespanOff  = "off"  // never run it
)

// CheckInterface checks an interface name (--interface, interface =).
func CheckInterface(v string) error {
	switch v {
	case "", pyembed.InterfaceAuto, pyembed.InterfaceWSGI, pyembed.InterfaceASGI:
		return nil
	}
	return fmt.Errorf("interface %q: want auto, wsgi or asgi", v)
}

// CheckLifespan checks a lifespan mode (--lifespan, lifespan =).
func CheckLifespan(v string) error {
	switch v {
	case "", LifespanAuto, LifespanOn, LifespanOff:
		return nil
	}
	return fmt.Errorf("lifespan %q: want auto, on or off", v)
}

// CheckLoop checks an event loop kind (--loop).
func CheckLoop(v string) error {
	if v == "" {
		return nil
	}
	for _, k := range pyembed.LoopKinds {
		if v == k {
			return nil
		}
	}
	return fmt.Errorf("loop %q: want auto, asyncio or uvloop", v)
}

// startASGI starts the event loop if a mount is an ASGI app, and runs the
// lifespan startup of each, once in this process: a failure means the
// server does not start (the loop is stopped again).
func (s *Server) startASGI() error {
	var apps []*mount
	for i := range s.mounts {
		if s.mounts[i].asgi {
			apps = append(apps, &s.mounts[i])
		}
	}
	if len(apps) == 0 {
		return nil
	}
	l, err := s.ip.AcquireLoop(s.pool, s.cfg.Loop)
	if err != nil {
		return err
	}
	s.loop = l
	s.watchLoop()
	for _, m := range apps {
		mode := cmp.Or(m.lifespan, s.cfg.Lifespan, LifespanAuto)
		if mode == LifespanOff {
			continue
		}
		if err := l.Lifespan(s.pool, m.app, false, mode, 0); err != nil {
			s.stopASGI(5 * time.Second)
			return fmt.Errorf("app at %q: %w", cmp.Or(m.prefix, "/"), err)
		}
		s.lifespans = append(s.lifespans, m.app)
	}
	return nil
}

// stopASGI runs the lifespan shutdown of the apps that started, in reverse
// order, then stops the loop, all within timeout.
func (s *Server) stopASGI(timeout time.Duration) {
	if s.loop == nil {
		return
	}
	s.unwatchLoop()
	end := time.Now().Add(timeout)
	for i := len(s.lifespans) - 1; i >= 0; i-- {
		left := time.Until(end)
		if left <= 0 {
			s.log.Error("lifespan shutdown skipped: the graceful timeout is over", "app", s.lifespans[i])
			continue
		}
		if err := s.loop.Lifespan(s.pool, s.lifespans[i], true, LifespanAuto, left); err != nil {
			s.log.Error("ASGI lifespan shutdown failed", "err", err)
		}
	}
	s.lifespans = nil
	if err := s.ip.ReleaseLoop(max(time.Until(end), time.Second)); err != nil {
		s.log.Error("ASGI event loop", "err", err)
	}
	s.loop = nil
}

// firstPiece is the most of a request body read before the app is called:
// a small body then reaches the loop with its request, in one wake-up.
const firstPiece = 64 << 10

// serveASGI runs one request of an ASGI app on the event loop. Its body is
// streamed to the app as it arrives (http.request with more_body), within
// the mount's max_body, by a goroutine of the request's; the response comes
// back through the same events and responder as a WSGI one.
func (s *Server) serveASGI(w *h1.Response, r *h1.Request, m *mount, rid trace.ID) {
	x := s.newExchange(m, rid, s.loop)
	j := &x.j
	defer func() {
		if j != nil { // not handed over after a timeout
			s.endJob(j)
		}
	}()
	if !s.admit(w, m) {
		return
	}
	if m.sem != nil {
		defer m.sem.Release()
	}
	if r.ContentLength > m.maxBody {
		w.SetClose()
		status, msg := tooLarge(m.maxBody)
		plain(w, status, msg)
		return
	}
	r.Body.Limit(m.maxBody)
	more := r.ContentLength != 0
	var first []byte
	if more && (r.ContentLength > 0 && r.ContentLength <= firstPiece || strings.EqualFold(r.Header("Expect"), "100-continue")) {
		// Read here, before the app runs: a small body goes with its
		// request; and 100 Continue is written by this goroutine, never
		// beside the response.
		n := int64(firstPiece)
		if r.ContentLength > 0 {
			n = r.ContentLength
		}
		buf := make([]byte, n)
		k, err := io.ReadFull(r.Body, buf)
		if err != nil && !(r.ContentLength < 0 && (err == io.ErrUnexpectedEOF || err == io.EOF)) {
			status, msg := s.bodyError(err, m.maxBody)
			w.SetClose()
			plain(w, status, msg)
			return
		}
		first = buf[:k]
		more = r.ContentLength < 0 && err == nil // a chunked body may go on
	}
	sb := s.scopeBuf()
	*sb = s.asgiScope((*sb)[:0], r, m, false)
	submitted := s.loop.Submit(j.Job, m.app, *sb, first, more) // copies the scope
	s.scopeBufs.Put(sb)
	if !submitted {
		w.AddHeader("Retry-After", "1")
		plain(w, 503, "503 Service Unavailable: the event loop has stopped")
		return
	}
	p := &x.p
	*p = responder{s: s, w: w, r: r, triedDirect: true} // the loop never writes to the socket itself
	if more {
		p.body = s.streamBody(r, j, m.maxBody)
	}
	if s.cfg.AppBegin != nil {
		defer s.cfg.AppEnd(s.cfg.AppBegin(r))
	}
	done := s.respond(p, j, m.timeout)
	if p.body != nil {
		p.body.stop(r)
	}
	if done {
		return
	}
	// Timed out: 504 went out (or the connection is aborted); the task was
	// cancelled and its done event is on its way.
	if p.wrote {
		w.Abort()
	}
	go func(j *job) {
		drain(j)
		s.endJob(j)
	}(j)
	j = nil
}

// asgiBody is a request body streamed to an ASGI app by a goroutine of its
// own, at most pyembed's WISP_BODY_AHEAD bytes ahead of what the app took.
type asgiBody struct {
	max   int64         // the mount's max_body
	errc  chan error    // why reading failed (too large, malformed, too slow, the client left)
	quit  chan struct{} // stop: the request is over
	done  chan struct{} // closed when the goroutine has left
	ended bool          // stop was called
}

func (s *Server) streamBody(r *h1.Request, j *job, max int64) *asgiBody {
	b := &asgiBody{max: max, errc: make(chan error, 1), quit: make(chan struct{}), done: make(chan struct{})}
	l := j.loop
	go func() {
		defer close(b.done)
		buf := make([]byte, firstPiece)
		var total int64
		for {
			if !l.WaitBody(j.Job, b.quit) {
				return
			}
			n, err := r.Body.Read(buf)
			total += int64(n)
			last := err == io.EOF || (err == nil && r.ContentLength > 0 && total == r.ContentLength)
			if err != nil && err != io.EOF {
				b.errc <- err
				return
			}
			if n > 0 || last {
				l.Body(j.Job, buf[:n], !last)
			}
			if last {
				return
			}
		}
	}()
	return b
}

// stop ends the body's goroutine: a read still waiting for the client is
// interrupted (the connection then closes after the response).
func (b *asgiBody) stop(r *h1.Request) {
	if b.ended {
		return
	}
	b.ended = true
	close(b.quit)
	select {
	case <-b.done:
		return
	default:
	}
	r.Body.Interrupt()
	<-b.done
}

// asgiScope appends the request's scope in the flat form wisp_asgi.py's
// make_scope reads: http_version, method, scheme, raw_path, query_string,
// root_path, client host and port, server host and port, then each header's
// lowercased name and value, in order, each ended by a NUL.
func (s *Server) asgiScope(b []byte, r *h1.Request, m *mount, ws bool) []byte {
	field := func(v string) { b = append(append(b, v...), 0) }
	proto := r.Proto
	if r.Trusted {
		if p := r.Header("X-Wisp-Protocol"); p == "HTTP/2.0" {
			proto = p
		}
	}
	switch proto {
	case "HTTP/2.0":
		field("2")
	case "HTTP/1.0":
		field("1.0")
	default:
		field("1.1")
	}
	field(r.Method)
	c := s.clientOf(r)
	field(c.scheme)
	field(r.Path)
	field(r.Query)
	field(m.prefix)
	host, port, err := net.SplitHostPort(c.remote)
	if err != nil { // a forwarded address without its port
		host, port = strings.Trim(c.remote, "[]"), "0"
	}
	if strings.HasPrefix(c.remote, "@") || strings.HasPrefix(c.remote, "/") {
		host, port = "", "" // a unix socket's peer has no address
	}
	field(host)
	field(port)
	switch a := r.Local.(type) {
	case *net.TCPAddr:
		field(a.IP.String())
		field(strconv.Itoa(a.Port))
	case *net.UnixAddr:
		field(a.Name)
		field("")
	default:
		field("")
		field("")
	}
	isH2 := proto == "HTTP/2.0"
	for _, f := range r.Fields {
		if isH2 && ws && h2.Synthesized(f.Name) {
			continue // made by internal/h2 of an extended CONNECT, not the client's
		}
		name := f.Name
		if len(name) > 7 && strings.EqualFold(name[:7], "X-Wisp-") {
			continue // wisp's own, between its pools
		}
		if isH2 && strings.EqualFold(name, "Transfer-Encoding") {
			continue // the framing internal/h2 gave the body, not the client's
		}
		for i := 0; i < len(name); i++ {
			ch := name[i]
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			b = append(b, ch)
		}
		b = append(b, 0)
		field(f.Value)
	}
	return b
}

// scopeBuf lends a buffer to build a flat scope in (scopeBufs); the loop's
// queue copies a scope, so one buffer serves request after request.
func (s *Server) scopeBuf() *[]byte {
	if b, ok := s.scopeBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}
