package e2e

// A worker whose thread holds the GIL in C code (issue 20, point 4): it stops
// taking connections while its sibling is free, and in-process /healthz says
// that the Python side makes no progress.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// stallNotice is how long after a thread takes the GIL for good the server
// has noticed: the stall bound (1s), a heartbeat period (250ms), the
// worker's check (100ms), and slack for a loaded machine.
const stallNotice = 2 * time.Second

// startHold GETs /hold?s=SECONDS of the gil_hold app at base in the
// background and waits for it to have begun (its marker file in a temp
// dir); it returns the pid of the process holding the GIL and a channel
// that gets the answer ("held T pid P") or the error.
func startHold(t *testing.T, base string, seconds int) (pid string, done <-chan string) {
	t.Helper()
	return startBusy(t, base, "/hold", seconds)
}

// startBusy is startHold for path /hold or /sleep.
func startBusy(t *testing.T, base, path string, seconds int) (pid string, done <-chan string) {
	t.Helper()
	mark := t.TempDir()
	out := make(chan string, 1)
	go func() {
		c := &http.Client{Timeout: 60 * time.Second}
		resp, err := c.Get(fmt.Sprintf("%s%s?s=%d&mark=%s", base, path, seconds, mark))
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	if !eventually(15*time.Second, func() bool {
		es, _ := os.ReadDir(mark)
		if len(es) > 0 {
			pid = es[0].Name()
		}
		return pid != ""
	}) {
		t.Fatalf("the %s request did not begin within 15s", path)
	}
	return pid, out
}

// With two workers, one holding the GIL for about 6 s in a regex: once that
// is noticed (the bound), the requests on new connections all go to its
// sibling and are answered at once. Before, about half of them went to the
// stuck worker and waited for the regex.
func TestPoolGILHoldStopsAccepting(t *testing.T) {
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 2
threads = 4

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/gil_hold/app.py"
`)
	s.waitPool(t, "default", 30*time.Second, "2 ready workers", func(p wispPoolStatus) bool { return len(p.readyPIDs()) == 2 })
	held, done := startHold(t, s.URL, 6)
	began := time.Now()
	time.Sleep(stallNotice)
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	for i := range 20 {
		t0 := time.Now()
		resp, err := fresh.Get(s.URL + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(t0)
		if resp.StatusCode != 200 || took > time.Second {
			t.Errorf("request %d: %d %q in %v, want 200 within 1s (the worker holding the GIL is %s)", i, resp.StatusCode, b, took.Round(time.Millisecond), held)
		}
		if strings.HasSuffix(string(b), "pid "+held) {
			t.Errorf("request %d was answered by the worker that holds the GIL (%s), in %v", i, held, took.Round(time.Millisecond))
		}
	}
	sent := time.Since(began)
	answer := <-done
	if !strings.HasPrefix(answer, "200 held") {
		t.Fatalf("the hold request: %s", answer)
	}
	var secs float64
	fmt.Sscanf(strings.TrimPrefix(answer, "200 held "), "%g", &secs)
	if time.Duration(secs*float64(time.Second)) < sent {
		t.Fatalf("the GIL was held %.2fs, less than the %v the requests took to send: the test proves nothing; make the hold longer", secs, sent.Round(time.Millisecond))
	}
	if !s.waitStderr("not accepting new connections until this worker recovers", 5*time.Second) {
		t.Errorf("no line tells that the worker stopped accepting:\n%s", tail(s.Stderr(), 4<<10))
	}
	if !s.waitStderr("accepting new connections again: the worker has recovered", 10*time.Second) {
		t.Errorf("no line tells that the worker accepts again:\n%s", tail(s.Stderr(), 4<<10))
	}
	for i := range 10 {
		if code := getStatus(s.wisp, "/", 5*time.Second); code != 200 {
			t.Errorf("after the hold, request %d: %d", i, code)
		}
	}
}

// The keep-alive connections a client holds to a worker that then holds the
// GIL are shed once that is noticed (closed while idle), so the client's
// next requests, 8 at a time, all go to the sibling and are answered at
// once. Before, those sent on the connections to the stuck worker waited for
// the regex.
func TestPoolGILHoldShedsKeepAlive(t *testing.T) {
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 2
threads = 4

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/gil_hold/app.py"
`)
	s.waitPool(t, "default", 30*time.Second, "2 ready workers", func(p wispPoolStatus) bool { return len(p.readyPIDs()) == 2 })
	const n = 8
	kept := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
	defer kept.CloseIdleConnections()
	// round sends n requests at once on the client's connections (new ones
	// when none is idle) and returns the answers' pids and how long each took
	round := func(path string) (pids []string, took []time.Duration, errs []error) {
		type res struct {
			pid  string
			took time.Duration
			err  error
		}
		out := make(chan res, n)
		for range n {
			go func() {
				t0 := time.Now()
				resp, err := kept.Get(s.URL + path)
				if err != nil {
					out <- res{err: err}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d: %q", resp.StatusCode, b)
				}
				f := strings.Fields(string(b))
				out <- res{pid: f[len(f)-1], took: time.Since(t0), err: err}
			}()
		}
		for range n {
			r := <-out
			pids, took, errs = append(pids, r.pid), append(took, r.took), append(errs, r.err)
		}
		return
	}
	// n connections at once (each request sleeps), split between the two
	// workers by the board
	pids, _, errs := round("/sleep?s=0.3")
	for _, err := range errs {
		if err != nil {
			t.Fatalf("opening the keep-alive connections: %v", err)
		}
	}
	held, done := startHold(t, s.URL, 6)
	if !strings.Contains(strings.Join(pids, " "), held) {
		t.Fatalf("no keep-alive connection to the worker that holds the GIL (%s): pids %v; the test proves nothing", held, pids)
	}
	began := time.Now()
	time.Sleep(stallNotice)
	for i := range 3 {
		pids, took, errs := round("/")
		for k := range pids {
			if errs[k] != nil || took[k] > time.Second || pids[k] == held {
				t.Errorf("round %d, request %d: pid %s, %v, err %v; want an answer within 1s from the worker not holding the GIL (%s)",
					i, k, pids[k], took[k].Round(time.Millisecond), errs[k], held)
			}
		}
	}
	sent := time.Since(began)
	answer := <-done
	var secs float64
	fmt.Sscanf(strings.TrimPrefix(answer, "200 held "), "%g", &secs)
	if time.Duration(secs*float64(time.Second)) < sent {
		t.Fatalf("the GIL was held %.2fs (%s), less than the %v the requests took: the test proves nothing", secs, answer, sent.Round(time.Millisecond))
	}
}

// With two workers of one Python thread each, one busy for 8 s (a sleep,
// with the GIL released: its interpreter answers): the first request that
// it takes waits for the thread, and once that wait passes the bound the
// worker stops accepting, so the others go to its sibling. Before, about
// half of them waited for the busy thread.
func TestPoolBusyThreadsStopAccepting(t *testing.T) {
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 2
threads = 1

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/gil_hold/app.py"
`)
	s.waitPool(t, "default", 30*time.Second, "2 ready workers", func(p wispPoolStatus) bool { return len(p.readyPIDs()) == 2 })
	busy, done := startBusy(t, s.URL, "/sleep", 8)
	began := time.Now()
	// Each request on a new connection, given 1.5s: one may land on the
	// busy worker before it stops accepting (it waits the bound there).
	fresh := &http.Client{Timeout: 1500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var slow []string
	for i := 0; i < 20 && len(slow) < 2; i++ {
		t0 := time.Now()
		resp, err := fresh.Get(s.URL + "/")
		if err != nil {
			slow = append(slow, fmt.Sprintf("request %d: %v", i, err))
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if took := time.Since(t0); resp.StatusCode != 200 || took > time.Second {
			slow = append(slow, fmt.Sprintf("request %d: %d %q in %v", i, resp.StatusCode, b, took.Round(time.Millisecond)))
		}
	}
	if len(slow) > 1 {
		t.Fatalf("%d requests waited (the busy worker is %s), want 1 at most:\n%s", len(slow), busy, strings.Join(slow, "\n"))
	}
	if time.Since(began) > 7*time.Second {
		t.Fatalf("the requests took %v, past the busy request's 8s: the test proves nothing", time.Since(began))
	}
	if answer := <-done; !strings.HasPrefix(answer, "200 slept") {
		t.Errorf("the busy request: %s", answer)
	}
	if !s.waitStderr("every Python thread is busy", 5*time.Second) {
		t.Errorf("no line tells that the busy worker stopped accepting:\n%s", tail(s.Stderr(), 4<<10))
	}
}

// In-process with --threads 2 --timeout 1s, a request holding the GIL for
// about 6 s in a regex: /healthz on the admin listener turns 503 within the
// bound, saying that no Python thread makes progress, and 200 again once the
// regex ends. Before, it answered 200 all along while every request waited.
func TestRunGILHoldHealthz(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, "--threads", "2", "--timeout", "1s", "--admin", admin, app("gil_hold/app.py"))
	health := func() (int, string) {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + admin + "/healthz")
		if err != nil {
			return 0, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("/healthz before the hold: %d %s", code, body)
	}
	_, done := startHold(t, w.URL, 6)
	began := time.Now()
	var code int
	var body string
	if !eventually(stallNotice+time.Second, func() bool { code, body = health(); return code == 503 }) {
		t.Fatalf("/healthz while a thread holds the GIL: %d %s, want 503 within %v", code, body, stallNotice+time.Second)
	}
	if noticed := time.Since(began); noticed > stallNotice+time.Second {
		t.Errorf("503 only %v after the hold began", noticed)
	}
	if !strings.Contains(body, "no Python thread has made progress") || !strings.Contains(body, `"ok":false`) {
		t.Errorf("/healthz body %s, want the JSON reason", body)
	}
	answer := <-done
	if !strings.HasPrefix(answer, "504") {
		t.Errorf("the hold request (past --timeout 1s): %s, want 504", answer)
	}
	if !eventually(15*time.Second, func() bool { code, body = health(); return code == 200 }) {
		t.Fatalf("/healthz after the hold: %d %s, want 200 again", code, body)
	}
	if code := getStatus(w, "/", 5*time.Second); code != 200 {
		t.Errorf("a request after the hold: %d", code)
	}
}

// A pool worker whose request holds the GIL for good (a regex that would
// backtrack for ten minutes) past request_timeout is recycled: its
// replacement is ready, and the stuck process is gone. Before, the worker's
// one-second stats (the garbage collector's count) waited for the GIL with
// no bound, which blocked the loop that reports a stuck request and handles
// SIGTERM: the worker was never recycled.
func TestPoolGILHoldForeverRecycled(t *testing.T) {
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 1
threads = 2
request_timeout = "1s"
graceful_timeout = "2s"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/gil_hold/app.py"
`)
	s.waitPool(t, "default", 30*time.Second, "a ready worker", func(p wispPoolStatus) bool { return len(p.readyPIDs()) == 1 })
	held, done := startHold(t, s.URL, 600)
	if answer := <-done; !strings.HasPrefix(answer, "504") {
		t.Errorf("the hold request (past request_timeout 1s): %s, want 504", answer)
	}
	// timeout 1s + the stuck grace 5s, then the replacement starts; the
	// stuck worker is abandoned after graceful_timeout
	s.waitPool(t, "default", 30*time.Second, "a replacement ready and the stuck worker gone", func(p wispPoolStatus) bool {
		return len(p.Workers) == 1 && p.Workers[0].State == "ready" && fmt.Sprint(p.Workers[0].PID) != held
	})
	var pid int
	fmt.Sscan(held, &pid)
	if !eventually(10*time.Second, func() bool { return !pidAlive(pid) }) {
		t.Errorf("the stuck worker pid %d is still alive", pid)
	}
	if code := getStatus(s.wisp, "/", 5*time.Second); code != 200 {
		t.Errorf("a request after the recycle: %d", code)
	}
}
