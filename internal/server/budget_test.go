package server

import (
	"testing"
	"time"

	"wisp/internal/pyembed"
)

func TestMemBudget(t *testing.T) {
	b := newMemBudget(10)
	if !b.acquire(6, 0) || !b.acquire(4, 0) {
		t.Fatal("could not take 6+4 of 10")
	}
	if b.acquire(1, 0) {
		t.Fatal("took 1 byte of an exhausted budget without waiting")
	}
	start := time.Now()
	if b.acquire(1, 50*time.Millisecond) {
		t.Fatal("took 1 byte of an exhausted budget")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("gave up after %v, want the 50ms wait", d)
	}
	got := make(chan bool)
	go func() { got <- b.acquire(5, 10*time.Second) }()
	time.Sleep(20 * time.Millisecond)
	b.release(4) // 4 free: not enough for 5
	select {
	case <-got:
		t.Fatal("acquire(5) returned with 4 free")
	case <-time.After(30 * time.Millisecond):
	}
	b.release(6) // 10 free
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("acquire(5) failed after room was given back")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acquire(5) did not wake when room was given back")
	}
	if !b.acquire(5, 0) || b.acquire(1, 0) {
		t.Error("want exactly 5 left")
	}
}

// TestMemBudgetFIFO: waiters get room in the order they came, and one that
// gives up lets the next in.
func TestMemBudgetFIFO(t *testing.T) {
	b := newMemBudget(4)
	if !b.acquire(4, 0) {
		t.Fatal("could not take the whole budget")
	}
	order := make(chan int, 3)
	for i := 1; i <= 3; i++ {
		go func(i int) {
			if b.acquire(2, 10*time.Second) {
				order <- i
			}
		}(i)
		time.Sleep(20 * time.Millisecond) // arrive in order
	}
	// A later waiter must not overtake them, even when it fits.
	if b.acquire(1, 0) {
		t.Error("took room ahead of waiters")
	}
	b.release(2)
	if got := <-order; got != 1 {
		t.Errorf("first grant went to waiter %d, want 1", got)
	}
	b.release(2)
	if got := <-order; got != 2 {
		t.Errorf("second grant went to waiter %d, want 2", got)
	}
	// a waiter that times out leaves the queue
	if b.acquire(4, 30*time.Millisecond) {
		t.Error("got 4 bytes while 2 waited and 4 were taken")
	}
	b.release(2)
	if got := <-order; got != 3 {
		t.Errorf("third grant went to waiter %d, want 3", got)
	}
}

// Bodies of unknown length that fill the spill space: the youngest is
// refused at once, an older one waits for the room the youngest gives back
// and then gets it; alone, a body is refused at once.
func TestSpillTakeInOrder(t *testing.T) {
	s := spillSpace{pyembed.NewBudget(300)}
	var o spillOrder
	a, b, c := o.enter(), o.enter(), o.enter()
	for _, id := range []uint64{a, b, c} {
		if !s.takeInOrder(&o, id, 100) {
			t.Fatalf("body %d: 100 of the 300 free refused", id)
		}
	}
	start := time.Now()
	if s.takeInOrder(&o, c, 1) {
		t.Fatal("the youngest body took room of a full space")
	}
	if d := time.Since(start); d > spillWait/2 {
		t.Errorf("the youngest body waited %v before giving up", d)
	}
	got := make(chan bool, 1)
	go func() { got <- s.takeInOrder(&o, a, 50) }()
	select {
	case ok := <-got:
		t.Fatalf("an older body did not wait for the youngest (took: %v)", ok)
	case <-time.After(50 * time.Millisecond):
	}
	s.release(100) // c gives its room back, then leaves
	o.leave(c)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the older body was refused the room the youngest gave back")
		}
	case <-time.After(spillWait / 2):
		t.Fatal("the older body did not get the room the youngest gave back")
	}
	o.leave(b)
	start = time.Now()
	if s.takeInOrder(&o, a, 100) || time.Since(start) > spillWait/2 {
		t.Errorf("a body alone in a full space was not refused at once")
	}
}
