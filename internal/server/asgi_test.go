package server

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"wisp/internal/h1"
)

// TestASGIScope checks the flat scope Go hands the loop (wisp_asgi.py's
// make_scope reads it): the fields in order, header names lowercased in
// order with wisp's own left out, and the client and server of TCP, a
// trusted proxy's client without a port, and unix sockets.
func TestASGIScope(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8000}
	fields := []h1.Field{{Name: "Host", Value: "x"}, {Name: "X-A", Value: "1"}, {Name: "x-a", Value: "2"},
		{Name: "X-Wisp-Remote-Addr", Value: "spoofed"}, {Name: "X-Forwarded-For", Value: "203.0.113.9"}}
	for _, c := range []struct {
		name    string
		proxies []netip.Prefix
		r       h1.Request
		want    []string
	}{
		{"tcp", nil, h1.Request{Method: "GET", Proto: "HTTP/1.1", Path: "/a/b%20c", Query: "q=1", Fields: fields,
			RemoteAddr: "127.0.0.1:5000", Local: tcp},
			[]string{"1.1", "GET", "http", "/a/b%20c", "q=1", "/a", "127.0.0.1", "5000", "127.0.0.1", "8000",
				"host", "x", "x-a", "1", "x-a", "2", "x-forwarded-for", "203.0.113.9"}},
		{"ipv6 and HTTP/1.0", nil, h1.Request{Method: "POST", Proto: "HTTP/1.0", Path: "/", RemoteAddr: "[::1]:6000", Local: tcp, TLS: true},
			[]string{"1.0", "POST", "https", "/", "", "/a", "::1", "6000", "127.0.0.1", "8000"}},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			h1.Request{Method: "GET", Proto: "HTTP/2.0", Path: "/", Fields: fields[4:], RemoteAddr: "127.0.0.1:5000", Local: tcp},
			[]string{"2", "GET", "http", "/", "", "/a", "203.0.113.9", "0", "127.0.0.1", "8000", "x-forwarded-for", "203.0.113.9"}},
		{"unix socket", nil, h1.Request{Method: "GET", Proto: "HTTP/1.1", Path: "/", RemoteAddr: "@", Local: &net.UnixAddr{Name: "/run/w.sock", Net: "unix"}},
			[]string{"1.1", "GET", "http", "/", "", "/a", "", "", "/run/w.sock", ""}},
	} {
		s := &Server{proxies: c.proxies, cfg: Config{ForwardedHeaders: XForwarded}}
		got := string(s.asgiScope(nil, &c.r, &mount{prefix: "/a"}, false))
		want := strings.Join(c.want, "\x00") + "\x00"
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, want)
		}
	}
}

func TestCheckASGIValues(t *testing.T) {
	for _, ok := range []error{CheckInterface(""), CheckInterface("asgi"), CheckLifespan("off"), CheckLoop("uvloop"), CheckLoop("")} {
		if ok != nil {
			t.Errorf("unexpected error: %v", ok)
		}
	}
	for _, bad := range []error{CheckInterface("rsgi"), CheckLifespan("maybe"), CheckLoop("trio")} {
		if bad == nil {
			t.Error("a bad value was accepted")
		}
	}
}
