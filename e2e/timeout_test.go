package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRequestTimeoutInProcess: with --timeout, a request stuck in a busy loop
// gets 504, its Python stack (naming the stuck function) is logged, the
// TimeoutError raised in the thread frees it, and the server keeps serving
// on that same single thread.
func TestRequestTimeoutInProcess(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "1", "--timeout", "1s", app("stuck/app.py"))
	began := time.Now()
	resp, _ := w.get(t, "/spin")
	if resp.StatusCode != 504 {
		t.Fatalf("stuck request: status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(began); d < time.Second || d > 10*time.Second {
		t.Errorf("504 came after %v, want about the 1s timeout", d)
	}
	if !w.waitStderr("spin_forever", 10*time.Second) {
		t.Fatalf("the stuck thread's stack (spin_forever) is not in the log:\n%s", tail(w.Stderr(), 20))
	}
	// The only Python thread must be free again: TimeoutError ended the loop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := w.get(t, "/")
		if resp.StatusCode == 200 && string(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the timeout the thread stayed busy: status %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !w.waitStderr("the timed-out request has ended", 5*time.Second) {
		t.Fatalf("no log line for the end of the timed-out request:\n%s", tail(w.Stderr(), 20))
	}
	for _, line := range strings.Split(w.Stderr(), "\n") {
		if strings.Contains(line, "has ended") && !strings.Contains(line, "TimeoutError") {
			t.Errorf("the request ended without the TimeoutError raised in it: %s", line)
		}
	}
}

// TestLongCPURequestDoesNotStarveOthers: while one request spins on the CPU
// (holding the GIL between switch intervals), short requests on the other
// threads are still answered promptly, as with plain Python threads.
func TestLongCPURequestDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "4", "--timeout", "4s", app("stuck/app.py"))
	spun := make(chan int, 1)
	go func() {
		resp, err := http.Get(w.URL + "/spin")
		if err != nil {
			spun <- 0
			return
		}
		resp.Body.Close()
		spun <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the spinner holds the running thread
	for i := 0; i < 5; i++ {
		began := time.Now()
		resp, body := w.get(t, "/")
		if d := time.Since(began); resp.StatusCode != 200 || string(body) != "ok" || d > time.Second {
			t.Fatalf("short request %d during a long CPU-bound one: %d %q after %v; want 200 within 1s", i, resp.StatusCode, body, d)
		}
	}
	if code := <-spun; code != 504 {
		t.Errorf("the spinning request ended with %d, want 504 from --timeout", code)
	}
}
