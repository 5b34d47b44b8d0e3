package h2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"wisp/internal/httphdr"
)

// stream is one HTTP/2 stream as the h1.Server sees it: a connection that
// reads the request as HTTP/1.1 bytes (its head, then its body, chunked when
// its length is unknown) and takes the response as HTTP/1.1 bytes, whose
// head becomes the stream's HEADERS and whose body (de-chunked) its DATA.
// After the request it reads nothing until the stream ends: EOF once the
// response is complete or the client reset the stream (so Request.Gone
// works), a timeout at the read deadline.
//
// A WebSocket's extended CONNECT (RFC 8441) reads as the HTTP/1.1 upgrade
// request it stands for (wsRequestHead). If h1 answers it with a 101 head,
// the stream switches: the head goes out as a 200 HEADERS frame, and from
// then on the stream is a raw byte pipe, each Write one flushed DATA frame
// and Read the client's DATA (see readRaw, writeRaw). Any other answer is a
// normal HTTP/2 response (a denial).
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	r  *http.Request
	nc net.Conn // the HTTP/2 connection: addresses and TLS state

	// request side: in[inOff:] is read before more of the body
	in      []byte
	inOff   int
	body    io.Reader // nil: no body
	chunked bool      // frame the body as chunks (its length is unknown)
	bodyEOF bool
	scratch []byte

	mu         sync.Mutex
	rdl        time.Time     // read deadline
	rdlSet     time.Time     // the deadline last given to the stream's body
	wdl        time.Time     // write deadline
	wdlSet     time.Time     // the deadline last given to the stream's writes
	wake       chan struct{} // a deadline changed or the response completed
	done       bool          // the response is complete
	headBuf    []byte        // response head bytes until its end arrived
	head       bool          // the head went out
	noBody     bool
	left       int64 // body bytes the Content-Length still allows; -1: not given
	dechunk    chunkReader
	chunkedOut bool

	// WebSocket (extended CONNECT) only
	ws       bool
	switched bool       // the 101 head went out as a 200: raw bytes both ways
	closed   bool       // Close was called
	wmu      sync.Mutex // held by writeRaw
	writing  bool       // writeRaw is in a write its deadline may cut
	cutOff   bool       // the write deadline passed during a write: the stream was reset
	rawErr   error
	raw      []byte        // bytes of the client's last DATA not read yet
	data     chan []byte   // from pump: DATA bytes, closed at the body's end (rawErr)
	free     chan struct{} // to pump: raw is read, its buffer may be reused
	quit     chan struct{} // to pump: the exchange ended
	pumpDone chan struct{} // nil: no pump started
}

// newStream returns the stream of r; ws: r is a WebSocket's extended
// CONNECT, read as the upgrade request it stands for.
func newStream(w http.ResponseWriter, r *http.Request, nc net.Conn, ws bool) *stream {
	s := &stream{w: w, rc: http.NewResponseController(w), r: r, nc: nc, left: -1, wake: make(chan struct{}, 1)}
	if ws {
		s.ws, s.in = true, wsRequestHead(r)
		return s // its DATA is read raw, not as a request body
	}
	s.in = requestHead(r)
	switch {
	case r.ContentLength > 0:
		s.body = r.Body
	case r.ContentLength < 0:
		s.body, s.chunked = r.Body, true
	}
	return s
}

// dropped reports the request headers (canonical names) the HTTP/1.1 head
// does not take from the stream: those HTTP/2 forbids (httphdr), Expect
// (net/http answers 100-continue itself), and those the head is given anew.
func dropped(k string) bool {
	switch k {
	case "Expect", "Content-Length", "Host":
		return true
	}
	return httphdr.ConnectionSpecific(k)
}

// requestHead is the request as an HTTP/1.1 head.
func requestHead(r *http.Request) []byte {
	b := appendHead(make([]byte, 0, 512), r.Method, r, dropped)
	switch {
	case r.ContentLength > 0 || r.ContentLength == 0 && r.Header.Get("Content-Length") != "":
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	case r.ContentLength < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendHead appends the request line (with method) and the header lines
// of r but those skip reports, to b.
func appendHead(b []byte, method string, r *http.Request, skip func(string) bool) []byte {
	target := r.RequestURI
	if target == "" {
		target = "/"
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for k, vs := range r.Header {
		if skip(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// Read gives the request head, then its body, then waits for the stream's
// end; a WebSocket's, after its head, the client's bytes (readRaw).
func (s *stream) Read(p []byte) (int, error) {
	if s.inOff < len(s.in) {
		n := copy(p, s.in[s.inOff:])
		s.inOff += n
		return n, nil
	}
	if s.ws {
		return s.readRaw(p)
	}
	if s.body != nil && !s.bodyEOF {
		if n, err := s.readBody(p); n > 0 || err != nil {
			return n, err
		}
		if s.inOff < len(s.in) {
			return s.Read(p)
		}
	}
	return 0, s.waitEnd()
}

func (s *stream) readBody(p []byte) (int, error) {
	s.mu.Lock()
	if dl := s.rdl; !dl.Equal(s.rdlSet) {
		s.rdlSet = dl
		s.rc.SetReadDeadline(dl)
	}
	s.mu.Unlock()
	if !s.chunked {
		n, err := s.body.Read(p)
		if err == io.EOF {
			s.bodyEOF, err = true, nil
		}
		return n, err
	}
	if s.scratch == nil {
		s.scratch = make([]byte, 32<<10)
	}
	n, err := s.body.Read(s.scratch[:min(len(s.scratch), max(len(p), 512))])
	s.in, s.inOff = s.in[:0], 0
	if n > 0 {
		s.in = strconv.AppendInt(s.in, int64(n), 16)
		s.in = append(s.in, "\r\n"...)
		s.in = append(s.in, s.scratch[:n]...)
		s.in = append(s.in, "\r\n"...)
	}
	if err == io.EOF {
		s.bodyEOF, err = true, nil
		s.in = append(s.in, "0\r\n\r\n"...)
	}
	if err != nil {
		return 0, err
	}
	k := copy(p, s.in)
	s.inOff = k
	return k, nil
}

// waitEnd blocks until the response is complete or the client reset the
// stream (io.EOF), or the read deadline passes.
func (s *stream) waitEnd() error {
	ctx := s.r.Context()
	for {
		if s.isDone() {
			return io.EOF
		}
		s.mu.Lock()
		dl := s.rdl
		s.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return io.EOF
		case <-s.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Write takes the response's bytes: the head, then the body; once a
// WebSocket's stream switched, raw bytes (writeRaw).
func (s *stream) Write(p []byte) (int, error) {
	if s.ws && s.isSwitched() {
		return s.writeRaw(p)
	}
	n := len(p)
	if !s.head {
		s.headBuf = append(s.headBuf, p...)
		p = nil
	}
	for !s.head {
		i := bytes.Index(s.headBuf, []byte("\r\n\r\n"))
		if i < 0 {
			if len(s.headBuf) > 1<<20 {
				return 0, errors.New("h2: response head too large")
			}
			return n, nil
		}
		rest := s.headBuf[i+4:]
		interim, err := s.writeHead(string(s.headBuf[:i+2]))
		if err != nil {
			return 0, err
		}
		if interim {
			s.headBuf = append(s.headBuf[:0], rest...) // the real head follows
			continue
		}
		p = rest
	}
	if s.ws && s.isSwitched() {
		if len(p) > 0 {
			if _, err := s.writeRaw(p); err != nil {
				return 0, err
			}
		}
		return n, nil
	}
	s.setWriteDeadline()
	if err := s.writeBody(p); err != nil {
		return 0, err
	}
	if s.isDone() {
		// the handler's return sends the rest with END_STREAM, the
		// HEADERS and DATA frames in one write
		return n, nil
	}
	if err := s.rc.Flush(); err != nil {
		return 0, err
	}
	return n, nil
}

func (s *stream) setWriteDeadline() {
	s.mu.Lock()
	dl := s.wdl
	change := !dl.Equal(s.wdlSet)
	s.wdlSet = dl
	s.mu.Unlock()
	if change {
		s.rc.SetWriteDeadline(dl)
	}
}

// writeHead turns the HTTP/1.1 status line and header lines into the
// stream's header fields; the connection-specific ones stay behind.
func (s *stream) writeHead(head string) (interim bool, err error) {
	line, rest, _ := strings.Cut(head, "\r\n")
	// "HTTP/1.1 200 OK"
	_, status, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return false, errors.New("h2: malformed status line " + strconv.Quote(line))
	}
	if code == 101 && s.ws {
		return false, s.switchHead(rest)
	}
	if s.ws && code >= 200 && code < 300 {
		// RFC 8441 5: a 2xx to an extended CONNECT opens the WebSocket;
		// only an accept (h1's 101) may, so any other success (an app's
		// own denial with a 200, a WSGI page) goes out as a failure
		code = http.StatusBadGateway
	}
	if code < 200 {
		return true, nil // an interim response (100 Continue): net/http sends its own
	}
	h := s.w.Header()
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch http.CanonicalHeaderKey(name) {
		case "Transfer-Encoding":
			s.chunkedOut = true
			continue
		case "Content-Length":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				s.left = n
			}
		}
		if httphdr.ConnectionSpecific(name) {
			continue // HTTP/2 forbids it (RFC 9113 8.2.2)
		}
		h[http.CanonicalHeaderKey(name)] = append(h[http.CanonicalHeaderKey(name)], value)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // net/http would sniff one; over HTTP/1.1 the app's response has none either
	}
	s.head = true
	s.noBody = s.r.Method == "HEAD" || code == 204 || code == 304
	s.w.WriteHeader(code)
	if s.noBody || s.left == 0 && !s.chunkedOut {
		s.markDone()
	}
	return false, nil
}

// writeBody sends body bytes of the response, de-chunked.
func (s *stream) writeBody(p []byte) error {
	if len(p) == 0 || s.noBody {
		return nil
	}
	if s.chunkedOut {
		if s.dechunk.trailer == nil {
			// an ASGI app's trailers (h1 writes them after the last chunk)
			// go out as the stream's trailing HEADERS
			s.dechunk.trailer = func(name, value string) { s.w.Header().Add(http.TrailerPrefix+name, value) }
		}
		return s.dechunk.feed(p, func(data []byte) error {
			_, err := s.w.Write(data)
			return err
		}, func() { s.markDone() })
	}
	if s.left >= 0 {
		p = p[:min(int64(len(p)), s.left)]
		s.left -= int64(len(p))
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	if s.left == 0 {
		s.markDone()
	}
	return nil
}

// markDone notes that the response is complete.
func (s *stream) markDone() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.signal()
}

// isDone reports whether the response's framing says it is complete.
func (s *stream) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// complete reports whether the response is complete once the exchange has
// ended: a response framed by the connection's end (no length, not
// chunked) is then, and so is a switched WebSocket's (its end is the
// WebSocket's, whose close handshake says whether it was whole).
func (s *stream) complete() bool {
	return s.isDone() || s.ws && s.isSwitched() || s.head && !s.chunkedOut && s.left < 0
}

// Close ends a WebSocket's stream for h1: reads and writes fail from then
// on, and END_STREAM goes out as the exchange returns, which
// h1.Server.ServeStream does right after closing it. As a net.Conn's Close,
// it unblocks a Read at once, and a Write under way by resetting the
// stream (the client is not taking its bytes, or the write is cut short).
func (s *stream) Close() error {
	if s.ws {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.signal()
		s.cut(false)
	}
	return nil
}

func (s *stream) LocalAddr() net.Addr  { return s.nc.LocalAddr() }
func (s *stream) RemoteAddr() net.Addr { return s.nc.RemoteAddr() }

func (s *stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl = t
	s.mu.Unlock()
	s.signal()
	return nil
}

func (s *stream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.wdl = t
	s.mu.Unlock()
	return nil
}

// ConnectionState is the TLS state of the stream's connection (zero for
// h2c), which h1 reads for wsgi.url_scheme and the SNI name.
func (s *stream) ConnectionState() tls.ConnectionState {
	if tc, ok := s.nc.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Protocol is the SERVER_PROTOCOL of the stream's requests.
func (s *stream) Protocol() string { return "HTTP/2.0" }

// chunkReader decodes the chunked framing h1 writes, across writes.
type chunkReader struct {
	state int   // what the next bytes are
	left  int64 // data bytes left in the current chunk
	line  []byte
	// trailer, if set, gets each trailer field after the last chunk
	trailer func(name, value string)
}

const (
	chunkSize    = iota // the size line
	chunkData           // left bytes of data
	chunkDataEnd        // the CRLF after the data
	chunkTrailer        // trailer lines up to the empty line
	chunkDone
)

// feed decodes p, passing data to out and calling end after the last chunk.
func (c *chunkReader) feed(p []byte, out func([]byte) error, end func()) error {
	for len(p) > 0 {
		switch c.state {
		case chunkSize, chunkTrailer, chunkDataEnd:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				c.line = append(c.line, p...)
				if len(c.line) > 4096 {
					return errors.New("h2: malformed chunked response")
				}
				return nil
			}
			line := strings.TrimRight(string(append(c.line, p[:i]...)), "\r")
			c.line, p = c.line[:0], p[i+1:]
			switch c.state {
			case chunkDataEnd:
				c.state = chunkSize
			case chunkTrailer:
				if line == "" {
					c.state = chunkDone
					end()
				} else if name, value, ok := strings.Cut(line, ":"); ok && c.trailer != nil {
					c.trailer(strings.TrimSpace(name), strings.TrimSpace(value))
				}
			default:
				size, _, _ := strings.Cut(line, ";")
				n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
				if err != nil || n < 0 {
					return errors.New("h2: malformed chunk size " + strconv.Quote(line))
				}
				if n == 0 {
					c.state = chunkTrailer
				} else {
					c.state, c.left = chunkData, n
				}
			}
		case chunkData:
			k := min(int64(len(p)), c.left)
			if err := out(p[:k]); err != nil {
				return err
			}
			c.left -= k
			p = p[k:]
			if c.left == 0 {
				c.state = chunkDataEnd
			}
		default:
			return nil // bytes after the last chunk: none are written
		}
	}
	return nil
}
