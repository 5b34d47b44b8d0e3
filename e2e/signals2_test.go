package e2e

// A second Ctrl-C (issue 20, point 5): a second SIGINT or SIGTERM during
// the graceful stop ends the server at once, as gunicorn and uvicorn do,
// after logging the requests it cuts off.

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var workerStartRE = regexp.MustCompile(`msg="worker starting".* pid=(\d+)`)

// TestSecondSignalStopsAtOnce: a request sleeps 20 s, the graceful timeout
// is 30 s; SIGINT starts the graceful stop (the process waits), and a second
// SIGINT (or SIGTERM) ends it within 2 s, exit non-zero, logging the request
// cut off: in-process by method, target and request id; in a pool by the
// worker and its count of requests in flight, and no worker is left. The
// same during a drain delay (the first signal's: serving on, /readyz 503).
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		second syscall.Signal
		want   []string
	}{
		{"in-process", nil, syscall.SIGINT, []string{`msg="request cut off" method=GET`, "/?20&inflight", "request_id=e2e-cut-1"}},
		{"in-process-sigterm", nil, syscall.SIGTERM, []string{`msg="request cut off"`, "/?20&inflight"}},
		{"pool", []string{"--workers", "2"}, syscall.SIGINT, []string{`msg="killed: requests in flight cut off"`, "requests_in_flight=1"}},
		// the second signal in the drain delay (serving on, /readyz 503)
		{"in-process-drain-delay", []string{"--drain-delay", "10s"}, syscall.SIGINT, []string{`msg="request cut off"`, "/?20&inflight"}},
		{"pool-drain-delay", []string{"--workers", "2", "--drain-delay", "10s"}, syscall.SIGTERM, []string{"requests_in_flight=1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{}, c.args...), "--graceful-timeout", "30", app("slow/app.py"))
			w := start(t, args...)
			workers := workerStartRE.FindAllStringSubmatch(w.Stderr(), -1)
			if pooled := slices.Contains(c.args, "--workers"); pooled && len(workers) != 2 || !pooled && len(workers) != 0 {
				t.Fatalf("%d 'worker starting' lines, want 2", len(workers))
			}
			got := make(chan error, 1)
			go func() {
				req, _ := http.NewRequest("GET", w.URL+"/?20&inflight", nil)
				req.Header.Set("X-Request-Id", "e2e-cut-1")
				resp, err := w.Client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				got <- err
			}()
			if !w.waitStderr("e2e-slow-start inflight", 10*time.Second) {
				t.Fatal("the request did not reach the app")
			}
			time.Sleep(1500 * time.Millisecond) // a worker reports its busy threads once a second
			w.signal(syscall.SIGINT)
			if _, done := w.wait(700 * time.Millisecond); done {
				t.Fatalf("the first SIGINT ended the process: it must wait for the request\n%s", w.Stderr())
			}
			t0 := time.Now()
			w.signal(c.second)
			code, done := w.wait(2 * time.Second)
			if !done {
				t.Fatalf("a second %v did not end the process within 2 s", c.second)
			}
			t.Logf("exit %d, %v after the second signal", code, time.Since(t0).Round(time.Millisecond))
			if code == 0 {
				t.Errorf("exit 0 after a second %v: want non-zero (requests were cut off)", c.second)
			}
			log := w.Stderr()
			for _, want := range append([]string{"second stop signal: stopping now"}, c.want...) {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q", want)
				}
			}
			for _, m := range workers {
				pid, _ := strconv.Atoi(m[1])
				if !eventually(time.Second, func() bool { return !pidAlive(pid) }) {
					t.Errorf("worker %d still runs after the supervisor exited", pid)
				}
			}
			select {
			case err := <-got:
				if err == nil {
					t.Errorf("the cut-off request got a response")
				}
			case <-time.After(5 * time.Second):
				t.Errorf("the cut-off request's connection stays open")
			}
		})
	}
}
