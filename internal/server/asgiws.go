package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wisp/internal/asgiws"
	"wisp/internal/h1"
	"wisp/internal/pyembed"
	"wisp/internal/trace"
	"wisp/internal/websocket"
)

// WebSocket defaults (Config.WebSocket*).
const (
	DefaultWebSocketMaxMessage   = 16 << 20
	DefaultWebSocketPingInterval = 20 * time.Second
	DefaultWebSocketPingTimeout  = 20 * time.Second
)

// wsGoing is when and how the server's open WebSockets close: going is
// closed when they must (the server stops or restarts), code says with
// what (1001 going away, 1012 service restart).
type wsGoing struct {
	going chan struct{}
	once  sync.Once
	code  atomic.Int32
}

// SetRestart makes the WebSockets open at Shutdown close with 1012
// (service restart: reconnect, another worker serves) instead of 1001
// (going away): the server is a pool's worker being recycled or replaced.
func (s *Server) SetRestart(restart bool) {
	code := int32(websocket.CloseGoingAway)
	if restart {
		code = websocket.CloseServiceRestart
	}
	s.ws.code.Store(code)
}

// closeWebSockets sends every open WebSocket its close frame.
func (s *Server) closeWebSockets() {
	s.ws.once.Do(func() { close(s.ws.going) })
}

func (s *Server) goingCode() int {
	if c := s.ws.code.Load(); c != 0 {
		return int(c)
	}
	return websocket.CloseGoingAway
}

// isWebSocket reports whether r asks to open a WebSocket: an HTTP/1.1
// Upgrade (an HTTP/2 extended CONNECT arrives from internal/h2 as one).
func isWebSocket(r *h1.Request) bool {
	if r.Method != "GET" || r.Minor != 1 {
		return false
	}
	return websocket.IsUpgrade(fields(r))
}

// overH2 reports whether the client's request came over HTTP/2 (here, or
// to the pool that forwarded it).
func overH2(r *h1.Request) bool {
	return r.Proto == "HTTP/2.0" || r.Trusted && r.Header("X-Wisp-Protocol") == "HTTP/2.0"
}

func fields(r *h1.Request) func(yield func(string, string) bool) {
	return func(yield func(string, string) bool) {
		for _, f := range r.Fields {
			if !yield(f.Name, f.Value) {
				return
			}
		}
	}
}

// serveWebSocket runs a WebSocket of an ASGI app: the handshake is checked
// here, the app answers websocket.connect with its accept (the 101 then goes
// out and asgiws relays the messages until the connection closes), its
// close (403), or a response of its own (websocket.http.response), which
// goes out as any ASGI response does.
func (s *Server) serveWebSocket(w *h1.Response, r *h1.Request, m *mount, rid trace.ID) {
	hs, err := websocket.CheckHandshake(r.Method, fields(r))
	if err == nil && (r.ContentLength != 0 || r.Chunked) {
		// RFC 6455 4.1: the handshake is a GET; a body would be read as
		// the first frames (or, unread, block the switch)
		err = &websocket.HandshakeError{Status: 400, Msg: "a WebSocket handshake has no body"}
	}
	if err != nil {
		status, msg := 400, err.Error()
		var he *websocket.HandshakeError
		if errors.As(err, &he) {
			status = he.Status
			msg = he.Msg
		}
		if status == 426 {
			w.AddHeader("Sec-WebSocket-Version", "13")
		}
		w.SetClose()
		plain(w, status, strconv.Itoa(status)+" "+http.StatusText(status)+": "+msg)
		return
	}
	x := s.newExchange(m, rid, s.loop)
	j := &x.j
	defer func() {
		if j != nil {
			s.endJob(j)
		}
	}()
	if !s.admit(w, m) {
		return
	}
	if m.sem != nil {
		defer m.sem.Release()
	}
	sb := s.scopeBuf()
	*sb = s.asgiScope((*sb)[:0], r, m, true)
	submitted := s.loop.SubmitWebSocket(j.Job, m.app, *sb) // copies the scope
	s.scopeBufs.Put(sb)
	if !submitted {
		w.AddHeader("Retry-After", "1")
		plain(w, 503, "503 Service Unavailable: the event loop has stopped")
		return
	}
	p := &x.p
	*p = responder{s: s, w: w, r: r, triedDirect: true, ws: true}
	if s.cfg.AppBegin != nil {
		defer s.cfg.AppEnd(s.cfg.AppBegin(r))
	}
	// the request timeout bounds the handshake, not the WebSocket's life
	done := s.respond(p, j, m.timeout)
	if !done {
		if p.wrote {
			w.Abort()
		}
		go func(j *job) {
			drain(j)
			s.endJob(j)
		}(j)
		j = nil
		return
	}
	if p.accept.Hdr == nil {
		return // refused, or answered with a response of the app's
	}
	s.accepted(w, r, j, hs, &p.accept)
}

// accepted completes the handshake the app accepted and relays the
// WebSocket until it closes.
func (s *Server) accepted(w *h1.Response, r *h1.Request, j *job, hs *websocket.Handshake, ev *pyembed.Event) {
	sub, extra := parseAccept(ev.Hdr[1:])
	ev.Release()
	var d *websocket.Deflate
	if s.cfg.WebSocketCompression {
		d = websocket.NegotiateDeflate(hs.Extensions, websocket.DeflateSettings{ServerNoContextTakeover: true})
	}
	f, err := websocket.ResponseHeaders(hs, sub, d)
	if err != nil {
		s.log.Error("ASGI app accepted a WebSocket with a subprotocol the client did not offer; answered 500",
			"uri", r.Target, "subprotocol", sub)
		s.loop.Closed(j.Job, websocket.CloseAbnormal, "")
		drain(j)
		plain(w, 500, "500 Internal Server Error: the application chose a subprotocol the client did not offer")
		return
	}
	w.SetStatus(101, "")
	for _, h := range f {
		w.AddHeader(h.Name, h.Value)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if !reservedWSHeader(extra[i]) {
			w.AddHeader(extra[i], extra[i+1])
		}
	}
	nc, buffered, err := w.Switch()
	if err != nil {
		s.loop.Closed(j.Job, websocket.CloseAbnormal, "")
		drain(j)
		w.Abort()
		return
	}
	if len(buffered) > 0 {
		nc = &prefixConn{Conn: nc, pre: buffered} // frames the client sent at once
	}
	cc := &asgiws.CountingConn{Conn: nc, WriteTimeout: s.cfg.WriteTimeout}
	conn := websocket.NewConn(cc, nil, websocket.Options{
		MaxMessageSize: s.cfg.WebSocketMaxMessage,
		Deflate:        d,
		FlatePool:      s.flates,
		CompressMin:    64,
		// small buffers: an idle WebSocket holds them for its whole life,
		// and a larger message goes to the socket without them
		ReadBufferSize:  2048,
		WriteBufferSize: 2048,
	})
	mc := s.cfg.Metrics
	mc.WebSocketOpen(1)
	sess := asgiws.Session{
		Conn: conn, Loop: s.loop, Job: j.Job,
		PingInterval: s.cfg.WebSocketPingInterval, PingTimeout: s.cfg.WebSocketPingTimeout,
		Going: s.ws.going, GoingCode: s.goingCode,
	}
	if mc != nil {
		sess.Message = mc.WebSocketMessage
	}
	// the connection is counted until it closes, however long the app runs on
	sess.Closed = func() { mc.WebSocketOpen(-1) }
	out := sess.Run()
	w.AddTaken(cc.Out.Load())
	if out.App != pyembed.OK && out.App != pyembed.Gone && out.Traceback != "" {
		s.log.Error("ASGI app raised in a WebSocket; closed with 1011", "uri", r.Target, "traceback", out.Traceback)
	}
}

// parseAccept reads the app's accept: "subprotocol\x00name\x00value...".
func parseAccept(b []byte) (sub string, fields []string) {
	parts := strings.Split(string(b), "\x00")
	sub = parts[0]
	if len(parts) > 1 {
		fields = parts[1:]
	}
	return sub, fields
}

// reservedWSHeader reports the headers of the handshake's response that
// are the server's own, whatever the app's accept says.
func reservedWSHeader(name string) bool {
	for _, n := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "Content-Length", "Transfer-Encoding"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}
