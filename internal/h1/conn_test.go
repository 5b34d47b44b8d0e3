package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const host = "\r\nHost: t.test"

func TestSimpleGET(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("GET /hello?a=b HTTP/1.1\r\nHost: t.test\r\n\r\n")
	r := c.resp("GET")
	if r.line != "HTTP/1.1 200 OK" {
		t.Errorf("status line %q", r.line)
	}
	if want := echoed("GET", "/hello", "a=b", "HTTP/1.1", "t.test", nil); string(r.body) != want {
		t.Errorf("body %q, want %q", r.body, want)
	}
	if r.header("Content-Length") != strconv.Itoa(len(r.body)) || r.chunked || r.closes() {
		t.Errorf("framing: %q", r.fields)
	}
	if _, err := time.Parse(time.RFC1123, r.header("Date")); err != nil || !strings.HasSuffix(r.header("Date"), " GMT") {
		t.Errorf("Date %q: %v", r.header("Date"), err)
	}
	// the connection stays open for the next request
	c.send("POST /second HTTP/1.1\r\nHost: t.test\r\nContent-Length: 3\r\n\r\nabc")
	r = c.resp("POST")
	if want := echoed("POST", "/second", "", "HTTP/1.1", "t.test", []byte("abc")); string(r.body) != want {
		t.Errorf("body %q, want %q", r.body, want)
	}
}

func TestEmptyLinesBeforeRequestLine(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("\r\n\n\r\nGET /a HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// the CRLF some clients add after a POST body
	c.send("POST /b HTTP/1.1" + host + "\r\nContent-Length: 2\r\n\r\nhi\r\nGET /c HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("POST"); string(r.body) != echoed("POST", "/b", "", "HTTP/1.1", "t.test", []byte("hi")) {
		t.Errorf("body %q", r.body)
	}
	if r := c.resp("GET"); string(r.body) != echoed("GET", "/c", "", "HTTP/1.1", "t.test", nil) {
		t.Errorf("body %q", r.body)
	}
}

func TestChunkedRequestBody(t *testing.T) {
	ts := startServer(t, echo, nil)
	tests := []struct {
		name, body, want string
	}{
		{"plain", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		{"extensions", "5;name=value;flag\r\nhello\r\n6 ; q=\"a b\"\r\n world\r\n0;last\r\n\r\n", "hello world"},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other:  two \r\n\r\n", "hello"},
		{"extensions and trailers", "3;x=1\r\nabc\r\n0;y\r\nT: v\r\n\r\n", "abc"},
		{"hex digits", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n", "0123456789abcdefghijk"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"empty", "0\r\n\r\n", ""},
		{"large chunk", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 100000, strings.Repeat("z", 100000)), strings.Repeat("z", 100000)},
		{"many chunks", chunk(strings.Repeat("0123456789", 1000), 7), strings.Repeat("0123456789", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send("POST /c HTTP/1.1" + host + "\r\nTransfer-Encoding: chunked\r\n\r\n" + tt.body + "GET /next HTTP/1.1" + host + "\r\n\r\n")
			r := c.resp("POST")
			if want := echoed("POST", "/c", "", "HTTP/1.1", "t.test", []byte(tt.want)); string(r.body) != want {
				t.Errorf("body %q, want %q", r.body, want)
			}
			// the chunked body ended exactly where it should: the next request is intact
			r = c.resp("GET")
			if want := echoed("GET", "/next", "", "HTTP/1.1", "t.test", nil); string(r.body) != want {
				t.Errorf("next: %q, want %q", r.body, want)
			}
		})
	}
}

func TestBadChunkedBody(t *testing.T) {
	ts := startServer(t, echo, nil)
	tests := []struct{ name, body string }{
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
		{"junk after size", "5 x\r\nhello\r\n0\r\n\r\n"},
		{"empty size line", "\r\nhello\r\n0\r\n\r\n"},
		{"whitespace after size, no extension", "5 \r\nhello\r\n0\r\n\r\n"},
		{"tab after last size, no extension", "5\r\nhello\r\n0\t\r\n\r\n"},
		{"16 hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n"},
		{"huge size", "fffffffffffffffff\r\n"},
		{"control character in extension", "5;a=\x01\r\nhello\r\n0\r\n\r\n"},
		{"bare CR in size line", "5\rx\r\nhello\r\n0\r\n\r\n"},
		{"data longer than size", "5\r\nhelloXX\r\n0\r\n\r\n"},
		{"no CRLF after data", "5\r\nhello0\r\n\r\n"},
		{"trailer without colon", "5\r\nhello\r\n0\r\nno-colon\r\n\r\n"},
		{"folded trailer", "5\r\nhello\r\n0\r\nA: b\r\n c\r\n\r\n"},
		{"trailer with NUL", "5\r\nhello\r\n0\r\nA: \x00\r\n\r\n"},
		{"trailer with space before colon", "5\r\nhello\r\n0\r\nX-T : x\r\n\r\n"},
		{"trailer name with space", "5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n"},
		// RFC 9112 7.1 chunk lines end with CRLF; a bare LF there is refused
		// (a proxy taking it for part of an extension would frame differently).
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
		{"bare LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after last chunk", "5\r\nhello\r\n0\n\r\n"},
		{"bare LF after trailer", "5\r\nhello\r\n0\r\nT: v\n\r\n"},
		{"bare LF ending trailers", "5\r\nhello\r\n0\r\n\n"},
		{"all bare LF", "5\nhello\n0\n\n"},
		{"overlong size line", "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n"},
		{"overlong trailers", "5\r\nhello\r\n0\r\n" + strings.Repeat("X-T: "+strings.Repeat("v", 1000)+"\r\n", 70) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send("POST /c HTTP/1.1" + host + "\r\nTransfer-Encoding: chunked\r\n\r\n" + tt.body)
			r := c.resp("POST")
			if r.status != 400 {
				t.Errorf("status %d (%q), want 400", r.status, r.body)
			}
			c.closed()
		})
	}
	t.Run("cut short", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /c HTTP/1.1" + host + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
		c.closeWrite()
		r := c.resp("POST")
		if r.status != 400 || !strings.Contains(string(r.body), "unexpected EOF") {
			t.Errorf("status %d (%q), want 400 for an unexpected EOF", r.status, r.body)
		}
		c.closed()
	})
	t.Run("content-length cut short", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /c HTTP/1.1" + host + "\r\nContent-Length: 10\r\n\r\nhello")
		c.closeWrite()
		r := c.resp("POST")
		if r.status != 400 || !strings.Contains(string(r.body), "unexpected EOF") {
			t.Errorf("status %d (%q), want 400 for an unexpected EOF", r.status, r.body)
		}
		c.closed()
	})
}

// writeSlowly writes b in pieces of 1 to 3 bytes, pausing now and then, so
// that the server reads it in many small parts.
func writeSlowly(t *testing.T, nc net.Conn, b string, rnd *rand.Rand) {
	t.Helper()
	for i := 0; len(b) > 0; i++ {
		n := min(1+rnd.Intn(3), len(b))
		if _, err := io.WriteString(nc, b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
		if i%4 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

func TestBodyInTinyWrites(t *testing.T) {
	ts := startServer(t, echo, nil)
	rnd := rand.New(rand.NewSource(1))
	body := make([]byte, 1500)
	for i := range body {
		body[i] = byte(rnd.Intn(256))
	}
	var chunked strings.Builder
	for rest := body; len(rest) > 0; {
		n := min(1+rnd.Intn(40), len(rest))
		fmt.Fprintf(&chunked, "%x;i=%d\r\n%s\r\n", n, n, rest[:n])
		rest = rest[n:]
	}
	chunked.WriteString("0\r\nX-Trailer: yes\r\n\r\n")
	tests := []struct{ name, req string }{
		{"content-length", "POST /cl HTTP/1.1" + host + "\r\nContent-Length: 1500\r\n\r\n" + string(body)},
		{"chunked", "POST /cl HTTP/1.1" + host + "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			// two requests in a row, both trickled
			writeSlowly(t, c.nc, tt.req+tt.req, rnd)
			for range 2 {
				r := c.resp("POST")
				if want := echoed("POST", "/cl", "", "HTTP/1.1", "t.test", body); string(r.body) != want {
					t.Fatalf("body %q, want %q", r.body, want)
				}
			}
		})
	}
}

// TestSplitEverywhere sends two pipelined requests in two writes, split at
// every byte position, so that each boundary of the head and body framing is
// seen incomplete once.
func TestSplitEverywhere(t *testing.T) {
	ts := startServer(t, echo, nil)
	reqs := map[string]string{
		"content-length": "POST /p HTTP/1.1\r\nHost: t.test\r\nContent-Length: 5\r\n\r\nhello",
		"chunked":        "POST /p HTTP/1.1\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nhe\r\n3\r\nllo\r\n0\r\nT: 1\r\n\r\n",
	}
	want := echoed("POST", "/p", "", "HTTP/1.1", "t.test", []byte("hello"))
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			c := ts.dial(t)
			two := req + req
			for i := 1; i < len(two); i++ {
				c.send(two[:i])
				time.Sleep(300 * time.Microsecond)
				c.send(two[i:])
				for k := range 2 {
					if r := c.resp("POST"); string(r.body) != want {
						t.Fatalf("split at %d, response %d: %q", i, k, r.body)
					}
				}
			}
		})
	}
}

func TestPipelining(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("GET /a HTTP/1.1" + host + "\r\n\r\n" +
		"POST /b?x=1 HTTP/1.1" + host + "\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /c HTTP/1.1" + host + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"HEAD /d HTTP/1.1" + host + "\r\n\r\n" +
		"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
		"GET /f HTTP/1.1" + host + "\r\nConnection: close\r\n\r\n" +
		"GET /never HTTP/1.1" + host + "\r\n\r\n")
	wants := []struct{ method, body string }{
		{"GET", echoed("GET", "/a", "", "HTTP/1.1", "t.test", nil)},
		{"POST", echoed("POST", "/b", "x=1", "HTTP/1.1", "t.test", []byte("hello"))},
		{"POST", echoed("POST", "/c", "", "HTTP/1.1", "t.test", []byte("abc"))},
		{"HEAD", ""},
		{"GET", echoed("GET", "/e", "", "HTTP/1.0", "", nil)},
		{"GET", echoed("GET", "/f", "", "HTTP/1.1", "t.test", nil)},
	}
	for i, w := range wants {
		r := c.resp(w.method)
		if string(r.body) != w.body {
			t.Errorf("response %d: %q, want %q", i, r.body, w.body)
		}
		if i == 3 && r.header("Content-Length") != strconv.Itoa(len(echoed("HEAD", "/d", "", "HTTP/1.1", "t.test", nil))) {
			t.Errorf("HEAD Content-Length %q", r.header("Content-Length"))
		}
		if i == 4 && r.header("Connection") != "keep-alive" {
			t.Errorf("HTTP/1.0 keep-alive response says Connection %q", r.header("Connection"))
		}
		if r.closes() != (i == 5) {
			t.Errorf("response %d: Connection %q", i, r.header("Connection"))
		}
	}
	c.closed() // /never is not answered
}

// TestPipelineMany sends more pipelined requests than the read buffer holds.
func TestPipelineMany(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	var b strings.Builder
	const n = 300
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&b, "GET /r%d HTTP/1.1\r\nHost: t.test\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("p", i%50))
		} else {
			fmt.Fprintf(&b, "POST /r%d HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n%s", i, chunk(strings.Repeat("b", i), 13))
		}
	}
	go io.WriteString(c.nc, b.String())
	for i := range n {
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", strings.Repeat("b", i)
		}
		r := c.resp(method)
		if want := echoed(method, "/r"+strconv.Itoa(i), "", "HTTP/1.1", "t.test", []byte(body)); string(r.body) != want {
			t.Fatalf("response %d: %q, want %q", i, r.body, want)
		}
	}
}

func TestHEAD(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		switch r.Path {
		case "/length":
			w.SetContentLength(11)
			if n, err := w.Write([]byte("hello world")); n != 11 || err != nil {
				panic(fmt.Sprintf("Write on HEAD = %d, %v", n, err))
			}
		case "/stream":
			w.Write([]byte("hello"))
			w.Flush()
			w.Write([]byte(" world"))
		case "/nothing":
		}
		if w.Written() != 0 {
			panic("Written counts a HEAD body")
		}
	}, nil)
	c := ts.dial(t)
	for _, p := range []string{"/length", "/stream", "/nothing"} {
		c.send("HEAD " + p + " HTTP/1.1" + host + "\r\n\r\n")
	}
	c.send("GET /nothing HTTP/1.1" + host + "\r\n\r\n")
	r := c.resp("HEAD")
	if r.header("Content-Length") != "11" || r.header("Transfer-Encoding") != "" || r.closes() {
		t.Errorf("HEAD /length: %q", r.fields)
	}
	r = c.resp("HEAD")
	if r.header("Content-Length") != "" || r.header("Transfer-Encoding") != "" || r.closes() {
		t.Errorf("HEAD /stream: %q", r.fields)
	}
	r = c.resp("HEAD")
	if r.header("Transfer-Encoding") != "" || r.closes() {
		t.Errorf("HEAD /nothing: %q", r.fields)
	}
	// the GET that follows starts right after the bodiless HEAD responses
	r = c.resp("GET")
	if r.status != 200 || r.header("Content-Length") != "0" || len(r.body) != 0 {
		t.Errorf("GET /nothing: %q %q", r.fields, r.body)
	}
}

func TestStatusWithoutBody(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		code, _ := strconv.Atoi(r.Path[1:])
		w.SetStatus(code, "")
		if r.Query == "length" {
			w.SetContentLength(100)
		}
		if n, err := w.Write([]byte("dropped")); n != 7 || err != nil {
			panic("Write on a bodiless status failed")
		}
	}, nil)
	c := ts.dial(t)
	c.send("GET /204 HTTP/1.1" + host + "\r\n\r\n" + "GET /304?length HTTP/1.1" + host + "\r\n\r\n" +
		"GET /304 HTTP/1.1" + host + "\r\n\r\n" + "GET /204?length HTTP/1.1" + host + "\r\n\r\n" + "GET /200 HTTP/1.1" + host + "\r\n\r\n")
	r := c.resp("GET")
	if r.line != "HTTP/1.1 204 No Content" || r.header("Content-Length") != "" {
		t.Errorf("204: %q %q", r.line, r.fields)
	}
	r = c.resp("GET")
	if r.status != 304 || r.header("Content-Length") != "100" {
		t.Errorf("304 with length: %q %q", r.line, r.fields)
	}
	r = c.resp("GET")
	if r.status != 304 || r.header("Content-Length") != "" || r.header("Transfer-Encoding") != "" {
		t.Errorf("304: %q %q", r.line, r.fields)
	}
	r = c.resp("GET") // readResponse refuses a Content-Length on a 204
	if r.status != 204 {
		t.Errorf("204 with length: %q %q", r.line, r.fields)
	}
	r = c.resp("GET")
	if r.status != 200 || string(r.body) != "dropped" {
		t.Errorf("200 after them: %q %q", r.line, r.body)
	}
}

func TestStatusLineAndHeaders(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		switch r.Path {
		case "/custom":
			w.SetStatus(299, "299 Quite Fine")
		case "/unknown":
			w.SetStatus(599, "")
		case "/bare":
			w.SetStatus(201, "201")
		}
		w.AddHeader("X-Ok", "1")
		w.AddHeader("X-Bad", "a\r\nInjected: 1")
		w.AddHeader("X-Bad2", "a\nInjected: 2")
		w.AddHeader("Bad Name", "v")
		w.AddHeader("", "v")
		w.AddHeader("X-Multi", "a")
		w.AddHeader("X-Multi", "b")
		if w.Status() != 0 && w.Status() != 299 && w.Status() != 599 && w.Status() != 201 {
			panic("Status")
		}
		if w.Committed() || w.Request() != r {
			panic("Committed or Request")
		}
		w.Write([]byte("x"))
		if !w.Committed() || w.Written() != 1 {
			panic("Committed after Write")
		}
		w.AddHeader("X-Late", "1") // after the head: dropped
	}, nil)
	c := ts.dial(t)
	for _, tt := range []struct{ path, line string }{
		{"/custom", "HTTP/1.1 299 Quite Fine"},
		{"/unknown", "HTTP/1.1 599 Status"},
		{"/bare", "HTTP/1.1 201 "},
		{"/default", "HTTP/1.1 200 OK"},
	} {
		c.send("GET " + tt.path + " HTTP/1.1" + host + "\r\n\r\n")
		r := c.resp("GET")
		if r.line != tt.line {
			t.Errorf("%s: status line %q, want %q", tt.path, r.line, tt.line)
		}
		if r.header("X-Ok") != "1" || r.count("X-Multi") != 2 || r.count("Injected") != 0 || r.count("X-Bad") != 0 ||
			r.count("X-Bad2") != 0 || r.count("Bad Name") != 0 || r.count("X-Late") != 0 {
			t.Errorf("%s: headers %q", tt.path, r.fields)
		}
		if !r.chunked || string(r.body) != "x" {
			t.Errorf("%s: body %q chunked %v", tt.path, r.body, r.chunked)
		}
	}
}

func TestHandlerDate(t *testing.T) {
	const date = "Sun, 06 Nov 1994 08:49:37 GMT"
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/own" {
			w.AddHeader("date", date)
		}
	}, nil)
	c := ts.dial(t)
	c.send("GET /own HTTP/1.1" + host + "\r\n\r\nGET / HTTP/1.1" + host + "\r\n\r\n")
	r := c.resp("GET")
	if r.count("Date") != 1 || r.header("Date") != date {
		t.Errorf("handler's Date: %q", r.fields)
	}
	r = c.resp("GET")
	if r.count("Date") != 1 || r.header("Date") == date {
		t.Errorf("server's Date: %q", r.fields)
	}
}

func TestStreamChunked(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 2000) // past the gathering size: written at once
	ts := startServer(t, func(w *Response, r *Request) {
		w.Write([]byte("hello "))
		if err := w.Flush(); err != nil {
			panic(err)
		}
		w.Write(nil) // no zero-length chunk: it would end the body
		w.Write([]byte("world"))
		w.Write([]byte(big))
		w.Write([]byte("!"))
	}, nil)
	c := ts.dial(t)
	for range 2 {
		c.send("GET /s HTTP/1.1" + host + "\r\n\r\n")
		r := c.resp("GET")
		if !r.chunked || r.header("Content-Length") != "" || r.closes() {
			t.Errorf("framing: %q", r.fields)
		}
		if string(r.body) != "hello world"+big+"!" {
			t.Errorf("body of %d bytes, want %d", len(r.body), len("hello world"+big+"!"))
		}
	}
}

func TestStreamHTTP10(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		w.Write([]byte("one "))
		w.Flush()
		w.Write([]byte("two"))
	}, nil)
	for _, conn := range []string{"", "Connection: keep-alive\r\n"} {
		c := ts.dial(t)
		c.send("GET /s HTTP/1.0\r\n" + conn + "\r\nGET /never HTTP/1.0\r\n\r\n")
		r := c.resp("GET")
		if !r.eof || r.chunked || r.header("Content-Length") != "" || !r.closes() {
			t.Errorf("%q: framing %q", conn, r.fields)
		}
		if string(r.body) != "one two" {
			t.Errorf("%q: body %q", conn, r.body)
		}
	}
}

func TestHTTP10KeepAlive(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	r := c.resp("GET")
	if r.header("Connection") != "keep-alive" || r.status != 200 {
		t.Fatalf("first: %q", r.fields)
	}
	c.send("GET /b HTTP/1.0\r\n\r\n")
	r = c.resp("GET")
	if !r.closes() || string(r.body) != echoed("GET", "/b", "", "HTTP/1.0", "", nil) {
		t.Fatalf("second: %q %q", r.fields, r.body)
	}
	c.closed()
}

func TestConnectionClose(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/setclose" {
			w.SetClose()
		}
		w.SetContentLength(2)
		w.Write([]byte("ok"))
	}, nil)
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\nConnection: close\r\n\r\n")
	if r := c.resp("GET"); !r.closes() {
		t.Errorf("no Connection: close: %q", r.fields)
	}
	c.closed()
	c = ts.dial(t)
	c.send("GET /setclose HTTP/1.1" + host + "\r\n\r\nGET / HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); !r.closes() {
		t.Errorf("SetClose: no Connection: close: %q", r.fields)
	}
	c.closed()
}

func TestShortBodyCloses(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		w.SetContentLength(10)
		if r.Path == "/none" {
			return
		}
		w.Write([]byte("abc"))
	}, nil)
	for _, p := range []string{"/some", "/none"} {
		c := ts.dial(t)
		c.send("GET " + p + " HTTP/1.1" + host + "\r\n\r\nGET /next HTTP/1.1" + host + "\r\n\r\n")
		r, err := readResponse(c.br, "GET")
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: want a body cut short, got %v", p, err)
		}
		if r.header("Content-Length") != "10" || (p == "/some" && string(r.body) != "abc") {
			t.Errorf("%s: %q %q", p, r.fields, r.body)
		}
		c.closed()
	}
}

func TestBodyOverrun(t *testing.T) {
	type result struct {
		n1, n2 int
		e1, e2 error
	}
	results := make(chan result, 4)
	big := bytes.Repeat([]byte("x"), 20000)
	ts := startServer(t, func(w *Response, r *Request) {
		var res result
		if r.Path == "/big" {
			w.SetContentLength(10000)
			res.n1, res.e1 = w.Write(big)
		} else {
			w.SetContentLength(5)
			res.n1, res.e1 = w.Write([]byte("hello world"))
		}
		res.n2, res.e2 = w.Write([]byte("more"))
		results <- res
	}, nil)
	c := ts.dial(t)
	c.send("GET /small HTTP/1.1" + host + "\r\n\r\nGET /big HTTP/1.1" + host + "\r\n\r\nGET /small HTTP/1.1" + host + "\r\n\r\n")
	for i, want := range []string{"hello", string(big[:10000]), "hello"} {
		r := c.resp("GET")
		if string(r.body) != want {
			t.Errorf("response %d: body of %d bytes, want %d", i, len(r.body), len(want))
		}
		res := <-results
		if res.n1 != len(want) || !errors.Is(res.e1, ErrBodyOverrun) || res.n2 != 0 || !errors.Is(res.e2, ErrBodyOverrun) {
			t.Errorf("response %d: Write results %+v", i, res)
		}
	}
	// exactly the declared bytes were sent: the third response parsed right
	// after the second, and the connection is still usable
	c.send("GET /small HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); string(r.body) != "hello" {
		t.Errorf("after overruns: %q", r.body)
	}
	<-results
}

func TestWriteFile(t *testing.T) {
	content := make([]byte, 300<<10)
	rand.New(rand.NewSource(2)).Read(content)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		f, err := os.Open(name)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		size := int64(len(content))
		var res result
		switch r.Path {
		case "/length":
			w.SetContentLength(size)
			res.n, res.err = w.WriteFile(f, size)
		case "/prefix": // a Write, then the file
			w.SetContentLength(size + 3)
			w.Write([]byte("pre"))
			res.n, res.err = w.WriteFile(f, size)
		case "/truncated": // declared length shorter than the file
			w.SetContentLength(100)
			res.n, res.err = w.WriteFile(f, size)
		case "/chunked":
			res.n, res.err = w.WriteFile(f, size)
		case "/shortfile":
			w.SetContentLength(size + 10)
			res.n, res.err = w.WriteFile(f, size+10)
		}
		results <- res
	}, nil)
	c := ts.dial(t)
	check := func(path string, wantBody []byte, wantN int64, wantErr bool, chunked bool) {
		t.Helper()
		c.send("GET " + path + " HTTP/1.1" + host + "\r\n\r\n")
		r := c.resp("GET")
		if !bytes.Equal(r.body, wantBody) || r.chunked != chunked {
			t.Errorf("%s: body of %d bytes (chunked %v), want %d", path, len(r.body), r.chunked, len(wantBody))
		}
		res := <-results
		if res.n != wantN || (res.err != nil) != wantErr {
			t.Errorf("%s: WriteFile = %d, %v", path, res.n, res.err)
		}
	}
	check("/length", content, int64(len(content)), false, false)
	check("/prefix", append([]byte("pre"), content...), int64(len(content)), false, false)
	check("/truncated", content[:100], 100, false, false)
	check("/chunked", content, int64(len(content)), false, true)

	c.send("HEAD /length HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("HEAD"); r.header("Content-Length") != strconv.Itoa(len(content)) {
		t.Errorf("HEAD: %q", r.fields)
	}
	if res := <-results; res.n != 0 || res.err != nil {
		t.Errorf("HEAD: WriteFile = %d, %v", res.n, res.err)
	}

	c.send("GET /shortfile HTTP/1.1" + host + "\r\n\r\n")
	r, err := readResponse(c.br, "GET")
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(r.body, content) {
		t.Errorf("short file: %v, body of %d bytes", err, len(r.body))
	}
	if res := <-results; res.n != int64(len(content)) || res.err == nil {
		t.Errorf("short file: WriteFile = %d, %v", res.n, res.err)
	}
	c.closed()
}

func TestAbort(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		switch r.Path {
		case "/flushed":
			w.SetContentLength(100)
			w.Write([]byte("partial"))
			w.Flush()
		case "/chunked":
			w.Write([]byte("partial"))
			w.Flush()
			w.Write([]byte("gathered, never sent"))
		case "/gathered":
			w.SetContentLength(100)
			w.Write([]byte("gathered, never sent"))
		}
		w.Abort()
	}, nil)
	c := ts.dial(t)
	c.send("GET /flushed HTTP/1.1" + host + "\r\n\r\nGET /next HTTP/1.1" + host + "\r\n\r\n")
	r, err := readResponse(c.br, "GET")
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(r.body) != "partial" {
		t.Errorf("flushed: %v %q", err, r.body)
	}
	c.closed()

	c = ts.dial(t)
	c.send("GET /chunked HTTP/1.1" + host + "\r\n\r\nGET /next HTTP/1.1" + host + "\r\n\r\n")
	r, err = readResponse(c.br, "GET")
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) || string(r.body) != "partial" {
		t.Errorf("chunked: %v %q: the body must not end with a last chunk", err, r.body)
	}
	c.closed()

	c = ts.dial(t)
	c.send("GET /gathered HTTP/1.1" + host + "\r\n\r\n")
	c.closed()
}

func TestExpectContinue(t *testing.T) {
	proceed := make(chan struct{})
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/wait" {
			select {
			case <-proceed:
			case <-time.After(5 * time.Second):
			}
		}
		echo(w, r)
	}, nil)
	c := ts.dial(t)
	c.send("POST /wait HTTP/1.1" + host + "\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	c.quiet(150 * time.Millisecond) // no 100 before the handler reads
	close(proceed)
	line, err := readLineCRLF(c.br)
	if err != nil || line != "HTTP/1.1 100 Continue" {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	if line, err := readLineCRLF(c.br); err != nil || line != "" {
		t.Fatalf("100 Continue has a header section: %q, %v", line, err)
	}
	c.send("hello")
	r := c.resp("POST")
	if string(r.body) != echoed("POST", "/wait", "", "HTTP/1.1", "t.test", []byte("hello")) || r.closes() {
		t.Errorf("final response %q %q", r.fields, r.body)
	}
	// still keep-alive; a client that sends the body at once may get a 100 or not
	c.send("POST /now HTTP/1.1" + host + "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
	r = c.resp("POST")
	if r.status == 100 {
		r = c.resp("POST")
	}
	if string(r.body) != echoed("POST", "/now", "", "HTTP/1.1", "t.test", []byte("hi")) {
		t.Errorf("second: %q", r.body)
	}
	// no 100 for an empty body
	c.send("POST /empty HTTP/1.1" + host + "\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
	if r := c.resp("POST"); r.status != 200 {
		t.Errorf("empty body: status %d", r.status)
	}
}

func TestExpectContinueHTTP10(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
	r := c.resp("POST")
	if r.status != 200 || string(r.body) != echoed("POST", "/x", "", "HTTP/1.0", "", []byte("hi")) {
		t.Errorf("%d %q: an HTTP/1.0 expectation is ignored (RFC 9110 10.1.1)", r.status, r.body)
	}
}

func TestExpectContinueNotRead(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		w.SetStatus(403, "")
		w.SetContentLength(2)
		w.Write([]byte("no"))
	}, nil)
	c := ts.dial(t)
	c.send("POST /deny HTTP/1.1" + host + "\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r := c.resp("POST")
	if r.status != 403 || string(r.body) != "no" {
		t.Fatalf("got %q %q, want the 403 without a 100 before it", r.line, r.body)
	}
	if !r.closes() {
		t.Errorf("no Connection: close, yet the body was not read (RFC 9110 10.1.1)")
	}
	c.closed()
}

// TestUnreadBody: a body the handler leaves unread is read and dropped when
// small, and the connection carries on; else the response says Connection:
// close (RFC 9110 10.1.1: a server answering before reading the whole content
// SHOULD say whether it closes) and the connection closes.
func TestUnreadBody(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/next" {
			echo(w, r)
			return
		}
		w.SetStatus(413, "")
		w.SetContentLength(3)
		w.Write([]byte("big"))
	}, nil)
	const next = "GET /next HTTP/1.1" + host + "\r\n\r\n"
	big := strings.Repeat("u", 1<<20)
	tests := []struct {
		name, req string
		keep      bool
	}{
		{"small", "Content-Length: 1000\r\n\r\n" + strings.Repeat("s", 1000) + next, true},
		{"small chunked", "Transfer-Encoding: chunked\r\n\r\n" + chunk(strings.Repeat("s", 1000), 100) + next, true},
		{"at the discard limit", "Content-Length: 262144\r\n\r\n" + big[:256<<10] + next, true},
		{"just over the discard limit", "Content-Length: 262145\r\n\r\n" + big[:256<<10+1] + next, false},
		{"large", "Content-Length: 1048576\r\n\r\n" + big + next, false},
		{"large, partly sent", "Content-Length: 1048576\r\n\r\n" + big[:1000], false},
		{"large chunked", "Transfer-Encoding: chunked\r\n\r\n" + chunk(big, 50000) + next, false},
		{"bad chunked", "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n" + next, false},
		{"expect, not sent", "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n", false},
		{"expect, sent anyway", "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("s", 1000) + next, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			go io.WriteString(c.nc, "POST /upload HTTP/1.1"+host+"\r\n"+tt.req)
			r := c.resp("POST")
			if r.status != 413 || string(r.body) != "big" {
				t.Fatalf("status %d %q", r.status, r.body)
			}
			if r.closes() == tt.keep {
				t.Errorf("Connection: close is %v, want %v", r.closes(), !tt.keep)
			}
			if !tt.keep {
				c.closed()
				return
			}
			if r := c.resp("GET"); string(r.body) != echoed("GET", "/next", "", "HTTP/1.1", "t.test", nil) {
				t.Errorf("next request: %q", r.body)
			}
		})
	}
	// the rest of the body arrives after the handler answered
	c := ts.dial(t)
	c.send("POST /upload HTTP/1.1" + host + "\r\nContent-Length: 10\r\n\r\n01234")
	time.Sleep(50 * time.Millisecond)
	c.send("56789" + next)
	if r := c.resp("POST"); r.status != 413 || r.closes() {
		t.Errorf("late body: %d %q", r.status, r.fields)
	}
	if r := c.resp("GET"); string(r.body) != echoed("GET", "/next", "", "HTTP/1.1", "t.test", nil) {
		t.Errorf("late body, next request: %q", r.body)
	}
}

func TestBodyLimit(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		r.Body.Limit(10)
		b, err := io.ReadAll(r.Body)
		results <- result{len(b), err}
		if err != nil {
			w.SetStatus(BodyError(err), "")
			return
		}
		w.SetContentLength(int64(len(b)))
		w.Write(b)
	}, nil)
	tests := []struct {
		name, req string
		status    int
	}{
		{"length at the limit", "Content-Length: 10\r\n\r\n0123456789", 200},
		{"length over the limit", "Content-Length: 11\r\n\r\n0123456789a", 413},
		{"chunked at the limit", "Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", 200},
		{"chunked over the limit", "Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789a\r\n0\r\n\r\n", 413},
		{"one big chunk", "Transfer-Encoding: chunked\r\n\r\nfffffff\r\n", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send("POST /l HTTP/1.1" + host + "\r\n" + tt.req)
			r := c.resp("POST")
			res := <-results
			if r.status != tt.status {
				t.Errorf("status %d, want %d (read %d, %v)", r.status, tt.status, res.n, res.err)
			}
			if tt.status == 413 && !errors.Is(res.err, ErrTooLarge) {
				t.Errorf("error %v, want ErrTooLarge", res.err)
			}
			if tt.status == 200 && (res.n != 10 || string(r.body) != "0123456789") {
				t.Errorf("read %d: %q", res.n, r.body)
			}
		})
	}
}

// TestBodyZeroLengthRead: a Read into an empty buffer reads nothing and does
// not break the body (io.Reader: "Implementations of Read are discouraged
// from returning a zero byte count with a nil error, except when len(p) == 0").
func TestBodyZeroLengthRead(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		n, err := r.Body.Read(nil)
		results <- result{n, err}
		echo(w, r)
	}, nil)
	for _, framing := range []string{"Content-Length: 5\r\n\r\n", "Transfer-Encoding: chunked\r\n\r\n5\r\n"} {
		c := ts.dial(t)
		c.send("POST /z HTTP/1.1" + host + "\r\n" + framing)
		res := <-results // the body is not there yet: the read finds nothing buffered
		c.send("hello")
		if strings.Contains(framing, "chunked") {
			c.send("\r\n0\r\n\r\n")
		}
		r := c.resp("POST")
		if res.n != 0 || res.err != nil {
			t.Errorf("%q: Read(nil) = %d, %v; want 0, nil", framing, res.n, res.err)
		}
		if want := echoed("POST", "/z", "", "HTTP/1.1", "t.test", []byte("hello")); string(r.body) != want {
			t.Errorf("%q: after Read(nil): %d %q, want %q", framing, r.status, r.body, want)
		}
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	const d = 200 * time.Millisecond
	ts := startServer(t, echo, func(s *Server) { s.ReadHeaderTimeout = d })
	c := ts.dial(t)
	start := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: t.test\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func(nc net.Conn) { // slowloris: a byte now and then, never the end of the head
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
				if _, err := nc.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}(c.nc)
	r := c.resp("GET")
	if el := time.Since(start); r.status != 408 || el < d-20*time.Millisecond || el > d+time.Second {
		t.Errorf("status %d after %v, want 408 after %v", r.status, el, d)
	}
	if !r.closes() {
		t.Errorf("408 without Connection: close")
	}
	c.closed()

	// the timeout counts from the request's first byte, not from the accept
	c = ts.dial(t)
	time.Sleep(d + 50*time.Millisecond)
	c.send("GET /late HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 {
		t.Errorf("request after an idle wait: %d", r.status)
	}
	// a silent connection is closed without a 408
	c = ts.dial(t)
	c.send("\r\n")
	c.closed()
}

func TestIdleTimeout(t *testing.T) {
	const d = 150 * time.Millisecond
	ts := startServer(t, echo, func(s *Server) { s.IdleTimeout = d })
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	c.resp("GET")
	start := time.Now()
	c.closed()
	if el := time.Since(start); el < d-20*time.Millisecond || el > d+time.Second {
		t.Errorf("closed after %v, want %v", el, d)
	}
	waitFor(t, "the connection count to drop", func() bool { return ts.Conns() == 0 })
}

func TestReadTimeout(t *testing.T) {
	const d = 200 * time.Millisecond
	ts := startServer(t, echo, func(s *Server) { s.ReadTimeout = d })
	c := ts.dial(t)
	start := time.Now()
	c.send("POST /slow HTTP/1.1" + host + "\r\nContent-Length: 100\r\n\r\n0123456789")
	r := c.resp("POST")
	if el := time.Since(start); r.status != 408 || el < d-20*time.Millisecond || el > d+time.Second {
		t.Errorf("status %d (%q) after %v, want 408 after %v", r.status, r.body, el, d)
	}
	c.closed()
}

func TestMaxHeaderBytes(t *testing.T) {
	ts := startServer(t, echo, func(s *Server) { s.MaxHeaderBytes = 8 << 10 })
	tests := []struct {
		name, req string
		status    int
	}{
		{"under", "GET / HTTP/1.1" + host + "\r\nX-Big: " + strings.Repeat("a", 7<<10) + "\r\n\r\n", 200},
		{"large header", "GET / HTTP/1.1" + host + "\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431},
		{"many headers", "GET / HTTP/1.1" + host + strings.Repeat("\r\nX-Many: abcdefghijklmnopqrstuvwxyz", 500) + "\r\n\r\n", 431},
		{"long request line", "GET /" + strings.Repeat("a", 20<<10) + " HTTP/1.1" + host + "\r\n\r\n", 414},
		{"endless request line", "GET /" + strings.Repeat("a", 20<<10), 414},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			go io.WriteString(c.nc, tt.req)
			r := c.resp("GET")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status != 200 {
				if !r.closes() {
					t.Errorf("no Connection: close")
				}
				c.closed()
			}
		})
	}
}

func TestMaxHeaderBytesDefault(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	big := "GET /big HTTP/1.1" + host + "\r\nX-Big: " + strings.Repeat("b", 60<<10) + "\r\n\r\n"
	go io.WriteString(c.nc, big+"GET /after HTTP/1.1"+host+"\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 {
		t.Fatalf("60 KiB head: status %d", r.status)
	}
	// served from the same connection once its big buffer was dropped
	if r := c.resp("GET"); string(r.body) != echoed("GET", "/after", "", "HTTP/1.1", "t.test", nil) {
		t.Fatalf("after the big head: %q", r.body)
	}
	c.send("GET /again HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 {
		t.Fatalf("again: %d", r.status)
	}
	c = ts.dial(t)
	go io.WriteString(c.nc, "GET /big HTTP/1.1"+host+"\r\nX-Big: "+strings.Repeat("b", 70<<10)+"\r\n\r\n")
	if r := c.resp("GET"); r.status != 431 {
		t.Fatalf("70 KiB head: status %d", r.status)
	}
	c.closed()
}

// TestMaxHeaderBytesBelowReadBuffer: a limit smaller than the 4 KiB read
// buffer holds too, also when the whole head arrives in one read.
func TestMaxHeaderBytesBelowReadBuffer(t *testing.T) {
	ts := startServer(t, echo, func(s *Server) { s.MaxHeaderBytes = 1024 })
	tests := []struct {
		name, req string
		status    int
	}{
		{"large header", "GET / HTTP/1.1" + host + "\r\nX-Big: " + strings.Repeat("a", 2000) + "\r\n\r\n", 431},
		{"long request line", "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1" + host + "\r\n\r\n", 414},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tt.req)
			if r := c.resp("GET"); r.status != tt.status {
				t.Errorf("a %d-byte head with MaxHeaderBytes 1024: status %d, want %d", len(tt.req), r.status, tt.status)
			}
		})
	}
}

// TestMaxHeaderBytesBoundary: a head of exactly MaxHeaderBytes (request line
// to the empty line included) is served, one byte more is refused, whether
// it arrives at once or in pieces.
func TestMaxHeaderBytesBoundary(t *testing.T) {
	for _, limit := range []int{1024, 8192} {
		ts := startServer(t, echo, func(s *Server) { s.MaxHeaderBytes = limit })
		for _, extra := range []int{0, 1} {
			for _, pieces := range []bool{false, true} {
				const pre = "GET / HTTP/1.1\r\nHost: t.test\r\nX-Pad: "
				req := pre + strings.Repeat("p", limit+extra-len(pre)-4) + "\r\n\r\n"
				if len(req) != limit+extra {
					t.Fatal(len(req))
				}
				c := ts.dial(t)
				if pieces {
					for rest := req; rest != ""; {
						n := min(700, len(rest))
						c.send(rest[:n])
						rest = rest[n:]
						time.Sleep(time.Millisecond)
					}
				} else {
					c.send(req)
				}
				want := 200
				if extra > 0 {
					want = 431
				}
				if r := c.resp("GET"); r.status != want {
					t.Errorf("limit %d, head of %d bytes (pieces %v): status %d, want %d", limit, len(req), pieces, r.status, want)
				}
			}
		}
	}
}

// TestBadHeadRequest: a refused HEAD gets no body and no Content-Length
// (not 0, which is not what a GET would get: RFC 9110 8.6); the GET does.
func TestBadHeadRequest(t *testing.T) {
	ts := startServer(t, echo, nil)
	lengths := map[string]string{}
	for _, m := range []string{"GET", "HEAD"} {
		c := ts.dial(t)
		c.send(m + " / HTTP/1.1\r\n\r\n") // no Host: 400
		r := c.resp(m)
		if r.status != 400 {
			t.Fatalf("%s: status %d, want 400", m, r.status)
		}
		if m == "HEAD" && len(r.body) != 0 {
			t.Errorf("HEAD: body %q", r.body)
		}
		for _, f := range r.fields {
			if f.Name == "Content-Length" {
				lengths[m] = f.Value
			}
		}
		c.closed()
	}
	if lengths["GET"] == "" || lengths["GET"] == "0" || lengths["HEAD"] != "" {
		t.Errorf("Content-Length: GET %q, HEAD %q; want the message's length for GET, none for HEAD", lengths["GET"], lengths["HEAD"])
	}
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, echo, nil)
	tests := []struct {
		name, req string
		status    int
	}{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505},
		{"PRI preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"CONNECT", "CONNECT t.test:443 HTTP/1.1" + host + "\r\n\r\n", 501},
		{"gzip, chunked", "POST / HTTP/1.1" + host + "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"expectation", "POST / HTTP/1.1" + host + "\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx", 417},
		{"CL and TE", "POST / HTTP/1.1" + host + "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two lengths", "POST / HTTP/1.1" + host + "\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"bare CR", "GET / HTTP/1.1" + host + "\r\nX: a\rb\r\n\r\n", 400},
		{"bare CR line end", "GET / HTTP/1.1" + host + "\r\nX: a\r\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1" + host + "\r\nX: a\r\n b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1" + host + "\r\nContent-Length : 3\r\n\r\nabc", 400},
		{"bare CR before the request line", "\rGET / HTTP/1.1" + host + "\r\n\r\n", 400},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tt.req + "GET /next HTTP/1.1" + host + "\r\n\r\n")
			r := c.resp("GET")
			if r.status != tt.status {
				t.Errorf("status %d (%q), want %d", r.status, r.body, tt.status)
			}
			if !r.closes() || !strings.HasPrefix(string(r.body), strconv.Itoa(tt.status)) {
				t.Errorf("response %q %q", r.fields, r.body)
			}
			c.closed()
		})
	}
}

// TestRejectHEADHasNoBody: the error response to a HEAD request has no body
// (RFC 9110 9.3.2: "the server MUST NOT send content in the response").
func TestRejectHEADHasNoBody(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("HEAD / HTTP/1.1\r\nContent-Length: x" + host + "\r\n\r\n")
	r := c.resp("HEAD")
	if r.status != 400 {
		t.Fatalf("status %d", r.status)
	}
	if b, _ := io.ReadAll(c.br); len(b) != 0 {
		t.Errorf("%d bytes of content after the 400 to a HEAD request: %q", len(b), b)
	}
}

// TestRejectLingers: the answer to a refused request reaches a client that is
// still sending, rather than being destroyed by a reset.
func TestRejectLingers(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	go io.WriteString(c.nc, "GET / HTTP/2.0\r\n\r\n"+strings.Repeat("junk", 100<<10))
	r := c.resp("GET")
	if r.status != 505 {
		t.Errorf("status %d", r.status)
	}
	if _, err := io.ReadAll(c.br); err != nil {
		t.Errorf("after the 505: %v", err)
	}
}

func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		switch r.Path {
		case "/panic":
			panic("boom")
		case "/panic-watching": // with the Gone watch reading the connection
			if r.Gone() == nil {
				panic("no watch")
			}
			time.Sleep(10 * time.Millisecond)
			panic("boom")
		}
		echo(w, r)
	}, nil)
	ts.allowPanic = true
	c := ts.dial(t)
	c.send("GET /panic HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 500 || !r.closes() {
		t.Errorf("status %d %q", r.status, r.fields)
	}
	c.closed()
	if !strings.Contains(ts.log.String(), "boom") {
		t.Errorf("the panic was not logged: %s", ts.log.String())
	}
	c = ts.dial(t)
	c.send("GET /panic-watching HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 500 || !r.closes() {
		t.Errorf("watching: status %d %q", r.status, r.fields)
	}
	c.closed()
	c = ts.dial(t)
	c.send("GET /ok HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 {
		t.Errorf("after a panic: %d", r.status)
	}
}

func TestGoneOnClientClose(t *testing.T) {
	started := make(chan struct{}, 1)
	results := make(chan string, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		io.Copy(io.Discard, r.Body)
		g := r.Gone()
		if g == nil {
			results <- "nil"
			return
		}
		started <- struct{}{}
		start := time.Now()
		select {
		case <-g:
			results <- "gone after " + time.Since(start).String()
			w.SetContentLength(4)
			w.Write([]byte("gone"))
		case <-time.After(3 * time.Second):
			results <- "not gone"
		}
	}, nil)

	t.Run("close", func(t *testing.T) {
		c := ts.dial(t)
		c.send("GET /wait HTTP/1.1" + host + "\r\n\r\n")
		<-started
		time.Sleep(20 * time.Millisecond)
		c.nc.Close()
		if res := <-results; !strings.HasPrefix(res, "gone") {
			t.Errorf("handler: %s", res)
		}
	})
	t.Run("half close", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /wait HTTP/1.1" + host + "\r\nContent-Length: 2\r\n\r\nhi")
		<-started
		time.Sleep(20 * time.Millisecond)
		c.closeWrite()
		if res := <-results; !strings.HasPrefix(res, "gone") {
			t.Errorf("handler: %s", res)
		}
		// the response still reaches the half-closed client
		if r := c.resp("POST"); string(r.body) != "gone" {
			t.Errorf("response %q", r.body)
		}
		c.closed()
	})
}

func TestGoneNotFiredByPipelinedRequest(t *testing.T) {
	started := make(chan struct{}, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path != "/wait" {
			echo(w, r)
			return
		}
		g := r.Gone()
		started <- struct{}{}
		res := "timeout"
		select {
		case <-g:
			res = "gone"
		case <-time.After(250 * time.Millisecond):
		}
		w.SetContentLength(int64(len(res)))
		w.Write([]byte(res))
	}, nil)
	for _, next := range []string{
		"GET /second HTTP/1.1" + host + "\r\n\r\n",
		"POST /second HTTP/1.1" + host + "\r\nContent-Length: 3\r\n\r\nabc",
		"\r\nGET /second HTTP/1.1" + host + "\r\n\r\n",
	} {
		c := ts.dial(t)
		c.send("GET /wait HTTP/1.1" + host + "\r\n\r\n")
		<-started
		time.Sleep(30 * time.Millisecond) // the watch is reading now
		c.send(next[:1])
		time.Sleep(30 * time.Millisecond) // only the first byte of the next request was there
		c.send(next[1:])
		if r := c.resp("GET"); string(r.body) != "timeout" {
			t.Errorf("%q: Gone fired when the client sent its next request (%q)", next, r.body)
		}
		method := next[:strings.IndexByte(next, ' ')]
		method = strings.TrimSpace(method)
		r := c.resp(method)
		body := ""
		if method == "POST" {
			body = "abc"
		}
		if want := echoed(method, "/second", "", "HTTP/1.1", "t.test", []byte(body)); string(r.body) != want {
			t.Errorf("%q: next request answered %d %q, want %q", next, r.status, r.body, want)
		}
		// and a third, to be sure the framing is back in step
		c.send("GET /third HTTP/1.1" + host + "\r\n\r\n")
		if r := c.resp("GET"); string(r.body) != echoed("GET", "/third", "", "HTTP/1.1", "t.test", nil) {
			t.Errorf("%q: third %q", next, r.body)
		}
	}

	// the next request already buffered when Gone is called
	c := ts.dial(t)
	c.send("GET /wait HTTP/1.1" + host + "\r\n\r\nGET /second HTTP/1.1" + host + "\r\n\r\n")
	<-started
	if r := c.resp("GET"); string(r.body) != "timeout" {
		t.Errorf("buffered: Gone fired: %q", r.body)
	}
	if r := c.resp("GET"); string(r.body) != echoed("GET", "/second", "", "HTTP/1.1", "t.test", nil) {
		t.Errorf("buffered: next %q", r.body)
	}
}

func TestGoneNilBeforeBodyRead(t *testing.T) {
	results := make(chan [2]bool, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		before := r.Gone() == nil
		io.ReadAll(r.Body)
		after := r.Gone() != nil
		results <- [2]bool{before, after}
	}, nil)
	c := ts.dial(t)
	c.send("POST / HTTP/1.1" + host + "\r\nContent-Length: 3\r\n\r\nabc")
	c.resp("POST")
	if res := <-results; !res[0] || !res[1] {
		t.Errorf("Gone nil before the body was read: %v; non-nil after: %v", res[0], res[1])
	}
}

func TestConns(t *testing.T) {
	ts := startServer(t, echo, nil)
	var cs []*client
	for i := range 3 {
		c := ts.dial(t)
		c.send("GET / HTTP/1.1" + host + "\r\n\r\n")
		c.resp("GET")
		cs = append(cs, c)
		if n := ts.Conns(); n != int64(i+1) {
			t.Errorf("Conns() = %d, want %d", n, i+1)
		}
	}
	cs[0].nc.Close()
	waitFor(t, "Conns() == 2", func() bool { return ts.Conns() == 2 })
	cs[1].nc.Close()
	cs[2].nc.Close()
	waitFor(t, "Conns() == 0", func() bool { return ts.Conns() == 0 })
}

// TestShutdownServesFirstRequest: a connection accepted before Shutdown
// whose request arrives just after it (a forwarding pool's, as its pool
// drains) is answered, with Connection: close, not closed unread.
func TestShutdownServesFirstRequest(t *testing.T) {
	ts := startServer(t, echo, nil)
	fresh := ts.dial(t)
	waitFor(t, "the connection", func() bool { return ts.Conns() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	waitFor(t, "Shutdown", func() bool { return ts.shutting.Load() })
	fresh.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	r := fresh.resp("GET")
	if r.status != 200 || !r.closes() {
		t.Errorf("the first request after Shutdown: status %d, closes %v; want 200, Connection: close", r.status, r.closes())
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownIdle(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	c.resp("GET")
	fresh := ts.dial(t) // accepted, never sent anything
	waitFor(t, "two connections", func() bool { return ts.Conns() == 2 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Shutdown took %v for idle connections", el)
	}
	c.closed()
	fresh.closed()
	if n := ts.Conns(); n != 0 {
		t.Errorf("Conns() = %d after Shutdown", n)
	}
	<-ts.served
	if ts.serveErr != ErrServerClosed {
		t.Errorf("Serve returned %v", ts.serveErr)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Errorf("the listener still accepts")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(ln); err != ErrServerClosed {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownInFlight(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		echo(w, r)
	}, nil)
	c := ts.dial(t)
	c.send("POST /slow HTTP/1.1" + host + "\r\nContent-Length: 2\r\n\r\nhi" + "GET /never HTTP/1.1" + host + "\r\n\r\n")
	<-started
	idle := ts.dial(t)
	idle.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	idle.resp("GET")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	<-ts.served // the listeners are closed: Shutdown has begun
	idle.closed()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := c.resp("POST")
	if string(r.body) != echoed("POST", "/slow", "", "HTTP/1.1", "t.test", []byte("hi")) || !r.closes() {
		t.Errorf("in-flight response %q %q, want it complete and with Connection: close", r.fields, r.body)
	}
	c.closed()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

func TestShutdownExpired(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var entered atomic.Int32
	ts := startServer(t, func(w *Response, r *Request) {
		entered.Add(1)
		<-release
	}, nil)
	c := ts.dial(t)
	c.send("GET /stuck HTTP/1.1" + host + "\r\n\r\n")
	waitFor(t, "the handler", func() bool { return entered.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ts.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's error", err)
	}
	if el := time.Since(start); el < 90*time.Millisecond || el > time.Second {
		t.Errorf("Shutdown returned after %v", el)
	}
	// the stuck connection was closed under the handler
	if b, err := io.ReadAll(c.br); len(b) != 0 || err != nil {
		t.Errorf("after the forced close: %q, %v", b, err)
	}
}

// TestShutdownTwice: a second Shutdown while the first waits must not strand
// the first one (it would wait for its context, then force-close).
func TestShutdownTwice(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, func(w *Response, r *Request) {
		started <- struct{}{}
		<-release
		echo(w, r)
	}, nil)
	c := ts.dial(t)
	c.send("GET /slow HTTP/1.1" + host + "\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- ts.Shutdown(ctx) }()
	<-ts.served
	time.Sleep(20 * time.Millisecond)
	go func() { second <- ts.Shutdown(ctx) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if r := c.resp("GET"); r.status != 200 || !r.closes() {
		t.Errorf("response %d %q", r.status, r.fields)
	}
	for i, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("Shutdown call %d = %v, want nil once the last connection ended", i+1, err)
			}
		case <-time.After(time.Second):
			t.Errorf("Shutdown call %d still waits a second after the last connection ended", i+1)
		}
	}
}

func TestCloseListeners(t *testing.T) {
	ts := startServer(t, echo, nil)
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	c.resp("GET")
	ts.CloseListeners()
	<-ts.served
	if ts.serveErr != ErrServerClosed {
		t.Errorf("Serve returned %v", ts.serveErr)
	}
	// the accepted connection is served on, without Connection: close
	c.send("GET /more HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); r.status != 200 || r.closes() {
		t.Errorf("after CloseListeners: %d %q", r.status, r.fields)
	}
}

func TestWriteTimeout(t *testing.T) {
	const d = 150 * time.Millisecond
	type result struct {
		n   int64
		err error
		el  time.Duration
	}
	results := make(chan result, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		start := time.Now()
		buf := make([]byte, 64<<10)
		var n int64
		var err error
		for n < 1<<30 && err == nil { // the client reads nothing: the writes block, then time out
			var k int
			k, err = w.Write(buf)
			n += int64(k)
		}
		results <- result{n, err, time.Since(start)}
	}, func(s *Server) { s.WriteTimeout = d })
	c := ts.dial(t)
	c.send("GET /flood HTTP/1.1" + host + "\r\n\r\n")
	res := <-results
	if !errors.Is(res.err, os.ErrDeadlineExceeded) || res.el > 5*time.Second {
		t.Errorf("Write = %v after %d bytes and %v, want a timeout", res.err, res.n, res.el)
	}
	waitFor(t, "the connection to close", func() bool { return ts.Conns() == 0 })
}

func TestRequestAddrs(t *testing.T) {
	type addrs struct{ remote, local string }
	results := make(chan addrs, 1)
	ts := startServer(t, func(w *Response, r *Request) {
		results <- addrs{r.RemoteAddr, r.Local.String()}
	}, nil)
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	c.resp("GET")
	if a := <-results; a.remote != c.nc.LocalAddr().String() || a.local != ts.addr {
		t.Errorf("RemoteAddr %q, Local %q; want %q, %q", a.remote, a.local, c.nc.LocalAddr(), ts.addr)
	}
}

// TestRequestStringsOutliveRequest: the handler may keep the request's
// strings (not the Request): later requests on the connection do not change them.
func TestRequestStringsOutliveRequest(t *testing.T) {
	keep := make(chan [3]string, 50)
	ts := startServer(t, func(w *Response, r *Request) {
		keep <- [3]string{r.Path, r.Query, r.Header("X-Id")}
	}, nil)
	c := ts.dial(t)
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "GET /p%d?q=%d HTTP/1.1\r\nHost: t.test\r\nX-Id: id-%d\r\n\r\n", i, i, i)
	}
	c.send(b.String())
	for range 50 {
		c.resp("GET")
	}
	close(keep)
	i := 0
	for k := range keep {
		if want := [3]string{fmt.Sprintf("/p%d", i), fmt.Sprintf("q=%d", i), fmt.Sprintf("id-%d", i)}; k != want {
			t.Errorf("request %d: kept %q, want %q", i, k, want)
		}
		i++
	}
}

func TestHandlerPanicAfterCommit(t *testing.T) {
	ts := startServer(t, func(w *Response, r *Request) {
		w.SetContentLength(10)
		w.Write([]byte("part"))
		w.Flush()
		panic("late boom")
	}, nil)
	ts.allowPanic = true
	c := ts.dial(t)
	c.send("GET / HTTP/1.1" + host + "\r\n\r\nGET /next HTTP/1.1" + host + "\r\n\r\n")
	r, err := readResponse(c.br, "GET")
	if !errors.Is(err, io.ErrUnexpectedEOF) || r.status != 200 || string(r.body) != "part" {
		t.Errorf("%v %+v: want the committed response cut short, no 500 after it", err, r)
	}
	c.closed()
}

// WriteVec writes several parts as one chunk (or one run of a
// Content-Length body), in order, and cuts at the Content-Length like Write.
func TestWriteVec(t *testing.T) {
	a, b, c3 := strings.Repeat("a", 9000), strings.Repeat("b", 9000), strings.Repeat("c", 9000)
	results := make(chan error, 4)
	ts := startServer(t, func(w *Response, r *Request) {
		parts := [][]byte{[]byte(a), []byte(b), []byte(c3)}
		if r.Path == "/cut" {
			w.SetContentLength(int64(len(a) + 100))
		}
		_, err := w.WriteVec(parts)
		results <- err
		w.WriteVec([][]byte{[]byte("x"), []byte("y")}) // small: gathered
	}, nil)
	c := ts.dial(t)
	c.send("GET /chunked HTTP/1.1" + host + "\r\n\r\n")
	r := c.resp("GET")
	if !r.chunked || string(r.body) != a+b+c3+"xy" {
		t.Errorf("chunked: framing %q, body of %d bytes, want %d", r.fields, len(r.body), len(a+b+c3+"xy"))
	}
	if err := <-results; err != nil {
		t.Errorf("chunked WriteVec: %v", err)
	}
	c.send("GET /cut HTTP/1.1" + host + "\r\n\r\n")
	r = c.resp("GET")
	if string(r.body) != a+b[:100] {
		t.Errorf("cut: body of %d bytes, want %d", len(r.body), len(a)+100)
	}
	if err := <-results; !errors.Is(err, ErrBodyOverrun) {
		t.Errorf("cut WriteVec: %v, want ErrBodyOverrun", err)
	}
	// exactly the declared bytes went out: the connection is still usable
	c.send("GET /chunked HTTP/1.1" + host + "\r\n\r\n")
	if r := c.resp("GET"); string(r.body) != a+b+c3+"xy" {
		t.Errorf("after the cut: body of %d bytes", len(r.body))
	}
	<-results
}

// CloseIdle closes a keep-alive connection waiting for its next request,
// and leaves alone one that has not had its first request yet and one with a
// request under way (which then goes on as a keep-alive connection).
func TestCloseIdle(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, func(w *Response, r *Request) {
		if r.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		echo(w, r)
	}, nil)
	idle := ts.dial(t)
	idle.send("GET / HTTP/1.1" + host + "\r\n\r\n")
	idle.resp("GET")
	busy := ts.dial(t)
	busy.send("GET /slow HTTP/1.1" + host + "\r\n\r\n")
	<-started
	fresh := ts.dial(t)
	waitFor(t, "three connections", func() bool { return ts.Conns() == 3 })
	waitFor(t, "the kept connection waits", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for c := range ts.conns {
			c.mu.Lock()
			waiting := c.idle && c.reused
			c.mu.Unlock()
			if waiting {
				return true
			}
		}
		return false
	})
	if n := ts.CloseIdle(); n != 1 {
		t.Errorf("CloseIdle closed %d connections, want 1", n)
	}
	idle.closed()
	close(release)
	if r := busy.resp("GET"); r.status != 200 || r.closes() {
		t.Errorf("the request under way: %d, closes %v; want 200 and kept alive", r.status, r.closes())
	}
	busy.send("GET /again HTTP/1.1" + host + "\r\n\r\n")
	busy.resp("GET")
	fresh.send("GET /first HTTP/1.1" + host + "\r\n\r\n")
	if r := fresh.resp("GET"); r.status != 200 {
		t.Errorf("the connection without a request yet: %d", r.status)
	}
}
