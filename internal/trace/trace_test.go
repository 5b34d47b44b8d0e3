package trace

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// A reader that does not read loses lines without slowing Publish, and is
// told how many; history comes from the ring since the time asked.
func TestHubSlowReaderAndHistory(t *testing.T) {
	h := NewHub("p")
	h.Publish(Line{Text: "old", Time: time.Now().Add(-time.Hour)})
	h.Publish(Line{Text: "recent", Site: "s", Vdir: "/a"})
	r, hist := h.Attach(Filter{Since: time.Now().Add(-time.Minute)})
	defer r.Detach()
	if len(hist) != 1 || hist[0].Text != "recent" || hist[0].Pool != "p" || hist[0].PID == 0 {
		t.Fatalf("history %+v", hist)
	}
	t0 := time.Now()
	for i := 0; i < readerBuffer+500; i++ {
		h.Publish(Line{Text: "x"})
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("publishing to a reader that does not read took %v", d)
	}
	if n := r.TakeDropped(); n != 500 || h.Dropped() != 500 {
		t.Errorf("dropped %d (hub %d), want 500", n, h.Dropped())
	}
	// the ring keeps RingSize lines
	for i := 0; i < RingSize+10; i++ {
		h.Publish(Line{Text: "y"})
	}
	_, hist = h.Attach(Filter{Since: time.Now().Add(-time.Minute)})
	if len(hist) != RingSize {
		t.Errorf("history of %d lines, want %d", len(hist), RingSize)
	}
}

func TestFilter(t *testing.T) {
	l := Line{Pool: "web", Site: "main", Vdir: "/api"}
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true}, {Filter{Pool: "web"}, true}, {Filter{Pool: "other"}, false},
		{Filter{Vdir: "api"}, true}, {Filter{Vdir: "/api/"}, true}, {Filter{Vdir: "/"}, false}, {Filter{Site: "x"}, false},
	} {
		if got := c.f.Match(&l); got != c.want {
			t.Errorf("%+v.Match = %v", c.f, got)
		}
	}
}

// A worker's hub served on a socket reaches a reader through Dial.
func TestServeDial(t *testing.T) {
	h := NewHub("p")
	path := filepath.Join(t.TempDir(), "t.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go h.Serve(ln)
	h.Publish(Line{Text: "before", Request: "r1"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan Line, 10)
	go Dial(ctx, path, Filter{Since: time.Now().Add(-time.Minute)}, func(l Line) error { got <- l; return nil })
	if l := <-got; l.Text != "before" || l.Request != "r1" {
		t.Errorf("history %+v", l)
	}
	time.Sleep(100 * time.Millisecond)
	h.Publish(Line{Text: "live"})
	select {
	case l := <-got:
		if l.Text != "live" {
			t.Errorf("live %+v", l)
		}
	case <-ctx.Done():
		t.Fatal("no live line")
	}
	if err := Dial(ctx, filepath.Join(t.TempDir(), "none.sock"), Filter{}, nil); err == nil {
		t.Error("dialing nothing succeeded")
	}
}
