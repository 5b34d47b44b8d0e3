package e2e

// Real ASGI apps on Debian's packages, run unchanged as a user runs them
// under uvicorn (testdata/apps/asgi_real): FastAPI with a Pydantic model,
// Starlette, Quart, and a Django + Channels chat driven from Chromium
// (channels_chat_check.py). Their WebSocket routes are spoken to with
// wsClient (wsclient_test.go).
//
// WISP_E2E_ASGI_PEER=uvicorn runs the same checks against Debian's uvicorn
// (`python3 -m uvicorn TARGET`) instead of wisp: the apps are meant to
// behave the same under both. The pool test and Starlette's (whose lifespan
// yields state, which Debian's uvicorn 0.17.6 predates) are wisp's only.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realPeer is the server the real-app tests run against: "" for wisp,
// "uvicorn" for Debian's uvicorn (a by-hand comparison).
func realPeer() string { return os.Getenv("WISP_E2E_ASGI_PEER") }

// startReal serves TARGET from testdata/apps/asgi_real/DIR (the working
// folder, as `uvicorn TARGET` is run from the project's folder) with
// `wisp run TARGET`, or with uvicorn under WISP_E2E_ASGI_PEER=uvicorn.
func startReal(t *testing.T, dir, target string) *wisp {
	t.Helper()
	o := runOpts{Dir: app(filepath.Join("asgi_real", dir))}
	switch realPeer() {
	case "":
		return startOpts(t, o, target)
	case "uvicorn":
	default:
		t.Fatalf("WISP_E2E_ASGI_PEER=%q: want uvicorn, or unset for wisp", realPeer())
	}
	port := pickPort(t)
	w := launchRaw(t, o, python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", port, "--ws", "wsproto", target)
	w.Addr, w.Port, w.URL = "127.0.0.1:"+port, port, "http://127.0.0.1:"+port
	if !eventually(startTimeout, func() bool { return strings.Contains(w.Stderr(), "Uvicorn running on") }) {
		w.kill()
		t.Fatalf("uvicorn %s did not start:\n%s", target, w.Stderr())
	}
	return w
}

// realWS is a WebSocket of a real-app test: wsClient (wsclient_test.go)
// with the checks these tests make on it, each failing the test.
type realWS struct{ *wsClient }

// dialRealWS opens a WebSocket to ws://ADDR/PATH with the extra request
// headers hdr (e.g. Origin). On a 101 it returns the connection; on any
// other answer, the response (its body read) and a nil connection.
func dialRealWS(t testing.TB, addr, path string, hdr map[string]string) (*realWS, *http.Response, []byte) {
	t.Helper()
	var extra []string
	for k, v := range hdr {
		extra = append(extra, k+": "+v)
	}
	c, err := wsDial(addr, path, extra...)
	if err != nil {
		t.Fatalf("websocket handshake to %s%s: %v", addr, path, err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, c.Resp, c.Body
	}
	if !strings.EqualFold(c.Resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("websocket handshake to %s%s: Upgrade %q", addr, path, c.Resp.Header.Get("Upgrade"))
	}
	return &realWS{c}, c.Resp, nil
}

// mustDialRealWS is dialRealWS that requires the 101.
func mustDialRealWS(t testing.TB, addr, path string, hdr map[string]string) *realWS {
	t.Helper()
	c, resp, body := dialRealWS(t, addr, path, hdr)
	if c == nil {
		t.Fatalf("websocket %s: %d %q, want 101", path, resp.StatusCode, trunc(body))
	}
	return c
}

func (c *realWS) sendText(t testing.TB, s string) {
	t.Helper()
	if err := c.text(s); err != nil {
		t.Fatalf("websocket send %q: %v", s, err)
	}
}

// readText requires the next message to be text and returns it.
func (c *realWS) readText(t testing.TB) string {
	t.Helper()
	op, p, err := c.read(10 * time.Second)
	if err != nil || op != wsText {
		t.Fatalf("websocket: read opcode %d %q (%v), want a text message", op, p, err)
	}
	return string(p)
}

// readClose requires the next frame to be a close frame; it answers it
// (the closing handshake) and returns the code and reason.
func (c *realWS) readClose(t testing.TB) (int, string) {
	t.Helper()
	op, p, err := c.read(10 * time.Second)
	if err != nil || op != wsClose {
		t.Fatalf("websocket: read opcode %d %q (%v), want a close frame", op, p, err)
	}
	code, reason := closeCode(p)
	if code == 1005 {
		c.send(wsClose, nil)
	} else {
		c.closeWith(code, "")
	}
	return code, reason
}

// closeAndWait starts the closing handshake with code, and requires the
// server's close frame back (with the same code) and then the end of the
// TCP connection.
func (c *realWS) closeAndWait(t testing.TB, code int) {
	t.Helper()
	if err := c.closeWith(code, ""); err != nil {
		t.Fatalf("websocket: send close: %v", err)
	}
	op, p, err := c.read(10 * time.Second)
	if err != nil || op != wsClose {
		t.Fatalf("websocket: after our close: opcode %d %q (%v), want the server's close frame", op, p, err)
	}
	if got, _ := closeCode(p); got != code {
		t.Errorf("websocket: the server's close frame has code %d, want ours (%d) echoed", got, code)
	}
	c.requireEOF(t)
}

// requireEOF requires the server to close the TCP connection within 10 s.
func (c *realWS) requireEOF(t testing.TB) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c.br)
	if realPeer() == "uvicorn" && errors.Is(err, syscall.ECONNRESET) {
		err = nil // uvicorn closes the socket as it sends its close frame: our reply meets a reset
	}
	if err != nil || n != 0 {
		t.Errorf("websocket: after the close handshake: %d more bytes, %v; want the connection closed", n, err)
	}
}

// realPostJSON POSTs body as application/json to path and returns the
// response with its body read.
func realPostJSON(t testing.TB, w *wisp, path, body string) (*http.Response, []byte) {
	t.Helper()
	req := mustRequest(t, "POST", w.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return w.do(t, req)
}

// fastAPIError is FastAPI's (Pydantic 1's) validation error body.
type fastAPIError struct {
	Detail []struct {
		Loc  []any  `json:"loc"`
		Msg  string `json:"msg"`
		Type string `json:"type"`
	} `json:"detail"`
}

// requireFastAPIError requires a 422 whose body names the field at loc.
func requireFastAPIError(t testing.TB, what string, resp *http.Response, body []byte, loc string) {
	t.Helper()
	var e fastAPIError
	if resp.StatusCode != 422 || json.Unmarshal(body, &e) != nil || len(e.Detail) == 0 {
		t.Errorf("%s: %d %s, want 422 with FastAPI's error body", what, resp.StatusCode, body)
		return
	}
	var locs []string
	for _, d := range e.Detail {
		locs = append(locs, fmt.Sprint(d.Loc))
		if fmt.Sprint(d.Loc) == loc && d.Msg != "" && d.Type != "" {
			return
		}
	}
	t.Errorf("%s: the errors are at %v, want one at %s: %s", what, locs, loc, body)
}

// TestRealFastAPI: `wisp run app:app` of a FastAPI service: the startup
// handler's state, a Pydantic model (201, and 422 with FastAPI's body), a
// path and a query parameter, the OpenAPI schema, and a streamed response
// that reaches the client line by line.
func TestRealFastAPI(t *testing.T) {
	w := startReal(t, "fastapi_app", "app:app")
	var root struct {
		Service string
		PID     int
	}
	w.getJSON(t, "/", &root)
	if root.Service != "inventory" || root.PID <= 0 {
		t.Errorf("GET /: %+v, want the pid the startup handler stored", root)
	}

	resp, body := realPostJSON(t, w, "/items", `{"name": "pen", "price": 1.5, "quantity": 4, "tags": ["office"]}`)
	var item struct {
		ID    int
		Name  string
		Total float64
		Tags  []string
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &item) != nil || item.ID != 1 || item.Name != "pen" ||
		item.Total != 6 || fmt.Sprint(item.Tags) != "[office]" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST /items: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = realPostJSON(t, w, "/items", `{"name": "pen", "price": "cheap"}`)
	requireFastAPIError(t, "POST /items with a bad price", resp, body, "[body price]")
	resp, body = realPostJSON(t, w, "/items", `{"name": "pen", "price": -1}`)
	requireFastAPIError(t, "POST /items with a negative price", resp, body, "[body price]")
	resp, body = realPostJSON(t, w, "/items", `{"name": "pen"`)
	if resp.StatusCode != 422 {
		t.Errorf("POST /items with broken JSON: %d %s, want 422", resp.StatusCode, body)
	}

	var got struct {
		ItemID int     `json:"item_id"`
		Q      *string `json:"q"`
	}
	w.getJSON(t, "/items/42?q=caf%C3%A9", &got)
	if got.ItemID != 42 || got.Q == nil || *got.Q != "café" {
		t.Errorf("GET /items/42?q=café: %+v", got)
	}
	got.Q = nil
	w.getJSON(t, "/items/7", &got)
	if got.ItemID != 7 || got.Q != nil {
		t.Errorf("GET /items/7: %+v, want no q", got)
	}
	resp, body = w.get(t, "/items/seven")
	requireFastAPIError(t, "GET /items/seven", resp, body, "[path item_id]")
	resp, body = w.get(t, "/items/7?q="+strings.Repeat("x", 21))
	requireFastAPIError(t, "GET /items/7 with a long q", resp, body, "[query q]")
	if resp, body = w.get(t, "/nowhere"); resp.StatusCode != 404 || !strings.Contains(string(body), "Not Found") {
		t.Errorf("GET /nowhere: %d %s", resp.StatusCode, body)
	}
	if resp, body = w.get(t, "/openapi.json"); resp.StatusCode != 200 || !strings.Contains(string(body), `"/items/{item_id}"`) {
		t.Errorf("GET /openapi.json: %d %s", resp.StatusCode, trunc(body))
	}

	// /count?n=20 sleeps 50 ms between lines: streamed, the first line
	// arrives long before the last
	c := dialRaw(t, w.Addr)
	c.send("GET /count?n=20 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := readResponseHead(c)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 || resp.Header.Get("X-Lines") != "20" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /count: %d %v %v, want 200, chunked, X-Lines: 20", resp.StatusCode, resp.TransferEncoding, resp.Header)
	}
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(resp.Body)
	var lines []string
	var first, last time.Time
	for i := 0; i < 25; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		if first.IsZero() {
			first = time.Now()
		}
		last = time.Now()
		lines = append(lines, line)
	}
	if len(lines) != 20 || lines[0] != "line 0\n" || lines[19] != "line 19\n" {
		t.Errorf("GET /count?n=20: %q", lines)
	}
	if gap := last.Sub(first); gap < 500*time.Millisecond {
		t.Errorf("the 20 lines arrived within %v: want them as the app sends them (50 ms apart), not at the end", gap)
	}
}

// TestRealFastAPIWebSocket: the FastAPI app's WebSocket route echoes with
// its path parameter and closes with its own code and reason; a client's
// close is answered.
func TestRealFastAPIWebSocket(t *testing.T) {
	w := startReal(t, "fastapi_app", "app:app")
	c := mustDialRealWS(t, w.Addr, "/ws/lobby", nil)
	for _, m := range []string{"hello", "", "καλημέρα", strings.Repeat("long ", 30000)} {
		c.sendText(t, m)
		if got := c.readText(t); got != "lobby: "+m {
			t.Errorf("echo of %d bytes: %q", len(m), trunc([]byte(got)))
		}
	}
	c.sendText(t, "bye")
	code, reason := c.readClose(t)
	if code != 4001 || reason != "bye from lobby" {
		t.Errorf("the app's close: code %d reason %q, want 4001 %q", code, reason, "bye from lobby")
	}
	c.requireEOF(t)

	// the client closes first
	c = mustDialRealWS(t, w.Addr, "/ws/kitchen", nil)
	c.sendText(t, "hi")
	if got := c.readText(t); got != "kitchen: hi" {
		t.Errorf("echo: %q", got)
	}
	c.closeAndWait(t, 1000)

	// no such WebSocket route: denied before accept, with a 403
	if c, resp, body := dialRealWS(t, w.Addr, "/ws/", nil); c != nil || resp.StatusCode != 403 {
		t.Errorf("websocket to a path with no route: %v %s, want 403", resp.Status, body)
	}
	// and HTTP still works beside the sockets
	var root map[string]any
	w.getJSON(t, "/", &root)
}

// TestRealStarlette: routes, a middleware on every response, the
// lifespan's state in each request, an upload read with request.stream()
// as it arrives, and a StreamingResponse.
func TestRealStarlette(t *testing.T) {
	if realPeer() == "uvicorn" {
		t.Skip("Debian's uvicorn 0.17.6 has no lifespan state, which the app's lifespan yields")
	}
	w := startReal(t, "starlette_app", "app:app")
	resp, body := w.get(t, "/")
	var home struct {
		Greeting string
		PID      int
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &home) != nil || home.Greeting != "hello from the lifespan" || home.PID <= 0 {
		t.Errorf("GET /: %d %s, want the lifespan's state", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Served-By") != "starlette" || resp.Header.Get("X-Elapsed-Ms") == "" {
		t.Errorf("GET /: headers %v, want the middleware's", resp.Header)
	}
	resp, body = w.get(t, "/hello/wisp")
	if resp.StatusCode != 200 || string(body) != "hello, wisp" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /hello/wisp: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ = w.get(t, "/nowhere"); resp.StatusCode != 404 || resp.Header.Get("X-Served-By") != "starlette" {
		t.Errorf("GET /nowhere: %d %v, want 404 through the middleware", resp.StatusCode, resp.Header)
	}
	if resp, _ = w.get(t, "/upload"); resp.StatusCode != 405 {
		t.Errorf("GET /upload: %d, want 405", resp.StatusCode)
	}

	// a chunked upload of 1 MiB, written in 8 pieces
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	pr, pw := io.Pipe()
	go func() { // owned by the request below, which reads pr to its end
		for i := 0; i < len(payload); i += 128 << 10 {
			if _, err := pw.Write(payload[i : i+128<<10]); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		pw.Close()
	}()
	req := mustRequest(t, "POST", w.URL+"/upload", pr)
	req.ContentLength = -1
	resp, body = w.do(t, req)
	var up struct {
		Size, Chunks int
		SHA256       string
	}
	sum := sha256.Sum256(payload)
	if resp.StatusCode != 200 || json.Unmarshal(body, &up) != nil || up.Size != len(payload) || up.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("POST /upload (1 MiB, chunked): %d %s", resp.StatusCode, body)
	}
	if up.Chunks < 2 {
		t.Errorf("request.stream() gave the upload in %d chunk(s), want it in pieces as it arrived", up.Chunks)
	}
	// and one of known length
	req = mustRequest(t, "POST", w.URL+"/upload", bytes.NewReader(payload[:1000]))
	resp, body = w.do(t, req)
	sum = sha256.Sum256(payload[:1000])
	if resp.StatusCode != 200 || json.Unmarshal(body, &up) != nil || up.Size != 1000 || up.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("POST /upload (1000 bytes): %d %s", resp.StatusCode, body)
	}

	// the generator never waits, so its messages may reach the client as
	// one body (TestRealFastAPI checks a stream that waits between lines)
	resp, body = w.get(t, "/ticks?n=5")
	if resp.StatusCode != 200 || string(body) != "tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n" || resp.Header.Get("X-Served-By") != "starlette" {
		t.Errorf("GET /ticks?n=5: %d %q %v, want 5 ticks through the middleware", resp.StatusCode, body, resp.Header)
	}
}

// TestRealStarletteWebSocket: a WebSocketEndpoint greets and echoes; two
// sockets at once are independent.
func TestRealStarletteWebSocket(t *testing.T) {
	if realPeer() == "uvicorn" {
		t.Skip("Debian's uvicorn 0.17.6 has no lifespan state, which the app's lifespan yields")
	}
	w := startReal(t, "starlette_app", "app:app")
	a := mustDialRealWS(t, w.Addr, "/ws", nil)
	b := mustDialRealWS(t, w.Addr, "/ws", nil)
	if got := a.readText(t); got != "welcome" {
		t.Errorf("a: first message %q, want welcome", got)
	}
	if got := b.readText(t); got != "welcome" {
		t.Errorf("b: first message %q, want welcome", got)
	}
	for i := 0; i < 5; i++ {
		a.sendText(t, fmt.Sprintf("a%d", i))
		b.sendText(t, fmt.Sprintf("b%d", i))
		if got := a.readText(t); got != fmt.Sprintf("echo: a%d", i) {
			t.Errorf("a: %q", got)
		}
		if got := b.readText(t); got != fmt.Sprintf("echo: b%d", i) {
			t.Errorf("b: %q", got)
		}
	}
	a.closeAndWait(t, 1000)
	b.sendText(t, "still here")
	if got := b.readText(t); got != "echo: still here" {
		t.Errorf("b after a closed: %q", got)
	}
	b.closeAndWait(t, 1001)
}

// TestRealQuart: a Quart app's routes, JSON in and out, its
// before_serving hook (run by the lifespan), and its websocket route.
func TestRealQuart(t *testing.T) {
	w := startReal(t, "quart_app", "app:app")
	resp, body := w.get(t, "/")
	if resp.StatusCode != 200 || string(body) != "Hello, Quart!" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	var greet struct{ Greeting, Name string }
	w.getJSON(t, "/greet/wisp", &greet)
	if greet.Greeting != "hello from before_serving" || greet.Name != "wisp" {
		t.Errorf("GET /greet/wisp: %+v, want before_serving's greeting", greet)
	}
	resp, body = realPostJSON(t, w, "/sum", `{"numbers": [1, 2, 3.5]}`)
	var sum struct {
		Sum   float64
		Count int
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &sum) != nil || sum.Sum != 6.5 || sum.Count != 3 {
		t.Errorf("POST /sum: %d %s", resp.StatusCode, body)
	}
	if resp, body = realPostJSON(t, w, "/sum", `{"numbers": 4}`); resp.StatusCode != 400 || !strings.Contains(string(body), "error") {
		t.Errorf("POST /sum with no list: %d %s, want 400", resp.StatusCode, body)
	}
	if resp, _ = w.get(t, "/nowhere"); resp.StatusCode != 404 {
		t.Errorf("GET /nowhere: %d", resp.StatusCode)
	}

	c := mustDialRealWS(t, w.Addr, "/ws", nil)
	for _, m := range []string{"one", "two", "three"} {
		c.sendText(t, m)
		if got := c.readText(t); got != "quart echo: "+m {
			t.Errorf("echo: %q", got)
		}
	}
	c.closeAndWait(t, 1000)
}

// realChatMessage is what the chat consumer broadcasts.
type realChatMessage struct {
	Message, Sender string
}

func readRealChat(t testing.TB, c *realWS, who string) realChatMessage {
	t.Helper()
	var m realChatMessage
	if s := c.readText(t); json.Unmarshal([]byte(s), &m) != nil {
		t.Fatalf("%s: %q is not a chat message", who, s)
	}
	return m
}

// TestRealChannels: Django's ASGI handler serves the chat's pages, an
// async view and an upload through Channels' ProtocolTypeRouter, and the chat consumer broadcasts a
// message to every socket of its room (the in-memory channel layer's
// group), not to other rooms. A socket without an allowed Origin is
// denied (403) by AllowedHostsOriginValidator.
func TestRealChannels(t *testing.T) {
	w := startReal(t, "channels_chat", "chatsite.asgi:application")
	var idx struct{ App, Path string }
	w.getJSON(t, "/chat/", &idx)
	if idx.App != "chat" || idx.Path != "/chat/" {
		t.Errorf("GET /chat/: %+v", idx)
	}
	resp, body := w.get(t, "/chat/lobby/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "'/ws/chat/' + roomName") ||
		!strings.Contains(string(body), `<script id="room-name" type="application/json">"lobby"</script>`) {
		t.Errorf("GET /chat/lobby/: %d %s", resp.StatusCode, trunc(body))
	}
	if resp, _ = w.get(t, "/nowhere/"); resp.StatusCode != 404 {
		t.Errorf("GET /nowhere/: %d, want Django's 404", resp.StatusCode)
	}
	var ping struct {
		Pong        bool
		LoopRunning bool `json:"loop_running"`
	}
	w.getJSON(t, "/chat/ping/", &ping)
	if !ping.Pong || !ping.LoopRunning {
		t.Errorf("GET /chat/ping/ (an async view): %+v", ping)
	}
	// a body that Django's ASGI handler reads from http.request messages
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	req := mustRequest(t, "POST", w.URL+"/chat/upload/", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, body = w.do(t, req)
	var up struct {
		Size        int
		SHA256      string
		ContentType string `json:"content_type"`
	}
	sum := sha256.Sum256(payload)
	if resp.StatusCode != 200 || json.Unmarshal(body, &up) != nil || up.Size != len(payload) ||
		up.SHA256 != hex.EncodeToString(sum[:]) || up.ContentType != "application/octet-stream" {
		t.Errorf("POST /chat/upload/ (300 KiB): %d %s", resp.StatusCode, trunc(body))
	}
	if resp, _ = w.get(t, "/chat/upload/"); resp.StatusCode != 405 {
		t.Errorf("GET /chat/upload/: %d, want 405", resp.StatusCode)
	}

	origin := map[string]string{"Origin": w.URL}
	a := mustDialRealWS(t, w.Addr, "/ws/chat/lobby/", origin)
	b := mustDialRealWS(t, w.Addr, "/ws/chat/lobby/", origin)
	other := mustDialRealWS(t, w.Addr, "/ws/chat/kitchen/", origin)
	// group_add happens before accept: both are in the room now
	a.sendText(t, `{"message": "hi from a", "sender": "a"}`)
	for _, c := range []struct {
		name string
		ws   *realWS
	}{{"a", a}, {"b", b}} {
		if m := readRealChat(t, c.ws, c.name); m != (realChatMessage{"hi from a", "a"}) {
			t.Errorf("%s got %+v, want a's message", c.name, m)
		}
	}
	b.sendText(t, `{"message": "héllo from b", "sender": "b"}`)
	for _, c := range []struct {
		name string
		ws   *realWS
	}{{"a", a}, {"b", b}} {
		if m := readRealChat(t, c.ws, c.name); m != (realChatMessage{"héllo from b", "b"}) {
			t.Errorf("%s got %+v, want b's message", c.name, m)
		}
	}
	// the other room saw neither: its first message is its own
	other.sendText(t, `{"message": "kitchen only", "sender": "k"}`)
	if m := readRealChat(t, other, "kitchen"); m != (realChatMessage{"kitchen only", "k"}) {
		t.Errorf("the other room got %+v, want only its own message", m)
	}
	// a leaves; b stays in the room
	a.closeAndWait(t, 1000)
	b.sendText(t, `{"message": "alone", "sender": "b"}`)
	if m := readRealChat(t, b, "b"); m != (realChatMessage{"alone", "b"}) {
		t.Errorf("b after a left: %+v", m)
	}

	for _, h := range []map[string]string{nil, {"Origin": "http://evil.example"}} {
		if c, resp, body := dialRealWS(t, w.Addr, "/ws/chat/lobby/", h); c != nil || resp.StatusCode != 403 {
			t.Errorf("websocket with Origin %q: %v %s, want 403", h["Origin"], resp.Status, body)
		}
	}
	// URLRouter raises for a path with no route: the socket is denied
	// (uvicorn answers 500), never accepted
	if c, resp, body := dialRealWS(t, w.Addr, "/ws/nowhere/", origin); c != nil || resp.StatusCode < 400 {
		t.Errorf("websocket to /ws/nowhere/: %v %s, want it denied", resp.Status, body)
	}
	b.closeAndWait(t, 1000)
	other.closeAndWait(t, 1000)
}

// TestRealChannelsChromium: the chat page in two tabs of headless
// Chromium (channels_chat_check.py): a message typed in one tab appears in
// the other, both ways, through Django Channels on the server, over
// permessage-deflate (which Chromium offers).
func TestRealChannelsChromium(t *testing.T) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromedriver"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed (Debian's chromium and chromium-driver)", p)
		}
	}
	if exec.Command(python, "-c", "import selenium").Run() != nil {
		t.Skip("python3-selenium is not installed")
	}
	w := startReal(t, "channels_chat", "chatsite.asgi:application")
	cmd := exec.Command(python, filepath.Join(repoRoot, "e2e", "channels_chat_check.py"), w.URL+"/chat/lobby/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("channels_chat_check.py: %v\n%s", err, out.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("channels_chat_check.py did not finish in 3 minutes:\n%s", out.String())
	}
	var res struct {
		Status     [2]string `json:"status"`
		Logs       [2]string `json:"logs"`
		Extensions [2]string `json:"extensions"`
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for i, log := range res.Logs {
		if res.Status[i] != "connected" || log != "typed in tab 1\ntyped in tab 2\n" {
			t.Errorf("tab %d: status %q, log %q: want connected, with tab 1's then tab 2's message", i+1, res.Status[i], log)
		}
		// Chromium offers permessage-deflate, and wisp takes it
		if !strings.HasPrefix(res.Extensions[i], "permessage-deflate") {
			t.Errorf("tab %d: the socket's extensions are %q, want permessage-deflate", i+1, res.Extensions[i])
		}
	}
}

// TestRealFastAPIPoolWithWSGI: `wisp serve` with the FastAPI app at / and
// a WSGI app at /legacy in one pool of two workers, and the Quart app at /q
// in a pool of its own: each worker ran the app's startup, `wisp check`
// passes, the WSGI app keeps its SCRIPT_NAME, the Quart app its prefix, and
// the WebSocket routes work in the pool and across pools.
func TestRealFastAPIPoolWithWSGI(t *testing.T) {
	if realPeer() != "" {
		t.Skip("wisp serve only")
	}
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 2

[pools.quart]
python = "@PY@"
processes = 1

[[sites]]
name = "s"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/asgi_real/fastapi_app/app.py:app"

  [[sites.vdirs]]
  path = "/legacy"
  app = "@APPS@/environ/app.py"

  [[sites.vdirs]]
  path = "/q"
  app = "@APPS@/asgi_real/quart_app/app.py:app"
  pool = "quart"
`)
	if code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "check"); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Errorf("wisp check: exit %d\n%s%s", code, out, errOut)
	}
	pids := map[int]bool{}
	for i := 0; i < 60 && len(pids) < 2; i++ {
		tr := &http.Transport{DisableKeepAlives: true}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		resp, err := c.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		var root struct {
			Service string
			PID     int
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || json.Unmarshal(body, &root) != nil || root.Service != "inventory" || root.PID <= 0 {
			t.Fatalf("GET /: %d %s", resp.StatusCode, body)
		}
		pids[root.PID] = true
	}
	if len(pids) != 2 {
		t.Errorf("the startup handler's pid from %d worker(s), want both", len(pids))
	}
	for pid := range pids {
		if pid == s.Pid() || !pidAlive(pid) {
			t.Errorf("pid %d: want a live worker process, not the supervisor %d", pid, s.Pid())
		}
	}
	resp, body := realPostJSON(t, s.wisp, "/items", `{"name": "pen", "price": "cheap"}`)
	requireFastAPIError(t, "POST /items in the pool", resp, body, "[body price]")
	var env envReply
	s.getJSON(t, "/legacy/x", &env)
	if env.Environ["SCRIPT_NAME"] != "/legacy" || env.Environ["PATH_INFO"] != "/x" {
		t.Errorf("the WSGI app at /legacy: SCRIPT_NAME %q PATH_INFO %q", env.Environ["SCRIPT_NAME"], env.Environ["PATH_INFO"])
	}

	c := mustDialRealWS(t, s.Addr, "/ws/pool", nil)
	c.sendText(t, "through the pool")
	if got := c.readText(t); got != "pool: through the pool" {
		t.Errorf("echo: %q", got)
	}
	c.sendText(t, "bye")
	if code, reason := c.readClose(t); code != 4001 || reason != "bye from pool" {
		t.Errorf("close: %d %q, want 4001 %q", code, reason, "bye from pool")
	}
	c.requireEOF(t)

	// the Quart app, in the other pool, under its prefix
	var greet struct{ Greeting, Name string }
	s.getJSON(t, "/q/greet/pool", &greet)
	if greet.Greeting != "hello from before_serving" || greet.Name != "pool" {
		t.Errorf("GET /q/greet/pool: %+v", greet)
	}
	q := mustDialRealWS(t, s.Addr, "/q/ws", nil)
	for _, m := range []string{"across", "the pools"} {
		q.sendText(t, m)
		if got := q.readText(t); got != "quart echo: "+m {
			t.Errorf("echo across the pools: %q", got)
		}
	}
	q.closeAndWait(t, 1000)
}
