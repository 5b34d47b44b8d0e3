package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"wisp/internal/h1"
	"wisp/internal/server"
)

// A board is memory shared by the workers of a pool, in which each publishes
// how many client connections it holds and whether it is accepting. A worker
// holding more than its share waits a moment before it accepts again, so that
// the others take the next connections: keep-alive connections stay with the
// worker that accepted them, and a burst of connects (a load balancer's or a
// benchmark's pool opening at once) would otherwise split unevenly, leaving one
// worker's queue longer than the other's for the connections' whole life.
//
// Each worker also publishes there the requests it is running in its apps
// (method, target, request id), so that the supervisor can name them when the
// process dies: a few stores per request, no lock.
//
// The supervisor creates the board, hands each worker a slot and the
// descriptor, and clears a slot when its worker exits.
type board struct {
	f    *os.File
	mem  []byte
	used [boardSlots]bool
}

const (
	boardSlots = 64
	slotSize   = 64 // a cache line per worker
	// gateWait bounds how long a worker over its share holds back: it never
	// stops accepting, it only lets others go first.
	gateWait  = 20 * time.Millisecond
	gateSleep = 100 * time.Microsecond

	// In-flight requests: inflightN entries per slot, after the slots. An
	// entry is a state word (0 free, 1 in use), a length word and the text.
	inflightN    = 32
	entrySize    = 256
	entryText    = entrySize - 16
	inflightBase = boardSlots * slotSize
	boardSize    = inflightBase + boardSlots*inflightN*entrySize
)

// newBoard creates a pool's board: an unlinked file in /dev/shm (tmpfs),
// else in the temp directory.
func newBoard() (*board, error) {
	f, err := os.CreateTemp("/dev/shm", "wisp-board-*")
	if err != nil {
		if f, err = os.CreateTemp("", "wisp-board-*"); err != nil {
			return nil, err
		}
	}
	os.Remove(f.Name())
	if err := f.Truncate(boardSize); err != nil {
		f.Close()
		return nil, err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, boardSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return &board{f: f, mem: mem}, nil
}

// take reserves a cleared slot for a new worker (-1: none free; that worker
// then accepts without looking at the others).
func (b *board) take() int {
	for i := range b.used {
		if !b.used[i] {
			b.used[i] = true
			clearSlot(b.mem, i)
			return i
		}
	}
	return -1
}

// free clears an exited worker's slot and makes it available.
func (b *board) free(i int) {
	if i >= 0 && i < boardSlots {
		clearSlot(b.mem, i)
		b.used[i] = false
	}
}

func clearSlot(mem []byte, i int) {
	atomic.StoreInt64(word(mem, i, 0), 0)
	atomic.StoreInt64(word(mem, i, 1), 0)
	for e := range inflightN {
		atomic.StoreInt64(entryWord(mem, i, e, 0), 0)
	}
}

// entryWord is word n (0 state, 1 length) of in-flight entry e of slot i.
func entryWord(mem []byte, i, e, n int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[inflightBase+(i*inflightN+e)*entrySize+n*8]))
}

// inflight returns the requests slot i had in its apps ("METHOD target
// [request_id=ID]"), read once its worker is gone.
func (b *board) inflight(i int) []string {
	if i < 0 || i >= boardSlots {
		return nil
	}
	var out []string
	for e := range inflightN {
		if atomic.LoadInt64(entryWord(b.mem, i, e, 0)) != 1 {
			continue
		}
		n := min(max(atomic.LoadInt64(entryWord(b.mem, i, e, 1)), 0), entryText)
		off := inflightBase + (i*inflightN+e)*entrySize + 16
		out = append(out, string(b.mem[off:off+int(n)]))
	}
	return out
}

// word is the n-th int64 of slot i: 0 the connections, 1 accepting (1 or 0).
func word(mem []byte, i, n int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[i*slotSize+n*8]))
}

// slotView is a worker's side of the board.
type slotView struct {
	mem  []byte
	slot int
}

// openSlot maps the board inherited on fd; slot is the worker's.
func openSlot(fd uintptr, slot int) (*slotView, error) {
	if slot < 0 || slot >= boardSlots {
		return nil, fmt.Errorf("board slot %d out of range", slot)
	}
	mem, err := syscall.Mmap(int(fd), 0, boardSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	syscall.Close(int(fd))
	if err != nil {
		return nil, fmt.Errorf("mmap board: %w", err)
	}
	return &slotView{mem: mem, slot: slot}, nil
}

// add counts connections opened (+1) or closed (-1).
func (v *slotView) add(delta int64) { atomic.AddInt64(word(v.mem, v.slot, 0), delta) }

// begin publishes a request entering its app and returns its entry (-1: all
// entries in use, it is not published). Called as server.Config.AppBegin.
func (v *slotView) begin(r *h1.Request) int {
	for e := range inflightN {
		if atomic.CompareAndSwapInt64(entryWord(v.mem, v.slot, e, 0), 0, 2) { // 2: being written
			off := inflightBase + (v.slot*inflightN+e)*entrySize + 16
			text := v.mem[off : off+entryText]
			n := copy(text, r.Method)
			n += copy(text[n:], " ")
			n += copy(text[n:], r.Target)
			if id := server.GivenRequestID(r); id != "" {
				n += copy(text[n:], " request_id=")
				n += copy(text[n:], id)
			}
			atomic.StoreInt64(entryWord(v.mem, v.slot, e, 1), int64(n))
			atomic.StoreInt64(entryWord(v.mem, v.slot, e, 0), 1)
			return e
		}
	}
	return -1
}

// end withdraws a request published by begin. Called as server.Config.AppEnd.
func (v *slotView) end(e int) {
	if e >= 0 {
		atomic.StoreInt64(entryWord(v.mem, v.slot, e, 0), 0)
	}
}

// accepting says whether this worker takes new connections.
func (v *slotView) accepting(on bool) {
	var x int64
	if on {
		x = 1
	}
	atomic.StoreInt64(word(v.mem, v.slot, 1), x)
}

// gate returns when this worker may accept: at once if it holds no more than
// its share of the accepting workers' connections (plus one), else when the
// others have caught up or gateWait has passed.
func (v *slotView) gate() {
	var deadline time.Time
	for {
		if !v.over() {
			return
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(gateWait)
		} else if now.After(deadline) {
			return
		}
		time.Sleep(gateSleep)
	}
}

// over reports whether this worker holds more than its share plus one.
func (v *slotView) over() bool {
	mine := atomic.LoadInt64(word(v.mem, v.slot, 0))
	var total, n int64
	for i := 0; i < boardSlots; i++ {
		if atomic.LoadInt64(word(v.mem, i, 1)) == 1 {
			total += atomic.LoadInt64(word(v.mem, i, 0))
			n++
		}
	}
	return n > 1 && mine*n > total+n
}

// othersAccepting reports whether another worker of the pool takes new
// connections now.
func (v *slotView) othersAccepting() bool {
	for i := 0; i < boardSlots; i++ {
		if i != v.slot && atomic.LoadInt64(word(v.mem, i, 1)) == 1 {
			return true
		}
	}
	return false
}

// acceptGate pauses the accepts of a worker's listeners: while it is paused
// their Accept waits, and an Accept already waiting in the kernel is woken
// (a deadline in the past) and waits too, so that the connections queued in
// the shared socket go to the pool's other workers. Nothing is lost: a
// connection stays in the kernel's queue until a worker accepts it.
type acceptGate struct {
	mu      sync.Mutex
	paused  bool
	resumed chan struct{} // closed when a pause ends
	lns     []deadliner
}

// deadliner is a listener whose Accept a deadline can wake (*net.TCPListener,
// *net.UnixListener).
type deadliner interface{ SetDeadline(time.Time) error }

// wrap returns ln gated by g. Put it under any other wrapper (TLS, PROXY
// protocol): it must see the listener's own Accept.
func (g *acceptGate) wrap(ln net.Listener) net.Listener {
	d, ok := ln.(deadliner)
	if !ok {
		return ln
	}
	g.mu.Lock()
	g.lns = append(g.lns, d)
	g.mu.Unlock()
	return &gatedListener{Listener: ln, g: g, closed: make(chan struct{})}
}

// pause stops the accepts; resume lets them go on. Both may be repeated.
func (g *acceptGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		return
	}
	g.paused, g.resumed = true, make(chan struct{})
	for _, d := range g.lns {
		d.SetDeadline(time.Unix(1, 0))
	}
}

func (g *acceptGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		return
	}
	g.paused = false
	for _, d := range g.lns {
		d.SetDeadline(time.Time{})
	}
	close(g.resumed)
}

// wait returns nil when accepts may go on, else a channel closed when they
// may.
func (g *acceptGate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		return g.resumed
	}
	return nil
}

// gatedListener is a listener whose Accept waits while its gate is paused.
type gatedListener struct {
	net.Listener
	g      *acceptGate
	once   sync.Once
	closed chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		if w := l.g.wait(); w != nil {
			select {
			case <-w:
			case <-l.closed:
			}
		}
		c, err := l.Listener.Accept()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// woken by pause (only the gate sets deadlines here)
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			default:
			}
			continue
		}
		return c, err
	}
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
