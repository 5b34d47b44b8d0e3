package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The WebSocket settings (--websocket-* flags, websocket_* pool keys) as a
// client sees them.

// wsEcho opens /ws/echo on addr and sends one text message of n bytes: the
// echo's length, or the close code the server answered with (0 for an
// echo).
func wsEcho(t *testing.T, addr string, n int) (echoed, code int) {
	t.Helper()
	c, err := wsDial(addr, "/ws/echo")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if c.Resp.StatusCode != 101 {
		t.Fatalf("handshake: %d %q", c.Resp.StatusCode, c.Body)
	}
	if err := c.send(wsText, bytes.Repeat([]byte("x"), n)); err != nil {
		t.Fatalf("send: %v", err)
	}
	op, p, err := c.read(10 * time.Second)
	switch {
	case err != nil:
		t.Fatalf("after a message of %d bytes: %v", n, err)
	case op == wsClose:
		code, _ = closeCode(p)
		return 0, code
	}
	c.closeWith(1000, "")
	return len(p), 0
}

// wsExtensions opens /ws/echo offering permessage-deflate and returns the
// Sec-WebSocket-Extensions of the 101.
func wsExtensions(t *testing.T, addr string) string {
	t.Helper()
	c, err := wsDial(addr, "/ws/echo", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if c.Resp.StatusCode != 101 {
		t.Fatalf("handshake: %d %q", c.Resp.StatusCode, c.Body)
	}
	c.closeWith(1000, "")
	return c.Resp.Header.Get("Sec-WebSocket-Extensions")
}

// --websocket-max-message: a message within it is echoed; one beyond it
// closes the connection with 1009 (message too big).
func TestWebSocketMaxMessageFlag(t *testing.T) {
	w := start(t, "--websocket-max-message", "1KiB", "--mount", "/ws="+wsApp())
	if n, code := wsEcho(t, w.Addr, 1000); n != 1000 || code != 0 {
		t.Errorf("a message of 1000 bytes under a 1KiB limit: echo of %d bytes, close %d; want it echoed", n, code)
	}
	if n, code := wsEcho(t, w.Addr, 2048); code != 1009 {
		t.Errorf("a message of 2KiB over a 1KiB limit: echo of %d bytes, close %d; want close 1009", n, code)
	}
}

// permessage-deflate is offered to a client that asks for it, unless
// --websocket-compression=false.
func TestWebSocketCompressionFlag(t *testing.T) {
	on := start(t, "--mount", "/ws="+wsApp())
	if ext := wsExtensions(t, on.Addr); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Errorf("by default: Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	off := start(t, "--websocket-compression=false", "--mount", "/ws="+wsApp())
	if ext := wsExtensions(t, off.Addr); ext != "" {
		t.Errorf("--websocket-compression=false: Sec-WebSocket-Extensions %q, want none", ext)
	}
}

// --websocket-ping-interval and --websocket-ping-timeout: a client that
// does not answer the pings is closed with 1011 once the timeout passes.
func TestWebSocketPingFlags(t *testing.T) {
	w := start(t, "--websocket-ping-interval", "200ms", "--websocket-ping-timeout", "300ms", "--mount", "/ws="+wsApp())
	c, err := wsDial(w.Addr, "/ws/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	// read nothing (no pong) for longer than an interval and a timeout
	time.Sleep(1500 * time.Millisecond)
	pings := 0
	var code int
	for i := 0; i < 10 && code == 0; i++ { // a ping or two, then the close
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		op, p, err := c.rawFrame()
		if err != nil {
			t.Fatalf("after %d ping(s): %v", pings, err)
		}
		switch op {
		case wsPing:
			pings++
		case wsClose:
			code, _ = closeCode(p)
		}
	}
	if pings == 0 || code != 1011 {
		t.Errorf("%d ping(s), then close %d; want a ping, then 1011 for the pong that never came", pings, code)
	}
}

// rawFrame reads one short frame as it comes: pings too (read answers
// them instead).
func (c *wsClient) rawFrame() (op byte, p []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if n := h[1] & 0x7f; n >= 126 {
		return 0, nil, fmt.Errorf("want control frames only, got a frame of op %d and %d+ bytes", h[0]&0x0f, n)
	}
	p = make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, p, nil
}

const wsPoolConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.default]
python = "@PY@"
@WS@

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/ws"
  app = "@APPS@/asgi_ws/app.py:app"
`

// The websocket_* keys of a wisp.toml pool reach its workers, and a reload
// that changes them replaces the workers, whose successors serve the new
// settings.
func TestWebSocketPoolKeysAndReload(t *testing.T) {
	s := serve(t, strings.Replace(wsPoolConfig, "@WS@", "websocket_compression = false\nwebsocket_max_message = \"1KiB\"", 1))
	if n, code := wsEcho(t, s.Addr, 2048); code != 1009 {
		t.Errorf("websocket_max_message = 1KiB: 2KiB gave an echo of %d bytes, close %d; want close 1009", n, code)
	}
	if ext := wsExtensions(t, s.Addr); ext != "" {
		t.Errorf("websocket_compression = false: Sec-WebSocket-Extensions %q, want none", ext)
	}
	before := s.readyWorkers(t, "default", 1)

	s.writeConfig(t, strings.Replace(wsPoolConfig, "@WS@", "websocket_max_message = \"4KiB\"", 1))
	if code, out, errOut := s.ctl(t, "reload"); code != 0 {
		t.Fatalf("wisp reload: exit %d\n%s%s", code, out, errOut)
	}
	s.waitPool(t, "default", 30*time.Second, "its old worker gone", func(p wispPoolStatus) bool {
		pids := p.readyPIDs()
		return len(pids) == 1 && len(p.Workers) == 1 && pids[0] != before[0]
	})
	if n, code := wsEcho(t, s.Addr, 2048); n != 2048 || code != 0 {
		t.Errorf("after the reload to 4KiB: 2KiB gave an echo of %d bytes, close %d; want it echoed", n, code)
	}
	if ext := wsExtensions(t, s.Addr); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Errorf("after the reload to the default compression: Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
}

const lifespanPoolConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.default]
python = "@PY@"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/a"
  app = "@APPS@/asgi_app/app.py:app"
  lifespan = "@LIFESPAN@"
`

// A reload that changes a vdir's lifespan replaces its pool's workers (they
// run the lifespan when they start): the new ones ran the startup, whose
// state reaches the scope; the old ones, which did not, are gone.
func TestReloadLifespanReplacesWorkers(t *testing.T) {
	s := serve(t, strings.Replace(lifespanPoolConfig, "@LIFESPAN@", "off", 1))
	var sc struct {
		PID   int            `json:"pid"`
		State map[string]any `json:"state"`
	}
	s.getJSON(t, "/a/scope", &sc)
	if sc.State["greeting"] != nil {
		t.Fatalf("lifespan = off: state %v, want no startup's greeting", sc.State)
	}
	old := sc.PID
	s.writeConfig(t, strings.Replace(lifespanPoolConfig, "@LIFESPAN@", "on", 1))
	if code, out, errOut := s.ctl(t, "reload"); code != 0 {
		t.Fatalf("wisp reload: exit %d\n%s%s", code, out, errOut)
	}
	s.waitPool(t, "default", 30*time.Second, "its old worker gone", func(p wispPoolStatus) bool {
		pids := p.readyPIDs()
		return len(pids) == 1 && len(p.Workers) == 1 && pids[0] != old
	})
	s.getJSON(t, "/a/scope", &sc)
	if sc.PID == old || sc.State["greeting"] != "hello from lifespan" {
		t.Errorf("after the reload to lifespan = on: pid %d (old %d), state %v; want a new worker with the startup's greeting", sc.PID, old, sc.State)
	}
}

// max_concurrent counts an ASGI vdir's open WebSockets with its HTTP
// requests: with a bound of 1, an open WebSocket makes a second handshake and
// an HTTP request 503 (before any upgrade), and its close frees the slot.
func TestWebSocketMaxConcurrent(t *testing.T) {
	cfg := strings.Replace(wsPoolConfig, `app = "@APPS@/asgi_ws/app.py:app"`,
		"app = \"@APPS@/asgi_ws/app.py:app\"\n  max_concurrent = 1", 1)
	s := serve(t, strings.Replace(cfg, "@WS@", "", 1))
	s.readyWorkers(t, "default", 1)
	c, err := wsDial(s.Addr, "/ws/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	c.text("hold")
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "hold" {
		t.Fatalf("echo: %q %v", p, err)
	}
	c2, err := wsDial(s.Addr, "/ws/echo")
	if err != nil || c2.Resp.StatusCode != 503 || c2.Resp.Header.Get("Retry-After") != "1" {
		t.Errorf("a second WebSocket within max_concurrent = 1: %v %v, want 503 with Retry-After", err, c2.Resp)
	}
	resp, err := http.Get("http://" + s.Addr + "/ws/plain")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("HTTP beside an open WebSocket within max_concurrent = 1: %d, want 503", resp.StatusCode)
	}
	c.closeWith(1000, "")
	c.readClose(5 * time.Second)
	c.Close()
	if !eventually(5*time.Second, func() bool {
		resp, err := http.Get("http://" + s.Addr + "/ws/plain")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Error("the WebSocket's close did not free its slot: HTTP still refused")
	}
}
