package metrics

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent requests are all counted; a snapshot added to another sums
// series by key, histograms bucket by bucket.
func TestCountersAndAdd(t *testing.T) {
	c := New()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Begin()
				c.Request("s", "/", 200, 10, 20, 3*time.Millisecond)
				c.End()
			}
		}()
	}
	wg.Wait()
	c.Request("s", "/", 404, 0, 5, 2*time.Second)
	c.Refused("408")
	s := c.Snapshot()
	if len(s.Series) != 2 || s.Series[0].Code != "2xx" || s.Series[0].Requests != 8000 || s.Series[0].Duration.Count() != 8000 ||
		s.Series[0].BytesOut != 160000 || s.Series[1].Code != "4xx" || s.InFlight != 0 || s.Refused["408"] != 1 {
		t.Fatalf("%+v", s)
	}
	if s.Series[0].Duration.Counts[bucketOf(3*time.Millisecond)] != 8000 {
		t.Errorf("buckets %v", s.Series[0].Duration.Counts)
	}
	var total Snapshot
	total.Add(s)
	total.Add(s)
	if total.Series[0].Requests != 16000 || total.Series[0].Duration.Count() != 16000 || total.Refused["408"] != 2 {
		t.Errorf("%+v", total)
	}
	cum := cumulative(total.Series[1].Duration)
	if cum[1] != 0 || cum[2.5] != 2 || cum[60] != 2 {
		t.Errorf("cumulative %v", cum)
	}
}

// The WebSocket and event loop metrics: counted per process, nil-safe,
// summed over a pool's workers (the lag is the worst worker's), and a
// retired worker's gauges leave the pool's totals while its counters stay.
func TestWebSocketAndLoopLag(t *testing.T) {
	var none *Counters
	none.WebSocketOpen(1)
	none.WebSocketMessage(true)
	none.LoopLag(time.Second)
	c := New()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				c.WebSocketOpen(1)
				c.WebSocketMessage(true)
				c.WebSocketMessage(false)
				c.WebSocketMessage(false)
			}
			for i := 0; i < 90; i++ {
				c.WebSocketOpen(-1)
			}
		}()
	}
	wg.Wait()
	c.LoopLag(1500 * time.Millisecond)
	s := c.Snapshot()
	if s.WebSocketsOpen != 40 || s.WebSocketIn != 400 || s.WebSocketOut != 800 || s.LoopLag != 1.5 {
		t.Fatalf("%+v", s)
	}
	d := New()
	d.WebSocketOpen(2)
	d.LoopLag(250 * time.Millisecond)
	var pool Snapshot
	pool.Add(s)
	pool.Add(d.Snapshot())
	if pool.WebSocketsOpen != 42 || pool.WebSocketIn != 400 || pool.LoopLag != 1.5 {
		t.Errorf("pool: %+v", pool)
	}
	s.Retire()
	var retired Snapshot
	retired.Add(s)
	if retired.WebSocketsOpen != 0 || retired.LoopLag != 0 || retired.WebSocketIn != 400 || retired.WebSocketOut != 800 {
		t.Errorf("retired: %+v", retired)
	}
}

// /metrics shows the three names, with the pool's values.
func TestWebSocketMetricsExposed(t *testing.T) {
	c := New()
	c.WebSocketOpen(3)
	c.WebSocketMessage(true)
	c.WebSocketMessage(false)
	c.LoopLag(2 * time.Second)
	h := Handler(func() []PoolView { return []PoolView{{Pool: "p", State: "running", Snap: c.Snapshot()}} })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`wisp_websocket_connections_open{pool="p"} 3`, `wisp_websocket_messages_total{direction="in",pool="p"} 1`,
		`wisp_websocket_messages_total{direction="out",pool="p"} 1`, `wisp_event_loop_lag_seconds{pool="p"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
