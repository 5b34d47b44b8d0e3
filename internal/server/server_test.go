package server

import (
	"strconv"
	"strings"
	"testing"
)

func TestRoute(t *testing.T) {
	s := &Server{mounts: []mount{{prefix: "/foo/bar", app: 2}, {prefix: "/foo", app: 1}, {prefix: "", app: 0}}}
	for _, c := range []struct {
		path     string
		app      int
		pathInfo string
	}{
		{"/", 0, "/"},
		{"/foo", 1, ""},
		{"/foo/", 1, "/"},
		{"/foo/x", 1, "/x"},
		{"/foobar", 0, "/foobar"},
		{"/foo/bar", 2, ""},
		{"/foo/bar/baz", 2, "/baz"},
		{"/foo/barn", 1, "/barn"},
	} {
		m, pi := s.route(c.path)
		if m == nil || m.app != c.app || pi != c.pathInfo {
			t.Errorf("route(%q) = %v, %q; want app %d, %q", c.path, m, pi, c.app, c.pathInfo)
		}
	}
	s = &Server{mounts: []mount{{prefix: "/only", app: 0}}}
	if m, _ := s.route("/other"); m != nil {
		t.Errorf("route(/other) matched %v without a root mount", m)
	}
}

func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "/a/": "/a", "/a/b": "/a/b"} {
		if got, err := cleanPrefix(in); err != nil || got != want {
			t.Errorf("cleanPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := cleanPrefix("nope"); err == nil {
		t.Error("cleanPrefix(nope) accepted a prefix without /")
	}
}

func hdr(status string, kv ...string) []byte {
	return []byte(status + "\x00" + strings.Join(kv, "\x00") + map[bool]string{true: "\x00", false: ""}[len(kv) > 0])
}

// sink records what writeHeader sets.
type sink struct {
	status int
	line   string
	fields []string
	length int64
	close  bool
}

func (k *sink) SetStatus(code int, line string) { k.status, k.line = code, line }
func (k *sink) AddHeader(name, value string)    { k.fields = append(k.fields, name+": "+value) }
func (k *sink) SetContentLength(n int64)        { k.length = n }
func (k *sink) SetClose()                       { k.close = true }

func TestWriteHeader(t *testing.T) {
	s := &Server{}
	for _, c := range []struct {
		name    string
		hdr     []byte
		size    int
		done    bool
		head    bool
		line    string
		fields  string
		length  int64
		close   bool
		wantErr bool
	}{
		{"length from body", hdr("200 OK", "Content-Type", "text/plain"), 5, true, false, "200 OK", "Content-Type: text/plain", 5, false, false},
		{"own reason phrase kept", hdr("299 Custom Thing"), 0, true, false, "299 Custom Thing", "", 0, false, false},
		{"streaming keeps no length", hdr("200 OK", "X-A", "1", "x-a", "2"), 5, false, false, "200 OK", "X-A: 1|x-a: 2", -1, false, false},
		{"app length kept", hdr("200 OK", "content-length", " 7"), 3, false, false, "200 OK", "", 7, false, false},
		{"hop-by-hop dropped", hdr("200 OK", "Transfer-Encoding", "chunked", "Keep-Alive", "x", "connection", "Close"), 0, true, false, "200 OK", "", 0, true, false},
		{"wisp's own X-Wisp-Unserved dropped", hdr("503 Busy", "x-wisp-unserved", "1", "X-A", "1"), 0, true, false, "503 Busy", "X-A: 1", 0, false, false},
		{"no length on 204", hdr("204 No Content"), 0, true, false, "204 No Content", "", -1, false, false},
		{"empty HEAD body gives no length", hdr("200 OK"), 0, true, true, "200 OK", "", -1, false, false},
		{"bad length", hdr("200 OK", "Content-Length", "abc"), 0, true, false, "", "", 0, false, true},
		{"negative length", hdr("200 OK", "Content-Length", "-1"), 0, true, false, "", "", 0, false, true},
		{"two lengths", hdr("200 OK", "Content-Length", "1", "Content-Length", "1"), 1, true, false, "", "", 0, false, true},
		{"bad length after other headers", hdr("200 OK", "Set-Cookie", "a=1", "Content-Type", "a", "Content-Length", "x"), 0, true, false, "", "", 0, false, true},
		{"informational", hdr("100 Continue"), 0, true, false, "", "", 0, false, true},
	} {
		k := &sink{length: -1}
		status, length, err := s.writeHeader(k, c.hdr, c.size, nil, 0, c.done, c.head)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if err != nil {
			if len(k.fields) > 0 || k.status != 0 {
				t.Errorf("%s: refused, but the app's headers %q reached the response (the 500 would carry them)", c.name, k.fields)
			}
			continue
		}
		if k.line != c.line || status != k.status || strconv.Itoa(status) != c.line[:3] {
			t.Errorf("%s: status %d line %q, want %q", c.name, status, k.line, c.line)
		}
		if got := strings.Join(k.fields, "|"); got != c.fields {
			t.Errorf("%s: headers %q, want %q", c.name, got, c.fields)
		}
		if length != c.length || k.length != c.length {
			t.Errorf("%s: length %d (set %d), want %d", c.name, length, k.length, c.length)
		}
		if k.close != c.close {
			t.Errorf("%s: close %v, want %v", c.name, k.close, c.close)
		}
	}
}
