package h1

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Response writes one response. The handler sets the status, headers and
// framing (SetContentLength, else chunked for HTTP/1.1, else the body ends
// when the connection closes), then writes the body; the first Write, Flush or
// WriteFile sends the head. Small writes are gathered, so that a small
// response leaves in one syscall when the handler returns.
type Response struct {
	c       *conn
	req     *Request
	buf     []byte // head and body bytes not yet sent
	status  int
	line    string // status line after the version: "200 OK"
	hdr     []byte // header lines set by the handler
	length  int64  // Content-Length; -1: not set
	wrote   bool   // the head is in buf (or sent)
	chunked bool
	noBody  bool // HEAD, 1xx, 204, 304
	close   bool
	aborted bool
	hasDate bool
	n       int64         // body bytes accepted
	err     error         // first write error; the connection then closes
	sent    int64         // bytes of the writes that waited for the client (for MinWriteRate)
	waited  time.Duration // and the time they took
	vec     net.Buffers   // WriteVec's gather list, reused
	direct  bool          // another writer may be writing the body (Direct)
	taken   bool          // the handler took the connection over (Switch, Hijack)
	trailer []Field       // sent after a chunked body (SetTrailers)
}

// ErrBodyOverrun is returned by Write when the body would pass the declared
// Content-Length; the bytes up to it were written.
var ErrBodyOverrun = errors.New("h1: write past the declared Content-Length")

// maxGather is how many bytes are gathered before a write goes out.
const maxGather = 8 << 10

// maxDiscard is the most of an unread request body read and dropped to keep
// the connection (as net/http does); beyond, the response closes it.
const maxDiscard = 256 << 10

func (w *Response) reset(r *Request) {
	buf, hdr := w.buf[:0], w.hdr[:0]
	if cap(buf) > 4*maxGather {
		buf = nil
	}
	*w = Response{c: w.c, req: r, buf: buf, hdr: hdr, vec: w.vec[:0], length: -1, close: r.close}
}

// SetStatus sets the status code and the rest of the status line ("404 Not
// Found"; "" gives the standard reason phrase).
func (w *Response) SetStatus(code int, line string) {
	if line == "" {
		line = strconv.Itoa(code) + " " + statusText(code)
	}
	w.status, w.line = code, line
}

// AddHeader adds a header line. The name must be a token and the value free
// of CR and LF (the caller validated them); a line that is not is dropped.
// Framing headers are the Response's own: use SetContentLength and SetClose.
func (w *Response) AddHeader(name, value string) {
	if w.wrote || strings.ContainsAny(value, "\r\n") || !isToken(name) {
		return
	}
	if len(name) == 4 && strings.EqualFold(name, "Date") {
		w.hasDate = true // the handler's own Date replaces the server's
	}
	w.hdr = append(w.hdr, name...)
	w.hdr = append(w.hdr, ": "...)
	w.hdr = append(w.hdr, value...)
	w.hdr = append(w.hdr, "\r\n"...)
}

// SetContentLength declares the body's length.
func (w *Response) SetContentLength(n int64) {
	if !w.wrote {
		w.length = n
	}
}

// SetClose makes the connection close after this response.
func (w *Response) SetClose() {
	if !w.wrote {
		w.close = true
	}
}

// Abort ends the exchange without completing the response: the connection
// closes, so that a cut body never looks complete.
func (w *Response) Abort() { w.aborted = true }

// Status returns the status code set (0 before SetStatus).
func (w *Response) Status() int { return w.status }

// Written returns the body bytes written (none for a HEAD request).
func (w *Response) Written() int64 { return w.n }

// Committed reports whether the head has been written.
func (w *Response) Committed() bool { return w.wrote }

// Request returns the request this response answers.
func (w *Response) Request() *Request { return w.req }

// head puts the status line and headers into buf and fixes the framing.
func (w *Response) head() {
	w.wrote = true
	if w.status == 0 {
		w.SetStatus(200, "")
	}
	st := w.status
	w.noBody = w.req.Method == "HEAD" || st < 200 || st == 204 || st == 304
	if !w.c.body.discard(maxDiscard) {
		w.close = true // the unread body is too long (or broken): the connection ends here
	}
	b := w.buf
	b = append(b, "HTTP/1.1 "...)
	b = append(b, w.line...)
	if len(w.line) == 3 {
		b = append(b, ' ')
	}
	b = append(b, "\r\n"...)
	if !w.hasDate {
		b = appendDate(b)
	}
	b = append(b, w.hdr...)
	switch {
	case st < 200 || st == 204:
		// no Content-Length (RFC 9110 8.6)
	case w.length >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.length, 10)
		b = append(b, "\r\n"...)
	case w.noBody:
	case w.req.Minor == 1:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.close = true // HTTP/1.0: the body ends with the connection
	}
	if w.c.s.shutting.Load() {
		w.close = true
	}
	if st == 101 {
		// the handler's own Connection: Upgrade says what follows
	} else if w.close {
		b = append(b, "Connection: close\r\n"...)
	} else if w.req.Minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.buf = b
}

// Write sends body bytes (gathered while small). It returns ErrBodyOverrun
// past the declared Content-Length, and the connection's error once a write
// failed.
func (w *Response) Write(p []byte) (int, error) {
	if !w.wrote {
		w.head()
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return len(p), nil
	}
	var over bool
	if w.length >= 0 && int64(len(p)) > w.length-w.n {
		p, over = p[:w.length-w.n], true
	}
	if len(p) == 0 {
		if over {
			return 0, ErrBodyOverrun
		}
		return 0, nil
	}
	w.n += int64(len(p))
	var pre, post []byte
	if w.chunked {
		var sz [20]byte
		pre = append(strconv.AppendInt(sz[:0], int64(len(p)), 16), '\r', '\n')
		post = crlf
	}
	if len(w.buf)+len(pre)+len(p)+len(post) <= maxGather {
		w.buf = append(w.buf, pre...)
		w.buf = append(w.buf, p...)
		w.buf = append(w.buf, post...)
	} else {
		w.buf = append(w.buf, pre...)
		bufs := net.Buffers{w.buf, p, post}
		w.err = w.c.writeBuffers(&bufs)
		w.buf = w.buf[:0]
		if w.err != nil {
			return 0, w.err
		}
	}
	if over {
		return len(p), ErrBodyOverrun
	}
	return len(p), nil
}

var crlf = []byte("\r\n")

// Direct is what another writer needs to write the rest of a body straight
// to the client's socket (wisp's Python threads, which thus skip a copy and a
// hand-off per block): a duplicate of the socket, owned by the caller, the
// framing, and the bounds of the connection's own writes.
type Direct struct {
	FD      int
	Chunked bool          // frame each write as a chunk; the Response writes the last one
	Left    int64         // body bytes the Content-Length still allows; -1: no limit
	Rate    int64         // the Server's MinWriteRate (0: none) and its grace
	Grace   time.Duration //
	Timeout time.Duration // the Server's WriteTimeout (0: none)
	Sent    int64         // the rate accounting of the writes so far
	Waited  time.Duration //
}

// Direct sends what is gathered and lets another writer write body bytes to
// the socket from now on, until DirectDone; the Response writes nothing
// meanwhile unless the caller knows that writer is idle. ok is false when the
// connection cannot be written that way (not plain TCP or unix, a response
// without a body, or a failed write). A connection that closes while a
// direct writer may still write is shut down first, so that the writer fails
// at once rather than write into a closed response.
func (w *Response) Direct() (d Direct, ok bool) {
	if !w.wrote || w.noBody || w.err != nil || w.aborted {
		return d, false
	}
	var rc syscall.RawConn
	var err error
	nc := w.c.nc
	if pc, ok := nc.(interface{ Raw() net.Conn }); ok {
		nc = pc.Raw() // the PROXY protocol's wrapper: only reads go through it
	}
	switch nc := nc.(type) {
	case *net.TCPConn:
		rc, err = nc.SyscallConn()
	case *net.UnixConn:
		rc, err = nc.SyscallConn()
	default:
		return d, false
	}
	if err != nil || w.Flush() != nil {
		return d, false
	}
	fd := -1
	if rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e == 0 {
			fd = int(r)
		}
	}) != nil || fd < 0 {
		return d, false
	}
	w.direct = true
	left := int64(-1)
	if w.length >= 0 {
		left = w.length - w.n
	}
	s := w.c.s
	grace := s.MinRateGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	return Direct{FD: fd, Chunked: w.chunked, Left: left, Rate: s.MinWriteRate, Grace: grace,
		Timeout: s.WriteTimeout, Sent: w.sent, Waited: w.waited}, true
}

// SendRaw sends n bytes of f as they are, from its current offset: bytes of
// the body that a direct writer framed and counted already (its spill).
func (w *Response) SendRaw(f *os.File, n int64) error {
	_, err := w.sendfile(f, n)
	return err
}

// DirectDone takes the body back from a direct writer once it is done for
// good: it wrote n body bytes, of which sent in writes that waited waited
// (for the minimum rate), and failed with err (nil: it did not; the
// connection then closes after the response).
func (w *Response) DirectDone(n, sent int64, waited time.Duration, err error) {
	w.direct = false
	w.n += n
	w.sent += sent
	w.waited += waited
	if err != nil && w.err == nil {
		w.err = err
	}
}

// WriteVec sends the body bytes of parts, in order, as Write would send them
// one after another, but big parts go out in one writev (one chunk when
// chunked): a streamed response that hands over many pieces at once costs
// one system call, not one per piece. The caller keeps parts.
func (w *Response) WriteVec(parts [][]byte) (int, error) {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	if len(parts) == 1 || len(w.buf)+total <= maxGather {
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return 0, err
			}
		}
		return total, nil
	}
	if !w.wrote {
		w.head()
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return total, nil
	}
	over := false
	if w.length >= 0 && int64(total) > w.length-w.n {
		total, over = int(w.length-w.n), true
	}
	if total == 0 {
		if over {
			return 0, ErrBodyOverrun
		}
		return 0, nil
	}
	w.n += int64(total)
	if w.chunked {
		w.buf = append(strconv.AppendInt(w.buf, int64(total), 16), '\r', '\n')
	}
	vec := append(w.vec[:0], w.buf)
	left := total
	for _, p := range parts {
		if len(p) > left {
			p = p[:left]
		}
		if len(p) > 0 {
			vec = append(vec, p)
		}
		left -= len(p)
	}
	if w.chunked {
		vec = append(vec, crlf)
	}
	w.vec = vec
	bufs := vec // WriteTo consumes its receiver
	w.err = w.c.writeBuffers(&bufs)
	w.buf = w.buf[:0]
	clear(w.vec) // drop the references to the caller's bytes
	if w.err != nil {
		return 0, w.err
	}
	if over {
		return total, ErrBodyOverrun
	}
	return total, nil
}

// WriteFile sends n bytes of f as body (sendfile(2) on TCP). The response
// must have a Content-Length.
func (w *Response) WriteFile(f *os.File, n int64) (int64, error) {
	if !w.wrote {
		w.head()
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody || n <= 0 {
		return 0, nil
	}
	if w.chunked {
		// not reached by wisp (a file's response has a length); stay correct anyway
		buf := make([]byte, 32<<10)
		var done int64
		for done < n {
			k, err := f.Read(buf[:min(int64(len(buf)), n-done)])
			if k > 0 {
				if _, werr := w.Write(buf[:k]); werr != nil {
					return done, werr
				}
				done += int64(k)
			}
			if err != nil {
				return done, err
			}
		}
		return done, nil
	}
	if w.length >= 0 && n > w.length-w.n {
		n = w.length - w.n
	}
	k, err := w.sendfile(f, n)
	w.n += k
	return k, err
}

// sendfile sends what is gathered, then n bytes of f from its offset; a
// short file or a failed write ends the connection.
func (w *Response) sendfile(f *os.File, n int64) (int64, error) {
	if err := w.Flush(); err != nil {
		return 0, err
	}
	k, err := w.c.sendfile(f, n)
	if err == nil && k < n {
		err = errors.New("h1: file shorter than announced")
	}
	if err != nil {
		w.err = err
	}
	return k, err
}

// Flush sends the head (if not yet) and the gathered bytes.
func (w *Response) Flush() error {
	if !w.wrote {
		w.head()
	}
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		w.err = w.c.write(w.buf)
		w.buf = w.buf[:0]
	}
	return w.err
}

// finish completes the response after the handler returned and reports
// whether the connection may carry another request.
func (w *Response) finish() bool {
	if w.aborted || w.taken {
		return false
	}
	if !w.wrote {
		st := w.status
		if w.length < 0 && w.req.Method != "HEAD" && (st == 0 || st >= 200 && st != 204 && st != 304) {
			w.length = 0 // nothing was written: the body is empty
		}
		w.head()
	}
	if w.chunked && w.err == nil {
		w.buf = append(w.buf, "0\r\n"...)
		for _, f := range w.trailer {
			w.buf = append(append(append(append(w.buf, f.Name...), ": "...), f.Value...), "\r\n"...)
		}
		w.buf = append(w.buf, "\r\n"...)
	}
	if w.Flush() != nil {
		return false
	}
	if !w.noBody && w.length >= 0 && w.n < w.length {
		return false // a short body: only closing tells the client
	}
	return !w.close
}

// writeBuffers writes bufs with the write timeout (writev on TCP).
func (c *conn) writeBuffers(bufs *net.Buffers) error {
	var n int64
	if c.s.MinWriteRate > 0 {
		for _, b := range *bufs {
			n += int64(len(b))
		}
	}
	start := c.setWriteDeadline(n, 0)
	_, err := bufs.WriteTo(c.nc)
	c.wrote(n, start)
	return err
}

// setWriteDeadline sets the deadline of a write of n bytes: WriteTimeout
// (plus extra), or sooner if the client would otherwise take less than
// MinWriteRate of the response. It returns the time the write starts (zero
// without MinWriteRate: nothing to account).
func (c *conn) setWriteDeadline(n int64, extra time.Duration) time.Time {
	now := time.Now()
	var dl time.Time
	if d := c.s.WriteTimeout; d > 0 {
		dl = now.Add(d + extra)
	}
	if rate := c.s.MinWriteRate; rate > 0 {
		grace := c.s.MinRateGrace
		if grace <= 0 {
			grace = 10 * time.Second
		}
		w := &c.resp
		allowed := grace + time.Duration(float64(w.sent+n)/float64(rate)*float64(time.Second)) - w.waited
		if r := now.Add(max(allowed, time.Millisecond)); dl.IsZero() || r.Before(dl) {
			dl = r
		}
	}
	if !dl.IsZero() {
		c.nc.SetWriteDeadline(dl)
	}
	if c.s.MinWriteRate <= 0 {
		return time.Time{}
	}
	return now
}

// wrote accounts a write of n bytes that started at start, for MinWriteRate.
// Only writes that waited for the client count: bytes the kernel's buffers
// took at once say nothing of how fast the client reads (and would give a
// reader that stopped minutes of credit).
func (c *conn) wrote(n int64, start time.Time) {
	if start.IsZero() {
		return
	}
	if d := time.Since(start); d > time.Millisecond {
		c.resp.sent += n
		c.resp.waited += d
	}
}

// statusText is the reason phrase of the codes wisp itself answers with, and
// of the others an app may leave without one.
func statusText(code int) string {
	if t, ok := reasons[code]; ok {
		return t
	}
	return "Status"
}

var reasons = map[int]string{
	100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints", 200: "OK", 201: "Created",
	202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content", 205: "Reset Content",
	206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
	305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
	402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
	409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
	414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
	418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked",
	424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
	429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
	507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
}

// ErrCannotSwitch is returned by Switch and Hijack when the connection
// cannot be handed over: the response has begun, or the request is still
// sending a body.
var ErrCannotSwitch = errors.New("h1: the connection cannot be taken over now")

// Switch sends the head of the 101 Switching Protocols response the handler
// set (SetStatus(101, ""), its Upgrade and Connection headers added) and
// hands the connection over, as Hijack does: from then on the handler reads
// and writes nc itself, starting with buffered, the bytes the client sent
// after its request.
func (w *Response) Switch() (nc net.Conn, buffered []byte, err error) {
	if w.wrote || w.status != 101 || w.taken || !w.c.body.done {
		return nil, nil, ErrCannotSwitch
	}
	w.c.stopWatch()
	w.head()
	if err := w.Flush(); err != nil {
		return nil, nil, err
	}
	return w.Hijack()
}

// Hijack hands the connection over without writing anything (a proxy writes
// the upstream's response itself): the handler owns nc until it returns,
// and the connection is closed then, whatever the handler did with it. The
// deadlines are cleared; buffered holds the bytes the client sent after its
// request. Only a request without a body (or whose body was read whole)
// can be taken over.
func (w *Response) Hijack() (nc net.Conn, buffered []byte, err error) {
	c := w.c
	if w.taken || !c.body.done || (w.wrote && w.status != 101) || len(w.buf) > 0 {
		return nil, nil, ErrCannotSwitch
	}
	c.stopWatch()
	w.taken, w.wrote = true, true
	c.nc.SetDeadline(time.Time{})
	buffered = append([]byte(nil), c.buf[c.r:c.w]...)
	c.buf, c.r, c.w = nil, 0, 0 // the connection's reads are the handler's now
	return c.nc, buffered, nil
}

// AddTaken counts n bytes the handler wrote on a connection it took over
// (Switch, Hijack) as the response's, for Written and the access log.
func (w *Response) AddTaken(n int64) {
	if w.taken {
		w.n += n
	}
}

// SetTrailers sets the trailer fields sent after the body, if it is
// chunked (an HTTP/1.1 response whose length was not declared); otherwise
// they are dropped. A field whose name is not a token, or whose value holds
// CR or LF, or that names a framing or routing header, is dropped.
func (w *Response) SetTrailers(f []Field) {
	w.trailer = w.trailer[:0]
	for _, x := range f {
		if !isToken(x.Name) || strings.ContainsAny(x.Value, "\r\n") || forbiddenTrailer(x.Name) {
			continue
		}
		w.trailer = append(w.trailer, x)
	}
}

// forbiddenTrailer reports the fields a trailer must not carry (RFC 9110
// 6.5.1): framing, routing, authentication, and the response's controls.
func forbiddenTrailer(name string) bool {
	for _, n := range []string{"Transfer-Encoding", "Content-Length", "Host", "Content-Encoding", "Content-Type",
		"Content-Range", "Trailer", "Connection", "Cache-Control", "Expires", "Date", "Location", "Retry-After",
		"Vary", "Set-Cookie", "Authorization", "WWW-Authenticate", "Proxy-Authenticate", "Keep-Alive", "TE", "Upgrade"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}
