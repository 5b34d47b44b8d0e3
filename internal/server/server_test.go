package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
		if got := unescapePath(c.in); got != c.want {
			t.Errorf("unescapePath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzUnescapePath(f *testing.F) {
	for _, s := range []string{"/", "/a%20b", "%", "%%41", "/%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := unescapePath(s)
		if len(got) > len(s) {
			t.Fatalf("unescapePath(%q) grew to %q", s, got)
		}
		if !strings.Contains(s, "%") && got != s {
			t.Fatalf("unescapePath(%q) = %q changed a string without escapes", s, got)
		}
	})
}

func TestSplitURI(t *testing.T) {
	for _, c := range []struct{ uri, path, query string }{
		{"/a/b?x=1&y=%20", "/a/b", "x=1&y=%20"},
		{"/a?", "/a", ""},
		{"/a??b", "/a", "?b"},
		{"*", "*", ""},
		{"http://example.com/p%20q?z", "/p%20q", "z"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.uri == "*" {
			r.Method = "OPTIONS"
		}
		r.RequestURI = c.uri
		if u, err := r.URL.Parse(c.uri); err == nil {
			r.URL = u
		}
		p, q := splitURI(r)
		if p != c.path || q != c.query {
			t.Errorf("splitURI(%q) = %q, %q; want %q, %q", c.uri, p, q, c.path, c.query)
		}
	}
}

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

func TestWriteHeader(t *testing.T) {
	s := &Server{}
	for _, c := range []struct {
		name    string
		hdr     []byte
		size    int
		done    bool
		status  int
		want    http.Header
		wantErr bool
	}{
		{"length from body", hdr("200 OK", "Content-Type", "text/plain"), 5, true, 200,
			http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"5"}}, false},
		{"streaming keeps no length", hdr("200 OK", "X-A", "1", "x-a", "2"), 5, false, 200,
			http.Header{"X-A": {"1", "2"}}, false},
		{"hop-by-hop dropped", hdr("200 OK", "Transfer-Encoding", "chunked", "Keep-Alive", "x", "Connection", "close"), 0, true, 200,
			http.Header{"Connection": {"close"}, "Content-Length": {"0"}}, false},
		{"no length on 204", hdr("204 No Content"), 0, true, 204, http.Header{}, false},
		{"bad length", hdr("200 OK", "Content-Length", "abc"), 0, true, 0, nil, true},
		{"two lengths", hdr("200 OK", "Content-Length", "1", "Content-Length", "1"), 1, true, 0, nil, true},
		{"informational", hdr("100 Continue"), 0, true, 0, nil, true},
	} {
		rec := httptest.NewRecorder()
		w := &statusWriter{ResponseWriter: rec}
		status, err := s.writeHeader(w, c.hdr, c.size, nil, 0, c.done, false)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if status != c.status || rec.Code != c.status {
			t.Errorf("%s: status %d (recorded %d), want %d", c.name, status, rec.Code, c.status)
		}
		got := rec.Header().Clone()
		for k, v := range got {
			if v == nil {
				delete(got, k)
			}
		}
		if _, ok := rec.Header()["Content-Type"]; !ok && c.want.Get("Content-Type") == "" {
			// writeHeader must block net/http's Content-Type sniffing
			if ct, present := w.Header()["Content-Type"]; !present || ct != nil {
				t.Errorf("%s: Content-Type not suppressed: %v", c.name, w.Header()["Content-Type"])
			}
		}
		for k, v := range c.want {
			if strings.Join(got[k], "|") != strings.Join(v, "|") {
				t.Errorf("%s: header %s = %v, want %v", c.name, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := c.want[k]; !ok {
				t.Errorf("%s: unexpected header %s: %v", c.name, k, got[k])
			}
		}
	}
}

func TestQuoteField(t *testing.T) {
	if got := quoteField(`a "b"` + "\n"); strings.ContainsAny(got, "\n\"") && !strings.Contains(got, `\"`) {
		t.Errorf("quoteField left a raw quote or newline: %q", got)
	}
	if got := quoteField("plain text"); got != "plain text" {
		t.Errorf("quoteField(plain) = %q", got)
	}
}
