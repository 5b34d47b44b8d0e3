package e2e

// Wire-level tests of wisp's HTTP/1.1 message layer: request-line and
// header-field syntax, message framing and request smuggling, connection
// persistence, Expect, response framing and size limits. They follow RFC 9112
// (HTTP/1.1) and RFC 9110 (HTTP semantics) strictly.
//
// Every exchange is raw bytes over TCP to a wisp that runs h11EchoApp, which
// answers with what reached the app, so a test can assert both the status
// code and exactly what the app saw. Each table is sent all at once, each case
// on its own connection (h11Batch), and the cases are then checked one by one:
// waiting for a close that never comes costs one linger per table, not one per
// case.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	h11MaxBody   = 4096 // --max-body of the server under test
	h11MaxHeader = 8192 // --max-header-bytes of the server under test

	// h11Wait bounds the wait for each response a case expects.
	h11Wait = 10 * time.Second
	// h11Linger is how long a case waits, after the responses it expects,
	// for the server to close the connection or to send anything more.
	h11Linger = time.Second
)

// h11EchoApp answers with a JSON description of the request as the app saw
// it; str values are latin-1 ("bytes in str"). A few paths answer otherwise:
// /reason (a custom reason phrase), /fixed (a body with a Content-Length) and
// /stream (32 KiB of unknown length).
const h11EchoApp = `import json
import time

STREAM_PART = 8192


def _body(environ):
    inp = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        parts = []
        while True:
            data = inp.read(65536)
            if not data:
                break
            parts.append(data)
        return b"".join(parts)
    cl = environ.get("CONTENT_LENGTH") or "0"
    return inp.read(int(cl))


def _stream():
    # a pause after each part: the head goes out before the body's length is
    # known (parts that are all waiting at once are written with a length)
    for c in b"abcd":
        yield bytes([c]) * STREAM_PART
        time.sleep(0.02)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/reason":
        start_response("299 Custom Thing", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"weird"]
    if path == "/fixed":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return [b"hello world"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    body = _body(environ)
    data = json.dumps({
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "content_length": environ.get("CONTENT_LENGTH"),
        "terminated": bool(environ.get("wsgi.input_terminated")),
        "body": body.decode("latin-1"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
`

// h11StreamBody is what /stream sends.
var h11StreamBody = strings.Repeat("a", 8192) + strings.Repeat("b", 8192) + strings.Repeat("c", 8192) + strings.Repeat("d", 8192)

// h11Echo is h11EchoApp's answer.
type h11Echo struct {
	Method        string            `json:"method"`
	Path          string            `json:"path"`
	Query         string            `json:"query"`
	Protocol      string            `json:"protocol"`
	ContentLength *string           `json:"content_length"`
	Terminated    bool              `json:"terminated"`
	Body          string            `json:"body"`
	Headers       map[string]string `json:"headers"`
}

// h11Start runs wisp on h11EchoApp with small body and header limits.
func h11Start(t *testing.T) *wisp {
	t.Helper()
	path := filepath.Join(t.TempDir(), "echo.py")
	if err := os.WriteFile(path, []byte(h11EchoApp), 0o644); err != nil {
		t.Fatal(err)
	}
	return start(t, "--max-body", fmt.Sprint(h11MaxBody), "--max-header-bytes", fmt.Sprint(h11MaxHeader),
		"--access-log", "off", path)
}

// h11X is one exchange: raw bytes written in one write on a new connection.
type h11X struct {
	raw     string
	methods []string      // the request method behind each expected response (default: one GET)
	linger  time.Duration // after the expected responses, wait this long for more bytes or the close
}

// h11Accept is an exchange expected to succeed: reading stops after the
// expected responses (one per method; one GET by default).
func h11Accept(raw string, methods ...string) h11X { return h11X{raw: raw, methods: methods} }

// h11Watch is an exchange whose end matters (a rejection, a close): after the
// one expected response, it waits h11Linger to see whether anything else comes
// and whether the server closes the connection.
func h11Watch(raw string) h11X { return h11X{raw: raw, linger: h11Linger} }

type h11Response struct {
	*http.Response
	Body    []byte
	BodyErr error
	Raw     []byte // the response as received: status line, fields, framed content
}

// fields returns the values of the field name as they were on the wire
// (http.ReadResponse drops some, such as "Connection: close" and
// Transfer-Encoding, from Header).
func (r h11Response) fields(name string) []string {
	head, _, _ := bytes.Cut(r.Raw, []byte("\r\n\r\n"))
	var vs []string
	for _, line := range strings.Split(string(head), "\r\n")[1:] {
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(n, name) {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// hasToken reports whether the field name, as received, lists token.
func (r h11Response) hasToken(name, token string) bool {
	for _, v := range r.fields(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

type h11Result struct {
	Responses []h11Response
	Closed    bool   // the server closed the connection (EOF or reset)
	Err       error  // dial failure, or bytes that are not a response
	Raw       []byte // every byte received
}

func (r h11Result) String() string {
	state := "connection still open"
	if r.Closed {
		state = "then closed"
	}
	s := fmt.Sprintf("%d response(s), %s; received %q", len(r.Responses), state, h11Trunc(r.Raw))
	if r.Err != nil {
		s += fmt.Sprintf(" (error: %v)", r.Err)
	}
	return s
}

func h11Trunc(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

func h11IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// h11Do performs one exchange: it writes x.raw and reads responses until the
// server closes the connection, the expected responses are in (x.linger 0),
// or nothing more comes within x.linger.
func h11Do(addr string, x h11X) (res h11Result) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		res.Err = err
		return res
	}
	defer conn.Close()
	var rec bytes.Buffer
	defer func() { res.Raw = rec.Bytes() }()
	br := bufio.NewReader(io.TeeReader(conn, &rec))
	// The server may stop reading before the end (a limit, a framing error).
	go func() { _, _ = io.WriteString(conn, x.raw) }()
	want := max(1, len(x.methods))
	for i := 0; ; i++ {
		wait := h11Wait
		if i >= want {
			if x.linger == 0 {
				return res
			}
			wait = x.linger
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := br.Peek(1); err != nil {
			res.Closed = !h11IsTimeout(err)
			return res
		}
		method := "GET"
		if i < len(x.methods) {
			method = x.methods[i]
		}
		begin := rec.Len() - br.Buffered()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			res.Err = fmt.Errorf("response %d: %w", i+1, err)
			_ = conn.SetReadDeadline(time.Now().Add(h11Linger))
			_, err = io.Copy(io.Discard, br) // the rest, for Raw
			res.Closed = err == nil || !h11IsTimeout(err)
			return res
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		raw := bytes.Clone(rec.Bytes()[begin : rec.Len()-br.Buffered()])
		res.Responses = append(res.Responses, h11Response{resp, body, err, raw})
		if err != nil {
			res.Err = fmt.Errorf("response %d body: %w", i+1, err)
			res.Closed = !h11IsTimeout(err)
			return res
		}
	}
}

// h11Batch performs the exchanges concurrently and returns their results in order.
func h11Batch(addr string, xs ...h11X) []h11Result {
	out := make([]h11Result, len(xs))
	var wg sync.WaitGroup
	for i, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h11Do(addr, x)
		}()
	}
	wg.Wait()
	return out
}

// wantOnly checks that exactly one response came back, with one of statuses,
// and, if mustClose, that the server then closed the connection.
func (r h11Result) wantOnly(t *testing.T, mustClose bool, statuses ...int) {
	t.Helper()
	if len(r.Responses) == 0 {
		t.Errorf("no response, want %v; %v", statuses, r)
		return
	}
	got := r.Responses[0].StatusCode
	ok := false
	for _, s := range statuses {
		ok = ok || got == s
	}
	switch {
	case !ok:
		t.Errorf("status %d, want %v; %v", got, statuses, r)
	case len(r.Responses) > 1:
		t.Errorf("%d responses, want only the %d (the bytes after it were read as another request); %v", len(r.Responses), got, r)
	case r.Err != nil:
		t.Errorf("%v", r)
	case mustClose && !r.Closed:
		t.Errorf("connection still open %v after the %d; the server must close it; %v", h11Linger, got, r)
	}
}

// echo returns what the app saw for the i-th response, which must be a 200.
func (r h11Result) echo(t *testing.T, i int) h11Echo {
	t.Helper()
	if len(r.Responses) <= i {
		t.Fatalf("no response %d; %v", i+1, r)
	}
	resp := r.Responses[i]
	if resp.StatusCode != 200 {
		t.Fatalf("response %d: status %d, want 200; %v", i+1, resp.StatusCode, r)
	}
	var e h11Echo
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatalf("response %d: not the echo app's JSON (%v); %v", i+1, err, r)
	}
	return e
}

// header returns the echoed value of HTTP_<key> and whether it was there.
func (e h11Echo) header(key string) (string, bool) {
	v, ok := e.Headers[key]
	return v, ok
}

// TestHTTP11RequestLine: request-line = method SP request-target SP
// HTTP-version (RFC 9112 section 3), HTTP-version = "HTTP/" DIGIT "." DIGIT
// (section 2.3), empty lines before the request line ignored (section 2.2).
// A malformed request line is answered 400 and the connection closed; a
// version 1.x is served as HTTP/1.1; a major version of 2 or more gets 505
// (RFC 9110 section 15.6.6).
func TestHTTP11RequestLine(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const rest = "Host: x\r\n\r\n"

	t.Run("served", func(t *testing.T) {
		cases := []struct{ name, raw, path string }{
			{"plain", "GET /plain HTTP/1.1\r\n" + rest, "/plain"},
			{"empty lines before", "\r\n\r\n\r\nGET /after-empty-lines HTTP/1.1\r\n" + rest, "/after-empty-lines"},
			{"HTTP/1.2 served as 1.1", "GET /v12 HTTP/1.2\r\n" + rest, "/v12"},
		}
		xs := make([]h11X, len(cases))
		for i, tc := range cases {
			xs[i] = h11Accept(tc.raw)
		}
		results := h11Batch(w.Addr, xs...)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := results[i]
				e := r.echo(t, 0)
				if e.Method != "GET" || e.Path != tc.path {
					t.Errorf("app saw %s %q, want GET %q", e.Method, e.Path, tc.path)
				}
				if p := r.Responses[0].Proto; p != "HTTP/1.1" {
					t.Errorf("response version %s, want HTTP/1.1", p)
				}
			})
		}
	})

	t.Run("505", func(t *testing.T) {
		versions := []string{"HTTP/2.0", "HTTP/3.0"}
		xs := make([]h11X, len(versions))
		for i, v := range versions {
			xs[i] = h11Watch("GET / " + v + "\r\n" + rest)
		}
		results := h11Batch(w.Addr, xs...)
		for i, v := range versions {
			t.Run(v, func(t *testing.T) { results[i].wantOnly(t, false, 505) })
		}
	})

	t.Run("400", func(t *testing.T) {
		cases := []struct{ name, line string }{
			{"two spaces after the method", "GET  / HTTP/1.1"},
			{"two spaces before the version", "GET /  HTTP/1.1"},
			{"leading space", " GET / HTTP/1.1"},
			{"trailing space", "GET / HTTP/1.1 "},
			{"missing version", "GET /"},
			{"method only", "GET"},
			{"lowercase http", "GET / http/1.1"},
			{"space inside the method", "GE T / HTTP/1.1"},
			{"@ in the method", "G@T / HTTP/1.1"},
			{"raw space in the target", "GET /a b HTTP/1.1"},
			{"CTL in the target", "GET /a\x01b HTTP/1.1"},
			{"DEL in the target", "GET /a\x7fb HTTP/1.1"},
			{"garbage after the version", "GET / HTTP/1.1x"},
			{"a word after the version", "GET / HTTP/1.1 extra"},
			{"version without a minor", "GET / HTTP/1"},
			{"two-digit minor version", "GET / HTTP/1.10"},
		}
		xs := make([]h11X, len(cases))
		for i, tc := range cases {
			xs[i] = h11Watch(tc.line + "\r\n" + rest)
		}
		results := h11Batch(w.Addr, xs...)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { results[i].wantOnly(t, true, 400) })
		}
	})
}

// TestHTTP11RequestTarget: the four forms of request-target (RFC 9112
// section 3.2). origin-form reaches the app with PATH_INFO percent-decoded and
// QUERY_STRING raw; absolute-form is served, its authority replacing the Host
// header (section 3.2.2); asterisk-form is accepted for OPTIONS (section
// 3.2.4); anything else is a 400 and the connection is closed.
func TestHTTP11RequestTarget(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	cases := []struct {
		name, raw         string
		path, query, host string
	}{
		{
			"origin-form, percent-encoded",
			"GET /a%20b/c%2Fd/%C3%A9?x=%20y&z=1 HTTP/1.1\r\nHost: h.test\r\n\r\n",
			"/a b/c/d/\u00c3\u00a9", "x=%20y&z=1", "h.test",
		},
		{
			"absolute-form",
			"GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: other.test\r\n\r\n",
			"/a/b", "x=1", "example.com",
		},
		{
			"absolute-form with a port",
			"GET http://example.com:8080/c%20d HTTP/1.1\r\nHost: other.test\r\n\r\n",
			"/c d", "", "example.com:8080",
		},
	}
	rejected := []struct{ name, target string }{
		{"relative path", "foo"},
		{"query only", "?x=1"},
		{"path without scheme", "example.com/a"},
	}
	var xs []h11X
	for _, tc := range cases {
		xs = append(xs, h11Accept(tc.raw))
	}
	xs = append(xs, h11Accept("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS"))
	for _, tc := range rejected {
		xs = append(xs, h11Watch("GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	results := h11Batch(w.Addr, xs...)

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := results[i].echo(t, 0)
			if e.Path != tc.path || e.Query != tc.query {
				t.Errorf("PATH_INFO %q QUERY_STRING %q, want %q %q", e.Path, e.Query, tc.path, tc.query)
			}
			if h, _ := e.header("HTTP_HOST"); h != tc.host {
				t.Errorf("HTTP_HOST %q, want %q", h, tc.host)
			}
		})
	}
	t.Run("OPTIONS *", func(t *testing.T) {
		r := results[len(cases)]
		if len(r.Responses) == 0 {
			t.Fatalf("no response; %v", r)
		}
		if s := r.Responses[0].StatusCode; s == 400 || s >= 500 {
			t.Errorf("status %d, want the request accepted; %v", s, r)
		}
	})
	for i, tc := range rejected {
		t.Run("400 "+tc.name, func(t *testing.T) { results[len(cases)+1+i].wantOnly(t, true, 400) })
	}
}

// TestHTTP11HeaderFields: field-line = field-name ":" OWS field-value OWS
// (RFC 9112 section 5). No whitespace between name and colon (5.1), no
// obs-fold (5.2), names are tokens and values carry no NUL or bare CR (RFC
// 9110 section 5.5): else 400. A bare LF ends a line (RFC 9112 section 2.2).
// Repeated fields are joined with "," (RFC 9110 section 5.3). A name with "_"
// is not passed to the app, where it would pass for its "-" twin.
func TestHTTP11HeaderFields(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	rejected := []struct{ name, fields string }{
		{"space before the colon", "Host: x\r\nX-A : 1\r\n"},
		{"space before the colon of Host", "Host : x\r\n"},
		{"tab before the colon", "Host: x\r\nX-A\t: 1\r\n"},
		{"obs-fold with SP", "Host: x\r\nX-A: 1\r\n 2\r\n"},
		{"obs-fold with HTAB", "Host: x\r\nX-A: 1\r\n\t2\r\n"},
		{"no colon", "Host: x\r\nX-A 1\r\n"},
		{"empty name", "Host: x\r\n: 1\r\n"},
		{"space inside the name", "Host: x\r\nX A: 1\r\n"},
		{"@ in the name", "Host: x\r\nX@A: 1\r\n"},
		{"( in the name", "Host: x\r\nX(A): 1\r\n"},
		{"NUL in the value", "Host: x\r\nX-A: a\x00b\r\n"},
		{"bare CR in the value", "Host: x\r\nX-A: a\rb\r\n"},
	}
	accepted := []struct {
		name, raw string
		key, want string
		present   bool
	}{
		{"OWS trimmed", "GET / HTTP/1.1\r\nHost: x\r\nX-A: \t 1 \t \r\n\r\n", "HTTP_X_A", "1", true},
		{"inner whitespace kept", "GET / HTTP/1.1\r\nHost: x\r\nX-A:  a  b  \r\n\r\n", "HTTP_X_A", "a  b", true},
		{"no OWS", "GET / HTTP/1.1\r\nHost: x\r\nX-A:1\r\n\r\n", "HTTP_X_A", "1", true},
		{"empty value", "GET / HTTP/1.1\r\nHost: x\r\nX-A:\r\n\r\n", "HTTP_X_A", "", true},
		{"obs-text in the value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n", "HTTP_X_A", "caf\u00e9", true},
		{"name case-insensitive", "GET / HTTP/1.1\r\nHost: x\r\nx-MiXeD-case: v\r\n\r\n", "HTTP_X_MIXED_CASE", "v", true},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", "HTTP_HOST", "a", true},
		{"bare LF after a field", "GET / HTTP/1.1\nHost: a\nX-A: lf\n\n", "HTTP_X_A", "lf", true},
		{"repeated field joined", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n", "HTTP_X_A", "1,2", true},
		{"underscore name dropped", "GET / HTTP/1.1\r\nHost: x\r\nX_Under: spoof\r\n\r\n", "HTTP_X_UNDER", "", false},
		{"underscore name does not spoof its twin", "GET / HTTP/1.1\r\nHost: x\r\nX-Under: real\r\nX_Under: spoof\r\n\r\n", "HTTP_X_UNDER", "real", true},
	}
	var xs []h11X
	for _, tc := range rejected {
		xs = append(xs, h11Watch("GET / HTTP/1.1\r\n"+tc.fields+"\r\n"))
	}
	for _, tc := range accepted {
		xs = append(xs, h11Accept(tc.raw))
	}
	results := h11Batch(w.Addr, xs...)
	for i, tc := range rejected {
		t.Run("400 "+tc.name, func(t *testing.T) { results[i].wantOnly(t, true, 400) })
	}
	for i, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			e := results[len(rejected)+i].echo(t, 0)
			v, ok := e.header(tc.key)
			switch {
			case !tc.present && ok:
				t.Errorf("%s = %q reached the app, want it absent", tc.key, v)
			case tc.present && !ok:
				t.Errorf("%s absent, want %q; app saw headers %q", tc.key, tc.want, e.Headers)
			case tc.present && v != tc.want:
				t.Errorf("%s = %q, want %q", tc.key, v, tc.want)
			}
		})
	}
}

// TestHTTP11Host: an HTTP/1.1 request carries exactly one Host field, else
// 400 (RFC 9112 section 3.2); HTTP/1.0 requests may omit it.
func TestHTTP11Host(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	rejected := []struct{ name, fields string }{
		{"missing", "X-A: 1\r\n"},
		{"twice, same value", "Host: x\r\nHost: x\r\n"},
		{"twice, different values", "Host: x\r\nHost: y\r\n"},
		{"twice, different case", "host: x\r\nHOST: x\r\n"},
	}
	var xs []h11X
	for _, tc := range rejected {
		xs = append(xs, h11Watch("GET / HTTP/1.1\r\n"+tc.fields+"\r\n"))
	}
	xs = append(xs, h11Accept("GET /ten HTTP/1.0\r\n\r\n"))
	results := h11Batch(w.Addr, xs...)
	for i, tc := range rejected {
		t.Run("400 "+tc.name, func(t *testing.T) { results[i].wantOnly(t, false, 400) })
	}
	t.Run("HTTP/1.0 without Host", func(t *testing.T) {
		if e := results[len(rejected)].echo(t, 0); e.Path != "/ten" || e.Protocol != "HTTP/1.0" {
			t.Errorf("app saw %q over %q, want /ten over HTTP/1.0", e.Path, e.Protocol)
		}
	})
}

// TestHTTP11ContentLength: Content-Length = 1*DIGIT (RFC 9110 section 8.6).
// An invalid value, or several different values, make the framing unknowable:
// 400 and the connection closed (RFC 9112 section 6.3). A body over
// --max-body is a 413 (RFC 9110 section 15.5.14).
func TestHTTP11ContentLength(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	post := func(body string, values ...string) string {
		s := "POST /cl HTTP/1.1\r\nHost: x\r\n"
		for _, v := range values {
			s += "Content-Length:" + v + "\r\n"
		}
		return s + "\r\n" + body
	}
	rejected := []struct {
		name   string
		values []string
	}{
		{"abc", []string{" abc"}},
		{"-1", []string{" -1"}},
		{"+5", []string{" +5"}},
		{"1 2", []string{" 1 2"}},
		{"0x10", []string{"  0x10"}},
		{"5a", []string{" 5a"}},
		{"empty", []string{""}},
		{"list of different values", []string{" 5, 6"}},
		{"two different fields", []string{" 5", " 6"}},
	}
	accepted := []struct {
		name   string
		values []string
	}{
		{"5", []string{" 5"}},
		{"leading zeros", []string{" 0005"}},
		{"no OWS", []string{"5"}},
	}
	duplicates := []struct {
		name   string
		values []string
	}{
		{"two identical fields", []string{" 5", " 5"}},
		{"list of identical values", []string{" 5, 5"}},
	}
	var xs []h11X
	for _, tc := range rejected {
		xs = append(xs, h11Watch(post("hello", tc.values...)))
	}
	for _, tc := range accepted {
		xs = append(xs, h11Accept(post("hello", tc.values...)))
	}
	for _, tc := range duplicates {
		xs = append(xs, h11Watch(post("hello", tc.values...)))
	}
	huge := len(xs)
	xs = append(xs, h11Watch(post("hello", " 99999999999999999999999")))
	over := len(xs)
	xs = append(xs, h11Watch(post(strings.Repeat("b", h11MaxBody+1000), fmt.Sprint(h11MaxBody+1000))))
	results := h11Batch(w.Addr, xs...)

	for i, tc := range rejected {
		t.Run("400 "+tc.name, func(t *testing.T) { results[i].wantOnly(t, true, 400) })
	}
	for i, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			e := results[len(rejected)+i].echo(t, 0)
			if e.Body != "hello" {
				t.Errorf("app read %q, want hello", e.Body)
			}
			if e.ContentLength == nil || strings.TrimLeft(*e.ContentLength, "0") != "5" {
				t.Errorf("CONTENT_LENGTH %v, want 5", e.ContentLength)
			}
		})
	}
	for i, tc := range duplicates {
		t.Run(tc.name, func(t *testing.T) {
			r := results[len(rejected)+len(accepted)+i]
			r.wantOnly(t, false, 200, 400)
			if len(r.Responses) > 0 && r.Responses[0].StatusCode == 200 {
				if e := r.echo(t, 0); e.Body != "hello" {
					t.Errorf("app read %q, want hello", e.Body)
				}
			}
		})
	}
	t.Run("huge", func(t *testing.T) { results[huge].wantOnly(t, true, 400, 413) })
	t.Run("413 over --max-body", func(t *testing.T) { results[over].wantOnly(t, false, 413) })
}

// TestHTTP11TransferEncoding: a request's Transfer-Encoding must end with
// chunked, which the server decodes (RFC 9112 section 6.1, 7.1); the coding
// name is case-insensitive. Other codings get 400 or 501; Transfer-Encoding
// with Content-Length, or in an HTTP/1.0 request, is faulty framing: 400 and
// the connection closed (section 6.1, 6.3).
func TestHTTP11TransferEncoding(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
	req := func(fields string) string {
		return "POST /te HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body
	}
	accepted := []struct{ name, fields string }{
		{"chunked", "Transfer-Encoding: chunked\r\n"},
		{"Chunked", "Transfer-Encoding: Chunked\r\n"},
	}
	unsupported := []struct{ name, fields string }{
		{"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n"},
		{"identity", "Transfer-Encoding: identity\r\n"},
		{"chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n"},
		{"xchunked", "Transfer-Encoding: xchunked\r\n"},
		{"chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n"},
		{"gzip then chunked in two fields", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"},
	}
	var xs []h11X
	for _, tc := range accepted {
		xs = append(xs, h11Accept(req(tc.fields)))
	}
	for _, tc := range unsupported {
		xs = append(xs, h11Watch(req(tc.fields)))
	}
	withCL := len(xs)
	xs = append(xs, h11Watch(req(fmt.Sprintf("Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", len(body)))))
	http10 := len(xs)
	xs = append(xs, h11Watch("POST /te HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"+body))
	results := h11Batch(w.Addr, xs...)

	for i, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			e := results[i].echo(t, 0)
			if e.Body != "hello world" || !e.Terminated {
				t.Errorf("app read %q (wsgi.input_terminated %v), want \"hello world\" and True", e.Body, e.Terminated)
			}
		})
	}
	for i, tc := range unsupported {
		t.Run("400 or 501 "+tc.name, func(t *testing.T) { results[len(accepted)+i].wantOnly(t, false, 400, 501) })
	}
	t.Run("400 with Content-Length", func(t *testing.T) { results[withCL].wantOnly(t, true, 400) })
	t.Run("400 in HTTP/1.0", func(t *testing.T) { results[http10].wantOnly(t, true, 400) })
}

// TestHTTP11ChunkedBody: chunk = chunk-size [ chunk-ext ] CRLF chunk-data
// CRLF, chunk-size = 1*HEXDIG (RFC 9112 section 7.1); extensions are ignored
// (7.1.1), trailer fields after the last chunk are read (7.1.2). A malformed
// chunk is a 400 and the connection is closed.
func TestHTTP11ChunkedBody(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const head = "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	rejected := []struct{ name, body string }{
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"not hex", "g\r\nhello\r\n0\r\n\r\n"},
		{"negative", "-1\r\nhello\r\n0\r\n\r\n"},
		{"empty size", "\r\nhello\r\n0\r\n\r\n"},
		{"data longer than the size", "5\r\nhelloXX\r\n0\r\n\r\n"},
		{"data not followed by CRLF", "5\r\nhello0\r\n\r\n"},
		{"size overflows 64 bits", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"size 2^64", "10000000000000000\r\nhello\r\n0\r\n\r\n"},
		// a bare LF in chunked framing (CVE-2025-22871: a proxy may read it
		// as part of the extension and see other boundaries)
		{"bare LF after a size with an extension", "2;\nxx\r\n45\r\n0\r\n\r\n"},
		{"bare LF line ends", "5\nhello\n0\n\n"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n"},
		{"bare LF after the last chunk", "5\r\nhello\r\n0\n\r\n"},
		// BWS only around a chunk extension (7.1.1): not after a bare size
		{"space after the size, no extension", "5 \r\nhello\r\n0\r\n\r\n"},
		{"tab after the last size, no extension", "5\r\nhello\r\n0\t\r\n\r\n"},
	}
	accepted := []struct{ name, body, want string }{
		{"several chunks, upper-case hex", "A\r\n0123456789\r\n1\r\nX\r\n0\r\n\r\n", "0123456789X"},
		{"extension", "5;name=value\r\nhello\r\n0\r\n\r\n", "hello"},
		{"extensions, quoted and bare", "5;a=\"x y\";b\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"BWS before an extension", "5 \t;a=1\r\nhello\r\n0 ;z\r\n\r\n", "hello"},
	}
	var xs []h11X
	for _, tc := range rejected {
		xs = append(xs, h11Watch(head+tc.body))
	}
	for _, tc := range accepted {
		xs = append(xs, h11Accept(head+tc.body))
	}
	trailers := len(xs)
	xs = append(xs, h11Accept(head+"5\r\nhello\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"+
		"GET /after-trailers HTTP/1.1\r\nHost: x\r\n\r\n", "POST", "GET"))
	results := h11Batch(w.Addr, xs...)

	for i, tc := range rejected {
		t.Run("400 "+tc.name, func(t *testing.T) { results[i].wantOnly(t, true, 400) })
	}
	for i, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			if e := results[len(rejected)+i].echo(t, 0); e.Body != tc.want {
				t.Errorf("app read %q, want %q", e.Body, tc.want)
			}
		})
	}
	t.Run("trailers then a pipelined request", func(t *testing.T) {
		r := results[trailers]
		if e := r.echo(t, 0); e.Body != "hello" {
			t.Errorf("app read %q, want hello", e.Body)
		}
		if e := r.echo(t, 1); e.Method != "GET" || e.Path != "/after-trailers" {
			t.Errorf("second request reached the app as %s %q, want GET /after-trailers", e.Method, e.Path)
		}
	})
}

// TestHTTP11Smuggling: request smuggling payloads (RFC 9112 section 6.3, 11.2).
// Each gets exactly one response, a 400, and then the connection is closed:
// what follows the faulty message is never answered as a request.
func TestHTTP11Smuggling(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	sizeLine := fmt.Sprintf("%x\r\n", len(smuggled))
	cases := []struct{ name, raw string }{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"},
		{"CL.TE, whole request", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", 5+len(smuggled), smuggled)},
		{"TE.CL", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s%s\r\n0\r\n\r\n", len(sizeLine), sizeLine, smuggled)},
		{"TE.TE, second coding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE with a space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE with a tab as OWS", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE folded", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"CL.CL", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled)},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000" + sizeLine + smuggled + "\r\n0\r\n\r\n"},
	}
	xs := make([]h11X, len(cases))
	for i, tc := range cases {
		xs[i] = h11Watch(tc.raw)
	}
	results := h11Batch(w.Addr, xs...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := results[i]
			r.wantOnly(t, true, 400)
			if bytes.Contains(r.Raw, []byte("/smuggled")) {
				t.Errorf("the smuggled request reached the app; %v", r)
			}
		})
	}
}

// TestHTTP11Pipelining: requests written back to back on one connection are
// answered in order (RFC 9112 section 9.3.2), whatever their bodies.
func TestHTTP11Pipelining(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const second = "GET /two?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name, first, firstBody string
	}{
		{"two GETs", "GET /one HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"POST with Content-Length first", "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nfirst body!", "first body!"},
		{"chunked POST first", "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n", "first"},
	}
	xs := make([]h11X, len(cases))
	for i, tc := range cases {
		xs[i] = h11Accept(tc.first+second, "GET", "GET")
	}
	three := h11X{
		raw:     "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		methods: []string{"GET", "GET", "GET"},
		linger:  h11Linger,
	}
	results := h11Batch(w.Addr, append(xs, three)...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := results[i]
			e1, e2 := r.echo(t, 0), r.echo(t, 1)
			if e1.Path != "/one" || e1.Body != tc.firstBody {
				t.Errorf("first response is for %q with body %q, want /one with %q", e1.Path, e1.Body, tc.firstBody)
			}
			if e2.Path != "/two" || e2.Query != "n=2" || e2.Body != "" {
				t.Errorf("second response is for %q?%q with body %q, want /two?n=2 without a body", e2.Path, e2.Query, e2.Body)
			}
		})
	}
	t.Run("three, the last with Connection: close", func(t *testing.T) {
		r := results[len(cases)]
		for i, want := range []string{"/a", "/b", "/c"} {
			if e := r.echo(t, i); e.Path != want {
				t.Errorf("response %d is for %q, want %q", i+1, e.Path, want)
			}
		}
		if len(r.Responses) != 3 || !r.Closed {
			t.Errorf("want 3 responses then the close; %v", r)
		}
	})
}

// TestHTTP11Persistence: HTTP/1.1 connections persist unless "close" is sent;
// HTTP/1.0 ones close unless "keep-alive" is sent, which the response then
// confirms (RFC 9112 section 9.3, 9.6, appendix C.2.2).
func TestHTTP11Persistence(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	results := h11Batch(w.Addr,
		h11Watch("GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
		h11Watch("GET /ten HTTP/1.0\r\n\r\n"),
	)

	t.Run("Connection: close", func(t *testing.T) {
		r := results[0]
		r.echo(t, 0)
		if !r.Responses[0].hasToken("Connection", "close") {
			t.Errorf("response without Connection: close; %v", r)
		}
		if !r.Closed || len(r.Responses) != 1 {
			t.Errorf("want one response then the close; %v", r)
		}
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		r := results[1]
		r.echo(t, 0)
		if r.Responses[0].hasToken("Connection", "keep-alive") {
			t.Errorf("response to a plain HTTP/1.0 request says keep-alive; %v", r)
		}
		if !r.Closed || len(r.Responses) != 1 {
			t.Errorf("want one response then the close; %v", r)
		}
	})

	sequential := []struct {
		name, req string
		keepAlive bool // the response must say Connection: keep-alive
	}{
		{"HTTP/1.1 persists", "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"HTTP/1.0 with keep-alive", "GET /%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
	}
	for _, tc := range sequential {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			for i := 1; i <= 2; i++ {
				c.send(fmt.Sprintf(tc.req, i))
				resp, body, err := c.response("GET")
				if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf(`"path": "/%d"`, i)) {
					t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, trunc(body), err)
				}
				if resp.Close { // "Connection: close", or HTTP/1.0 without keep-alive
					t.Errorf("request %d: the response announces the close (%s, Connection %q)", i, resp.Proto, resp.Header.Values("Connection"))
				}
				if tc.keepAlive && !slices.ContainsFunc(resp.Header.Values("Connection"), func(v string) bool { return strings.EqualFold(v, "keep-alive") }) {
					t.Errorf("request %d: response without Connection: keep-alive (header %q)", i, resp.Header.Values("Connection"))
				}
				if i == 1 {
					if closed, got := c.closedWithin(500 * time.Millisecond); closed {
						t.Fatalf("connection closed after the first response (then %q)", got)
					}
					_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
				}
			}
		})
	}
}

// TestHTTP11Expect: "Expect: 100-continue" gets an interim 100 (Continue)
// before the client sends the body; the value is case-insensitive. Any other
// expectation gets 417 (RFC 9110 section 10.1.1, 15.2.1, 15.5.18).
func TestHTTP11Expect(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	for _, value := range []string{"100-continue", "100-Continue"} {
		t.Run(value, func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			c.send("POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: " + value + "\r\n\r\n")
			_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := c.br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
				t.Fatalf("first line %q (%v), want HTTP/1.1 100 Continue before the body is sent", line, err)
			}
			for {
				l, err := c.br.ReadString('\n')
				if err != nil {
					t.Fatalf("reading the 100 response's fields: %v", err)
				}
				if l == "\r\n" || l == "\n" {
					break
				}
			}
			c.send("hello")
			_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, body, err := c.response("POST")
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"body": "hello"`) {
				t.Errorf("after the 100: %d %q %v; want 200 with the body read", resp.StatusCode, trunc(body), err)
			}
		})
	}

	results := h11Batch(w.Addr,
		h11Watch("GET /expect HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n"),
		h11Watch("POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: foo\r\n\r\nhello"),
	)
	t.Run("417 unknown expectation", func(t *testing.T) { results[0].wantOnly(t, false, 417) })
	t.Run("417 unknown expectation, body sent anyway", func(t *testing.T) { results[1].wantOnly(t, false, 417) })
}

// TestHTTP11Response: the status line carries the app's reason phrase (RFC
// 9112 section 4); responses carry a Date (RFC 9110 section 6.6.1); a HEAD
// response has the GET's fields and no content (RFC 9110 section 9.3.2);
// content of unknown length goes chunked to an HTTP/1.1 client and
// close-delimited to an HTTP/1.0 one (RFC 9112 section 6.1, 6.3, 7).
func TestHTTP11Response(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	const reason, date, dateOn400, head, chunked, http10 = 0, 1, 2, 3, 4, 5
	results := h11Batch(w.Addr,
		h11Accept("GET /reason HTTP/1.1\r\nHost: x\r\n\r\n"),
		h11Accept("GET /date HTTP/1.1\r\nHost: x\r\n\r\n"),
		h11Watch("GET / HTTP/1.1\r\n\r\n"),
		h11Accept("HEAD /fixed HTTP/1.1\r\nHost: x\r\n\r\nGET /after-head HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "GET"),
		h11Accept("GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after-stream HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "GET"),
		h11Watch("GET /stream HTTP/1.0\r\n\r\n"),
	)

	t.Run("reason phrase", func(t *testing.T) {
		r := results[reason]
		if !bytes.HasPrefix(r.Raw, []byte("HTTP/1.1 299 Custom Thing\r\n")) {
			t.Errorf("status line is not \"HTTP/1.1 299 Custom Thing\"; %v", r)
		}
		if len(r.Responses) == 0 || string(r.Responses[0].Body) != "weird" {
			t.Errorf("want the app's body \"weird\"; %v", r)
		}
	})
	checkDate := func(t *testing.T, r h11Result) {
		t.Helper()
		if len(r.Responses) == 0 {
			t.Fatalf("no response; %v", r)
		}
		d := r.Responses[0].Header.Get("Date")
		when, err := http.ParseTime(d)
		if err != nil {
			t.Fatalf("Date %q: %v; %v", d, err, r)
		}
		if off := time.Since(when); off > time.Minute || off < -time.Minute {
			t.Errorf("Date %q is %v off", d, off)
		}
	}
	t.Run("Date", func(t *testing.T) { checkDate(t, results[date]) })
	t.Run("Date on a 400", func(t *testing.T) {
		results[dateOn400].wantOnly(t, false, 400)
		checkDate(t, results[dateOn400])
	})
	t.Run("HEAD", func(t *testing.T) {
		r := results[head]
		if len(r.Responses) < 1 || r.Responses[0].StatusCode != 200 {
			t.Fatalf("want 200 for HEAD; %v", r)
		}
		if cl := r.Responses[0].fields("Content-Length"); len(cl) != 1 || cl[0] != "11" {
			t.Errorf("HEAD Content-Length %q, want the app's 11; %v", cl, r)
		}
		if bytes.Contains(r.Raw, []byte("hello world")) {
			t.Errorf("the HEAD response carries the body; %v", r)
		}
		if e := r.echo(t, 1); e.Path != "/after-head" {
			t.Errorf("the request after HEAD was answered for %q; %v", e.Path, r)
		}
	})
	t.Run("unknown length, HTTP/1.1", func(t *testing.T) {
		r := results[chunked]
		if len(r.Responses) < 1 || r.Responses[0].StatusCode != 200 {
			t.Fatalf("want 200; %v", r)
		}
		resp := r.Responses[0]
		if te := resp.fields("Transfer-Encoding"); len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			t.Errorf("Transfer-Encoding %q, want chunked; %v", te, r)
		}
		if cl := resp.fields("Content-Length"); cl != nil {
			t.Errorf("a chunked response with Content-Length %q", cl)
		}
		if !bytes.HasSuffix(resp.Raw, []byte("\r\n0\r\n\r\n")) {
			t.Errorf("the chunked body does not end with a last chunk and an empty trailer section: %q", resp.Raw[max(0, len(resp.Raw)-40):])
		}
		if string(resp.Body) != h11StreamBody || resp.BodyErr != nil {
			t.Errorf("body of %d bytes (%v), want the app's %d", len(resp.Body), resp.BodyErr, len(h11StreamBody))
		}
		if e := r.echo(t, 1); e.Path != "/after-stream" {
			t.Errorf("the request after the chunked response was answered for %q", e.Path)
		}
	})
	t.Run("unknown length, HTTP/1.0", func(t *testing.T) {
		r := results[http10]
		if len(r.Responses) != 1 || r.Responses[0].StatusCode != 200 {
			t.Fatalf("want one 200; %v", r)
		}
		resp := r.Responses[0]
		if te := resp.fields("Transfer-Encoding"); te != nil {
			t.Errorf("Transfer-Encoding %q in a response to HTTP/1.0", te)
		}
		if string(resp.Body) != h11StreamBody || resp.BodyErr != nil {
			t.Errorf("body of %d bytes (%v), want the app's %d", len(resp.Body), resp.BodyErr, len(h11StreamBody))
		}
		if !r.Closed {
			t.Errorf("connection still open after a close-delimited body")
		}
	})
}

// TestHTTP11Limits: a header section over --max-header-bytes gets 431 (RFC
// 6585 section 5), an over-long request line 414 or 431 (RFC 9110 section
// 15.5.15, RFC 9112 section 3); the server keeps serving afterwards.
func TestHTTP11Limits(t *testing.T) {
	t.Parallel()
	w := h11Start(t)
	var many strings.Builder
	for i := 0; many.Len() < 2*h11MaxHeader; i++ {
		fmt.Fprintf(&many, "X-Field-%d: %s\r\n", i, strings.Repeat("v", 200))
	}
	results := h11Batch(w.Addr,
		h11Accept("GET /under HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", h11MaxHeader/2)+"\r\n\r\n"),
		h11Watch("GET / HTTP/1.1\r\nHost: x\r\n"+many.String()+"\r\n"),
		h11Watch("GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 2*h11MaxHeader)+"\r\n\r\n"),
		h11Watch("GET /"+strings.Repeat("a", 100<<10)+" HTTP/1.1\r\nHost: x\r\n\r\n"),
	)
	t.Run("under the limit", func(t *testing.T) {
		if e := results[0].echo(t, 0); e.Path != "/under" {
			t.Errorf("app saw %q", e.Path)
		}
	})
	t.Run("431 many fields", func(t *testing.T) { results[1].wantOnly(t, false, 431) })
	t.Run("431 one big field", func(t *testing.T) { results[2].wantOnly(t, false, 431) })
	t.Run("100 KiB target", func(t *testing.T) { results[3].wantOnly(t, false, 414, 431) })
	t.Run("still serving", func(t *testing.T) {
		select {
		case <-w.exited:
			t.Fatalf("wisp exited (%v); stderr:\n%s", w.state, tail(w.Stderr(), 4<<10))
		default:
		}
		r := h11Do(w.Addr, h11Accept("GET /afterwards HTTP/1.1\r\nHost: x\r\n\r\n"))
		if e := r.echo(t, 0); e.Path != "/afterwards" {
			t.Errorf("app saw %q", e.Path)
		}
		if strings.Contains(w.Stderr(), "panic:") {
			t.Errorf("panic on stderr:\n%s", tail(w.Stderr(), 4<<10))
		}
	})
}
