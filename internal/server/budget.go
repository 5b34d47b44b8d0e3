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

// spillOrder orders the bodies of unknown length (chunked) being spilled,
// which take the spill space as they arrive: when the space runs out under
// several of them, each holds part of it and none can get the rest. So only
// the youngest gives up (503) and hands back what it holds at once; the
// older ones wait for that room, and what fits completes. (A body of known
// length takes its whole Content-Length when it is admitted, or is refused
// at once: it never needs more.)
type spillOrder struct {
	mu     sync.Mutex
	next   uint64
	active []uint64 // in arrival order
}

// enter registers a body; its number is younger than every active one's.
func (o *spillOrder) enter() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	o.active = append(o.active, o.next)
	return o.next
}

// leave unregisters body id (once it is whole, or refused).
func (o *spillOrder) leave(id uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.active {
		if x == id {
			o.active = append(o.active[:i], o.active[i+1:]...)
			return
		}
	}
}

// youngest reports whether no body arrived after id is still active: then
// id is the one to give up when the space is full.
func (o *spillOrder) youngest(id uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.active) == 0 || o.active[len(o.active)-1] <= id
}

// spillWait bounds how long an older body of unknown length waits for the
// room a younger one gives back (one stalled mid-body never does); then it
// gives up too. spillPoll is how often it looks: the room also comes back
// from the Python threads' response spills, which tell no one.
const (
	spillWait = 10 * time.Second
	spillPoll = 2 * time.Millisecond
)

// takeInOrder takes n bytes of the spill space for body id of unknown
// length: at once if they are free; otherwise, while a younger body is
// active (it gives up when it finds the space full, or completes), it waits
// for them up to spillWait. false means the body must give up.
func (s spillSpace) takeInOrder(o *spillOrder, id uint64, n int64) bool {
	var t *time.Ticker
	var deadline time.Time
	for {
		// Looked at before taking: a younger body gives its room back
		// before it leaves, so once none is left, the take sees that room.
		last := o.youngest(id)
		if s.take(n) {
			return true
		}
		if last {
			return false
		}
		if t == nil {
			deadline = time.Now().Add(spillWait)
			t = time.NewTicker(spillPoll)
			defer t.Stop()
		} else if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
}
