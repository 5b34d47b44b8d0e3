package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The ASGI tests run testdata/apps/asgi_app (a raw ASGI 3 app, one route per
// case, whose lifespan writes to $ASGI_MARK) and asgi_fastapi.

func asgiApp() string { return app("asgi_app/app.py") + ":app" }

// markLines returns the lines the app wrote to its mark file.
func markLines(path string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestASGIHello(t *testing.T) {
	w := start(t, asgiApp())
	resp, body := w.get(t, "/")
	if resp.StatusCode != 200 || string(body) != "Hello, ASGI!" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("GET /: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, want %d (one hand-off carries the whole response)", resp.ContentLength, len(body))
	}
	if !strings.Contains(w.Stderr(), "ASGI event loop: uvloop") {
		t.Errorf("the log does not say the loop is uvloop (python3-uvloop is installed):\n%s", w.Stderr())
	}
}

// The scope is complete: an app mounted at /a (beside a WSGI app at /)
// sees root_path /a, the decoded path and the raw one, the query, its
// headers lowercased in order, client, server, and the lifespan's state.
func TestASGIScope(t *testing.T) {
	w := start(t, "--mount", "/a="+asgiApp(), "--mount", "/="+app("environ/app.py"))
	req := mustRequest(t, "GET", w.URL+"/a/x%20y/caf%C3%A9/scope?q=1&r=%20", nil)
	req.Header["X-Custom"] = []string{"One", "Two"}
	req.Header.Set("X-Other", "Three")
	resp, body := w.do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var s struct {
		Type, HTTPVersion, Method, Scheme, Path, RawPath, QueryString, RootPath string
		Headers                                                                 [][2]string
		Client, Server                                                          []any
		State                                                                   map[string]string
		ASGI                                                                    map[string]string
		First                                                                   map[string]any `json:"first_message"`
	}
	// the JSON keys are the scope's own
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("bad JSON %q: %v", body, err)
	}
	for k, dst := range map[string]any{"type": &s.Type, "http_version": &s.HTTPVersion, "method": &s.Method,
		"scheme": &s.Scheme, "path": &s.Path, "raw_path": &s.RawPath, "query_string": &s.QueryString,
		"root_path": &s.RootPath, "headers": &s.Headers, "client": &s.Client, "server": &s.Server,
		"state": &s.State, "asgi": &s.ASGI, "first_message": &s.First} {
		if err := json.Unmarshal(raw[k], dst); err != nil {
			t.Fatalf("scope[%q] = %s: %v", k, raw[k], err)
		}
	}
	want := map[string]string{"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
		"path": "/a/x y/café/scope", "raw_path": "/a/x%20y/caf%C3%A9/scope", "query_string": "q=1&r=%20", "root_path": "/a"}
	got := map[string]string{"type": s.Type, "http_version": s.HTTPVersion, "method": s.Method, "scheme": s.Scheme,
		"path": s.Path, "raw_path": s.RawPath, "query_string": s.QueryString, "root_path": s.RootPath}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("scope[%q] = %q, want %q", k, got[k], v)
		}
	}
	if s.ASGI["version"] != "3.0" || s.ASGI["spec_version"] == "" {
		t.Errorf("scope[asgi] = %v", s.ASGI)
	}
	var names []string
	for _, h := range s.Headers {
		names = append(names, h[0])
		if h[0] != strings.ToLower(h[0]) {
			t.Errorf("header name %q is not lowercase", h[0])
		}
	}
	var custom []string
	for _, h := range s.Headers {
		if h[0] == "x-custom" {
			custom = append(custom, h[1])
		}
	}
	if strings.Join(custom, ",") != "One,Two" {
		t.Errorf("x-custom values %v, want One then Two (headers: %v)", custom, s.Headers)
	}
	if !strings.Contains(strings.Join(names, ","), "host") || !strings.Contains(strings.Join(names, ","), "x-other") {
		t.Errorf("headers %v lack host or x-other", names)
	}
	if len(s.Client) != 2 || s.Client[0] != "127.0.0.1" || s.Client[1].(float64) <= 0 {
		t.Errorf("client = %v", s.Client)
	}
	if len(s.Server) != 2 || s.Server[0] != "127.0.0.1" || fmt.Sprint(s.Server[1]) != w.Port {
		t.Errorf("server = %v, want [127.0.0.1 %s]", s.Server, w.Port)
	}
	if s.State["greeting"] != "hello from lifespan" {
		t.Errorf("state = %v, want the lifespan's greeting", s.State)
	}
	if s.First["type"] != "http.request" || s.First["more_body"] != false {
		t.Errorf("first receive() = %v", s.First)
	}
	// and the WSGI app beside it still answers
	var env envReply
	w.getJSON(t, "/wsgi/here", &env)
	if env.Environ["PATH_INFO"] != "/wsgi/here" || env.Environ["SCRIPT_NAME"] != "" {
		t.Errorf("the WSGI app at /: PATH_INFO %q SCRIPT_NAME %q", env.Environ["PATH_INFO"], env.Environ["SCRIPT_NAME"])
	}
}

// A request body reaches receive() in chunks as it arrives (more_body
// True until the last), and max_body bounds it: 413 for a declared length
// over the limit, and for a chunked body that passes it midway.
func TestASGIRequestBody(t *testing.T) {
	w := start(t, asgiApp(), "--max-body", "1MiB")
	c := dialRaw(t, w.Addr)
	c.send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	payload := make([]byte, 600<<10)
	rand.Read(payload)
	for i := 0; i < len(payload); i += 100 << 10 {
		part := payload[i : i+100<<10]
		c.send(fmt.Sprintf("%x\r\n%s\r\n", len(part), part))
		time.Sleep(20 * time.Millisecond)
	}
	c.send("0\r\n\r\n")
	resp, body, err := c.response("POST")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked POST: %v %v %s", resp.Status, err, body)
	}
	var got struct {
		Sizes  []int
		More   []bool
		Total  int
		SHA256 string
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if got.Total != len(payload) || got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the app received %d bytes (sha %s), want %d", got.Total, got.SHA256, len(payload))
	}
	if len(got.Sizes) < 2 {
		t.Errorf("the body came in %d message(s), want several (streamed): %v", len(got.Sizes), got.Sizes)
	}
	for i, m := range got.More {
		if m != (i < len(got.More)-1) {
			t.Errorf("more_body flags %v: want true on all but the last", got.More)
			break
		}
	}
	// declared over the limit: 413 before the app runs (the body is never sent)
	c = dialRaw(t, w.Addr)
	c.send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
	resp, body, _ = c.response("POST")
	if resp.StatusCode != 413 {
		t.Errorf("POST of 2 MiB with Content-Length: %d %q, want 413", resp.StatusCode, body)
	}
	// chunked, passing the limit while the app reads it
	c = dialRaw(t, w.Addr)
	c.send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	big := bytes.Repeat([]byte("y"), 256<<10)
	go func() {
		for i := 0; i < 8; i++ {
			if _, err := fmt.Fprintf(c.conn, "%x\r\n%s\r\n", len(big), big); err != nil {
				return
			}
		}
		io.WriteString(c.conn, "0\r\n\r\n")
	}()
	resp, body, _ = c.response("POST")
	if resp.StatusCode != 413 || !strings.Contains(string(body), "413") {
		t.Errorf("chunked POST of 2 MiB: %d %q, want 413", resp.StatusCode, body)
	}
}

// A streamed response reaches the client as it is sent: the client reads
// the first chunk while the app still waits (for /release) to send the
// second.
func TestASGIStreamingResponse(t *testing.T) {
	w := start(t, asgiApp())
	c := dialRaw(t, w.Addr)
	c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := readResponseHead(c)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 {
		t.Fatalf("status %d, transfer-encoding %v: want 200 chunked", resp.StatusCode, resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "first chunk\n" {
		t.Fatalf("first chunk: %q %v (it must arrive before the app sends the second)", line, err)
	}
	if _, body := w.get(t, "/release"); string(body) != "released" {
		t.Fatalf("/release: %q", body)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second chunk\n" {
		t.Errorf("rest: %q %v", rest, err)
	}
}

// send() returns only when the bytes fit the response's bounded window: a
// client that reads nothing holds the app's coroutine, not memory, and
// then gets every byte.
func TestASGIBackpressure(t *testing.T) {
	w := start(t, asgiApp())
	c := dialRaw(t, w.Addr)
	c.send("GET /flood?1024 HTTP/1.1\r\nHost: x\r\n\r\n") // 64 MiB in 64 KiB messages
	time.Sleep(1500 * time.Millisecond)
	_, body := w.get(t, "/progress")
	sent, err := strconv.Atoi(string(body))
	t.Logf("the app handed %d bytes to send() while the client read nothing", sent)
	if err != nil || sent == 0 || sent > 24<<20 {
		t.Fatalf("the app handed %q bytes to send() while the client read nothing: want some, and at most 24 MiB (the window and the sockets' buffers)", body)
	}
	resp, err := readResponseHead(c)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 64<<20 {
		t.Errorf("read %d bytes (%v), want 64 MiB", n, err)
	}
}

// http.disconnect reaches receive() when the client goes away while the
// app waits in it.
func TestASGIDisconnect(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	w := start(t, "-e", "ASGI_MARK="+mark, asgiApp())
	c := dialRaw(t, w.Addr)
	c.send("GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	c.conn.Close()
	if !eventually(5*time.Second, func() bool { return strings.Contains(strings.Join(markLines(mark), ","), "disconnected") }) {
		t.Fatalf("the app did not get http.disconnect: mark %v", markLines(mark))
	}
}

// request_timeout cancels the task and answers 504.
func TestASGITimeout(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	w := start(t, "-e", "ASGI_MARK="+mark, "-t", "1", asgiApp())
	began := time.Now()
	resp, body := w.get(t, "/slow")
	if resp.StatusCode != 504 || time.Since(began) > 10*time.Second {
		t.Fatalf("GET /slow with -t 1: %d %q after %v, want 504", resp.StatusCode, body, time.Since(began))
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(strings.Join(markLines(mark), ","), "cancelled") }) {
		t.Errorf("the task was not cancelled: mark %v", markLines(mark))
	}
	if _, body := w.get(t, "/"); string(body) != "Hello, ASGI!" {
		t.Errorf("after the timeout: %q", body)
	}
}

// An app that raises before its response gets a 500; one that raises after
// http.response.start has its connection closed, not left hanging.
func TestASGIRaise(t *testing.T) {
	w := start(t, asgiApp())
	resp, _ := w.get(t, "/raise-early")
	if resp.StatusCode != 500 {
		t.Errorf("raise before the response: %d, want 500", resp.StatusCode)
	}
	c := dialRaw(t, w.Addr)
	c.send("GET /raise-late HTTP/1.1\r\nHost: x\r\n\r\n")
	closed, got := c.closedWithin(5 * time.Second)
	if !closed {
		t.Fatalf("the connection is still open 5s after the app raised: %q", got)
	}
	if !bytes.Contains(got, []byte("partial")) || bytes.HasSuffix(got, []byte("0\r\n\r\n")) {
		t.Errorf("got %q: want the partial body and no end of the chunked body", got)
	}
	if !w.waitStderr("boom after the response started", 5*time.Second) {
		t.Errorf("the traceback is not in the log:\n%s", w.Stderr())
	}
}

// Lifespan startup and shutdown run once per worker process, in a pool
// where an ASGI and a WSGI vdir share the workers.
func TestASGIPoolWithWSGI(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	w := start(t, "-w", "2", "-e", "ASGI_MARK="+mark, "--mount", "/a="+asgiApp(), "--mount", "/="+app("environ/app.py"))
	pids := map[string]bool{}
	for i := 0; i < 40 && len(pids) < 2; i++ {
		var s map[string]any
		w.getJSON(t, "/a/scope", &s)
		pids[fmt.Sprint(s["pid"])] = true
		if st, _ := s["state"].(map[string]any); st["greeting"] != "hello from lifespan" {
			t.Fatalf("state %v", s["state"])
		}
		var env envReply
		w.getJSON(t, "/x", &env)
	}
	if !eventually(10*time.Second, func() bool { return len(markLines(mark)) >= 2 }) {
		t.Fatalf("mark %v: want a startup line per worker", markLines(mark))
	}
	w.stop()
	lines := markLines(mark)
	starts, stops := map[string]int{}, map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "startup" {
			starts[f[1]]++
		}
		if len(f) == 2 && f[0] == "shutdown" {
			stops[f[1]]++
		}
	}
	if len(starts) != 2 {
		t.Errorf("startup ran in %d processes, want 2: %v", len(starts), lines)
	}
	for pid, n := range starts {
		if n != 1 || stops[pid] != 1 {
			t.Errorf("worker %s: %d startup(s) and %d shutdown(s), want 1 each: %v", pid, n, stops[pid], lines)
		}
	}
}

// A lifespan startup that fails stops the server from starting, with the
// app's message in the log, and wisp check fails with it too.
func TestASGILifespanStartupFails(t *testing.T) {
	code, _, stderr := runWisp(t, time.Minute, "", "run", "--python", python, "--bind", "127.0.0.1:0",
		"-e", "ASGI_FAIL_STARTUP=database unreachable", asgiApp())
	if code == 0 || !strings.Contains(stderr, "database unreachable") || !strings.Contains(stderr, "lifespan startup failed") {
		t.Errorf("wisp run: exit %d, want non-zero with the app's message:\n%s", code, stderr)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[server]
access_log = "off"

[pools.default]
python = %q
env = { ASGI_FAIL_STARTUP = "database unreachable" }

[[sites]]
name = "s"
bindings = ["127.0.0.1:1"]

  [[sites.vdirs]]
  path = "/"
  app = %q
`, python, asgiApp())
	os.WriteFile(filepath.Join(dir, "wisp.toml"), []byte(cfg), 0o644)
	code, out, errOut := runWisp(t, time.Minute, dir, "check")
	if code == 0 || !strings.Contains(errOut, "database unreachable") {
		t.Errorf("wisp check: exit %d, want non-zero with the app's message:\n%s%s", code, out, errOut)
	}
	// in a pool: the worker fails its start with the message, and rapid-fail counts it
	p := launch(t, runOpts{}, "-w", "1", "-e", "ASGI_FAIL_STARTUP=database unreachable", asgiApp())
	if !p.waitStderr("failures=1", 30*time.Second) || !strings.Contains(p.Stderr(), `lifespan startup failed: database unreachable`) {
		t.Errorf("a pool's worker whose startup fails:\n%s", p.Stderr())
	}
	p.stop()
	// with lifespan off, the app starts
	w := start(t, "--lifespan", "off", "-e", "ASGI_FAIL_STARTUP=database unreachable", asgiApp())
	if _, body := w.get(t, "/"); string(body) != "Hello, ASGI!" {
		t.Errorf("--lifespan off: %q", body)
	}
}

// --interface overrides detection; a wrong one is an error at import.
func TestASGIInterfaceFlag(t *testing.T) {
	code, _, stderr := runWisp(t, time.Minute, "", "run", "--python", python, "--bind", "127.0.0.1:0",
		"--interface", "wsgi", asgiApp())
	if code == 0 || !strings.Contains(stderr, "is an ASGI application") {
		t.Errorf("--interface wsgi with an ASGI app: exit %d\n%s", code, stderr)
	}
	w := start(t, "--interface", "asgi", asgiApp())
	if _, body := w.get(t, "/"); string(body) != "Hello, ASGI!" {
		t.Errorf("--interface asgi: %q", body)
	}
}

// `wisp run app:app` of a FastAPI app: a Pydantic model validates the
// body (422 on bad input).
func TestASGIFastAPI(t *testing.T) {
	w := startOpts(t, runOpts{Dir: app("asgi_fastapi")}, "app:app")
	req := mustRequest(t, "POST", w.URL+"/items", strings.NewReader(`{"name": "pen", "price": 1.5, "quantity": 4}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body := w.do(t, req)
	var got map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got["name"] != "pen" || got["total"] != 6.0 {
		t.Errorf("POST /items: %d %s", resp.StatusCode, body)
	}
	req = mustRequest(t, "POST", w.URL+"/items", strings.NewReader(`{"name": "pen", "price": "cheap"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body = w.do(t, req)
	if resp.StatusCode != 422 || !strings.Contains(string(body), "price") {
		t.Errorf("POST /items with a bad price: %d %s, want 422 naming the field", resp.StatusCode, body)
	}
	resp, body = w.get(t, "/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"fastapi"`) {
		t.Errorf("GET /: %d %s", resp.StatusCode, body)
	}
	// a StreamingResponse (Starlette streams it while a task listens for the disconnect)
	for i := 0; i < 3; i++ {
		resp, body = w.get(t, "/stream")
		if resp.StatusCode != 200 || string(body) != "part 0\npart 1\npart 2\n" {
			t.Errorf("GET /stream: %d %q", resp.StatusCode, body)
		}
	}
}

// The vdir keys interface and lifespan and the pool key loop reach a
// pool's workers: lifespan = "off" skips a startup that would fail, and
// the loop is asyncio, not uvloop.
func TestASGIConfigKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[server]
access_log = "off"

[pools.default]
python = %q
loop = "asyncio"
env = { ASGI_FAIL_STARTUP = "database unreachable" }

[[sites]]
name = "s"
bindings = ["127.0.0.1:1"]

  [[sites.vdirs]]
  path = "/a"
  app = %q
  interface = "asgi"
  lifespan = "off"

  [[sites.vdirs]]
  path = "/"
  app = %q
  interface = "wsgi"
`, python, asgiApp(), app("environ/app.py"))
	path := filepath.Join(dir, "wisp.toml")
	os.WriteFile(path, []byte(cfg), 0o644)
	if code, out, errOut := runWisp(t, time.Minute, dir, "check"); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Errorf("wisp check with lifespan = \"off\": exit %d\n%s%s", code, out, errOut)
	}
	w := startOpts(t, runOpts{Dir: dir}, "-c", path)
	if _, body := w.get(t, "/a/"); string(body) != "Hello, ASGI!" {
		t.Errorf("GET /a/: %q", body)
	}
	var env envReply
	w.getJSON(t, "/x", &env)
	if !strings.Contains(w.Stderr(), "ASGI event loop: asyncio") {
		t.Errorf("loop = \"asyncio\" did not reach the worker:\n%s", w.Stderr())
	}
}

// A WSGI app's process does not load the ASGI glue (wisp_asgi.py, and
// asyncio with it: about 9 MB a process): detection looks at the app's
// code flags first and loads it only for a coroutine callable.
func TestWSGIDoesNotLoadASGIGlue(t *testing.T) {
	t.Parallel()
	w := start(t, app("wsgi_modules/app.py"))
	resp, body := w.get(t, "/")
	if resp.StatusCode != 200 || string(body) != "asgi-glue=0" {
		t.Errorf("GET /: %d %q, want asgi-glue=0", resp.StatusCode, body)
	}
}

// http.response.trailers: the body is chunked, whatever its size, and the
// trailers (from two messages) follow its last chunk; an HTTP/1.0 client
// gets the body without them.
func TestASGITrailers(t *testing.T) {
	w := start(t, asgiApp())
	raw := dialRaw(t, w.Addr)
	raw.send("GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
	resp, body, err := raw.response("GET")
	if err != nil || resp.StatusCode != 200 || string(body) != "part one, part two" {
		t.Fatalf("GET /trailers: %v %v %q", err, resp, body)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v, want chunked (trailers follow)", resp.TransferEncoding)
	}
	if resp.Trailer.Get("X-Checksum") != "abc123" || resp.Trailer.Get("X-Count") != "2" {
		t.Errorf("trailers %v", resp.Trailer)
	}
	raw = dialRaw(t, w.Addr)
	raw.send("GET /trailers HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, body, err = raw.response("GET")
	if err != nil || resp.StatusCode != 200 || string(body) != "part one, part two" || len(resp.Trailer) != 0 {
		t.Errorf("HTTP/1.0: %v %v %q %v", err, resp, body, resp.Trailer)
	}
}

// http.response.pathsend: the server sends the file itself (with its
// length); a path that is not absolute, or a file that is missing, is the
// app's error.
func TestASGIPathsend(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("wisp pathsend "), 100000)
	f := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w := start(t, asgiApp())
	resp, body := w.get(t, "/pathsend?"+f)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.ContentLength != int64(len(data)) {
		t.Fatalf("pathsend: %d, %d bytes (want %d), Content-Length %d", resp.StatusCode, len(body), len(data), resp.ContentLength)
	}
	resp, _ = w.get(t, "/pathsend?relative.bin")
	if resp.StatusCode != 500 && resp.StatusCode != 200 {
		t.Errorf("a relative path: %d", resp.StatusCode)
	}
	if !w.waitStderr("is not absolute", 5*time.Second) {
		t.Errorf("no error for a relative path:\n%s", w.Stderr())
	}
}

// A segfault in an ASGI app's coroutine, in a pool worker: the crash report
// names the signal and the request in flight, and its Python stack shows
// the coroutines that were running (on the loop's thread); the pool serves
// on.
func TestASGISegfaultLogged(t *testing.T) {
	w := start(t, "-w", "1", asgiApp())
	if resp, _, err := getOnce(t, w.URL+"/segv?e2e=asgi", 30*time.Second); err == nil {
		t.Fatalf("GET /segv answered %d: the app did not crash", resp.StatusCode)
	}
	if !w.waitStderr("worker crashed", 20*time.Second) {
		t.Fatalf("no crash report:\n%s", w.Stderr())
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(w.Stderr(), "in segv_in_coroutine_e2e") }) {
		t.Errorf("the crash report does not show the coroutine's frame:\n%s", w.Stderr())
	}
	for _, want := range []string{"killed by signal SIGSEGV", "GET /segv?e2e=asgi", "in app"} {
		if !strings.Contains(w.Stderr(), want) {
			t.Errorf("the crash report lacks %q:\n%s", want, w.Stderr())
		}
	}
	if !eventually(20*time.Second, func() bool {
		resp, _, err := getOnce(t, w.URL+"/", 5*time.Second)
		return err == nil && resp.StatusCode == 200
	}) {
		t.Error("the pool does not serve after the crash")
	}
}

// Bodies of every size reach the client as sent, whether wisp copies them
// or hands Go a view of their bytes object (16 KiB and more), each a new
// object the app drops at once; and the views are let go: 150 responses of
// over 1 MiB leave the resident memory where it was.
func TestASGIBodyViews(t *testing.T) {
	w := start(t, asgiApp())
	var want []byte
	for i, n := range []int{1, 16383, 16384, 16385, 65536, 200000, 0, 3} {
		want = append(want, bytes.Repeat([]byte{byte(i + 65)}, n)...)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	want = append(want, bytes.Repeat(all, 4096)...)
	client := &http.Client{Timeout: 10 * time.Second}
	get := func() {
		t.Helper()
		resp, err := client.Get("http://" + w.Addr + "/pattern")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, want) {
			i := 0
			for i < len(body) && i < len(want) && body[i] == want[i] {
				i++
			}
			t.Fatalf("/pattern: %d bytes (%v), want %d; they differ from byte %d", len(body), err, len(want), i)
		}
	}
	for range 20 {
		get()
	}
	base := vmKB(t, w.Pid(), "VmRSS")
	for range 150 {
		get()
	}
	if grew := vmKB(t, w.Pid(), "VmRSS") - base; grew > 32<<10 {
		t.Errorf("resident memory grew %d KiB over 150 responses of 1.3 MiB: the bodies are not let go", grew)
	}
}

// The response head takes the header shapes the ASGI spec allows (any
// iterable of pairs of bytes-like objects) and refuses a header no server may
// send: send() raises ValueError naming it, and the client gets 500.
func TestASGIResponseHeaders(t *testing.T) {
	w := start(t, asgiApp())
	for _, shape := range []string{"tuple", "lists", "gen", "bytearray"} {
		resp, err := http.Get("http://" + w.Addr + "/shapes?" + shape)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 299 || resp.Header.Get("X-One") != "1" || resp.Header.Get("X-Two") != "two\tparts" || string(body) != shape {
			t.Errorf("headers as %s: %d %v %q", shape, resp.StatusCode, resp.Header, body)
		}
	}
	for _, bad := range []string{"name", "value", "empty", "nul"} {
		resp, err := http.Get("http://" + w.Addr + "/bad-header?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 || resp.Header.Get("X-Ok") != "" {
			t.Errorf("a bad header (%s): %d %v, want 500 without the app's headers", bad, resp.StatusCode, resp.Header)
		}
	}
	for _, h := range []string{`(b'x bad', b'v')`, `(b'x-bad', b'a\\r\\nb')`, `(b'', b'v')`, `(b'x-bad', b'a\\x00b')`} {
		if !w.waitStderr("ValueError: http.response.start: invalid header "+h, 5*time.Second) {
			t.Errorf("send() did not raise ValueError naming the header %s:\n%s", h, w.Stderr())
		}
	}
}

// Over a unix socket the scope has no client and the server is the
// socket's path with no port (ASGI spec), as the C scope builder makes it.
func TestASGIScopeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "asgi.sock")
	start(t, asgiApp(), "-b", "unix:"+sock)
	resp, err := unixClient(sock).Get("http://app.test/scope?x=%2F")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/scope over a unix socket: %d %v", resp.StatusCode, err)
	}
	server, _ := s["server"].([]any)
	if s["client"] != nil || len(server) != 2 || server[0] != sock || server[1] != nil {
		t.Errorf("client %v, server %v: want none, and [%q, null]", s["client"], s["server"], sock)
	}
	if s["path"] != "/scope" || s["query_string"] != "x=%2F" || s["http_version"] != "1.1" || s["method"] != "GET" {
		t.Errorf("scope %v", s)
	}
}
