package websocket

import (
	"iter"
	"reflect"
	"testing"
)

// hdrs yields name, value pairs as a request's header fields.
func hdrs(kv ...string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if !yield(kv[i], kv[i+1]) {
				return
			}
		}
	}
}

// The key and accept value of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestAcceptKey(t *testing.T) {
	if got := AcceptKey(rfcKey); got != rfcAccept {
		t.Errorf("AcceptKey = %q, want %q", got, rfcAccept)
	}
}

func TestCheckHandshake(t *testing.T) {
	valid := []string{"Host", "example.com", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", rfcKey, "Sec-WebSocket-Version", "13"}
	with := func(kv ...string) []string { return append(append([]string(nil), valid...), kv...) }
	without := func(name string) []string {
		var out []string
		for i := 0; i < len(valid); i += 2 {
			if valid[i] != name {
				out = append(out, valid[i], valid[i+1])
			}
		}
		return out
	}
	cases := []struct {
		name   string
		method string
		fields []string
		status int // 0: valid
	}{
		{name: "valid", fields: valid},
		{name: "header names and tokens in any case", fields: []string{"upgrade", "WebSocket", "connection", "keep-alive, UPGRADE", "sec-websocket-key", rfcKey, "SEC-WEBSOCKET-VERSION", "13"}},
		{name: "Upgrade among others", fields: []string{"Upgrade", "h2c, websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", rfcKey, "Sec-WebSocket-Version", "13"}},
		{name: "POST", method: "POST", fields: valid, status: 400},
		{name: "no Upgrade", fields: without("Upgrade"), status: 400},
		{name: "Upgrade: h2c", fields: append(without("Upgrade"), "Upgrade", "h2c"), status: 400},
		{name: "no Connection", fields: without("Connection"), status: 400},
		{name: "Connection: keep-alive", fields: append(without("Connection"), "Connection", "keep-alive"), status: 400},
		{name: "no key", fields: without("Sec-WebSocket-Key"), status: 400},
		{name: "two keys", fields: with("Sec-WebSocket-Key", rfcKey), status: 400},
		{name: "key not base64", fields: append(without("Sec-WebSocket-Key"), "Sec-WebSocket-Key", "not base64!!!!!!!!!!!!!!"), status: 400},
		{name: "key of 15 bytes", fields: append(without("Sec-WebSocket-Key"), "Sec-WebSocket-Key", "MDEyMzQ1Njc4OWFiY2Rl"), status: 400},
		{name: "no version", fields: without("Sec-WebSocket-Version"), status: 426},
		{name: "version 8", fields: append(without("Sec-WebSocket-Version"), "Sec-WebSocket-Version", "8"), status: 426},
		{name: "two versions", fields: with("Sec-WebSocket-Version", "13"), status: 426},
		{name: "protocol not a token", fields: with("Sec-WebSocket-Protocol", "chat, a b"), status: 400},
		{name: "malformed extensions", fields: with("Sec-WebSocket-Extensions", "permessage-deflate; ="), status: 400},
	}
	for _, c := range cases {
		m := c.method
		if m == "" {
			m = "GET"
		}
		h, err := CheckHandshake(m, hdrs(c.fields...))
		if c.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if h.Key != rfcKey {
				t.Errorf("%s: key %q", c.name, h.Key)
			}
			continue
		}
		he, ok := err.(*HandshakeError)
		if !ok || he.Status != c.status {
			t.Errorf("%s: error %v, want status %d", c.name, err, c.status)
		}
	}
}

func TestHandshakeOffers(t *testing.T) {
	h, err := CheckHandshake("GET", hdrs("Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", rfcKey, "Sec-WebSocket-Version", "13",
		"Sec-WebSocket-Protocol", "chat, superchat", "Sec-WebSocket-Protocol", "v2.json",
		"Sec-WebSocket-Extensions", `permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits="10"`,
		"Sec-WebSocket-Extensions", "x-foo"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"chat", "superchat", "v2.json"}; !reflect.DeepEqual(h.Protocols, want) {
		t.Errorf("protocols %q, want %q", h.Protocols, want)
	}
	want := []Extension{
		{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits"}}},
		{Name: "permessage-deflate", Params: []Param{{Name: "server_max_window_bits", Value: "10", HasValue: true}}},
		{Name: "x-foo"},
	}
	if !reflect.DeepEqual(h.Extensions, want) {
		t.Errorf("extensions %+v, want %+v", h.Extensions, want)
	}
	if !h.Offers("superchat") || h.Offers("other") {
		t.Error("Offers is wrong")
	}
}

func TestCheckConnect(t *testing.T) {
	h, err := CheckConnect("CONNECT", "websocket", hdrs("Sec-WebSocket-Version", "13", "Sec-WebSocket-Protocol", "chat"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Key != "" || !h.Offers("chat") {
		t.Errorf("handshake %+v", h)
	}
	for _, c := range []struct{ method, proto, version string }{
		{"GET", "websocket", "13"}, {"CONNECT", "webtransport", "13"}, {"CONNECT", "websocket", "8"},
	} {
		if _, err := CheckConnect(c.method, c.proto, hdrs("Sec-WebSocket-Version", c.version)); err == nil {
			t.Errorf("%v: accepted", c)
		}
	}
	f, err := ResponseHeaders(h, "chat", &Deflate{ServerNoContextTakeover: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{"Sec-WebSocket-Protocol", "chat"}, {"Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover"}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("HTTP/2 response fields %v, want %v", f, want)
	}
}

func TestResponse(t *testing.T) {
	h := &Handshake{Key: rfcKey, Protocols: []string{"chat"}}
	f, err := ResponseHeaders(h, "chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := string(AppendResponse(nil, f))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
	if got != want {
		t.Errorf("response %q, want %q", got, want)
	}
	// The app may only choose an offered subprotocol: nothing else, and
	// so no header injection, reaches the response.
	for _, p := range []string{"other", "chat\r\nSet-Cookie: a=b"} {
		if _, err := ResponseHeaders(h, p, nil); err == nil {
			t.Errorf("subprotocol %q accepted", p)
		}
	}
}

// TestIsUpgrade: a request is a WebSocket upgrade only with both the Upgrade
// field naming websocket and the Connection upgrade option; otherwise it is
// an HTTP request (the Upgrade field ignored), as llhttp and h11 decide.
func TestIsUpgrade(t *testing.T) {
	for _, c := range []struct {
		fields []string
		want   bool
	}{
		{[]string{"Upgrade", "websocket", "Connection", "Upgrade"}, true},
		{[]string{"upgrade", "WebSocket", "connection", "keep-alive, upgrade"}, true},
		{[]string{"Connection", "Upgrade", "Upgrade", "h2c, websocket/13"}, true},
		{[]string{"Upgrade", "websocket"}, false},
		{[]string{"Upgrade", "websocket", "Connection", "keep-alive"}, false},
		{[]string{"Connection", "Upgrade", "Upgrade", "h2c"}, false},
		{[]string{"Connection", "Upgrade"}, false},
	} {
		if got := IsUpgrade(hdrs(c.fields...)); got != c.want {
			t.Errorf("IsUpgrade(%q) = %v, want %v", c.fields, got, c.want)
		}
	}
}
