package metrics

import (
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
