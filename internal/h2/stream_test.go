package h2

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestChunkReader(t *testing.T) {
	in := "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
	// every split of the input across writes gives the same result
	for step := 1; step <= len(in); step++ {
		var c chunkReader
		var out bytes.Buffer
		ended := false
		for i := 0; i < len(in); i += step {
			err := c.feed([]byte(in[i:min(i+step, len(in))]), func(p []byte) error { out.Write(p); return nil }, func() { ended = true })
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if out.String() != "hello, world" || !ended {
			t.Fatalf("step %d: %q ended %v", step, out.String(), ended)
		}
	}
	var c chunkReader
	if err := c.feed([]byte("zz\r\n"), func([]byte) error { return nil }, func() {}); err == nil {
		t.Error("a malformed chunk size: no error")
	}
}

func TestRequestHead(t *testing.T) {
	r := httptest.NewRequest("POST", "/a/b?c=d", strings.NewReader("body"))
	r.Host = "shop.test"
	r.RequestURI = "/a/b?c=d"
	r.ContentLength = -1
	r.Header = http.Header{"Cookie": {"a=1; b=2"}, "Expect": {"100-continue"}, "Connection": {"x"}, "X-One": {"1", "2"}}
	head := string(requestHead(r))
	for _, want := range []string{"POST /a/b?c=d HTTP/1.1\r\nHost: shop.test\r\n", "Cookie: a=1; b=2\r\n", "X-One: 1\r\nX-One: 2\r\n",
		"Transfer-Encoding: chunked\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("head %q lacks %q", head, want)
		}
	}
	for _, bad := range []string{"Expect", "Connection"} {
		if strings.Contains(head, bad) {
			t.Errorf("head %q carries %s", head, bad)
		}
	}
	if !strings.HasSuffix(head, "\r\n\r\n") {
		t.Errorf("head %q does not end with an empty line", head)
	}
}

// The response's HTTP/1.1 bytes become the stream's status, headers and
// body, in any split.
func TestStreamResponse(t *testing.T) {
	resp := "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n" +
		"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
	for step := 1; step <= len(resp); step += 7 {
		rec := httptest.NewRecorder()
		s := newStream(rec, httptest.NewRequest("GET", "/", nil), nil, false)
		for i := 0; i < len(resp); i += step {
			if _, err := s.Write([]byte(resp[i:min(i+step, len(resp))])); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if rec.Code != 201 || rec.Body.String() != "abcde" || !s.complete() {
			t.Fatalf("step %d: %d %q complete %v", step, rec.Code, rec.Body.String(), s.complete())
		}
		h := rec.Header()
		if h.Get("Connection") != "" || h.Get("Transfer-Encoding") != "" || len(h["Set-Cookie"]) != 2 {
			t.Fatalf("step %d: headers %v", step, h)
		}
	}
	// an interim response before the real one is dropped
	rec0 := httptest.NewRecorder()
	s0 := newStream(rec0, httptest.NewRequest("GET", "/", nil), nil, false)
	s0.Write([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	if rec0.Code != 200 || rec0.Body.String() != "ok" || !s0.complete() {
		t.Errorf("after 100 Continue: %d %q", rec0.Code, rec0.Body.String())
	}
	// a body cut short of its Content-Length is not complete
	rec := httptest.NewRecorder()
	s := newStream(rec, httptest.NewRequest("GET", "/", nil), nil, false)
	s.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	if s.complete() {
		t.Error("3 of 10 bytes: complete")
	}
	s.Write([]byte("defghijXYZ"))
	if !s.complete() || rec.Body.String() != "abcdefghij" {
		t.Errorf("10 of 10 bytes: complete %v, body %q", s.complete(), rec.Body.String())
	}
}
