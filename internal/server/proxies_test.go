package server

import (
	"testing"

	"wisp/internal/h1"
)

func TestForwardedClient(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	req := func(kv ...string) *h1.Request {
		r := &h1.Request{}
		for i := 0; i < len(kv); i += 2 {
			r.Fields = append(r.Fields, h1.Field{Name: kv[i], Value: kv[i+1]})
		}
		return r
	}
	for _, c := range []struct {
		family         string
		r              *h1.Request
		client, scheme string
	}{
		// the right-most untrusted address, not the left-most the client wrote
		{XForwarded, req("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.1.1"), "203.0.113.7", ""},
		{XForwarded, req("X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "203.0.113.7"), "203.0.113.7", ""},
		// every hop a trusted proxy: the left-most
		{XForwarded, req("X-Forwarded-For", "10.2.2.2, 10.1.1.1"), "10.2.2.2", ""},
		// garbage stops the walk
		{XForwarded, req("X-Forwarded-For", "evil, 10.1.1.1"), "10.1.1.1", ""},
		{XForwarded, req("X-Forwarded-Proto", "https"), "", "https"},
		{XForwarded, req("X-Forwarded-Proto", "gopher"), "", ""},
		// the proto of the element that names the client, which a trusted
		// proxy appended; the elements left of it are the client's own
		{Forwarded, req("Forwarded", `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`), "[2001:db8::1]:4711", ""},
		{Forwarded, req("Forwarded", "for=6.6.6.6;proto=https, for=1.2.3.4"), "1.2.3.4", ""},
		{Forwarded, req("Forwarded", "for=6.6.6.6;proto=https", "Forwarded", "for=1.2.3.4;proto=http"), "1.2.3.4", "http"},
		{Forwarded, req("Forwarded", "for=6.6.6.6;proto=http, for=1.2.3.4;proto=https, for=10.1.1.1;proto=http"), "1.2.3.4", "https"},
		{Forwarded, req("Forwarded", "proto=https"), "", "https"},
		{Forwarded, req("Forwarded", "for=unknown"), "", ""},
		// only the chosen family is read: a proxy passes the client's own
		// copy of the other one through untouched
		{XForwarded, req("Forwarded", "for=6.6.6.6;proto=https", "X-Forwarded-For", "1.2.3.4"), "1.2.3.4", ""},
		{XForwarded, req("Forwarded", "for=6.6.6.6;proto=https"), "", ""},
		{Forwarded, req("Forwarded", "for=6.6.6.6", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-Proto", "https"), "6.6.6.6", ""},
		{Forwarded, req("X-Forwarded-For", "1.2.3.4", "X-Forwarded-Proto", "https"), "", ""},
	} {
		client, scheme := forwardedClient(proxies, c.family, c.r)
		if client != c.client || scheme != c.scheme {
			t.Errorf("%v: got %q %q, want %q %q", c.r.Fields, client, scheme, c.client, c.scheme)
		}
	}
	if !trusts(proxies, "10.9.9.9:1234") || !trusts(proxies, "[::1]:80") || trusts(proxies, "11.0.0.1:1") || trusts(proxies, "@") {
		t.Error("trusts")
	}
	for _, f := range []string{"", XForwarded, Forwarded} {
		if err := CheckForwardedHeaders(f); err != nil {
			t.Errorf("CheckForwardedHeaders(%q): %v", f, err)
		}
	}
	if err := CheckForwardedHeaders("X-Forwarded-For"); err == nil {
		t.Error("CheckForwardedHeaders accepts X-Forwarded-For")
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix accepted")
	}
	all, _ := ParseProxies([]string{"*"})
	if !trusts(all, "8.8.8.8:53") || !trusts(all, "[2001:db8::2]:1") {
		t.Error("* trusts everyone")
	}
}

// clientOf: the X-Wisp-* headers count only on a pool's internal socket
// (Trusted), and a client resolved there by the forwarding worker is final.
func TestClientOf(t *testing.T) {
	proxies, _ := ParseProxies([]string{"127.0.0.1"})
	s := &Server{proxies: proxies, cfg: Config{ForwardedHeaders: XForwarded}}
	req := func(trusted bool, kv ...string) *h1.Request {
		r := &h1.Request{RemoteAddr: "127.0.0.1:5000", Trusted: trusted}
		for i := 0; i < len(kv); i += 2 {
			r.Fields = append(r.Fields, h1.Field{Name: kv[i], Value: kv[i+1]})
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    *h1.Request
		want client
	}{
		{"public listener: X-Wisp-* ignored", req(false, hdrRemote, "9.9.9.9", hdrClient, "forwarded", hdrScheme, "https"),
			client{"127.0.0.1:5000", false, "http"}},
		{"trusted proxy", req(false, "X-Forwarded-For", "1.2.3.4", "X-Forwarded-Proto", "https"),
			client{"1.2.3.4", true, "https"}},
		{"forwarded by a pool: final", req(true, hdrRemote, "1.2.3.4", hdrClient, "forwarded", hdrScheme, "https",
			"X-Forwarded-For", "5.5.5.5", "X-Forwarded-Proto", "http"), client{"1.2.3.4", true, "https"}},
		{"forwarded by a pool: the peer, final", req(true, hdrRemote, "127.0.0.1:6000", hdrClient, "peer", hdrScheme, "http",
			"X-Forwarded-For", "5.5.5.5"), client{"127.0.0.1:6000", false, "http"}},
		{"the supervisor's forwarder: the peer, resolved here", req(true, hdrRemote, "127.0.0.1:6000",
			"X-Forwarded-For", "5.5.5.5"), client{"5.5.5.5", true, "http"}},
	} {
		if got := s.clientOf(c.r); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
