package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openUnread sends GET path and never reads the response.
func openUnread(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	// a small receive buffer, set before connecting (the window it gives is
	// then small from the start): the kernel takes little on the client's
	// behalf
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	t.Cleanup(func() { c.Close() })
	return c
}

// A client that never reads a streamed response used to hold its Python
// thread for as long as it liked (the thread waited for room without a time
// limit): with --threads 1 the server stopped. Now a reader slower than
// --min-write-rate is cut off after its grace, the thread is freed, and the
// next request is served. (The spill space is small here: past it the
// thread waits for the client, and the cut-off is what frees it.)
func TestSlowReaderCutOff(t *testing.T) {
	w := start(t, "--threads", "1", "--min-write-rate", "100000", "--max-spill", "8388608", app("slowreader/app.py"))
	openUnread(t, w.Addr, "/stream?100000")
	time.Sleep(500 * time.Millisecond) // it holds the only thread now
	began := time.Now()
	if code := getStatus(w, "/small", 40*time.Second); code != 200 {
		t.Fatalf("behind a reader that never reads: %d, want 200", code)
	}
	t.Logf("served %v after the slow reader took the thread", time.Since(began).Round(time.Millisecond))
	// (logged when the cut-off response ends, which may be just after the
	// freed thread served /small)
	if !w.waitStderr("client too slow to take the response: cut off", 10*time.Second) {
		t.Errorf("no log line about the cut-off:\n%s", w.Stderr())
	}
}

// The response hand-off is bounded in bytes, not only in events: 8 items of
// 64 MiB for a client that does not read used to keep all 8 (512 MiB) in C
// memory; now about one is in flight.
func TestSlowReaderMemoryBounded(t *testing.T) {
	w := start(t, "--threads", "1", "--min-write-rate", "0", app("slowreader/app.py"))
	openUnread(t, w.Addr, "/big?8&64")
	var peak int
	for i := 0; i < 30; i++ { // 3 s for the app to produce what it can
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, vmKB(t, w.Pid(), "VmRSS"))
	}
	t.Logf("peak RSS %d MiB", peak>>10)
	if peak > 300<<10 {
		t.Errorf("RSS reached %d MiB for a client that reads nothing: the hand-off is not bounded in bytes", peak>>10)
	}
}

// A reader slower than the app does not hold its Python thread: what the
// socket does not take within a moment goes to a spill file that Go sends as
// the client reads, and the thread serves the next request at once. Without
// the spill (and with no minimum rate) the thread waited for the client for
// as long as it liked. The slow client still gets the whole response.
func TestSlowReaderSpill(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	w := start(t, "--threads", "1", "--min-write-rate", "0", "--access-log", logPath, app("direct/app.py"))
	const n = 256 // 16 MiB: more than the kernel's buffers hold
	c := openUnread(t, w.Addr, fmt.Sprintf("/stream?%d&1", n))
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if code := getStatus(w, "/small", 30*time.Second); code != 200 {
		t.Fatalf("behind a reader that does not read: %d, want 200", code)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("served after %v: the slow reader held the thread", took)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, body := readResponse(t, bufio.NewReader(c), "reading the spilled response")
	wantBlocks(t, body, n*directBlock)
	c.Close()
	w.stop()
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), fmt.Sprintf("\" 200 %d ", n*directBlock)) {
		t.Errorf("the access log does not count the %d bytes sent:\n%s", n*directBlock, log)
	}
}

// A file (wsgi.file_wrapper) after blocks that were spilled for a slow
// reader goes out after them, not among them.
func TestSlowReaderSpillThenFile(t *testing.T) {
	w := start(t, "--threads", "1", "--min-write-rate", "0", app("direct/app.py"))
	const n = 256
	c := openUnread(t, w.Addr, fmt.Sprintf("/writefile?%d", n))
	time.Sleep(800 * time.Millisecond) // past the spill's 250 ms
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, body := readResponse(t, bufio.NewReader(c), "reading the response")
	wantBlocks(t, body, (n+8)*directBlock)
}
