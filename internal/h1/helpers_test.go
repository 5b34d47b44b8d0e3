package h1

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects the server's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// testServer is a Server on a loopback listener.
type testServer struct {
	*Server
	network, addr string
	log           *logBuf
	served        chan struct{} // closed when Serve returned
	serveErr      error
	allowPanic    bool
}

// startServer serves h on 127.0.0.1:0; opt may set timeouts and limits.
// The test's end closes the server and checks that Serve returned, that
// every connection ended and that nothing panicked.
func startServer(t testing.TB, h HandlerFunc, opt func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, h, opt)
}

// startUnixServer serves h on a unix socket (no ports used up by fuzzing);
// it falls back to TCP where unix sockets are not available.
func startUnixServer(t testing.TB, h HandlerFunc, opt func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		return startServer(t, h, opt)
	}
	return serveOn(t, ln, h, opt)
}

func serveOn(t testing.TB, ln net.Listener, h HandlerFunc, opt func(*Server)) *testServer {
	lb := &logBuf{}
	s := &Server{Handler: h, Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if opt != nil {
		opt(s)
	}
	ts := &testServer{Server: s, network: ln.Addr().Network(), addr: ln.Addr().String(), log: lb, served: make(chan struct{})}
	go func() {
		ts.serveErr = s.Serve(ln)
		close(ts.served)
	}()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-ts.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
		waitFor(t, "all connections to end", func() bool { return s.Conns() == 0 })
		if !ts.allowPanic && strings.Contains(lb.String(), "panic") {
			t.Errorf("the server panicked:\n%s", lb.String())
		}
	})
	return ts
}

// waitFor polls cond for up to 3 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// client is a raw connection to a testServer.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t testing.TB) *client {
	t.Helper()
	nc, err := net.Dial(ts.network, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) closeWrite() {
	c.t.Helper()
	if err := c.nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		c.t.Fatal(err)
	}
}

// resp reads the next response, failing the test if it is malformed.
func (c *client) resp(method string) *response {
	c.t.Helper()
	r, err := readResponse(c.br, method)
	if err != nil {
		c.t.Fatalf("reading the response: %v (so far: %+v)", err, r)
	}
	return r
}

// closed checks that the server closed the connection with nothing more to say.
func (c *client) closed() {
	c.t.Helper()
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		c.t.Errorf("unexpected bytes before the close: %q", b)
	}
	if err != nil {
		c.t.Errorf("the connection did not close cleanly: %v", err)
	}
}

// quiet checks that the server sends nothing for d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	b, err := c.br.Peek(1)
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("expected silence, got %q, %v", b, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
}

// response is one parsed response.
type response struct {
	line    string // status line without CRLF
	status  int
	fields  []Field
	body    []byte
	chunked bool
	eof     bool // close-delimited body
}

func (r *response) header(name string) string {
	for _, f := range r.fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

func (r *response) count(name string) int {
	n := 0
	for _, f := range r.fields {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

// closes reports whether the response says Connection: close.
func (r *response) closes() bool {
	for _, f := range r.fields {
		if strings.EqualFold(f.Name, "Connection") {
			for _, t := range strings.Split(f.Value, ",") {
				if strings.EqualFold(strings.TrimSpace(t), "close") {
					return true
				}
			}
		}
	}
	return false
}

func readLineCRLF(br *bufio.Reader) (string, error) {
	s, err := br.ReadString('\n')
	if err != nil {
		if err == io.EOF && s != "" {
			err = io.ErrUnexpectedEOF
		}
		return s, err
	}
	if !strings.HasSuffix(s, "\r\n") {
		return s, fmt.Errorf("line %q does not end with CRLF", s)
	}
	return s[:len(s)-2], nil
}

// readResponse reads a response strictly (RFC 9112 framing, as this server
// writes it). method "" means: take it from an X-Method header if any.
func readResponse(br *bufio.Reader, method string) (*response, error) {
	line, err := readLineCRLF(br)
	if err != nil {
		return nil, err
	}
	r := &response{line: line}
	if len(line) < 13 || line[:9] != "HTTP/1.1 " || line[12] != ' ' {
		return r, fmt.Errorf("malformed status line %q", line)
	}
	if r.status, err = strconv.Atoi(line[9:12]); err != nil || r.status < 100 {
		return r, fmt.Errorf("malformed status line %q", line)
	}
	for {
		l, err := readLineCRLF(br)
		if err != nil {
			return r, err
		}
		if l == "" {
			break
		}
		i := strings.IndexByte(l, ':')
		if i <= 0 || !isToken(l[:i]) {
			return r, fmt.Errorf("malformed header line %q", l)
		}
		r.fields = append(r.fields, Field{l[:i], strings.TrimSpace(l[i+1:])})
	}
	if method == "" {
		method = r.header("X-Method")
	}
	cl, te := r.header("Content-Length"), r.header("Transfer-Encoding")
	if r.count("Content-Length") > 1 || r.count("Transfer-Encoding") > 1 || (cl != "" && te != "") {
		return r, fmt.Errorf("ambiguous framing: %q", r.fields)
	}
	if r.status < 200 || r.status == 204 {
		if cl != "" || te != "" {
			return r, fmt.Errorf("framing header in a %d response", r.status)
		}
	}
	if r.status < 200 {
		return r, nil
	}
	if r.header("Date") == "" {
		return r, errors.New("no Date header")
	}
	if method == "HEAD" || r.status == 204 || r.status == 304 {
		return r, nil
	}
	switch {
	case te != "":
		if te != "chunked" {
			return r, fmt.Errorf("transfer coding %q", te)
		}
		r.chunked = true
		for {
			l, err := readLineCRLF(br)
			if err != nil {
				return r, err
			}
			n, err := strconv.ParseUint(l, 16, 63)
			if err != nil || l == "" || l[0] == '+' {
				return r, fmt.Errorf("malformed chunk size %q", l)
			}
			if n == 0 {
				l, err := readLineCRLF(br)
				if err != nil || l != "" {
					return r, fmt.Errorf("bad end of chunked body: %q, %v", l, err)
				}
				return r, nil
			}
			if n > 1<<30 {
				return r, fmt.Errorf("chunk of %d bytes", n)
			}
			chunk := make([]byte, n)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return r, err
			}
			r.body = append(r.body, chunk...)
			if l, err := readLineCRLF(br); err != nil || l != "" {
				return r, fmt.Errorf("chunk not followed by CRLF: %q, %v", l, err)
			}
		}
	case cl != "":
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || n > 1<<30 {
			return r, fmt.Errorf("bad Content-Length %q", cl)
		}
		r.body = make([]byte, n)
		k, err := io.ReadFull(br, r.body)
		r.body = r.body[:k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return r, fmt.Errorf("body of %d bytes out of %d: %w", k, n, err)
		}
	default:
		r.eof = true
		r.body, err = io.ReadAll(br)
		return r, err
	}
	return r, nil
}

// shortSum is a short digest of b for the echo handler's answers.
func shortSum(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:8])
}

// echo reads the whole body and answers with a summary of the request.
func echo(w *Response, r *Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		msg := "body error: " + err.Error()
		w.SetStatus(BodyError(err), "")
		w.SetContentLength(int64(len(msg)))
		w.Write([]byte(msg))
		return
	}
	msg := fmt.Sprintf("%s %s ?%s %s host=%s n=%d sum=%x", r.Method, r.Path, r.Query, r.Proto, r.Host, n, h.Sum(nil)[:8])
	w.AddHeader("X-Method", r.Method)
	w.SetContentLength(int64(len(msg)))
	w.Write([]byte(msg))
}

// echoed is echo's answer for a request.
func echoed(method, path, query, proto, host string, body []byte) string {
	return fmt.Sprintf("%s %s ?%s %s host=%s n=%d sum=%s", method, path, query, proto, host, len(body), shortSum(body))
}

// chunk encodes body as a chunked body with chunks of at most size bytes.
func chunk(body string, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}
