package h1

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// parsed is what a valid head must parse to (the fields compared by
// TestParseHeadValid; zero values are compared too).
type parsed struct {
	Method, Target, Proto string
	Minor                 int
	Path, Query, Host     string
	Fields                []Field
	ContentLength         int64
	Chunked               bool
	close, keepAlive      bool
	expect100             bool
}

func parsedOf(r *Request) parsed {
	return parsed{r.Method, r.Target, r.Proto, r.Minor, r.Path, r.Query, r.Host, r.Fields,
		r.ContentLength, r.Chunked, r.close, r.keepAlive, r.expect100}
}

func TestParseHeadValid(t *testing.T) {
	h := func(name, value string) Field { return Field{name, value} }
	host := []Field{h("Host", "example.com")}
	tests := []struct {
		name string
		head string
		want parsed
	}{
		{"minimal GET", "GET / HTTP/1.1\r\nHost: example.com",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com", Fields: host}},
		{"trailing CR as readHead leaves it", "GET / HTTP/1.1\r\nHost: example.com\r",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com", Fields: host}},
		{"POST with length", "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 42",
			parsed{Method: "POST", Target: "/submit", Proto: "HTTP/1.1", Minor: 1, Path: "/submit", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "42")}, ContentLength: 42}},
		{"DELETE", "DELETE /x/1 HTTP/1.1\r\nHost: example.com",
			parsed{Method: "DELETE", Target: "/x/1", Proto: "HTTP/1.1", Minor: 1, Path: "/x/1", Host: "example.com", Fields: host}},
		{"extension method with tchars", "M-SEARCH! /x HTTP/1.1\r\nHost: example.com",
			parsed{Method: "M-SEARCH!", Target: "/x", Proto: "HTTP/1.1", Minor: 1, Path: "/x", Host: "example.com", Fields: host}},
		{"lower-case method is a token", "get / HTTP/1.1\r\nHost: example.com",
			parsed{Method: "get", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com", Fields: host}},
		{"query split", "GET /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: example.com",
			parsed{Method: "GET", Target: "/a/b%20c?x=1&y=2", Proto: "HTTP/1.1", Minor: 1, Path: "/a/b%20c", Query: "x=1&y=2", Host: "example.com", Fields: host}},
		{"empty query", "GET /a? HTTP/1.1\r\nHost: example.com",
			parsed{Method: "GET", Target: "/a?", Proto: "HTTP/1.1", Minor: 1, Path: "/a", Host: "example.com", Fields: host}},
		{"query split at first ?", "GET /a?b?c HTTP/1.1\r\nHost: example.com",
			parsed{Method: "GET", Target: "/a?b?c", Proto: "HTTP/1.1", Minor: 1, Path: "/a", Query: "b?c", Host: "example.com", Fields: host}},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: example.com",
			parsed{Method: "OPTIONS", Target: "*", Proto: "HTTP/1.1", Minor: 1, Path: "*", Host: "example.com", Fields: host}},
		{"absolute form: authority overrides Host", "GET http://origin.test:8080/p/q?z=9 HTTP/1.1\r\nHost: other.test",
			parsed{Method: "GET", Target: "http://origin.test:8080/p/q?z=9", Proto: "HTTP/1.1", Minor: 1, Path: "/p/q", Query: "z=9",
				Host: "origin.test:8080", Fields: []Field{h("Host", "other.test")}}},
		{"absolute form without path", "GET HTTPS://Origin.Test HTTP/1.1\r\nHost: x",
			parsed{Method: "GET", Target: "HTTPS://Origin.Test", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "Origin.Test", Fields: []Field{h("Host", "x")}}},
		{"absolute form query without path", "GET http://o.test?a=b HTTP/1.1\r\nHost: x",
			parsed{Method: "GET", Target: "http://o.test?a=b", Proto: "HTTP/1.1", Minor: 1, Path: "/", Query: "a=b", Host: "o.test", Fields: []Field{h("Host", "x")}}},
		{"absolute form in HTTP/1.0 without Host", "GET http://[::1]:80/ HTTP/1.0",
			parsed{Method: "GET", Target: "http://[::1]:80/", Proto: "HTTP/1.0", Minor: 0, Path: "/", Host: "[::1]:80", close: true}},
		{"HTTP/1.0 without Host closes", "GET /old HTTP/1.0",
			parsed{Method: "GET", Target: "/old", Proto: "HTTP/1.0", Minor: 0, Path: "/old", close: true}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.0", Minor: 0, Path: "/", Fields: []Field{h("Connection", "Keep-Alive")}, keepAlive: true}},
		{"HTTP/1.0 keep-alive among options", "GET / HTTP/1.0\r\nconnection: foo ,\tkeep-alive",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.0", Minor: 0, Path: "/", Fields: []Field{h("connection", "foo ,\tkeep-alive")}, keepAlive: true}},
		{"HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, CLOSE",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Connection", "Upgrade, CLOSE")}, close: true}},
		{"later 1.x served as 1.1", "GET / HTTP/1.9\r\nHost: example.com",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com", Fields: host}},
		{"repeated headers kept in order", "GET / HTTP/1.1\r\nAccept: a\r\nHost: example.com\r\nX-Y: 1\r\naccept: b\r\nACCEPT: c",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Accept", "a"), h("Host", "example.com"), h("X-Y", "1"), h("accept", "b"), h("ACCEPT", "c")}}},
		{"OWS trimmed, inner spaces kept", "GET / HTTP/1.1\r\nHost:example.com\r\nX-A:  \t v a l \t \r\nX-B:\r\nX-C: \t",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("X-A", "v a l"), h("X-B", ""), h("X-C", "")}}},
		{"obs-text in a value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-N: caf\xc3\xa9",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("X-N", "caf\xc3\xa9")}}},
		{"bare LF line ends", "POST /lf HTTP/1.1\nHost: example.com\nContent-Length: 3\n",
			parsed{Method: "POST", Target: "/lf", Proto: "HTTP/1.1", Minor: 1, Path: "/lf", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "3")}, ContentLength: 3}},
		{"mixed CRLF and LF", "GET / HTTP/1.1\nHost: example.com\r\nX: y",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("X", "y")}}},
		{"empty Host", "GET / HTTP/1.1\r\nHost:",
			parsed{Method: "GET", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Fields: []Field{h("Host", "")}}},
		{"equal Content-Length headers", "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\ncontent-length: 5",
			parsed{Method: "PUT", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "5"), h("content-length", "5")}, ContentLength: 5}},
		{"equal Content-Length list", "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5 ,5",
			parsed{Method: "PUT", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "5 ,5")}, ContentLength: 5}},
		{"Content-Length 0", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 000",
			parsed{Method: "POST", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "000")}}},
		{"18-digit Content-Length", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 999999999999999999",
			parsed{Method: "POST", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Content-Length", "999999999999999999")}, ContentLength: 999999999999999999}},
		{"chunked", "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: Chunked",
			parsed{Method: "POST", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Transfer-Encoding", "Chunked")}, ContentLength: -1, Chunked: true}},
		{"expect 100-continue", "POST / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-Continue\r\nContent-Length: 1",
			parsed{Method: "POST", Target: "/", Proto: "HTTP/1.1", Minor: 1, Path: "/", Host: "example.com",
				Fields: []Field{h("Host", "example.com"), h("Expect", "100-Continue"), h("Content-Length", "1")}, ContentLength: 1, expect100: true}},
		{"expect 100-continue ignored in HTTP/1.0", "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1",
			parsed{Method: "POST", Target: "/", Proto: "HTTP/1.0", Minor: 0, Path: "/",
				Fields: []Field{h("Expect", "100-continue"), h("Content-Length", "1")}, ContentLength: 1, close: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if perr := parseHead(tt.head, &r, 0); perr != nil {
				t.Fatalf("parseHead(%q) = %d %q, want success", tt.head, perr.status, perr.msg)
			}
			got := parsedOf(&r)
			if len(got.Fields) == 0 {
				got.Fields = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseHead(%q)\n got %+v\nwant %+v", tt.head, got, tt.want)
			}
		})
	}
}

func TestParseHeadInvalid(t *testing.T) {
	const hh = "\r\nHost: example.com"
	tests := []struct {
		name    string
		head    string
		maxBody int64
		status  int
	}{
		{"empty", "", 0, 400},
		{"method only", "GET", 0, 400},
		{"no version", "GET /", 0, 400},
		{"no target", "GET  HTTP/1.1" + hh, 0, 400},
		{"double space", "GET  / HTTP/1.1" + hh, 0, 400},
		{"leading space", " GET / HTTP/1.1" + hh, 0, 400},
		{"trailing space", "GET / HTTP/1.1 " + hh, 0, 400},
		{"tab separator", "GET\t/ HTTP/1.1" + hh, 0, 400},
		{"space in target", "GET /a b HTTP/1.1" + hh, 0, 400},
		{"method not a token", "G(T / HTTP/1.1" + hh, 0, 400},
		{"method with slash", "GE/T / HTTP/1.1" + hh, 0, 400},
		{"NUL in target", "GET /a\x00 HTTP/1.1" + hh, 0, 400},
		{"DEL in target", "GET /a\x7f HTTP/1.1" + hh, 0, 400},
		{"bare CR in request line", "GET /a\r HTTP/1.1" + hh, 0, 400},
		{"lower-case version", "GET / http/1.1" + hh, 0, 400},
		{"short version", "GET / HTTP/1" + hh, 0, 400},
		{"long version", "GET / HTTP/1.10" + hh, 0, 400},
		{"version letters", "GET / HTTP/x.y" + hh, 0, 400},
		{"HTTP/2.0", "GET / HTTP/2.0" + hh, 0, 505},
		{"HTTP/0.9", "GET / HTTP/0.9" + hh, 0, 505},
		{"HTTP/3.0", "GET / HTTP/3.0", 0, 505},
		{"missing Host", "GET / HTTP/1.1", 0, 400},
		{"missing Host with absolute form", "GET http://example.com/ HTTP/1.1", 0, 400},
		{"two Hosts", "GET / HTTP/1.1" + hh + "\r\nhost: example.com", 0, 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b", 0, 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b", 0, 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a", 0, 400},
		{"obs-fold", "GET / HTTP/1.1" + hh + "\r\nX-A: 1\r\n 2", 0, 400},
		{"obs-fold with tab", "GET / HTTP/1.1" + hh + "\r\nX-A: 1\r\n\t2", 0, 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : example.com", 0, 400},
		{"tab before colon", "GET / HTTP/1.1" + hh + "\r\nContent-Length\t: 5", 0, 400},
		{"empty field name", "GET / HTTP/1.1" + hh + "\r\n: x", 0, 400},
		{"no colon", "GET / HTTP/1.1" + hh + "\r\nNoColon", 0, 400},
		{"name not a token", "GET / HTTP/1.1" + hh + "\r\nX(Y): z", 0, 400},
		{"bare CR in value", "GET / HTTP/1.1" + hh + "\r\nX: a\rb", 0, 400},
		{"bare CR as a line", "GET / HTTP/1.1" + hh + "\r\n\r", 0, 400},
		{"NUL in value", "GET / HTTP/1.1" + hh + "\r\nX: a\x00b", 0, 400},
		{"DEL in value", "GET / HTTP/1.1" + hh + "\r\nX: a\x7f", 0, 400},
		{"empty line inside", "GET / HTTP/1.1" + hh + "\r\n\r\nX: y", 0, 400},
		{"Content-Length not a number", "POST / HTTP/1.1" + hh + "\r\nContent-Length: abc", 0, 400},
		{"Content-Length negative", "POST / HTTP/1.1" + hh + "\r\nContent-Length: -1", 0, 400},
		{"Content-Length plus", "POST / HTTP/1.1" + hh + "\r\nContent-Length: +5", 0, 400},
		{"Content-Length empty", "POST / HTTP/1.1" + hh + "\r\nContent-Length:", 0, 400},
		{"Content-Length inner space", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 1 2", 0, 400},
		{"Content-Length hex", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 0x10", 0, 400},
		{"Content-Length 19 digits", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 1000000000000000000", 0, 400},
		{"Content-Length conflicting", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 5\r\nContent-Length: 6", 0, 400},
		{"Content-Length conflicting list", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 5, 6", 0, 400},
		{"Content-Length empty element", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 5,,5", 0, 400},
		{"Transfer-Encoding and Content-Length", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", 0, 400},
		{"Content-Length after Transfer-Encoding", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: chunked\r\nContent-Length: 5", 0, 400},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked", 0, 400},
		{"Transfer-Encoding gzip only", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: gzip", 0, 400},
		{"Transfer-Encoding chunked not last", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: chunked, gzip", 0, 400},
		{"Transfer-Encoding identity", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: identity", 0, 400},
		{"Transfer-Encoding empty", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding:", 0, 400},
		{"Transfer-Encoding chunked-x", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: xchunked", 0, 400},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: gzip, chunked", 0, 501},
		{"Transfer-Encoding two headers", "POST / HTTP/1.1" + hh + "\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 0, 501},
		{"CONNECT authority form", "CONNECT example.com:443 HTTP/1.1" + hh, 0, 501},
		{"asterisk outside OPTIONS", "GET * HTTP/1.1" + hh, 0, 400},
		{"authority form outside CONNECT", "GET example.com:80 HTTP/1.1" + hh, 0, 400},
		{"relative target", "GET a/b HTTP/1.1" + hh, 0, 400},
		{"scheme only", "GET http:// HTTP/1.1" + hh, 0, 400},
		{"empty authority", "GET http:///p HTTP/1.1" + hh, 0, 400},
		{"userinfo in authority", "GET http://u:p@example.com/ HTTP/1.1" + hh, 0, 400},
		{"bad char in authority", "GET http://exa\"mple.com/ HTTP/1.1" + hh, 0, 400},
		{"other scheme", "GET ftp://example.com/ HTTP/1.1" + hh, 0, 400},
		{"Host port not digits", "GET / HTTP/1.1\r\nHost: x:abc", 0, 400},
		{"Host two ports", "GET / HTTP/1.1\r\nHost: x:80:81", 0, 400},
		{"Host signed port", "GET / HTTP/1.1\r\nHost: x:+80", 0, 400},
		{"Host open bracket", "GET / HTTP/1.1\r\nHost: [::1", 0, 400},
		{"Host stray bracket", "GET / HTTP/1.1\r\nHost: a]b", 0, 400},
		{"Host text after literal", "GET / HTTP/1.1\r\nHost: [::1]x", 0, 400},
		{"Host empty literal", "GET / HTTP/1.1\r\nHost: []", 0, 400},
		{"authority port not digits", "GET http://example.com:abc/ HTTP/1.1" + hh, 0, 400},
		{"unsupported expectation", "POST / HTTP/1.1" + hh + "\r\nExpect: 200-ok", 0, 417},
		{"unsupported expectation in 1.0", "POST / HTTP/1.0\r\nExpect: x", 0, 417},
		{"body over maxBody", "POST / HTTP/1.1" + hh + "\r\nContent-Length: 101", 100, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			perr := parseHead(tt.head, &r, tt.maxBody)
			if perr == nil {
				t.Fatalf("parseHead(%q) accepted it: %+v", tt.head, parsedOf(&r))
			}
			if perr.status != tt.status {
				t.Errorf("parseHead(%q) = %d (%s), want %d", tt.head, perr.status, perr.msg, tt.status)
			}
			if perr.Error() == "" {
				t.Errorf("empty reason for status %d", perr.status)
			}
		})
	}
}

// TestParseHeadConnectOriginForm: CONNECT takes only the authority form
// (RFC 9110 9.3.6, RFC 9112 3.2.3), and the server supports no CONNECT at all:
// a CONNECT with another target form must be refused like the others, not
// handed to the handler.
func TestParseHeadConnectOriginForm(t *testing.T) {
	for _, head := range []string{"CONNECT / HTTP/1.1\r\nHost: a", "CONNECT * HTTP/1.1\r\nHost: a", "CONNECT http://a/ HTTP/1.1\r\nHost: a"} {
		var r Request
		perr := parseHead(head, &r, 0)
		if perr == nil || (perr.status != 400 && perr.status != 501) {
			t.Errorf("parseHead(%q) = %v, want 501 (or 400)", head, perr)
		}
	}
}

// TestValidHost: uri-host [":" port] (RFC 9110 7.2); what must still pass.
func TestValidHost(t *testing.T) {
	for _, h := range []string{"", "x", "x:", "x:80", ":80", "a,b", "EXAMPLE.com", "[::1]", "[::1]:8080",
		"[v1.fe80::a+en1]", "127.0.0.1:443", "xn--bcher-kva.example", "b\xc3\xbccher.example", "a%20b"} {
		if !validHost(h) {
			t.Errorf("validHost(%q) = false, want true", h)
		}
	}
	for _, h := range []string{"x:abc", "x:80:81", "x:+80", "[::1", "a]b", "[::1]x", "[]", "a b", "a/b", "a@b", "[::1]:8x"} {
		if validHost(h) {
			t.Errorf("validHost(%q) = true, want false", h)
		}
	}
}

func TestParseHeadMaxBody(t *testing.T) {
	head := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100"
	var r Request
	if perr := parseHead(head, &r, 100); perr != nil || r.ContentLength != 100 {
		t.Fatalf("at the limit: %v, length %d", perr, r.ContentLength)
	}
	r = Request{}
	if perr := parseHead(head, &r, 99); perr == nil || perr.status != 413 {
		t.Fatalf("over the limit: %v, want 413", perr)
	}
	// maxBody does not apply to a chunked body (its size is not known).
	r = Request{}
	if perr := parseHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked", &r, 1); perr != nil || !r.Chunked {
		t.Fatalf("chunked with maxBody: %v", perr)
	}
}

func TestRequestHeader(t *testing.T) {
	var r Request
	if perr := parseHead("GET / HTTP/1.1\r\nHost: a\r\nX-Multi: one\r\nx-multi: two\r\nEmpty:", &r, 0); perr != nil {
		t.Fatal(perr)
	}
	for name, want := range map[string]string{"x-multi": "one", "X-MULTI": "one", "host": "a", "Empty": "", "Missing": ""} {
		if got := r.Header(name); got != want {
			t.Errorf("Header(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestBodyError(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{ErrTooLarge, 413},
		{fmt.Errorf("reading: %w", ErrTooLarge), 413},
		{os.ErrDeadlineExceeded, 408},
		{errBadChunk, 400},
		{errors.New("io: unexpected EOF"), 400},
	}
	for _, tt := range tests {
		if got := BodyError(tt.err); got != tt.want {
			t.Errorf("BodyError(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{200: "OK", 404: "Not Found", 413: "Content Too Large", 431: "Request Header Fields Too Large", 599: "Status"} {
		if got := statusText(code); got != want {
			t.Errorf("statusText(%d) = %q, want %q", code, got, want)
		}
	}
}

// FuzzParseHead checks that parseHead never panics and that what it accepts
// is well formed.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: example.com",
		"GET / HTTP/1.1\r\nHost: example.com\r",
		"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5",
		"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked",
		"GET http://h:1/x?y HTTP/1.1\r\nHost: z",
		"GET https://h HTTP/1.0",
		"OPTIONS * HTTP/1.1\r\nHost: a",
		"CONNECT a:443 HTTP/1.1\r\nHost: a",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue",
		"GET / HTTP/2.0",
		"GET / HTTP/1.1\r\nHost: a\r\n X: folded",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
	} {
		f.Add(s, int64(0))
	}
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10", int64(5))
	f.Fuzz(func(t *testing.T, head string, maxBody int64) {
		var r Request
		perr := parseHead(head, &r, maxBody)
		if perr != nil {
			switch perr.status {
			case 400, 405, 413, 417, 501, 505:
			default:
				t.Fatalf("status %d for %q", perr.status, head)
			}
			if perr.status == 413 && maxBody <= 0 {
				t.Fatalf("413 without a body limit for %q", head)
			}
			return
		}
		if !isToken(r.Method) {
			t.Errorf("method %q is not a token", r.Method)
		}
		if r.Proto != "HTTP/1.0" && r.Proto != "HTTP/1.1" {
			t.Errorf("proto %q", r.Proto)
		}
		if (r.Proto == "HTTP/1.0") != (r.Minor == 0) || r.Minor < 0 || r.Minor > 1 {
			t.Errorf("proto %q with minor %d", r.Proto, r.Minor)
		}
		if r.Chunked != (r.ContentLength == -1) {
			t.Errorf("Chunked %v with ContentLength %d", r.Chunked, r.ContentLength)
		}
		if r.ContentLength < -1 {
			t.Errorf("ContentLength %d", r.ContentLength)
		}
		if maxBody > 0 && r.ContentLength > maxBody {
			t.Errorf("ContentLength %d over maxBody %d", r.ContentLength, maxBody)
		}
		if r.Chunked && r.Minor == 0 {
			t.Errorf("chunked HTTP/1.0 request")
		}
		if r.Path == "" {
			t.Errorf("empty path")
		}
		if r.Path != "*" && r.Path[0] != '/' {
			t.Errorf("path %q", r.Path)
		}
		if r.Target == "" || strings.ContainsAny(r.Target, " \r\n\t\x00") {
			t.Errorf("target %q", r.Target)
		}
		if !validHost(r.Host) {
			t.Errorf("host %q", r.Host)
		}
		for _, fl := range r.Fields {
			if !isToken(fl.Name) {
				t.Errorf("field name %q", fl.Name)
			}
			if strings.ContainsAny(fl.Value, "\r\n\x00") {
				t.Errorf("field %q value %q has CR, LF or NUL", fl.Name, fl.Value)
			}
			if fl.Value != trimOWS(fl.Value) {
				t.Errorf("field %q value %q not trimmed", fl.Name, fl.Value)
			}
		}
		if r.Minor == 1 && r.Header("Host") == "" && !strings.Contains(strings.ToLower(head), "host:") {
			t.Errorf("HTTP/1.1 request without Host accepted")
		}
		if r.Minor == 0 && !r.keepAlive && !r.close {
			t.Errorf("HTTP/1.0 without keep-alive does not close")
		}
	})
}

func TestUnescapePath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/plain", "/plain"},
		{"/caf%C3%A9", "/caf\xc3\xa9"},
		{"/a%2Fb", "/a/b"},
		{"/bad%zz", "/bad%zz"},
		{"/trail%", "/trail%"},
		{"/trail%4", "/trail%4"},
		{"/%00x", "/\x00x"},
		{"/%41%42", "/AB"},
	} {
		if got := UnescapePath(c.in); got != c.want {
			t.Errorf("UnescapePath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzUnescapePath(f *testing.F) {
	for _, s := range []string{"/", "/a%20b", "%", "%%41", "/%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := UnescapePath(s)
		if len(got) > len(s) {
			t.Fatalf("UnescapePath(%q) grew to %q", s, got)
		}
		if !strings.Contains(s, "%") && got != s {
			t.Fatalf("UnescapePath(%q) = %q changed a string without escapes", s, got)
		}
	})
}
