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
// connection per request) while `wisp recycle other` runs 10 times, each
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
				resp, err := c.Get(s.URL + "/x/")
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
	for _, msg := range []string{"request queue full", "forward to pool failed"} {
		if l := logLines(s.Stderr(), msg); len(l) > 0 {
			t.Errorf("%d %q lines, e.g. %s", len(l), msg, l[0])
		}
	}
}
