package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// openUnread sends GET path and never reads the response.
func openUnread(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096) // keep the kernel from taking much on its behalf
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	t.Cleanup(func() { c.Close() })
	return c
}

// A client that never reads a streamed response used to hold its Python
// thread for as long as it liked (the thread waited for room without a time
// limit): with --threads 1 the server stopped. Now a reader slower than
// --min-write-rate is cut off after its grace, the thread is freed, and the
// next request is served.
func TestSlowReaderCutOff(t *testing.T) {
	w := start(t, "--threads", "1", "--min-write-rate", "100000", app("slowreader/app.py"))
	openUnread(t, w.Addr, "/stream?100000")
	time.Sleep(500 * time.Millisecond) // it holds the only thread now
	began := time.Now()
	if code := getStatus(w, "/small", 40*time.Second); code != 200 {
		t.Fatalf("behind a reader that never reads: %d, want 200", code)
	}
	t.Logf("served %v after the slow reader took the thread", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(w.Stderr(), "client too slow to take the response: cut off") {
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
