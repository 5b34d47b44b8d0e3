package h2

import (
	"net/http"
	"testing"
)

// TestMalformed: the RFC 9113 rules net/http leaves to the handler, which
// the HTTP/1.1 head made of the request would otherwise hide.
func TestMalformed(t *testing.T) {
	req := func(method, uri, host string, cl int64, h http.Header) *http.Request {
		if h == nil {
			h = http.Header{}
		}
		return &http.Request{Method: method, RequestURI: uri, Host: host, ContentLength: cl, Header: h}
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		bad  bool
	}{
		{"plain", req("GET", "/a?b", "x", 0, nil), false},
		{"OPTIONS *", req("OPTIONS", "*", "x", 0, nil), false},
		{"CONNECT (h1 refuses it)", req("CONNECT", "x:443", "x:443", 0, nil), false},
		{"absolute-form :path", req("GET", "http://evil.example/abs", "good.example", 0, nil), true},
		{"* outside OPTIONS", req("GET", "*", "x", 0, nil), true},
		{"leading space", req("GET", "/", "x", 0, http.Header{"X-A": {" lead"}}), true},
		{"trailing tab", req("GET", "/", "x", 0, http.Header{"X-A": {"t\t"}}), true},
		{"inner space", req("GET", "/", "x", 0, http.Header{"X-A": {"a b"}}), false},
		{"authority with space", req("GET", "/", "x ", 0, nil), true},
		{"content-length, no DATA", req("POST", "/", "x", 0, http.Header{"Content-Length": {"5"}}), true},
		{"content-length abc", req("POST", "/", "x", 0, http.Header{"Content-Length": {"abc"}}), true},
		{"content-length -1", req("POST", "/", "x", 0, http.Header{"Content-Length": {"-1"}}), true},
		{"two content-lengths", req("POST", "/", "x", 3, http.Header{"Content-Length": {"3", "5"}}), true},
		{"content-length matches", req("POST", "/", "x", 3, http.Header{"Content-Length": {"3"}}), false},
		{"content-length 0", req("POST", "/", "x", 0, http.Header{"Content-Length": {"0"}}), false},
		{"body of unknown length", req("POST", "/", "x", -1, nil), false},
	} {
		if got := malformed(tc.r); (got != "") != tc.bad {
			t.Errorf("%s: malformed = %q, want bad=%v", tc.name, got, tc.bad)
		}
	}
}
