package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// getStatus GETs path with its own short timeout and returns the status (0:
// the request failed).
func getStatus(w *wisp, path string, timeout time.Duration) int {
	c := *w.Client
	c.Timeout = timeout
	resp, err := c.Get(w.URL + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// In-process, --threads 2 --timeout 1s: two requests stuck in C code
// (time.sleep, where the TimeoutError raised in them cannot land) used to
// leave every later request at 504 forever. Their threads are now written off
// and replaced, up to --max-stuck-threads; past that bound the log says the
// server is unhealthy; and it still stops on SIGTERM.
func TestRunStuckThreadsReplaced(t *testing.T) {
	w := start(t, "--threads", "2", "--timeout", "1s", "--max-stuck-threads", "2", "--graceful-timeout", "2s",
		app("pool_app/app.py"))
	done := make(chan int, 3)
	for i := 0; i < 2; i++ {
		go func() { done <- getStatus(w, "/block", 20*time.Second) }()
	}
	for i := 0; i < 2; i++ {
		if code := <-done; code != 504 {
			t.Fatalf("a stuck request got %d, want 504", code)
		}
	}
	// Requests are served again (at once since issue 19: see
	// TestRunStuckThreadsReplacedAtTimeout).
	if !eventually(15*time.Second, func() bool { return getStatus(w, "/info", 3*time.Second) == 200 }) {
		t.Fatalf("after two stuck threads, no request was served again within 15s\n%s", w.Stderr())
	}
	for i := 0; i < 5; i++ {
		if code := getStatus(w, "/info", 5*time.Second); code != 200 {
			t.Errorf("request %d after the replacement: %d, want 200", i, code)
		}
	}
	// They are replaced at the timeout; the log tells of them once they are
	// still stuck 5 s later.
	w.waitStderr("unhealthy: the bound of stuck Python threads is reached", 10*time.Second)
	if n := strings.Count(w.Stderr(), "its Python thread is written off and a new one replaces it"); n != 2 {
		t.Errorf("%d write-off lines, want 2", n)
	}
	if strings.Contains(w.Stderr(), "holds a Python thread") {
		t.Errorf("the old, wrong message is still logged")
	}
	if !strings.Contains(w.Stderr(), "unhealthy: the bound of stuck Python threads is reached") {
		t.Errorf("no unhealthy line at the bound:\n%s", w.Stderr())
	}
	// A third stuck request is not replaced (the bound): the log says so, and
	// the one thread left still serves.
	if code := getStatus(w, "/block", 20*time.Second); code != 504 {
		t.Fatalf("the third stuck request got %d, want 504", code)
	}
	if !w.waitStderr("no more stuck Python threads are replaced", 10*time.Second) {
		t.Errorf("no line about the bound for the third stuck thread")
	}
	if code := getStatus(w, "/info", 10*time.Second); code != 200 {
		t.Errorf("with three threads stuck, a request got %d, want 200 from the thread left", code)
	}
	w.signal(syscall.SIGTERM)
	if _, ok := w.wait(20 * time.Second); !ok {
		t.Fatalf("wisp did not exit within 20s of SIGTERM with stuck threads")
	}
}
