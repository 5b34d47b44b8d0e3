package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The observing tests run testdata/apps/asgi_observe: overlapping requests
// that print and log between awaits, an async def that blocks the loop in
// time.sleep, and one that awaits past request_timeout.

func observeApp() string { return app("asgi_observe/app.py") + ":app" }

// What the coroutines of an ASGI request print (sys.stdout), write to
// sys.stderr and log (the logging module), in the handler and in a child
// task it starts, carries that request's id in `wisp trace`, while several
// requests overlap on the one loop; the lifespan's print carries none.
func TestASGIObserveTrace(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	w := start(t, observeApp(), "--control-socket", sock)
	tr := startTrace(t, sock, "--since", "1m")
	time.Sleep(300 * time.Millisecond)
	const n = 4
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/talk/%d", w.URL, i), nil)
			req.Header.Set("X-Request-Id", fmt.Sprintf("obs-%d", i))
			resp, err := w.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET /talk/%d: %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	l := tr.wait(t, 5*time.Second, "the lifespan's print", func(l traceLine) bool { return l.Text == "lifespan startup print" })
	if l.Request != "" || l.Stream != "stdout" {
		t.Errorf("the lifespan's print: %+v, want no request id", l)
	}
	overlapped := false
	for i := 1; i <= n; i++ {
		path := fmt.Sprintf("/talk/%d", i)
		var first, last traceLine
		for k, want := range []struct{ stream, text string }{{"stdout", "print: " + path + " step 1"},
			{"stderr", "INFO observe: logging: " + path}, {"stdout", "child: " + path}, {"stderr", "stderr: " + path},
			{"stdout", "print: " + path + " step 3"}, {"request", "GET " + path + " 200"}} {
			l := tr.wait(t, 5*time.Second, want.stream+" "+want.text, func(l traceLine) bool {
				return l.Stream == want.stream && strings.HasPrefix(l.Text, want.text)
			})
			if l.Request != fmt.Sprintf("obs-%d", i) || l.PID != w.Pid() {
				t.Errorf("%+v: want request obs-%d and pid %d", l, i, w.Pid())
			}
			switch k {
			case 0:
				first = l
			case 4:
				last = l
			}
		}
		// another request printed between this one's first and last lines:
		// the requests did overlap on the loop
		tr.mu.Lock()
		for _, o := range tr.lines {
			if o.Request != first.Request && o.Stream == "stdout" && o.Time.After(first.Time) && o.Time.Before(last.Time) {
				overlapped = true
			}
		}
		tr.mu.Unlock()
	}
	if !overlapped {
		t.Errorf("the requests did not overlap: the test shows nothing")
	}
}

// An async def that blocks the loop (time.sleep(3)) is found: the loop lag
// metric rises above 1s while it blocks, the log names the handler and its
// time.sleep line once, a request that arrives meanwhile still gets its
// 504 at request_timeout, and the loop serves again afterwards (the lag
// falls back). In a pool of one worker: the pool's metric is its worker's.
func TestASGIObserveBlockedLoop(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, observeApp(), "-w", "1", "-t", "1", "--admin", admin)
	if code, body := get(w.Client, w.URL+"/hello"); code != 200 || body != "hello\n" {
		t.Fatalf("GET /hello: %d %q", code, body)
	}
	lag := `wisp_event_loop_lag_seconds{pool="default"}`
	if v, ok := scrape(t, w, admin)[lag]; !ok || v >= 0.5 {
		t.Fatalf("%s = %v (present %v) before the block, want a small lag", lag, v, ok)
	}
	type result struct {
		code int
		took time.Duration
	}
	blocked, other := make(chan result, 1), make(chan result, 1)
	began := time.Now()
	go func() {
		code, _ := get(w.Client, w.URL+"/block")
		blocked <- result{code, time.Since(began)}
	}()
	time.Sleep(300 * time.Millisecond)
	go func() {
		t0 := time.Now()
		code, _ := get(w.Client, w.URL+"/hello")
		other <- result{code, time.Since(t0)}
	}()
	seen := 0.0
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline) && seen <= 1; time.Sleep(100 * time.Millisecond) {
		seen = max(seen, scrape(t, w, admin)[lag])
	}
	if seen <= 1 {
		t.Errorf("%s stayed at %v while the loop was blocked for 3s, want above 1", lag, seen)
	}
	if r := <-other; r.code != 504 || r.took > 2500*time.Millisecond {
		t.Errorf("a request during the block: %d after %v, want 504 at the 1s request_timeout", r.code, r.took)
	}
	if r := <-blocked; r.code != 504 {
		t.Errorf("GET /block: %d after %v, want 504 (request_timeout 1s)", r.code, r.took)
	}
	if !w.waitStderr("the ASGI event loop answers again", 10*time.Second) {
		t.Fatalf("the loop's recovery was not logged:\n%s", w.Stderr())
	}
	if code, body := get(w.Client, w.URL+"/hello"); code != 200 || body != "hello\n" {
		t.Errorf("GET /hello after the block: %d %q", code, body)
	}
	if !eventually(5*time.Second, func() bool { return scrape(t, w, admin)[lag] < 0.5 }) {
		t.Errorf("%s = %v after the block, want it back below 0.5", lag, scrape(t, w, admin)[lag])
	}
	var reports []string
	for _, line := range strings.Split(w.Stderr(), "\n") {
		if strings.Contains(line, "the ASGI event loop is blocked") {
			reports = append(reports, line)
		}
	}
	if len(reports) != 1 {
		t.Fatalf("%d blocked-loop errors, want 1 (once per incident):\n%s", len(reports), strings.Join(reports, "\n"))
	}
	for _, want := range []string{"level=ERROR", `handler="blocking_handler (`, `uri="GET /block"`, "in blocking_handler", "time.sleep(float("} {
		if !strings.Contains(reports[0], want) {
			t.Errorf("the blocked-loop error lacks %s:\n%s", want, reports[0])
		}
	}
}

// A timed-out ASGI request's log shows where its task awaits (its
// coroutine stack), as a WSGI one shows its thread's stack.
func TestASGIObserveTimeoutStack(t *testing.T) {
	w := start(t, observeApp(), "-t", "1")
	if code, _ := get(w.Client, w.URL+"/slow"); code != 504 {
		t.Fatalf("GET /slow with -t 1: %d, want 504", code)
	}
	if !w.waitStderr("stuck request: its task's coroutine stack", 5*time.Second) {
		t.Fatalf("no stack for the timed-out request:\n%s", w.Stderr())
	}
	var line string
	for _, l := range strings.Split(w.Stderr(), "\n") {
		if strings.Contains(l, "stuck request: its task's coroutine stack") {
			line = l
		}
	}
	for _, want := range []string{"uri=/slow", "in slow_handler", "await asyncio.sleep(30)"} {
		if !strings.Contains(line, want) {
			t.Errorf("the timeout's stack lacks %s:\n%s", want, line)
		}
	}
	if code, body := get(w.Client, w.URL+"/hello"); code != 200 || body != "hello\n" {
		t.Errorf("GET /hello after the timeout: %d %q", code, body)
	}
}
