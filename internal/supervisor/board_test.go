package supervisor

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"wisp/internal/h1"
)

func TestBoardShare(t *testing.T) {
	b, err := newBoard()
	if err != nil {
		t.Fatal(err)
	}
	defer b.f.Close()
	s0, s1, s2 := b.take(), b.take(), b.take()
	if s0 != 0 || s1 != 1 || s2 != 2 {
		t.Fatalf("slots %d %d %d, want 0 1 2", s0, s1, s2)
	}
	v := []*slotView{{mem: b.mem, slot: s0}, {mem: b.mem, slot: s1}, {mem: b.mem, slot: s2}}
	v[0].accepting(true)
	v[0].add(10)
	v[1].add(3)
	if v[0].over() {
		t.Error("the only accepting worker must never hold back")
	}
	v[1].accepting(true)
	v[1].add(5)
	if v[0].over() {
		t.Error("10 of 18 connections with 2 workers is within the share plus one")
	}
	v[0].add(1)
	if !v[0].over() || v[1].over() {
		t.Errorf("11 against 8: worker 0 over %v (want true), worker 1 over %v (want false)", v[0].over(), v[1].over())
	}
	v[2].add(50) // not accepting (draining): does not count
	if !v[0].over() {
		t.Error("a worker that is not accepting changed the share")
	}
	start := time.Now()
	v[0].gate()
	if d := time.Since(start); d < gateWait || d > gateWait+time.Second {
		t.Errorf("gate over the share returned after %v, want about %v", d, gateWait)
	}
	start = time.Now()
	v[1].gate()
	if d := time.Since(start); d > gateWait/2 {
		t.Errorf("gate within the share waited %v", d)
	}
	b.free(s0)
	if got := b.take(); got != s0 || *word(b.mem, s0, 0) != 0 || *word(b.mem, s0, 1) != 0 {
		t.Errorf("a freed slot is taken again cleared: slot %d conns %d accepting %d", got, *word(b.mem, s0, 0), *word(b.mem, s0, 1))
	}
}

func TestBoardInflight(t *testing.T) {
	b, err := newBoard()
	if err != nil {
		t.Skip("no board:", err)
	}
	i := b.take()
	v := &slotView{mem: b.mem, slot: i}
	r := &h1.Request{Method: "GET", Target: "/crash?x=1", Fields: []h1.Field{{Name: "x-request-id", Value: "abc"}}}
	e1 := v.begin(r)
	e2 := v.begin(&h1.Request{Method: "POST", Target: "/" + strings.Repeat("y", 500)})
	v.end(e1)
	e3 := v.begin(r)
	got := b.inflight(i)
	if len(got) != 2 || got[0] != "GET /crash?x=1 request_id=abc" || !strings.HasPrefix(got[1], "POST /yyy") || len(got[1]) != entryText {
		t.Errorf("inflight = %q (entries %d %d %d)", got, e1, e2, e3)
	}
	for range inflightN {
		v.begin(r)
	}
	if v.begin(r) != -1 {
		t.Errorf("begin on a full slot should return -1")
	}
	b.free(i)
	if got := b.inflight(i); len(got) != 0 {
		t.Errorf("inflight after free = %q", got)
	}
}

// BenchmarkBoardBeginEnd is the request path's cost of publishing a request
// on the board (server.Config.AppBegin and AppEnd).
func BenchmarkBoardBeginEnd(b *testing.B) {
	bd, err := newBoard()
	if err != nil {
		b.Skip("no board:", err)
	}
	v := &slotView{mem: bd.mem, slot: bd.take()}
	r := &h1.Request{Method: "GET", Target: "/some/path?query=1", Fields: []h1.Field{
		{Name: "Host", Value: "example.com"}, {Name: "User-Agent", Value: "bench"}, {Name: "Accept", Value: "*/*"},
		{Name: "Accept-Encoding", Value: "gzip"}, {Name: "Connection", Value: "keep-alive"}}}
	b.ReportAllocs()
	for b.Loop() {
		v.end(v.begin(r))
	}
}

// othersAccepting sees the other slots only.
func TestBoardOthersAccepting(t *testing.T) {
	b, err := newBoard()
	if err != nil {
		t.Fatal(err)
	}
	defer b.f.Close()
	v0, v1 := &slotView{mem: b.mem, slot: b.take()}, &slotView{mem: b.mem, slot: b.take()}
	v0.accepting(true)
	if v0.othersAccepting() || !v1.othersAccepting() {
		t.Errorf("only worker 0 accepts: 0 sees others %v (want false), 1 sees others %v (want true)", v0.othersAccepting(), v1.othersAccepting())
	}
}

// A paused gate holds Accept (connections wait in the listener's queue) and
// wakes an Accept already waiting in the kernel, resume lets them go on, and
// Close ends an Accept held by a pause.
func TestAcceptGate(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &acceptGate{}
	ln := g.wrap(raw)
	accepted := make(chan net.Conn, 16)
	failed := make(chan error, 1)
	g.pause() // before the first Accept
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				failed <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	held := func() bool { // nothing accepted for a while
		select {
		case c := <-accepted:
			c.Close()
			return false
		case err := <-failed:
			t.Fatalf("Accept failed while paused: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		return true
	}
	taken := func(what string) {
		select {
		case c := <-accepted:
			c.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("not accepted: %s", what)
		}
	}
	dial()
	if !held() {
		t.Fatal("accepted while paused")
	}
	g.resume()
	taken("the connection queued during the pause, after resume")
	// An Accept waiting in the kernel when the pause comes is woken. (One
	// that has just checked its deadline may still take a connection that
	// arrives at that instant: a few tries.)
	woken := false
	for try := 0; try < 5 && !woken; try++ {
		time.Sleep(50 * time.Millisecond) // the loop waits in Accept
		g.pause()
		dial()
		woken = held()
		g.resume()
		if woken {
			taken("after resume")
		}
	}
	if !woken {
		t.Fatal("an Accept waiting when the pause came took the next connection, 5 times out of 5")
	}
	g.pause()
	ln.Close()
	select {
	case err := <-failed:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close while paused: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end an Accept held by a pause")
	}
}

// watchStalls pauses a saturated worker while a sibling accepts (its slot
// says so, its gate holds accepts, its connections are shed), lets it accept
// again once it recovers, and never pauses the last accepting worker.
func TestWatchStalls(t *testing.T) {
	b, err := newBoard()
	if err != nil {
		t.Fatal(err)
	}
	defer b.f.Close()
	me, sib := &slotView{mem: b.mem, slot: b.take()}, &slotView{mem: b.mem, slot: b.take()}
	me.accepting(true)
	sib.accepting(true)
	var mu sync.Mutex
	why, shedding := "", false
	saturated := func() string { mu.Lock(); defer mu.Unlock(); return why }
	shed := func(on bool) int { mu.Lock(); defer mu.Unlock(); shedding = on; return 0 }
	set := func(w string) { mu.Lock(); why = w; mu.Unlock() }
	g := &acceptGate{}
	stop, done := make(chan struct{}), make(chan struct{})
	go watchStalls(saturated, shed, g, me, slog.New(slog.NewTextHandler(io.Discard, nil)), stop, done)
	defer func() { close(stop); <-done }()
	is := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 100; i++ {
			if cond() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("not within 2s: %s", what)
	}
	paused := func() bool { return g.wait() != nil }
	isShed := func() bool { mu.Lock(); defer mu.Unlock(); return shedding }
	set("stuck")
	is("paused, shed and not accepting", func() bool { return paused() && isShed() && !sib.othersAccepting() })
	set("")
	is("accepting again", func() bool { return !paused() && !isShed() && sib.othersAccepting() })
	// the sibling stops accepting (it drains): this worker, saturated, goes on
	sib.accepting(false)
	set("stuck")
	time.Sleep(5 * stallCheck)
	if paused() || !sib.othersAccepting() {
		t.Errorf("the last accepting worker paused")
	}
	// paused while the sibling accepted, then the sibling stops: accept again
	set("")
	time.Sleep(3 * stallCheck)
	sib.accepting(true)
	set("stuck")
	is("paused again", paused)
	sib.accepting(false)
	is("accepting again when the sibling stopped", func() bool { return !paused() && sib.othersAccepting() })
}
