package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"wisp/internal/metrics"
)

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

// A pool's traffic, as /api/status gives it: requests, 5xx answers,
// refused requests and the duration histogram, summed over its sites, vdirs
// and status classes; the page derives rate, p50, p99 and errors from two
// polls. (/api/status itself: e2e TestDashboardLayout, TestDashboardStatusInProcess.)
func TestTrafficOf(t *testing.T) {
	got := trafficOf(metrics.Snapshot{
		Series: []metrics.Series{
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "2xx"}, Requests: 5, Duration: hist(1, 4)},
			{Key: metrics.Key{Site: "a", Vdir: "/x", Code: "2xx"}, Requests: 2, Duration: hist(0, 2)},
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "5xx"}, Requests: 3, Duration: hist(0, 0, 3)},
			{Key: metrics.Key{Site: "a", Vdir: "/", Code: "4xx"}, Requests: 1, Duration: hist(1)},
		},
		Refused: map[string]uint64{"408": 2, "503 queue full": 1},
	})
	if got.Requests != 11 || got.Errors != 3 || got.Refused != 3 {
		t.Errorf("traffic: %+v, want 11 requests, 3 errors, 3 refused", got)
	}
	if c := got.Duration.Counts; len(c) != len(metrics.Buckets)+1 || c[0] != 2 || c[1] != 6 || c[2] != 3 || got.Duration.Count() != 11 {
		t.Errorf("histogram: %v, want [2 6 3 0...]", c)
	}
	// ASGI: the loop's lag and the open WebSockets, as the snapshot has them
	if a := trafficOf(metrics.Snapshot{LoopLag: 1.5, WebSocketsOpen: 3}); a.LoopLag != 1.5 || a.WebSockets != 3 {
		t.Errorf("ASGI traffic: %+v, want loop lag 1.5 and 3 WebSockets", a)
	}
	// a pool with no requests yet still has all its buckets, for the page
	if none := trafficOf(metrics.Snapshot{}); none.Requests != 0 || len(none.Duration.Counts) != len(metrics.Buckets)+1 {
		t.Errorf("no traffic: %+v", none)
	}
}

// /favicon.ico is an SVG icon (not a 404), and the page links it inline as
// data: (a listener with a token answers /favicon.ico only with the token).
func TestFavicon(t *testing.T) {
	h := Handler(Options{}) // the page and the icon ask nothing of the target
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
