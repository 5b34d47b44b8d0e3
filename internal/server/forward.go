package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"wisp/internal/asgiws"
	"wisp/internal/h1"
	"wisp/internal/httphdr"
	"wisp/internal/trace"
	"wisp/internal/websocket"
)

// NewForwarder relays requests of site for a mount served by another worker
// pool to that pool's unix socket. The app there sees the request as the
// app of a local mount would: the raw path and query as the client sent
// them, the client's headers (its X-Forwarded-* and Forwarded among them,
// untouched), and the client's address and scheme as the accepting worker
// found them (its trusted proxies applied), which go along with the site
// and the listener's port in X-Wisp-* headers. wisp trusts those only on the
// pool's internal socket (h1.Request.Trusted); a client's own copies are
// dropped here.
func NewForwarder(socket, site string, log *slog.Logger) http.Handler {
	tr := newRetryTransport(socket, log)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			fw, _ := pr.In.Context().Value(forwardKey{}).(*forwardInfo)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "wisp-pool"
			pr.Out.Host = pr.In.Host
			// ReverseProxy re-encoded the query (dropping what url.ParseQuery
			// refuses) and removed the hop-by-hop and forwarding headers: the
			// app gets them as the client sent them
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			if fw != nil && fw.opaque {
				pr.Out.URL.Opaque, pr.Out.URL.ForceQuery = fw.path, fw.forceQuery
			}
			for k, v := range pr.In.Header {
				if _, ok := pr.Out.Header[k]; !ok && k != "Transfer-Encoding" {
					pr.Out.Header[k] = v
				}
			}
			fwPort := pr.In.Header["X-Wisp-Server-Port"]
			for k := range pr.Out.Header {
				if len(k) > 7 && k[:7] == "X-Wisp-" {
					delete(pr.Out.Header, k)
				}
			}
			pr.Out.Header.Set("X-Wisp-Site", site)
			if fw != nil { // the client as the accepting worker found it: final
				pr.Out.Header.Set(hdrRemote, fw.client.remote)
				pr.Out.Header.Set(hdrScheme, fw.client.scheme)
				if fw.client.forwarded {
					pr.Out.Header.Set(hdrClient, "forwarded")
				} else {
					pr.Out.Header.Set(hdrClient, "peer")
				}
				if fw.requestID != "" {
					pr.Out.Header.Set(hdrRequestID, fw.requestID)
				}
			} else { // the supervisor's forwarder: the peer, whom the pool checks against its trusted proxies
				pr.Out.Header.Set(hdrRemote, pr.In.RemoteAddr)
				if pr.In.TLS != nil {
					pr.Out.Header.Set(hdrScheme, "https")
				}
			}
			if p := pr.In.Header.Get("X-Wisp-Protocol"); p != "" && isUnix(pr.In) {
				pr.Out.Header.Set("X-Wisp-Protocol", p)
			} else if pr.In.ProtoMajor != 1 {
				pr.Out.Header.Set("X-Wisp-Protocol", pr.In.Proto) // the pool's SERVER_PROTOCOL
			}
			if a, ok := pr.In.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
				pr.Out.Header.Set("X-Wisp-Server-Port", strconv.Itoa(a.Port))
			} else if len(fwPort) == 1 && isUnix(pr.In) {
				pr.Out.Header.Set("X-Wisp-Server-Port", fwPort[0])
			} else {
				pr.Out.Header.Set("X-Wisp-Server-Port", hostPort(pr.In.Host))
			}
		},
		// the pool's status line goes to the client as the pool wrote it
		// (ResponseWriter.WriteHeader takes only the code): a WSGI app's
		// own reason phrase, "418 I'm a teapot"
		ModifyResponse: func(res *http.Response) error {
			if bw, ok := res.Request.Context().Value(bridgeKey{}).(*bridgeWriter); ok {
				bw.line = res.Status
			}
			return nil
		},
		Transport:     tr,
		FlushInterval: -1, // stream as the app produces
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("forward to pool failed", "socket", socket, "uri", r.RequestURI, "err", err)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "502 Bad Gateway: the pool serving this path is not answering\n")
		},
	}
}

// hdrUnserved, on a 503 from a pool's worker, says the request was not run
// there (the worker is shutting down): the forwarder sends it again.
const hdrUnserved = "X-Wisp-Unserved"

// forwardRetries are the pauses before each new try of a forwarded request
// that provably did not run (see retryTransport): three retries, within a
// third of a second, while a recycled worker hands its connections over.
var forwardRetries = [...]time.Duration{0, 50 * time.Millisecond, 250 * time.Millisecond}

// retryTransport sends forwarded requests to a pool's unix socket over
// keep-alive connections, and sends one again, on another connection, when
// the try failed before any byte of the response came back and the request
// provably did not run (as a direct request is never lost to a recycle: the
// shared socket hands a new connection to a worker that is not draining):
//
//   - the connection could not be made (refused, or the backlog full);
//   - the worker reset it or it broke while the request was being written
//     (ECONNRESET, EPIPE, or a write of it failed, or nothing of it was
//     written: net/http reports any of these as the EOF its reader saw):
//     the worker closed it with bytes of the request unread or unsent, and
//     a worker reads the whole request, body included, before it runs
//     anything (a draining worker closing an idle keep-alive connection as
//     a request arrives on it, or one it had just accepted);
//   - the worker answered 503 with X-Wisp-Unserved (its Python threads had
//     stopped);
//   - as net/http's Transport does, an idempotent request whose reused
//     connection ended (EOF) with no answer.
//
// Any method is retried in the first three cases; its body, read whole
// before forwarding (bridge.serve), is sent again from the start (GetBody).
// A try that got any byte of a response is never repeated, nor one whose
// body cannot be sent again (no GetBody: a body streamed as it arrives).
type retryTransport struct {
	keep   *http.Transport
	log    *slog.Logger
	socket string
}

// newRetryTransport is the retryTransport of a pool's socket.
func newRetryTransport(socket string, log *slog.Logger) *retryTransport {
	return &retryTransport{keep: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, err
			}
			return &poolConn{Conn: c}, nil
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}, log: log, socket: socket}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	for try := 0; ; try++ {
		var reused, answered atomic.Bool
		var conn atomic.Pointer[poolConn]
		var sent atomic.Int64 // conn's bytes written before this request
		ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				reused.Store(i.Reused)
				if c, ok := i.Conn.(*poolConn); ok {
					sent.Store(c.written.Load())
					conn.Store(c)
				}
			},
			GotFirstResponseByte: func() { answered.Store(true) },
		})
		out := req.WithContext(ctx)
		if try > 0 && hasBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("forwarded request body, to send it again: %w", err)
			}
			out.Body = body
		}
		resp, err := t.keep.RoundTrip(out)
		var why string
		switch {
		case hasBody && req.GetBody == nil:
			// a body streamed as it comes (the supervisor's forwarder)
			// cannot be sent again
		case err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(hdrUnserved) != "":
			why = "the worker did not run it (" + resp.Header.Get(hdrUnserved) + ")"
			if try < len(forwardRetries) {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
			}
		case err == nil:
		case req.Context().Err() != nil || answered.Load():
		case conn.Load() != nil && conn.Load().werr.Load():
			// the worker closed the connection before it took the whole
			// request (the read side may report that as EOF)
			why = "closed while the request was sent"
		case conn.Load() != nil && conn.Load().written.Load() == sent.Load():
			why = "closed before the request was sent"
		default:
			why = unrun(err, reused.Load(), idempotent(req))
		}
		if why == "" || try == len(forwardRetries) {
			if resp != nil {
				resp.Header.Del(hdrUnserved)
			}
			return resp, err
		}
		t.log.Debug("forward to pool: retrying on another connection", "socket", t.socket, "uri", req.URL.RequestURI(),
			"try", try+2, "why", why, "err", err)
		// the idle connections may all lead to the worker that failed
		t.keep.CloseIdleConnections()
		if d := forwardRetries[try]; d > 0 {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	}
}

// poolConn is a connection to a pool's socket that tells what became of
// the bytes written to it: whether the worker can have read a request.
type poolConn struct {
	net.Conn
	written atomic.Int64 // bytes the kernel took
	werr    atomic.Bool  // a write failed (EPIPE: the worker had closed it)
}

func (c *poolConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	if err != nil {
		c.werr.Store(true)
	}
	return n, err
}

// unrun says why a forwarded request whose try failed with err before any
// byte of a response came back was not run by the pool (see retryTransport),
// or "" when it may have been.
func unrun(err error, reused, idempotent bool) string {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		return "no connection"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset with the request unread"
	case errors.Is(err, syscall.EPIPE):
		return "closed while the request was sent"
	case reused && idempotent && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		err.Error() == "http: server closed idle connection"):
		return "idempotent request, the kept-alive connection closed"
	}
	return ""
}

// idempotent reports whether r may be sent twice (RFC 9110 9.2.2), as
// net/http's Transport decides it: by method, or an Idempotency-Key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	_, k := r.Header["Idempotency-Key"]
	_, x := r.Header["X-Idempotency-Key"]
	return k || x
}

// forwardKey marks, in a bridged request's context, what the forwarder
// passes on as the accepting worker saw it (a *forwardInfo).
type forwardKey struct{}

// forwardInfo is what a bridged request carries to the forwarder.
type forwardInfo struct {
	client    client
	requestID string // "": none (no log, trace or metrics here)
	// opaque: path is the raw path of the request target, sent as it is
	// (URL.Opaque), and forceQuery keeps an empty query's "?"
	opaque     bool
	path       string
	forceQuery bool
}

// trustedKey marks, in a bridged request's context, a request that came in
// over a pool's internal socket (forwarded by a worker of another pool).
type trustedKey struct{}

// isUnix reports whether r was forwarded by a worker of another pool, so that
// its X-Wisp-* headers are wisp's own. A request from a public unix socket
// binding is not.
func isUnix(r *http.Request) bool {
	t, _ := r.Context().Value(trustedKey{}).(bool)
	return t
}

// bridge serves h1 exchanges with a net/http handler: a forwarding mount's
// reverse proxy (cross-pool routing is not on the hot path), or a static
// folder's handler.
type bridge struct {
	s       *Server
	h       http.Handler
	forward bool // h is a NewForwarder: it gets the client and the raw target (forwardInfo)
}

// bridgeServer marks the bridged request's context as a server's, so that
// the reverse proxy aborts (panics with http.ErrAbortHandler) when it cannot
// finish a response instead of ending it as if complete.
var bridgeServer = &http.Server{}

// ServeH1 implements h1.Handler. The request body is read first (into memory
// or a temp file, as for a local app): the proxy then never reads the client
// connection, which stays the h1 connection's alone.
func (b bridge) ServeH1(w *h1.Response, r *h1.Request) { b.serve(w, r, trace.ID{}) }

// serve is ServeH1 for a request whose id is rid (zero: none), which a
// forwarder passes on.
func (b bridge) serve(w *h1.Response, r *h1.Request, rid trace.ID) {
	var u *url.URL
	var fw *forwardInfo
	if b.forward {
		fw = &forwardInfo{client: b.s.clientOf(r)}
		if !rid.IsZero() {
			fw.requestID = rid.String()
		}
		// sent as it came; only a path beginning with "//" would read as
		// an authority in URL.Opaque (it goes by URL.Path and RawPath)
		if fw.opaque = !strings.HasPrefix(r.Path, "//"); fw.opaque {
			u = &url.URL{Path: r.Path}
			fw.path, fw.forceQuery = r.Path, r.Query == "" && strings.Contains(r.Target, "?")
		}
	}
	if u == nil {
		var err error
		if u, err = url.ParseRequestURI(r.Path); err != nil {
			plain(w, 400, "400 Bad Request: malformed request target")
			return
		}
	}
	u.RawQuery = r.Query
	var j job
	defer func() {
		if j.bodyFile != nil {
			j.bodyFile.Close()
		}
		b.s.bodies.release(j.bodyMem)
		b.s.spill.release(j.spilled)
	}()
	if status, msg := b.s.readBody(r, &j, b.s.cfg.MaxBody); status != 0 {
		w.SetClose()
		if status == 503 {
			w.AddHeader("Retry-After", "5")
		}
		plain(w, status, msg)
		return
	}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, bridgeServer)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, r.Local)
	bw := &bridgeWriter{w: w, h: make(http.Header), wt: b.s.cfg.WriteTimeout, going: &b.s.ws, code: b.s.goingCode,
		ended: make(chan struct{})}
	ctx = context.WithValue(ctx, trustedKey{}, r.Trusted)
	ctx = context.WithValue(ctx, bridgeKey{}, bw)
	if fw != nil {
		ctx = context.WithValue(ctx, forwardKey{}, fw)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if gone := r.Gone(); gone != nil {
		go func() {
			select {
			case <-gone: // the client left: the other pool's app is stopped too
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req := (&http.Request{
		Method: r.Method, URL: u, Proto: r.Proto, ProtoMajor: protoMajor(r.Proto), ProtoMinor: r.Minor,
		Header: make(http.Header, len(r.Fields)), Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.Target,
		Body: http.NoBody,
	}).WithContext(ctx)
	if r.TLS {
		req.TLS = &tls.ConnectionState{} // the forwarder passes the scheme on (X-Wisp-Scheme)
	}
	switch {
	case j.bodyFile != nil:
		st, err := j.bodyFile.Stat()
		if err != nil {
			plain(w, 500, "500 Internal Server Error")
			return
		}
		f, n := j.bodyFile, st.Size()
		// the forwarder may send it again (retryTransport)
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, n)), nil }
		req.Body, req.ContentLength = io.NopCloser(io.NewSectionReader(f, 0, n)), n
	case len(j.body) > 0:
		body := j.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	for _, f := range r.Fields {
		if !strings.EqualFold(f.Name, "Host") && !strings.EqualFold(f.Name, "Content-Length") &&
			!strings.EqualFold(f.Name, "Transfer-Encoding") {
			req.Header.Add(f.Name, f.Value)
		}
	}
	defer func() {
		close(bw.ended)
		if bw.taken != nil {
			w.AddTaken(bw.taken.Out.Load())
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			w.Abort() // the proxy could not finish the body
		}
	}()
	b.h.ServeHTTP(bw, req)
}

// bridgeWriter is the http.ResponseWriter of a bridged exchange.
type bridgeWriter struct {
	w     *h1.Response
	h     http.Header
	wrote bool
	// a connection the proxy took over (a relayed WebSocket): its writes
	// are bounded by wt, and its bytes counted for the access log; when
	// this server stops, going closes it with a close frame of its own
	// between two of the app's frames (out), not a reset
	wt    time.Duration
	taken *asgiws.CountingConn
	out   *websocket.ServerStream
	going *wsGoing
	code  func() int
	ended chan struct{} // closed when the exchange is over
	line  string        // the pool's status line ("418 I'm a teapot"), when it came
}

// bridgeKey is the context key of an exchange's bridgeWriter, for the
// forwarder's ModifyResponse.
type bridgeKey struct{}

func (b *bridgeWriter) Header() http.Header { return b.h }

func (b *bridgeWriter) WriteHeader(code int) {
	if b.wrote || code < 200 {
		return // a forwarded 1xx is not relayed
	}
	b.wrote = true
	line := ""
	if strings.HasPrefix(b.line, strconv.Itoa(code)+" ") {
		line = b.line
	}
	b.w.SetStatus(code, line)
	for k, vv := range b.h {
		if k == "Content-Length" {
			if n, err := strconv.ParseInt(vv[0], 10, 64); err == nil && len(vv) == 1 {
				b.w.SetContentLength(n)
			}
			continue
		}
		if httphdr.HopByHop(k) {
			continue
		}
		for _, v := range vv {
			b.w.AddHeader(k, v)
		}
	}
}

func (b *bridgeWriter) Write(p []byte) (int, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	return b.w.Write(p)
}

// ReadFrom sends a file's bytes with sendfile(2) where the connection allows
// (http.ServeContent copies a static file's range through here); anything
// else is copied.
func (b *bridgeWriter) ReadFrom(r io.Reader) (int64, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	// http.ServeContent copies with io.CopyN: a file behind a LimitedReader
	if lr, ok := r.(*io.LimitedReader); ok {
		if f, ok := lr.R.(*os.File); ok {
			k, err := b.w.WriteFile(f, lr.N)
			lr.N -= k
			return k, err
		}
	}
	return io.Copy(struct{ io.Writer }{b}, r)
}

// Flush sends what was written so far (the proxy streams as the app produces).
func (b *bridgeWriter) Flush() {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	b.w.Flush()
}

// protoMajor is the major version of a SERVER_PROTOCOL ("HTTP/2.0": 2).
func protoMajor(p string) int {
	if p == "HTTP/2.0" {
		return 2
	}
	return 1
}

// Hijack hands the client's connection to the reverse proxy when the pool
// switched protocols (a WebSocket forwarded to an ASGI app of another
// pool): it writes the 101 itself and copies both ways until either side
// closes.
func (b *bridgeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	b.w.SetStatus(http.StatusSwitchingProtocols, "") // the proxy switches only on a 101: for the access log
	nc, buffered, err := b.w.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if len(buffered) > 0 {
		nc = &prefixConn{Conn: nc, pre: buffered}
	}
	// a client that stops reading is cut off at the write timeout, as an
	// in-process WebSocket's is (the proxy's copy has no deadline of its own)
	b.taken = &asgiws.CountingConn{Conn: nc, WriteTimeout: b.wt}
	b.wrote = true
	var rc net.Conn = b.taken
	if websocket.IsUpgrade(fields(b.w.Request())) {
		// the proxy writes the 101 first, then the app's frames: watch
		// them once the head is through (relayConn)
		b.out = &websocket.ServerStream{W: b.taken, Head: true}
		rc = &relayConn{CountingConn: b.taken, out: b.out}
		go func() {
			select {
			case <-b.going.going:
				code := b.code()
				b.out.CloseAt(code, asgiws.CloseReason(code))
			case <-b.ended:
			}
		}()
	}
	return rc, bufio.NewReadWriter(bufio.NewReader(rc), bufio.NewWriter(rc)), nil
}

// relayConn is a relayed WebSocket's client connection: the response head
// the proxy writes first goes straight out, the frames that follow through
// a ServerStream.
type relayConn struct {
	*asgiws.CountingConn
	out  *websocket.ServerStream
	head []byte // the head's bytes so far, until its empty line
	body bool   // the head is through
}

func (c *relayConn) Write(p []byte) (int, error) {
	if c.body {
		return c.out.Write(p)
	}
	c.head = append(c.head, p...)
	end := bytes.Index(c.head, []byte("\r\n\r\n"))
	if end < 0 {
		return c.CountingConn.Write(p)
	}
	// the head ends in p: its rest is the first of the frames
	c.body = true
	rest := len(c.head) - (end + 4)
	c.head = nil
	n, err := c.CountingConn.Write(p[:len(p)-rest])
	if err == nil {
		err = c.out.Begin() // a close asked for during the head goes now
	}
	if err != nil || rest == 0 {
		return n, err
	}
	k, err := c.out.Write(p[len(p)-rest:])
	return n + k, err
}

// prefixConn reads the bytes a connection's reader already took before
// the connection itself.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
