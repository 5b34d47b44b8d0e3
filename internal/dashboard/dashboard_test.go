package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"wisp/internal/metrics"
	"wisp/internal/supervisor"
)

// target is a control.Target with fixed pools that acts on none.
type target struct{ pools []supervisor.PoolStatus }

func (t target) Status() supervisor.Status {
	return supervisor.Status{PID: 7, Config: "wisp.toml", Pools: t.pools}
}
func (target) Recycle(string) error   { return errors.New("no") }
func (target) StartPool(string) error { return errors.New("no") }
func (target) StopPool(string) error  { return errors.New("no") }

func hist(counts ...uint64) metrics.Histogram {
	h := metrics.Histogram{Counts: make([]uint64, len(metrics.Buckets)+1)}
	copy(h.Counts, counts)
	return h
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// /api/status gives each pool its traffic: requests, 5xx answers, refused
// requests and the duration histogram, summed over its sites, vdirs and
// status classes, with the buckets' bounds; the page derives rate, p50, p99
// and errors from two polls.
func TestStatusTraffic(t *testing.T) {
	views := []metrics.PoolView{{Pool: "api", Snap: metrics.Snapshot{
		Series: []metrics.Series{
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "2xx"}, Requests: 5, Duration: hist(1, 4)},
			{Key: metrics.Key{Site: "a", Vdir: "/x", Code: "2xx"}, Requests: 2, Duration: hist(0, 2)},
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "5xx"}, Requests: 3, Duration: hist(0, 0, 3)},
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "4xx"}, Requests: 1, Duration: hist(1)},
		},
		Refused: map[string]uint64{"408": 2, "503 queue full": 1},
	}}}
	h := Handler(Options{
		Target:  target{pools: []supervisor.PoolStatus{{Name: "api", State: supervisor.PoolRunning}, {Name: "idle", State: supervisor.PoolIdle}}},
		Metrics: func() []metrics.PoolView { return views },
	})
	rec := get(t, h, "/api/status")
	var st struct {
		Buckets []float64
		Process *traffic
		Pools   []struct {
			Name    string
			Traffic traffic
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if len(st.Buckets) != len(metrics.Buckets) || st.Process != nil || len(st.Pools) != 2 {
		t.Fatalf("status: %s", rec.Body)
	}
	got := st.Pools[0].Traffic
	if st.Pools[0].Name != "api" || got.Requests != 11 || got.Errors != 3 || got.Refused != 3 {
		t.Errorf("api's traffic: %+v, want 11 requests, 3 errors, 3 refused", got)
	}
	if c := got.Duration.Counts; len(c) != len(metrics.Buckets)+1 || c[0] != 2 || c[1] != 6 || c[2] != 3 || got.Duration.Count() != 11 {
		t.Errorf("api's histogram: %v, want [2 6 3 0...]", c)
	}
	if idle := st.Pools[1].Traffic; idle.Requests != 0 || len(idle.Duration.Counts) != len(metrics.Buckets)+1 {
		t.Errorf("idle's traffic: %+v", idle)
	}
}

// An in-process server (no pools) has its traffic as "process".
func TestStatusProcess(t *testing.T) {
	h := Handler(Options{Target: target{}, Metrics: func() []metrics.PoolView {
		return []metrics.PoolView{{Snap: metrics.Snapshot{Series: []metrics.Series{{Key: metrics.Key{Code: "5xx"}, Requests: 4, Duration: hist(4)}}}}}
	}})
	var st struct{ Process *traffic }
	if err := json.Unmarshal(get(t, h, "/api/status").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Process == nil || st.Process.Requests != 4 || st.Process.Errors != 4 {
		t.Errorf("process: %+v", st.Process)
	}
}

// /favicon.ico is an SVG icon (not a 404), and the page links it inline as
// data: (a listener with a token answers /favicon.ico only with the token).
func TestFavicon(t *testing.T) {
	h := Handler(Options{Target: target{}})
	rec := get(t, h, "/favicon.ico")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/svg+xml" || !strings.Contains(rec.Body.String(), "<svg") {
		t.Errorf("/favicon.ico: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	page := get(t, h, "/").Body.String()
	if strings.Contains(page, "@FAVICON@") || !strings.Contains(page, `rel="icon" type="image/svg+xml" href="data:image/svg+xml;base64,`) {
		t.Errorf("the page's icon link is not inline")
	}
	if csp := get(t, h, "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:") {
		t.Errorf("CSP %q does not let the page show its inline icon", csp)
	}
}
