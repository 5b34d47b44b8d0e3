package e2e

// Issue 20, point 1: a request forwarded from one pool to another survives a
// recycle of the pool it is forwarded to, as a direct one does.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// forwardRecycleConfig is a site whose "/" is pool root and "/x" pool other
// (2 processes): every request to /x/ is accepted by a worker of root and
// forwarded to other's unix socket.
const forwardRecycleConfig = `
[server]
access_log = "off"

[pools.root]
python = "@PY@"
processes = 1
threads = 4

[pools.other]
python = "@PY@"
processes = 2
threads = 4

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
  pool = "root"

  [[sites.vdirs]]
  path = "/x"
  app = "@APPS@/pool_app/app.py"
  pool = "other"
`

// Four clients loop on /x/ (two on keep-alive connections, two on a new
// connection per request; GET and POST in turn) while `wisp recycle other` runs 10 times, each
// time until both of other's workers are new ones. Every request must get
// 200: the forwarder's connections to a draining worker, and the requests
// that worker accepted, must not turn into 502 or 503.
func TestForwardSurvivesRecycle(t *testing.T) {
	t.Parallel()
	s := serve(t, forwardRecycleConfig)
	pids := s.readyWorkers(t, "other", 2)
	s.readyWorkers(t, "root", 1)

	const clients, maxPerClient = 4, 20000
	stop := make(chan struct{})
	deadline := time.Now().Add(3 * time.Minute)
	var (
		mu       sync.Mutex
		total    int
		byStatus = map[int]int{}
		fails    []string
		wg       sync.WaitGroup
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1, DisableKeepAlives: i%2 == 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for n := 0; n < maxPerClient && time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					return
				default:
				}
				// every other request a POST with a body: one that may not be
				// lost or sent twice either
				var resp *http.Response
				var err error
				if n%2 == 1 {
					resp, err = c.Post(s.URL+"/x/", "text/plain", strings.NewReader(fmt.Sprintf("client %d request %d", i, n)))
				} else {
					resp, err = c.Get(s.URL + "/x/")
				}
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				total++
				switch {
				case err != nil:
					fails = append(fails, fmt.Sprintf("client %d: %v", i, err))
				case resp.StatusCode != 200:
					byStatus[resp.StatusCode]++
					fails = append(fails, fmt.Sprintf("client %d: status %d: %s", i, resp.StatusCode, trunc(body)))
				default:
					byStatus[200]++
				}
				mu.Unlock()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	time.Sleep(300 * time.Millisecond)
	for round := range 10 {
		if code, out, errOut := s.ctl(t, "recycle", "other"); code != 0 {
			t.Fatalf("round %d: wisp recycle other: exit %d\n%s%s", round, code, out, errOut)
		}
		old := pids
		p := s.waitPool(t, "other", 30*time.Second, "2 new ready workers and no old one", func(p wispPoolStatus) bool {
			ready := p.readyPIDs()
			return len(p.Workers) == 2 && len(ready) == 2 && !slices.Contains(ready, old[0]) && !slices.Contains(ready, old[1])
		})
		pids = p.readyPIDs()
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests to /x/ during 10 recycles of pool other: by status %v, %d failed", total, byStatus, len(fails))
	if total < 100 {
		t.Errorf("only %d requests: too few to tell", total)
	}
	if len(fails) > 0 {
		t.Errorf("%d of %d forwarded requests failed while pool other was recycled; want none. First ones:\n%s",
			len(fails), total, strings.Join(fails[:min(len(fails), 10)], "\n"))
	}
	// a draining worker runs what its pool socket handed it: it neither
	// refuses it (queue full, stopped threads) nor loses it
	for _, msg := range []string{"request queue full", "request not run", "forward to pool failed"} {
		if l := logLines(s.Stderr(), msg); len(l) > 0 {
			t.Errorf("%d %q lines, e.g. %s", len(l), msg, l[0])
		}
	}
}

// The warning of a full request queue says what was full: the Python
// threads and the queue of this worker (its pool and pid are the line's
// attributes), their sizes, and what the client got.
func TestQueueFullMessage(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 1\nthreads = 1\nqueue = 1"))
	pid := s.readyWorkers(t, "default", 1)[0]
	const n = 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	byStatus := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(fmt.Sprintf("%s/sleep?s=1&i=%d", s.URL, i))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("request %d: 503 with Retry-After %q, want 1", i, resp.Header.Get("Retry-After"))
			}
			mu.Lock()
			byStatus[resp.StatusCode]++
			mu.Unlock()
		}()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if byStatus[503] == 0 {
		t.Fatalf("%d concurrent 1 s requests with threads = 1, queue = 1: statuses %v; want some 503", n, byStatus)
	}
	lines := s.waitLog("request queue full", byStatus[503], 5*time.Second)
	if len(lines) != byStatus[503] {
		t.Fatalf("%d \"request queue full\" lines for %d 503s", len(lines), byStatus[503])
	}
	t.Logf("%s", lines[0])
	l := lines[0]
	for k, want := range map[string]string{"pool": "default", "pid": fmt.Sprint(pid), "threads": "1", "busy": "1", "queue": "1", "queued": "1"} {
		if got := logAttr(l, k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if msg := logAttr(l, "msg"); !strings.Contains(msg, "Python thread") || !strings.Contains(msg, "queue") ||
		!strings.Contains(msg, "503") || !strings.Contains(msg, "Retry-After") {
		t.Errorf("the message does not say which queue was full and what the client got: %q", msg)
	}
}
