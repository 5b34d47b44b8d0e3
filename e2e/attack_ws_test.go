package e2e

// Defects found probing the WebSocket and ASGI surface as an attacker or a
// demanding user (issue 21). Each test fails on the code it was written
// against; testdata/apps/attack_ws holds the apps.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func attackApp() string { return app("attack_ws/app.py") + ":app" }

// A WebSocket handshake that carries a body (Content-Length, or chunked) is
// answered: RFC 9112 wants a response to every request, and RFC 6455 4.2.2
// a 101 or an HTTP error. Seen: the app gets websocket.connect and accepts,
// then h1's Switch refuses (the body was not read) and the connection is
// closed with no response at all; the access log says 101. Expected: a 400
// before the app runs (as for any other invalid handshake), or the body read
// and the 101 sent.
func TestAttackWSUpgradeWithBody(t *testing.T) {
	w := start(t, "--mount", "/ws="+attackApp())
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	for _, c := range []struct{ name, head, body string }{
		{"content-length", "Content-Length: 5\r\n", "hello"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"},
	} {
		raw := dialRaw(t, w.Addr)
		raw.send("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + c.head + "\r\n" + c.body)
		raw.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(raw.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Errorf("%s: no response to a handshake with a body: %v", c.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 101 {
			t.Errorf("%s: %d, want 400 (or 101 with the body read)", c.name, resp.StatusCode)
		}
	}
}

// The same handshake to an ASGI app in another pool than the site's: the
// client gets a 502 ("the pool serving this path is not answering") and the
// front pool logs "forward to pool failed ... err=EOF", though the pool is
// healthy and its app accepted. Expected: the 400 (or 101) the pool itself
// should answer.
func TestAttackWSUpgradeWithBodyForwarded(t *testing.T) {
	t.Parallel()
	s := serve(t, attackPoolsConfig)
	s.readyWorkers(t, "ws", 1)
	raw := dialRaw(t, s.Addr)
	raw.send("GET /chat/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello")
	raw.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(raw.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 && resp.StatusCode != 101 {
		t.Errorf("a handshake with a body through another pool: %d, want 400 (or 101 with the body read)", resp.StatusCode)
	}
}

// attackPoolsConfig is wsPoolsConfig with the attack apps: the site's
// WSGI app in pool front, the attack ASGI app at /chat in pool ws.
var attackPoolsConfig = strings.NewReplacer("@APPS@/environ/app.py", "@APPS@/attack_ws/wsgi.py",
	"@APPS@/asgi_ws/app.py:app", "@APPS@/attack_ws/app.py:app").Replace(wsPoolsConfig)

// A WebSocket relayed from the site's pool to another is logged by the pool
// the client talked to as `"GET /chat/echo HTTP/1.1" 200 -`: status 200 and
// no bytes, though the client got a 101 and messages (docs/asgi.md: an
// upgraded connection is logged as 101 BYTES when it closes). Only the
// serving pool's line (client "@") says 101.
func TestAttackWSForwardedAccessLog(t *testing.T) {
	t.Parallel()
	s := serve(t, attackPoolsConfig)
	s.readyWorkers(t, "ws", 1)
	c, err := wsDial(s.Addr, "/chat/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v %+v", err, c)
	}
	c.text("across the pools")
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "across the pools" {
		t.Fatalf("echo: %q %v", p, err)
	}
	c.closeWith(1000, "")
	c.readClose(5 * time.Second)
	c.Close()
	line := regexp.MustCompile(`(?m)^127\.0\.0\.1 .*"GET /chat/echo HTTP/1\.1" (\d+) (\S+) .*$`)
	if !eventually(10*time.Second, func() bool { return line.MatchString(s.Stdout()) }) {
		t.Fatalf("no access log line from the client's address for the WebSocket:\n%s", s.Stdout())
	}
	m := line.FindStringSubmatch(s.Stdout())
	if m[1] != "101" || m[2] == "-" || m[2] == "0" {
		t.Errorf("the client's pool logged the WebSocket as %q, want 101 and the bytes it sent", m[0])
	}
}

// http.response.pathsend of a directory: open(2) succeeds on it, so the
// status and "Content-Length: 4096" (the directory's st_size) go out and the
// connection is then aborted (the client reads 0 of 4096 bytes). Expected:
// the file cannot be sent, the app's error, 500 while nothing went out
// (docs/asgi.md, pathsend).
func TestAttackPathsendDirectory(t *testing.T) {
	w := start(t, "--mount", "/ws="+attackApp())
	dir := t.TempDir()
	resp, err := w.Client.Get(w.URL + "/ws/pathsend?" + dir)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("pathsend of a directory: %d (Content-Length %q, %d bytes, %v), want 500",
			resp.StatusCode, resp.Header.Get("Content-Length"), len(body), err)
	}
}

// http.response.pathsend of a FIFO: the loop's os.open blocks until a
// writer opens it, so every request of the process (HTTP and WebSocket)
// waits behind it ("the ASGI event loop is blocked" is logged, in wisp's
// own Request.send). Expected: wisp's own code never blocks the loop; a
// path that is not a regular file is the app's error (500).
func TestAttackPathsendFifo(t *testing.T) {
	w := start(t, "--mount", "/ws="+attackApp())
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // free the loop so that the server can stop: open the writer end
		for i := 0; i < 50; i++ {
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	first := make(chan int, 1)
	go func() {
		cl := &http.Client{Timeout: 8 * time.Second}
		resp, err := cl.Get(w.URL + "/ws/pathsend?" + fifo)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond)
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(w.URL + "/ws/other")
	if err != nil {
		t.Fatalf("another request while a pathsend names a FIFO: %v", err)
	}
	resp.Body.Close()
	select {
	case code := <-first:
		if code != 500 {
			t.Errorf("pathsend of a FIFO: %d, want 500", code)
		}
	case <-time.After(8 * time.Second):
		t.Errorf("pathsend of a FIFO: no answer")
	}
}

// A client that stops reading a WebSocket relayed from the site's pool to
// another is never cut off: the serving pool's write timeout ends the
// WebSocket there (its app's send() raises at once), but the client's pool
// took the connection over (bridgeWriter.Hijack, deadlines cleared) and
// httputil.ReverseProxy copies without any, so its write to the client
// blocks for good: the socket stays ESTABLISHED in the worker, with its two
// goroutines and megabytes unsent, as long as the client likes. Expected:
// the write timeout holds as for a WebSocket served in the client's pool
// (there the socket is closed at the timeout).
func TestAttackWSForwardedSlowReaderHeld(t *testing.T) {
	t.Parallel()
	s := serve(t, strings.Replace(attackPoolsConfig, `access_log = "-"`, "access_log = \"-\"\nwrite_timeout = \"2s\"", 1))
	s.readyWorkers(t, "ws", 1)
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := wsHandshake(nc, s.Addr, "/chat/spew")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	c.text("100000 100000") // 10 GB the client never reads
	local := nc.LocalAddr().(*net.TCPAddr).Port
	server := nc.RemoteAddr().(*net.TCPAddr).Port
	state := func() string { return tcpState(t, server, local) }
	if !eventually(12*time.Second, func() bool { return state() != "01" }) {
		t.Errorf("the server's end of a WebSocket whose client reads nothing is still ESTABLISHED 12s after a write timeout of 2s")
	}
}

// tcpState returns the state (hex, as /proc/net/tcp has it: 01 established,
// 04 fin-wait-1, ...) of the loopback socket from localPort to remotePort,
// or "" when there is none.
func tcpState(t testing.TB, localPort, remotePort int) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	l, r := fmt.Sprintf(":%04X", localPort), fmt.Sprintf(":%04X", remotePort)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], l) && strings.HasSuffix(f[2], r) {
			return f[3]
		}
	}
	return ""
}

// A recycle of the site's pool (the one the client talks to) while a
// WebSocket is relayed through it to another pool: at the end of the grace
// period the worker exits and the client's connection just ends (EOF, no
// close frame: 1006 for the client), though the pool serving the WebSocket
// goes on. Expected (docs/asgi.md, Recycle, reload and stop): a close frame,
// 1012, before the worker's end; never a cut.
func TestAttackWSForwardedFrontRecycle(t *testing.T) {
	t.Parallel()
	s := serve(t, attackPoolsConfig)
	s.readyWorkers(t, "front", 1)
	s.readyWorkers(t, "ws", 1)
	c, err := wsDial(s.Addr, "/chat/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v %+v", err, c)
	}
	defer c.Close()
	c.text("before")
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "before" {
		t.Fatalf("echo: %q %v", p, err)
	}
	if code, out, errOut := s.ctl(t, "recycle", "front"); code != 0 {
		t.Fatalf("recycle: %s %s", out, errOut)
	}
	if code, reason := c.readClose(10 * time.Second); code != 1012 {
		t.Errorf("a relayed WebSocket at the recycle of the client's pool ended with %d %q, want a close frame with 1012", code, reason)
	}
}

// wisp_websocket_connections_open counts a WebSocket whose connection is
// closed (the close handshake done, the socket closed at once) for as long
// as its app goes on running: an app that does not call receive() (one
// that only sends, now and then) keeps it counted. Expected (docs/asgi.md,
// metrics): the gauge counts connections open, so it falls when the
// connection closes.
func TestAttackWSOpenGaugeAfterClose(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, "--admin", admin, "--graceful-timeout", "2s", "--mount", "/ws="+attackApp())
	c, err := wsDial(w.Addr, "/ws/sleepy")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	metricWait(t, w, admin, `wisp_websocket_connections_open{pool=""}`, 1)
	c.closeWith(1000, "bye")
	if code, _ := c.readClose(5 * time.Second); code != 1000 {
		t.Fatalf("close handshake: %d", code)
	}
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatalf("the server did not close the connection after the close handshake")
	}
	metricWait(t, w, admin, `wisp_websocket_connections_open{pool=""}`, 0)
}

// Over HTTP/2 an app's websocket.http.response with a 2xx status goes out
// as that 200, which RFC 8441 section 5 makes an established WebSocket:
// the client takes the denial for an open WebSocket and its body ("denied")
// for WebSocket frames. Over HTTP/1.1 the same 200 is a refusal (not a
// 101). Expected: as docs/asgi.md has it for a WSGI path ("a 200 would read
// as an open WebSocket"), no 2xx answers an extended CONNECT the app did
// not accept (a 500 for the app's impossible denial, say).
func TestAttackWSDenial2xxOverHTTP2(t *testing.T) {
	w := start(t, "--h2c", "--mount", "/ws="+attackApp())
	c := dialH2WS(t, w.Addr)
	c.connect(1, "/ws/deny200")
	mh, ok := c.frame(1).(*http2.MetaHeadersFrame)
	if !ok {
		t.Fatalf("no response HEADERS")
	}
	if st := mh.PseudoValue("status"); strings.HasPrefix(st, "2") {
		t.Errorf("an app's denial with 200 answered an extended CONNECT with %s: an open WebSocket to the client", st)
	}
}

// The "256 KiB ahead" bound of a client's messages counts their bytes, so
// empty messages count nothing: a client that sends empty frames (6 bytes
// each on the wire) to an app that is not in receive() right now has every
// one queued for it, about 100 bytes of server memory apiece, without end.
// Seen: 45 million empty frames in 15 s took the server's RSS from 45 MB to
// 4.7 GB. Expected (docs/asgi.md: "Both directions are bounded"): the
// server stops reading once the app is that far behind, whatever the size
// of the messages.
func TestAttackWSEmptyMessageFlood(t *testing.T) {
	w := start(t, "--graceful-timeout", "2s", "--mount", "/ws="+attackApp())
	c, err := wsDial(w.Addr, "/ws/sleepy")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	base := vmKB(t, w.Pid(), "VmRSS")
	empty := []byte{0x82, 0x80, 1, 2, 3, 4} // a masked binary frame of no bytes
	batch := bytes.Repeat(empty, 50000)
	sent := 0
	for i := 0; i < 30; i++ { // 1.5 million at most
		c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.nc.Write(batch); err != nil {
			break // the server stopped reading: bounded
		}
		sent += 50000
	}
	time.Sleep(500 * time.Millisecond)
	grew := vmKB(t, w.Pid(), "VmRSS") - base
	if grew > 48<<10 {
		t.Errorf("%d empty messages to an app not receiving grew the server by %d MiB", sent, grew>>10)
	}
}
