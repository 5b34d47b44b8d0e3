package trace

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"runtime"
	"sync"
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

// Dials that end because the worker went away, under a context that stays
// open (a dashboard's tail while workers are recycled), leave nothing behind:
// each used to keep a goroutine waiting for that context.
func TestDialEndsWithWorker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	accepting := make(chan struct{})
	go func() { // a worker that sends one line, then goes away
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer c.Close()
				bufio.NewReader(c).ReadString('\n') // the filter
				c.Write([]byte("{\"text\":\"bye\",\"stream\":\"stdout\"}\n"))
			}()
		}
	}()
	defer func() { ln.Close(); <-accepting }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const dials = 50
	before := runtime.NumGoroutine()
	for i := 0; i < dials; i++ {
		lines := 0
		err := Dial(ctx, path, Filter{}, func(l Line) error { lines++; return nil })
		if err == nil || lines != 1 {
			t.Fatalf("dial %d: %d lines, err %v; want 1 line and the error of the closed connection", i, lines, err)
		}
	}
	served.Wait()
	after := runtime.NumGoroutine()
	for i := 0; i < 100 && after > before+5; i++ {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before+5 {
		t.Errorf("%d goroutines after %d dials that ended (%d before): a goroutine per dial waits for the caller's context", after, dials, before)
	}
}
