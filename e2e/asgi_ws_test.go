package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func wsApp() string { return app("asgi_ws/app.py") + ":app" }

// An ASGI app's WebSocket over HTTP/1.1: the app's subprotocol and headers
// in the 101, text and binary echoed as they came (one message of 100 kB
// too), the scope as the spec has it, and the app's close code and reason.
func TestWebSocketEcho(t *testing.T) {
	w := start(t, "--mount", "/ws="+wsApp())
	c, err := wsDial(w.Addr, "/ws/echo?room=1", "Sec-WebSocket-Protocol: chat, superchat", "Origin: http://example.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Resp.StatusCode != 101 {
		t.Fatalf("handshake: %d %q", c.Resp.StatusCode, c.Body)
	}
	if got := c.Resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Errorf("Sec-WebSocket-Protocol %q, want chat (the app's choice)", got)
	}
	if got := c.Resp.Header.Get("X-Accepted"); got != "yes" {
		t.Errorf("the accept's own header X-Accepted: %q", got)
	}
	big := bytes.Repeat([]byte("0123456789"), 10000)
	for _, m := range []struct {
		op byte
		p  []byte
	}{{wsText, []byte("hello, wisp")}, {wsBinary, []byte{0, 1, 2, 255}}, {wsText, big}, {wsText, []byte("")}} {
		if err := c.send(m.op, m.p); err != nil {
			t.Fatal(err)
		}
		op, p, err := c.read(10 * time.Second)
		if err != nil || op != m.op || !bytes.Equal(p, m.p) {
			t.Fatalf("echo of %d bytes (op %d): op %d, %d bytes, %v", len(m.p), m.op, op, len(p), err)
		}
	}
	c.text("scope")
	_, p, err := c.read(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var scope map[string]any
	if err := json.Unmarshal(p, &scope); err != nil {
		t.Fatalf("scope: %v: %s", err, p)
	}
	want := map[string]any{"type": "websocket", "scheme": "ws", "path": "/ws/echo", "raw_path": "/ws/echo",
		"root_path": "/ws", "query_string": "room=1", "http_version": "1.1"}
	for k, v := range want {
		if scope[k] != v {
			t.Errorf("scope[%q] = %v, want %v", k, scope[k], v)
		}
	}
	if subs, _ := scope["subprotocols"].([]any); len(subs) != 2 || subs[0] != "chat" || subs[1] != "superchat" {
		t.Errorf("subprotocols %v", scope["subprotocols"])
	}
	if _, ok := scope["method"]; ok {
		t.Errorf("a websocket scope has no method: %v", scope)
	}
	if ext, _ := scope["extensions"].(map[string]any); ext == nil || ext["websocket.http.response"] == nil {
		t.Errorf("extensions %v: want websocket.http.response announced", scope["extensions"])
	}
	if !strings.Contains(string(p), `"origin", "http://example.test"`) && !strings.Contains(string(p), `["origin","http://example.test"]`) {
		t.Errorf("headers lack origin: %s", p)
	}
	c.text("close:4001:see you")
	if code, reason := c.readClose(10 * time.Second); code != 4001 || reason != "see you" {
		t.Errorf("close %d %q, want 4001 \"see you\"", code, reason)
	}
	c.closeWith(4001, "")
	// plain HTTP to the same app still works
	resp, body := w.get(t, "/ws/x")
	if resp.StatusCode != 200 || string(body) != "plain http\n" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
}

// The ways an app refuses: websocket.close before accept is a 403; a
// websocket.http.response is sent as it is; an app that returns without an
// answer gets a 500, and one that raises after accepting closes with 1011.
// A request that is not a valid handshake never reaches the app.
func TestWebSocketRefusals(t *testing.T) {
	w := start(t, wsApp())
	c, err := wsDial(w.Addr, "/deny")
	if err != nil || c.Resp.StatusCode != 403 {
		t.Fatalf("deny: %v %v", err, c)
	}
	c, err = wsDial(w.Addr, "/teapot")
	if err != nil || c.Resp.StatusCode != 418 || string(c.Body) != "I'm a teapot!\n" || c.Resp.Header.Get("X-Why") != "teapot" {
		t.Fatalf("teapot: %v %d %q %v", err, c.Resp.StatusCode, c.Body, c.Resp.Header)
	}
	c, err = wsDial(w.Addr, "/noaccept")
	if err != nil || c.Resp.StatusCode != 500 {
		t.Fatalf("noaccept: %v %v", err, c.Resp.StatusCode)
	}
	c, err = wsDial(w.Addr, "/raise")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("raise: %v", err)
	}
	c.text("go")
	if code, _ := c.readClose(10 * time.Second); code != 1011 {
		t.Errorf("an app that raised closed with %d, want 1011", code)
	}
	c.Close()
	if !w.waitStderr("boom in a websocket", 5*time.Second) {
		t.Errorf("the traceback is not logged:\n%s", w.Stderr())
	}
	// a bad version: 426 naming the one spoken, and the app never runs
	c, err = wsDial(w.Addr, "/echo", "Sec-WebSocket-Version: 8")
	if err == nil && c.Resp.StatusCode == 101 {
		t.Fatal("a handshake with two versions was accepted")
	}
	raw := dialRaw(t, w.Addr)
	raw.send("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, _, _ := raw.response("GET")
	if resp.StatusCode != 426 || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("version 8: %d %v, want 426 with Sec-WebSocket-Version: 13", resp.StatusCode, resp.Header)
	}
	// Upgrade without the Connection option is no upgrade (RFC 9110 7.8):
	// the app serves it as HTTP, as under uvicorn
	raw = dialRaw(t, w.Addr)
	raw.send("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, body, _ := raw.response("GET")
	if resp.StatusCode != 200 || string(body) != "plain http\n" {
		t.Errorf("Upgrade without Connection: upgrade: %d %q, want the app's HTTP answer", resp.StatusCode, body)
	}
}

// The client's close reaches the app as websocket.disconnect with its code
// and reason, and the server answers the close handshake.
func TestWebSocketClientClose(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	w := startOpts(t, runOpts{Env: []string{"WS_MARK=" + mark}}, wsApp())
	c, err := wsDial(w.Addr, "/disconnect")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	c.closeWith(4321, "done here")
	if code, _ := c.readClose(5 * time.Second); code != 4321 {
		t.Errorf("the server's echo of the close: %d, want the code sent (RFC 6455 5.5.1)", code)
	}
	c.Close()
	if !eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(mark)
		return strings.Contains(string(b), "disconnect 4321 done here")
	}) {
		b, _ := os.ReadFile(mark)
		t.Errorf("the app's disconnect: %q", b)
	}
	// a client that vanishes without a close: 1006
	os.Remove(mark)
	c, _ = wsDial(w.Addr, "/disconnect")
	c.Close()
	if !eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(mark)
		return strings.Contains(string(b), "disconnect 1006")
	}) {
		b, _ := os.ReadFile(mark)
		t.Errorf("the app's disconnect after a vanished client: %q", b)
	}
}

// Many messages from the app go out whole and in order, however fast the
// app sends them (its send() waits for room), and the app's close follows.
func TestWebSocketFlood(t *testing.T) {
	w := start(t, wsApp())
	c, err := wsDial(w.Addr, "/flood")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.text("2000 1000")
	for i := 0; i < 2000; i++ {
		op, p, err := c.read(10 * time.Second)
		if err != nil || op != wsBinary || len(p) != 1000 || string(p[:8]) != fmt.Sprintf("%08d", i) {
			t.Fatalf("message %d: op %d, %d bytes %.8q, %v", i, op, len(p), p, err)
		}
	}
	if code, _ := c.readClose(5 * time.Second); code != 1000 {
		t.Errorf("close %d, want 1000", code)
	}
}

const wsPoolsConfig = `
[server]
access_log = "-"

[pools.front]
python = "@PY@"
processes = 1
threads = 2
graceful_timeout = "3s"

[pools.ws]
python = "@PY@"
processes = 1
threads = 2
graceful_timeout = "3s"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/environ/app.py"
  pool = "front"

  [[sites.vdirs]]
  path = "/chat"
  app = "@APPS@/asgi_ws/app.py:app"
  pool = "ws"
`

// A WebSocket to a vdir served by another pool than the site's is relayed
// between the pools; a recycle of that pool closes it with 1012 at the end
// of the grace period (never a reset), and the new worker takes the
// reconnect; a stop of the server closes with 1001. The access log has the
// WebSocket once, when it closed, with its bytes.
func TestWebSocketPoolsRecycleAndStop(t *testing.T) {
	t.Parallel()
	s := serve(t, wsPoolsConfig)
	s.readyWorkers(t, "front", 1)
	old := s.readyWorkers(t, "ws", 1)
	c, err := wsDial(s.Addr, "/chat/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial across pools: %v %+v", err, c)
	}
	defer c.Close()
	c.text("across")
	if op, p, err := c.read(5 * time.Second); err != nil || op != wsText || string(p) != "across" {
		t.Fatalf("echo across pools: %d %q %v", op, p, err)
	}
	began := time.Now()
	if code, out, errOut := s.ctl(t, "recycle", "ws"); code != 0 {
		t.Fatalf("recycle: %s %s", out, errOut)
	}
	// still served during the grace period
	time.Sleep(500 * time.Millisecond)
	c.text("still here")
	if op, p, err := c.read(5 * time.Second); err != nil || op != wsText || string(p) != "still here" {
		t.Fatalf("echo during the grace period: %d %q %v", op, p, err)
	}
	code, reason := c.readClose(10 * time.Second)
	if code != 1012 {
		t.Fatalf("close on recycle: %d %q, want 1012", code, reason)
	}
	if d := time.Since(began); d < 500*time.Millisecond || d > 6*time.Second {
		t.Errorf("closed %v after the recycle, want near the end of the 3s grace period", d)
	}
	c.closeWith(1012, "")
	c.Close()
	s.waitPool(t, "ws", 20*time.Second, "a new worker", func(p wispPoolStatus) bool {
		pids := p.readyPIDs()
		return len(pids) == 1 && pids[0] != old[0]
	})
	c, err = wsDial(s.Addr, "/chat/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("reconnect: %v", err)
	}
	c.text("again")
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "again" {
		t.Fatalf("echo after the reconnect: %q %v", p, err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.stop() }()
	if code, _ := c.readClose(15 * time.Second); code != 1001 {
		t.Errorf("close on stop: %d, want 1001", code)
	}
	c.closeWith(1001, "")
	<-done
	if !strings.Contains(s.Stdout(), `"GET /chat/echo HTTP/1.1" 101 `) {
		t.Errorf("no access log line for the WebSocket:\n%s", s.Stdout())
	}
}

// An in-process server closes its WebSockets with 1001 when it stops.
func TestWebSocketStopInProcess(t *testing.T) {
	w := start(t, "--graceful-timeout", "2s", wsApp())
	c, err := wsDial(w.Addr, "/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.text("x")
	c.read(5 * time.Second)
	w.signal(syscall.SIGTERM)
	code, _ := c.readClose(10 * time.Second)
	if code != 1001 {
		t.Errorf("close on stop: %d, want 1001", code)
	}
	c.closeWith(1001, "")
	if _, ok := w.wait(10 * time.Second); !ok {
		t.Fatal("the server did not stop")
	}
	if !regexp.MustCompile(`"GET /echo HTTP/1.1" 101 \d+ `).MatchString(w.Stdout()) {
		t.Errorf("the access log lacks the WebSocket:\n%s", w.Stdout())
	}
}

// A client that sends a 1 GiB message, in one frame or in fragments of
// 1 MiB, is closed with 1009 as soon as the message passes the limit (16 MiB
// by default): the server's memory stays flat, and the app never sees it.
func TestWebSocketHugeMessage(t *testing.T) {
	w := start(t, wsApp())
	base := vmKB(t, w.Pid(), "VmRSS")
	// one frame that says 1 GiB: refused at its header
	c, err := wsDial(w.Addr, "/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0x40, 0, 0, 0, 0, 1, 2, 3, 4}
	c.nc.Write(hdr)
	go func(nc net.Conn) { // keep sending, as a flood would, until the server closes
		chunk := make([]byte, 1<<20)
		for i := 0; i < 64; i++ {
			nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}(c.nc)
	if code, _ := c.readClose(10 * time.Second); code != 1009 {
		t.Errorf("a 1 GiB frame: close %d, want 1009", code)
	}
	c.Close()
	// fragments of 1 MiB: refused when they pass 16 MiB
	c, err = wsDial(w.Addr, "/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	frag := make([]byte, 1<<20)
	sent := 0
	errc := make(chan error, 1)
	go func() {
		op := byte(wsBinary)
		for i := 0; i < 1024; i++ {
			if err := c.frame(false, op, frag); err != nil {
				errc <- err
				return
			}
			sent++
			op = 0
		}
		errc <- nil
	}()
	if code, _ := c.readClose(20 * time.Second); code != 1009 {
		t.Errorf("1 GiB in fragments: close %d, want 1009", code)
	}
	c.Close()
	<-errc
	if sent > 64 {
		t.Errorf("the server read %d MiB of a message over its 16 MiB limit", sent)
	}
	if rss := vmKB(t, w.Pid(), "VmRSS"); rss > base+48<<10 {
		t.Errorf("RSS grew from %d kB to %d kB", base, rss)
	}
	// the server still serves
	c, _ = wsDial(w.Addr, "/echo")
	c.text("ok")
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "ok" {
		t.Errorf("after the floods: %q %v", p, err)
	}
	c.Close()
}

// wisp install of a FastAPI app into a running site, live: under loops of
// requests to the site's WSGI root and then to the FastAPI vdir itself
// (across a second install, which recycles its pool), no request fails.
func TestInstallFastAPILive(t *testing.T) {
	t.Parallel()
	s := serve(t, liveInstallConfig)
	s.readyWorkers(t, "root", 2)
	load := startFreshLoad(t, s.url(0, "/info"), 2, nil)
	install := func() {
		t.Helper()
		code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", app("asgi_fastapi/app.py")+":app", "--site", "S", "--vdir", "/api",
			"--pool", "api", "--python", python, "-c", s.Config)
		if code != 0 || !strings.Contains(out, "answers 200") {
			t.Fatalf("install: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	install()
	resp, body := s.get(t, "/api/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"hello":"fastapi"`) {
		t.Fatalf("GET /api/: %d %s", resp.StatusCode, trunc(body))
	}
	api := startFreshLoad(t, s.url(0, "/api/"), 2, func(resp *http.Response, body []byte) (bool, string) {
		return resp.StatusCode == 200 && strings.Contains(string(body), "fastapi"), resp.Status
	})
	time.Sleep(300 * time.Millisecond)
	install() // again: pool api recycles under the loop
	time.Sleep(500 * time.Millisecond)
	api.stop()
	load.stop()
	for name, l := range map[string]*loader{"/info": load, "/api/": api} {
		if total, ok := l.counts(); total < 10 || ok != total {
			t.Errorf("the loop on %s: %s", name, l.summary())
		}
	}
}

// The WebSocket metrics: open connections (up while open, down after) and
// messages each way, counted for the pool.
func TestWebSocketMetrics(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, wsApp(), "-w", "1", "--admin", admin, "--control-socket", filepath.Join(t.TempDir(), "ctl.sock"))
	var cs []*wsClient
	for i := 0; i < 3; i++ {
		c, err := wsDial(w.Addr, "/echo")
		if err != nil || c.Resp.StatusCode != 101 {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	for i := 0; i < 5; i++ {
		cs[0].text("m")
		cs[0].read(5 * time.Second)
	}
	metricWait(t, w, admin, `wisp_websocket_connections_open{pool="default"}`, 3)
	m := metricWait(t, w, admin, `wisp_websocket_messages_total{direction="in",pool="default"}`, 5)
	if m[`wisp_websocket_messages_total{direction="out",pool="default"}`] != 5 {
		t.Errorf("messages out: %v", m)
	}
	if _, ok := m[`wisp_event_loop_lag_seconds{pool="default"}`]; !ok {
		t.Errorf("no wisp_event_loop_lag_seconds: %v", m)
	}
	for _, c := range cs {
		c.closeWith(1000, "")
		c.readClose(5 * time.Second)
	}
	metricWait(t, w, admin, `wisp_websocket_connections_open{pool="default"}`, 0)
}
