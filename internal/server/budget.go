package server

import (
	"sync"
	"time"

	"wisp/internal/pyembed"
)

// memBudget bounds the request bodies held in memory at once. Go reads a body
// before the app is called, so without a bound every connection would hold
// one while a few Python threads work through them: 64 uploads of 1 MiB cost
// 64 MiB (plus garbage) where a server that reads bodies from the app's thread
// holds a few. A body waits a little for room, first come first served, which
// keeps the Python threads fed from memory under load; one that cannot get
// room in time goes to a temp file, so clients that trickle their bodies
// cannot stall everyone else.
type memBudget struct {
	mu      sync.Mutex
	free    int64
	waiters []*budgetWaiter // in arrival order
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the n bytes are granted
}

func newMemBudget(n int64) *memBudget {
	return &memBudget{free: n}
}

// acquire takes n bytes, waiting up to wait for them behind earlier waiters;
// false means no room.
func (b *memBudget) acquire(n int64, wait time.Duration) bool {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return true
	}
	if wait <= 0 {
		b.mu.Unlock()
		return false
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile
		return true
	default:
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	b.grant() // a large waiter leaving may let smaller ones behind it in
	return false
}

// release gives back n bytes taken by acquire.
func (b *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.grant()
	b.mu.Unlock()
}

// grant hands free bytes to the waiters in order, while the first fits.
func (b *memBudget) grant() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// spillSpace bounds the bytes spilled to temp files, all requests together,
// so that concurrent large uploads or slow readers of large responses cannot
// fill the disk: request bodies (taken here) and responses (taken by the
// Python threads' direct writes, see pyembed.Pool.SetSpill) share it.
type spillSpace struct{ b *pyembed.Budget }

// take reserves n bytes if they are free.
func (s spillSpace) take(n int64) bool { return s.b.Take(n) }

// release returns n bytes.
func (s spillSpace) release(n int64) { s.b.Release(n) }
