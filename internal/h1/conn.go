package h1

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one client connection: its read buffer, and the Request and
// Response it reuses for each exchange.
type conn struct {
	s      *Server
	nc     net.Conn
	h      Handler
	h2c    bool // a client may begin with the HTTP/2 preface (Server.H2 takes it)
	stream bool // an HTTP/2 stream (ServeStream): one exchange, not counted as a connection
	remote string
	buf    []byte // read buffer; unread bytes are buf[r:w]
	r, w   int
	req    Request
	resp   Response
	body   Body

	mu     sync.Mutex // guards idle and fresh against Shutdown
	idle   bool
	reused bool // an exchange was served: a wait for the next request is a keep-alive's (CloseIdle)
	fresh  bool // idle before its first request (see waitIdle)
	linger bool // close with closeLinger

	// the client watch of Request.Gone
	gone      chan struct{}
	watchDone chan struct{}
	stopping  atomic.Bool
	peek      [1]byte
	peeked    bool
}

const (
	bufSize   = 4 << 10
	maxBufKep = 16 << 10 // a buffer grown past this for large headers is dropped after the request
)

var aLongTimeAgo = time.Unix(1, 0)

func newConn(s *Server, nc net.Conn, h Handler) *conn {
	c := &conn{s: s, nc: nc, h: h}
	c.resp.c = c
	c.body.c = c
	return c
}

// tlsState is what a connection over TLS tells: *tls.Conn, and an HTTP/2
// stream's connection (package h2).
type tlsState interface {
	ConnectionState() tls.ConnectionState
}

// protocol is what a connection that carries another protocol's exchange as
// HTTP/1.1 (an HTTP/2 stream) tells of it: SERVER_PROTOCOL.
type protocol interface {
	Protocol() string
}

// h2Preface is the start of the HTTP/2 client preface (RFC 9113 3.4) as the
// head parser sees it: a request line followed by an empty line.
const h2Preface = "PRI * HTTP/2.0"

// handshake completes the TLS handshake of a TLS connection within the
// header timeout. It reports false when the connection must close: the
// handshake failed, it served an ACME TLS-ALPN-01 challenge, or it
// negotiated HTTP/2 and Server.H2 served it.
func (c *conn) handshake() (ok bool) {
	tc, isTLS := c.nc.(*tls.Conn)
	if !isTLS {
		return true
	}
	if d := c.s.ReadHeaderTimeout; d > 0 {
		c.nc.SetDeadline(time.Now().Add(d))
	}
	if err := tc.Handshake(); err != nil {
		c.s.logger().Debug("TLS handshake failed", "remote", c.remote, "err", err)
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			// plain HTTP on a TLS binding: say so, as net/http does
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"+
				"400 Bad Request: this is an HTTPS port; the client sent plain HTTP\n")
		}
		return false
	}
	c.nc.SetDeadline(time.Time{})
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
		if c.s.H2 != nil {
			c.s.H2.ServeConn(c.nc, nil, c.h)
		}
		return false
	case "acme-tls/1":
		return false // the challenge is in the handshake's certificate
	}
	return true
}

// looksLikeHTTP reports whether the first bytes of a TLS record are a
// plain HTTP request's.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH"} {
		if string(hdr) == m {
			return true
		}
	}
	return false
}

func (s *Server) maxHeader() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return 64 << 10
}

// serve runs the connection's exchanges until it must close.
func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.s.logger().Error("panic serving a connection", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			if !c.resp.wrote && c.req.c != nil {
				c.reject(&protoError{500, "internal server error"})
			}
		}
		if c.resp.direct {
			c.shutdownDirect()
		}
		if c.linger {
			c.closeLinger()
		}
		c.nc.Close()
		c.s.track(c, false)
	}()
	// read here, not when accepting: behind the PROXY protocol the address
	// is in the client's first bytes
	c.remote = c.nc.RemoteAddr().String()
	local := c.nc.LocalAddr()
	if !c.handshake() {
		return
	}
	isTLS, serverName, proto := false, "", ""
	if ts, ok := c.nc.(tlsState); ok {
		if st := ts.ConnectionState(); st.HandshakeComplete {
			isTLS, serverName = true, st.ServerName
		}
	}
	if p, ok := c.nc.(protocol); ok {
		proto = p.Protocol()
	}
	first := true
	for {
		if c.r == c.w {
			if !c.waitIdle(first) {
				return
			}
		}
		start := time.Now()
		if d := c.s.ReadHeaderTimeout; d > 0 {
			c.nc.SetReadDeadline(start.Add(d))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		// cleared before the head is read: a refusal logs (and answers HEAD)
		// by what of this request was parsed, nothing of the previous one
		c.req = Request{Fields: c.req.Fields[:0], RemoteAddr: c.remote, Local: local, TLS: isTLS, ServerName: serverName, c: c}
		head, perr, err := c.readHead()
		if err == nil && first && c.h2c && strings.TrimSuffix(head, "\r") == h2Preface && c.s.H2 != nil {
			// h2c with prior knowledge: the preface's "SM" part and what
			// follows are still in the buffer
			c.nc.SetReadDeadline(time.Time{})
			c.s.H2.ServeConn(c.nc, append([]byte(h2Preface+"\r\n\r\n"), c.buf[c.r:c.w]...), c.h)
			return
		}
		first = false
		c.reused = true // written before the next waitIdle takes mu: CloseIdle reads it under mu
		if err != nil {
			if perr == nil && isTimeout(err) && c.r < c.w {
				perr = &protoError{408, "the request headers did not arrive in time"}
			}
			if perr != nil {
				c.reject(perr)
			}
			return
		}
		r := &c.req
		if perr := parseHead(head, r, 0); perr != nil {
			c.reject(perr)
			return
		}
		if proto != "" {
			r.Proto = proto
		}
		c.body = Body{c: c, left: max(r.ContentLength, 0), chunked: r.Chunked, expect: r.expect100}
		if r.ContentLength == 0 {
			c.body.done = true
		}
		r.Body = &c.body
		if !c.body.done {
			if d := c.s.ReadTimeout; d > 0 {
				c.nc.SetReadDeadline(start.Add(d))
			} else {
				c.nc.SetReadDeadline(time.Time{})
			}
		}
		c.resp.reset(r)
		c.h.ServeH1(&c.resp, r)
		c.stopWatch()
		keep := c.resp.finish()
		if len(c.buf) > maxBufKep && c.r == c.w {
			c.buf, c.r, c.w = nil, 0, 0
		}
		if !keep || !c.body.done {
			c.linger = !c.body.done || c.r < c.w
			return
		}
	}
}

// shutdownDirect shuts the socket down in both directions: a direct writer
// that still holds a duplicate of it (a Python thread past its timeout)
// fails its next write instead of keeping the connection open.
func (c *conn) shutdownDirect() {
	if sc, ok := c.nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(s uintptr) { syscall.Shutdown(int(s), syscall.SHUT_RDWR) })
		}
	}
}

// waitIdle waits for the first byte of the next request, up to IdleTimeout.
// It reports false when the connection should close instead. The first
// request of a connection is waited for a moment even during Shutdown: the
// connection was accepted before the listeners closed, and its client (a
// forwarding pool, a proxy) may have sent its request already; closing it
// unread would reset it (firstGrace).
func (c *conn) waitIdle(first bool) bool {
	// The deadline is set under mu and shutting checked after it: either
	// this check sees Shutdown, or Shutdown's wakeIfIdle comes after the
	// deadline set here and overrides it.
	c.mu.Lock()
	c.idle, c.fresh = true, first
	if d := c.s.IdleTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if c.s.shutting.Load() {
		if !first {
			return false
		}
		c.nc.SetReadDeadline(time.Now().Add(firstGrace))
	}
	if c.buf == nil {
		c.buf = make([]byte, bufSize)
	}
	c.r, c.w = 0, 0
	n, _ := c.nc.Read(c.buf)
	c.mu.Lock()
	c.idle, c.fresh = false, false
	c.mu.Unlock()
	c.w = n
	return n > 0
}

// closeIfIdle ends the wait of a keep-alive connection for its next request
// (it served one already, and waits in waitIdle), if nothing of that request
// has arrived: then the connection closes. It reports whether it did.
func (c *conn) closeIfIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.idle || !c.reused || c.stream || unread(c.nc) {
		return false
	}
	c.nc.SetReadDeadline(aLongTimeAgo)
	return true
}

// unread reports whether bytes wait unread in nc's socket, or whether it
// cannot tell (a connection it cannot look into counts as busy).
func unread(nc net.Conn) bool {
	for {
		if u, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
			nc = u.NetConn()
		} else if u, ok := nc.(interface{ Raw() net.Conn }); ok { // PROXY protocol
			nc = u.Raw()
		} else {
			break
		}
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	busy := true
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		busy = n > 0
	})
	return busy
}

// wakeIfIdle ends the idle wait of a connection (Shutdown).
func (c *conn) wakeIfIdle() {
	c.mu.Lock()
	if c.idle && c.fresh {
		c.nc.SetReadDeadline(time.Now().Add(firstGrace))
	} else if c.idle {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// firstGrace is how long Shutdown waits for the first request of a
// connection accepted before it (see waitIdle).
const firstGrace = 500 * time.Millisecond

// fill reads more bytes into the buffer, growing it up to limit bytes of
// unread data. It returns io.ErrShortBuffer when the unread data reached limit.
func (c *conn) fill(limit int) error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			if len(c.buf) >= limit {
				return io.ErrShortBuffer
			}
			nb := make([]byte, min(max(2*len(c.buf), bufSize), limit))
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readHead reads up to the end of the request head and returns the head as a
// string (request line and header lines, without the final empty line).
// Empty lines before the request line are skipped (RFC 9112 2.2).
func (c *conn) readHead() (string, *protoError, error) {
	maxHead := c.s.maxHeader()
	scan := c.r // where the search for the end resumes
	for {
		// only empty lines: a CR not followed by LF stays, and the request
		// line that starts with it is refused
		for c.r < c.w {
			if c.buf[c.r] == '\n' {
				c.r++
			} else if c.buf[c.r] == '\r' && c.r+1 < c.w && c.buf[c.r+1] == '\n' {
				c.r += 2
			} else {
				break
			}
		}
		scan = max(scan, c.r)
		for {
			i := bytes.IndexByte(c.buf[scan:c.w], '\n')
			if i < 0 {
				scan = c.w
				break
			}
			lf := scan + i
			// an empty line (LF or CRLF) after this LF ends the head
			if lf+1 >= c.w || (c.buf[lf+1] == '\r' && lf+2 >= c.w) {
				scan = lf // not known yet: look again after more bytes
				break
			}
			end := 0
			if c.buf[lf+1] == '\n' {
				end = lf + 2
			} else if c.buf[lf+1] == '\r' && c.buf[lf+2] == '\n' {
				end = lf + 3
			}
			if end > 0 {
				if end-c.r > maxHead {
					return "", c.tooLarge(), io.ErrShortBuffer
				}
				head := string(c.buf[c.r:lf])
				c.r = end
				return head, nil, nil
			}
			scan = lf + 1
		}
		if c.w-c.r >= maxHead {
			return "", c.tooLarge(), io.ErrShortBuffer
		}
		off := scan - c.r
		err := c.fill(maxHead + 3)
		scan = c.r + off
		if err == io.ErrShortBuffer {
			return "", c.tooLarge(), err
		}
		if err != nil {
			return "", nil, err
		}
	}
}

// tooLarge is the answer to a head over MaxHeaderBytes: 414 while the request
// line is not complete, else 431.
func (c *conn) tooLarge() *protoError {
	if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i < 0 || i > c.s.maxHeader() {
		return &protoError{414, "the request target is too long"}
	}
	return &protoError{431, "the request headers are too large"}
}

// reject answers a request that could not be parsed, and the connection closes.
func (c *conn) reject(perr *protoError) {
	c.s.logger().Debug("bad request", "remote", c.remote, "status", perr.status, "reason", perr.msg)
	msg := strconv.Itoa(perr.status) + " " + statusText(perr.status) + ": " + perr.msg + "\n"
	head := c.req.Method == "HEAD"
	if head {
		msg = "" // RFC 9110 9.3.2: no content in a response to HEAD
	}
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(perr.status), 10)
	b = append(b, ' ')
	b = append(b, statusText(perr.status)...)
	b = append(b, "\r\n"...)
	b = appendDate(b)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"...)
	if !head {
		// none for HEAD (RFC 9110 8.6 allows it; a length of 0 would be
		// wrong, and the one GET would get misleads a client that could not
		// tell a malformed request line's method): the close ends it
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(msg)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, msg...)
	if c.write(b) == nil {
		c.linger = true
	}
	if c.s.Rejected != nil {
		c.s.Rejected(&c.req, perr.status, int64(len(msg)))
	}
}

// closeLinger prepares the close of a connection whose client may still be
// sending (a refused request, an unread body): it shuts the write side and
// drops what arrives for a while, so that the kernel does not answer unread
// bytes with a reset that destroys the response before the client reads it.
func (c *conn) closeLinger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	var b [4096]byte
	for n := 0; n < lingerBytes; {
		k, err := c.nc.Read(b[:])
		n += k
		if err != nil {
			return
		}
	}
}

const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// write writes b with the write timeout.
func (c *conn) write(b []byte) error {
	if d := c.s.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := c.nc.Write(b)
	return err
}

// watch starts watching the client for Request.Gone.
func (c *conn) watch() <-chan struct{} {
	if c.gone != nil {
		return c.gone
	}
	if !c.body.done {
		return nil
	}
	c.gone, c.watchDone = make(chan struct{}), make(chan struct{})
	c.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(c.watchDone)
		n, _ := c.nc.Read(c.peek[:])
		if n > 0 {
			c.peeked = true // the next request begins: the client is there
			return
		}
		if !c.stopping.Load() {
			close(c.gone)
		}
	}()
	return c.gone
}

// stopWatch ends the watch, keeping a byte it may have read.
func (c *conn) stopWatch() {
	if c.gone == nil {
		return
	}
	c.stopping.Store(true)
	c.nc.SetReadDeadline(aLongTimeAgo)
	<-c.watchDone
	c.stopping.Store(false)
	c.gone, c.watchDone = nil, nil
	if c.peeked {
		c.peeked = false
		if c.buf == nil {
			c.buf = make([]byte, bufSize)
		}
		if c.w == len(c.buf) {
			c.buf = append(c.buf, 0)
		}
		c.buf[c.w] = c.peek[0]
		c.w++
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ErrTooLarge is returned by Body.Read when the body passes its limit.
var ErrTooLarge = errors.New("h1: request body too large")

// errBadChunk is returned by Body.Read for malformed chunked framing.
var errBadChunk = errors.New("h1: malformed chunked request body")

// Body reads a request's body: Content-Length bytes, or the chunks of a
// chunked body (RFC 9112 7.1), whose trailers are read and dropped. Bytes of
// the next request are never read into the caller's buffer.
type Body struct {
	c       *conn
	left    int64 // bytes left: of the body, or of the current chunk
	chunked bool
	started bool // a chunk was read (its CRLF is due before the next size)
	done    bool
	expect  bool // 100 Continue is owed before the first read
	limit   int64
	total   int64
	err     error
}

// discard reads and drops the rest of a body the handler left unread, if it
// is at most max bytes, so that the connection can carry the next request.
func (b *Body) discard(max int64) bool {
	if b.done {
		return true
	}
	if b.expect || b.err != nil || (!b.chunked && b.left > max) {
		return false // with 100 Continue owed, the client may not even send it
	}
	io.CopyN(io.Discard, b, max+1)
	return b.done
}

// Interrupt makes a Read that waits for the client return at once with an
// error, and every later one: a handler that reads the body on another
// goroutine (ASGI streams it to the app) stops that goroutine so before it
// returns. The connection closes after the response unless the body was read
// to its end.
func (b *Body) Interrupt() { b.c.nc.SetReadDeadline(aLongTimeAgo) }

// Limit makes Read fail with ErrTooLarge once more than n bytes were read.
func (b *Body) Limit(n int64) { b.limit = n }

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.expect {
		b.expect = false
		if !b.c.resp.wrote {
			if err := b.c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	if b.chunked && b.left == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.readInto(p)
	b.left -= int64(n)
	b.total += int64(n)
	if b.limit > 0 && b.total > b.limit {
		b.err = ErrTooLarge
		return n, b.err
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	if !b.chunked && b.left == 0 {
		b.done = true
	}
	return n, nil
}

// readInto reads body bytes: buffered ones first, then straight from the
// connection into p.
func (c *conn) readInto(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

// nextChunk reads the CRLF that ends the previous chunk and the next chunk's
// size line; after the last chunk, the trailer section.
func (b *Body) nextChunk() error {
	if b.started {
		line, err := b.c.readLine(2)
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return errBadChunk
		}
	}
	b.started = true
	line, err := b.c.readLine(4096)
	if err != nil {
		return err
	}
	// chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
	var size uint64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i >= 15 {
			return errBadChunk
		}
		size = size<<4 | uint64(d)
	}
	if i == 0 {
		return errBadChunk
	}
	ext := line[i:]
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	// BWS is allowed only before a ";": a size with trailing whitespace and
	// no extension is refused (RFC 9112 7.1.1).
	if len(ext) > 0 && ext[0] != ';' || len(ext) == 0 && i < len(line) {
		return errBadChunk
	}
	if !validValue(string(ext)) {
		return errBadChunk
	}
	if b.limit > 0 && int64(size) > b.limit-b.total {
		return ErrTooLarge
	}
	if size > 0 {
		b.left = int64(size)
		return nil
	}
	// last-chunk: the trailer section ends with an empty line
	room := b.c.s.maxHeader()
	for {
		line, err := b.c.readLine(room)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			b.done = true
			return nil
		}
		room -= len(line) + 2
		// a trailer field line has the grammar of a header line (RFC 9112
		// 7.1.2): a token, a colon, a value without control characters
		colon := bytes.IndexByte(line, ':')
		if room <= 0 || colon <= 0 || !isToken(string(line[:colon])) || !validValue(string(line[colon+1:])) {
			return errBadChunk
		}
	}
}

// readLine returns the next line of chunked framing, of at most max bytes,
// without its CRLF; the slice is valid until the next read. A bare LF is
// refused here (unlike in the head): a proxy that reads it as part of a chunk
// extension would see other message boundaries (CVE-2025-22871).
func (c *conn) readLine(max int) ([]byte, error) {
	scan := c.r
	for {
		if i := bytes.IndexByte(c.buf[scan:c.w], '\n'); i >= 0 {
			line := c.buf[c.r : scan+i]
			c.r = scan + i + 1
			n := len(line)
			if n == 0 || line[n-1] != '\r' || n-1 > max {
				return nil, errBadChunk
			}
			return line[:n-1], nil
		}
		if c.w-c.r > max+2 {
			return nil, errBadChunk
		}
		off := c.w - c.r
		if err := c.fill(max + 3); err != nil {
			if err == io.ErrShortBuffer {
				return nil, errBadChunk
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		scan = c.r + off
	}
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// BodyError classifies an error of Body.Read for the answer a server owes:
// 413 (over the limit), 408 (timed out), or 400 (malformed or cut short).
func BodyError(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge):
		return 413
	case isTimeout(err):
		return 408
	}
	return 400
}

// sendfile copies n bytes of f to the connection (sendfile(2) for TCP).
func (c *conn) sendfile(f *os.File, n int64) (int64, error) {
	start := c.setWriteDeadline(n, time.Duration(n>>20)*time.Second)
	var k int64
	var err error
	if _, ok := c.nc.(io.ReaderFrom); ok {
		k, err = io.Copy(c.nc, io.LimitReader(f, n)) // sendfile(2) on TCP and unix sockets
	} else {
		// TLS, an HTTP/2 stream: copied, in larger pieces than io.Copy's
		bp := copyBufs.Get().(*[]byte)
		k, err = io.CopyBuffer(struct{ io.Writer }{c.nc}, io.LimitReader(f, n), *bp)
		copyBufs.Put(bp)
	}
	c.wrote(k, start)
	return k, err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}
