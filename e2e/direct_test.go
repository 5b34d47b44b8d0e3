package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A streamed response's blocks go from the app's thread straight to the
// socket once the head is out (no hand-off to Go, no copy). These tests hold
// that path to what Go's own writes guaranteed: framing, Content-Length,
// keep-alive, the access log, and a timed-out thread that still holds the
// socket.

const directBlock = 65536

// wantBlocks checks that body is the direct app's first n bytes of blocks.
func wantBlocks(t *testing.T, body []byte, n int) {
	t.Helper()
	if len(body) != n {
		t.Fatalf("body of %d bytes, want %d", len(body), n)
	}
	for off := 0; off < n; off += directBlock {
		b := body[off:min(off+directBlock, n)]
		want := byte(off / directBlock % 251)
		for i, c := range b {
			if c != want {
				t.Fatalf("byte %d is %d, want %d (block %d): blocks lost or out of order", off+i, c, want, off/directBlock)
			}
		}
	}
}

func dialKeep(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, path string) (*http.Response, []byte) {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return readResponse(t, br, "GET "+path)
}

// readResponse reads one whole response from br; what names it in failures.
func readResponse(t *testing.T, br *bufio.Reader, what string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v after %d bytes of body", what, err, len(body))
	}
	return resp, body
}

func TestDirectStream(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	w := start(t, "--access-log", logPath, app("direct/app.py"))
	c, br := dialKeep(t, w.Addr)
	const n = 64 // 4 MiB: far past what the hand-offs to Go hold
	for _, withLength := range []bool{true, false} {
		cl := 0
		if withLength {
			cl = 1
		}
		resp, body := roundTrip(t, c, br, fmt.Sprintf("/stream?%d&%d", n, cl))
		if withLength && resp.ContentLength != n*directBlock {
			t.Errorf("Content-Length %d, want %d", resp.ContentLength, n*directBlock)
		}
		if !withLength && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
			t.Errorf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
		}
		wantBlocks(t, body, n*directBlock)
	}
	// the same connection carries the next request: the framing was exact
	if resp, body := roundTrip(t, c, br, "/small"); resp.StatusCode != 200 || string(body) != "small\n" {
		t.Fatalf("after the streams: %d %q", resp.StatusCode, body)
	}
	c.Close()
	w.stop()
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(log), fmt.Sprintf("\" 200 %d ", n*directBlock)); got != 2 {
		t.Errorf("%d access log lines count the streams' %d bytes, want 2:\n%s", got, n*directBlock, log)
	}
}

// An app that streams past its Content-Length is cut there, and the
// connection stays usable: the client got exactly what was declared.
func TestDirectPastContentLength(t *testing.T) {
	w := start(t, app("direct/app.py"))
	c, br := dialKeep(t, w.Addr)
	const declared = 3_000_000 // past what goes through Go before the direct writes, and not a whole block
	resp, body := roundTrip(t, c, br, fmt.Sprintf("/over?60&%d", declared))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantBlocks(t, body, declared)
	if resp, body := roundTrip(t, c, br, "/small"); resp.StatusCode != 200 || string(body) != "small\n" {
		t.Fatalf("after the cut response: %d %q", resp.StatusCode, body)
	}
	if !w.waitStderr("more body than its Content-Length", 5*time.Second) {
		t.Errorf("no log line about the cut:\n%s", w.Stderr())
	}
}

// A thread that overstays its timeout in the middle of a direct stream still
// holds the socket (a duplicate of it). The response must end at the timeout
// all the same: the client sees the connection close, it does not wait for
// the thread.
func TestDirectTimeoutClosesConnection(t *testing.T) {
	w := start(t, "--timeout", "1s", "--threads", "2", app("direct/app.py"))
	c, _ := dialKeep(t, w.Addr)
	began := time.Now()
	fmt.Fprintf(c, "GET /hang?40 HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(6 * time.Second))
	got, err := io.Copy(io.Discard, c)
	took := time.Since(began)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection stayed open %v after the timeout (1s), %d bytes in: the stuck thread keeps it", took, got)
	}
	if got >= 41*directBlock {
		t.Errorf("%d bytes: the whole response arrived; the app should have been stuck", got)
	}
	t.Logf("connection closed after %v, %d bytes", took.Round(time.Millisecond), got)
	if code := getStatus(w, "/small", 20*time.Second); code != 200 {
		t.Fatalf("after the timed-out stream: %d, want 200", code)
	}
}
