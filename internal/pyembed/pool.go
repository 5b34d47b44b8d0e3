package pyembed

/*
#include <stdlib.h>
#include <sys/eventfd.h>
#include "wisp_py.h"
*/
import "C"

import (
	"errors"
	"os"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Pool is a fixed set of Python threads that run requests (Jobs) from one
// bounded queue. Each thread is a goroutine locked to its OS thread that
// spends its whole life in one C call (wisp_pool.c): between requests it
// parks in C, not in Go, so no request costs a Go scheduler hand-off of a
// locked thread. Responses come back as Events through a completion queue
// that one goroutine drains, woken through an eventfd only when it sleeps.
//
// A second thread running Python only fights the first for the GIL unless the
// first is blocked (in I/O, with the GIL released). So threads are woken
// lazily: a job wakes a thread only when none is running; a running thread
// takes queued jobs one after another under one GIL hold, and waits a few
// tens of microseconds for the next before it parks; and a watcher adds a
// thread when jobs wait, none was taken for wakeDelay, and every thread sleeps
// (blocked, not computing), or none was taken for busyStall while they
// compute. CPU-bound apps thus run on one thread with no hand-offs, I/O-bound
// apps still get every thread within a few wakeDelays, and a long CPU-bound
// request delays the queue by busyStall at most.
type Pool struct {
	ip      *Interpreter
	c       *C.wisp_pool
	threads atomic.Int32 // threads taking jobs: written-off threads do not count
	efd     *os.File
	kick    chan struct{} // tells the watcher that jobs are queued
	quit    chan struct{} // closed by Stop
	wg      sync.WaitGroup
	drained chan struct{} // closed when the drainer has delivered every event

	cmu    sync.Mutex
	probes []threadProbe // of every thread

	fmu  sync.Mutex
	free []*Job
}

// wakeDelay is how long queued jobs may see no progress before another
// thread is woken; busyStall is the longest a CPU-bound request may hold up
// the queue (Python's default switch interval).
const (
	wakeDelay = 500 * time.Microsecond
	busyStall = 5 * time.Millisecond
)

// eventCap is the capacity of a Job's event channel: wisp_pool.c's
// MAX_INFLIGHT data events, plus a spill's event (which a thread adds behind
// a full window once the socket is handed over), a file, and the done event,
// so the drainer never waits.
const eventCap = 16 + 3

// StartPool starts threads Python threads with a queue of queue jobs.
func (ip *Interpreter) StartPool(threads, queue int) (*Pool, error) {
	fd, err := C.eventfd(0, C.EFD_NONBLOCK|C.EFD_CLOEXEC)
	if fd < 0 {
		return nil, errors.New("eventfd: " + err.Error())
	}
	p := &Pool{
		ip:      ip,
		efd:     os.NewFile(uintptr(fd), "wisp-pool-events"),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		drained: make(chan struct{}),
	}
	p.c = C.wisp_pool_new(C.int(threads), C.int(queue), fd)
	if p.c == nil {
		p.efd.Close()
		return nil, errors.New("out of memory")
	}
	p.threads.Store(int32(threads))
	ready := make(chan struct{})
	for i := 0; i < threads; i++ {
		p.wg.Add(1)
		go p.thread(ready)
	}
	for i := 0; i < threads; i++ {
		<-ready
	}
	go p.drain()
	go p.watch()
	return p, nil
}

func (p *Pool) thread(ready chan<- struct{}) {
	defer p.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	probe := probeThisThread()
	p.cmu.Lock()
	p.probes = append(p.probes, probe)
	p.cmu.Unlock()
	ready <- struct{}{}
	retired := C.wisp_pool_work(p.c) != 0
	C.wisp_thread_detach()
	if retired {
		p.threads.Add(-1)
		p.cmu.Lock()
		for i, t := range p.probes {
			if t == probe {
				p.probes = append(p.probes[:i], p.probes[i+1:]...)
				break
			}
		}
		p.cmu.Unlock()
	}
}

// WriteOff replaces the thread running j, stuck in the app past the request
// timeout (in C code, where the TimeoutError raised in it cannot land): a new
// thread takes queued jobs from now on, and the stuck one ends once the app
// returns. It reports false if j is not in the app any more, or the pool is
// stopping.
func (p *Pool) WriteOff(j *Job) bool {
	select {
	case <-p.quit:
		return false
	default:
	}
	if C.wisp_pool_writeoff(p.c, j.c) == 0 {
		return false
	}
	p.threads.Add(1)
	ready := make(chan struct{}, 1)
	p.wg.Add(1)
	go p.thread(ready)
	<-ready
	return true
}

// cpu returns the CPU time all the pool's threads have used.
func (p *Pool) cpu() (used time.Duration) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	for _, t := range p.probes {
		used += t.cpu()
	}
	return used
}

// runnable reports whether any of the pool's threads is runnable.
func (p *Pool) runnable() bool {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	for _, t := range p.probes {
		if t.runnable() {
			return true
		}
	}
	return false
}

// Stats are the jobs waiting for a Python thread and the threads running one.
func (p *Pool) Stats() (queued, running int) {
	q, r, _ := p.stats()
	return q, r
}

func (p *Pool) stats() (queued, running int, taken uint64) {
	var q, r C.int
	var t C.ulonglong
	C.wisp_pool_stats(p.c, &q, &r, &t)
	return int(q), int(r), uint64(t)
}

// watch wakes another thread when jobs wait and none was taken for wakeDelay
// while every thread sleeps (blocked in I/O or sleep, with the GIL released:
// another thread can run), or for busyStall while they compute (a long
// CPU-bound request: a second thread then gets GIL time slices for the queued
// ones). A thread that is runnable but barely got the CPU (the machine is
// overloaded) gets no company: another thread would only wait for the GIL too.
func (p *Pool) watch() {
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	for {
		select {
		case <-p.kick:
		case <-p.quit:
			return
		}
		var stalled time.Duration  // without progress, while jobs wait
		var stallCPU time.Duration // the threads' CPU time when the stall was seen
		// Look only after a delay: checking at once would find the job
		// already taken and wake this goroutine again for the next one,
		// once per request; kicks meanwhile wait in the channel.
		for {
			_, running, before := p.stats()
			delay := wakeDelay
			if running >= int(p.threads.Load()) {
				delay = 10 * wakeDelay // all busy: just keep an eye on it
			}
			tick.Reset(delay)
			select {
			case <-tick.C:
			case <-p.quit:
				return
			}
			queued, _, taken := p.stats()
			if queued == 0 {
				break
			}
			if taken != before {
				stalled = 0
				continue
			}
			if !p.runnable() {
				C.wisp_pool_wake(p.c) // every thread sleeps: blocked in I/O
				stalled = 0
				continue
			}
			if stalled == 0 {
				stallCPU = p.cpu()
			}
			stalled += delay
			if stalled > busyStall && p.cpu()-stallCPU >= (stalled-delay)/2 {
				C.wisp_pool_wake(p.c) // a long computation: let a second thread take turns
				stalled = 0
			}
		}
	}
}

// drain delivers the threads' events to their jobs.
func (p *Pool) drain() {
	defer close(p.drained)
	var evs [64]*C.wisp_ev
	var buf [8]byte
	for {
		n := int(C.wisp_pool_drain(p.c, &evs[0], C.int(len(evs))))
		if n < 0 {
			return
		}
		if n == 0 {
			// armed: the next event writes the eventfd
			if _, err := p.efd.Read(buf[:]); err != nil {
				return
			}
			continue
		}
		for _, e := range evs[:n] {
			if e.handle == 0 { // a log message, of the request e.n names if any
				var tag any
				if e.n != 0 {
					tag = cgo.Handle(e.n).Value().(*Job).Tag
				}
				p.ip.logPython(int(e.code), C.GoStringN(e.data, C.int(e.len)), tag)
				C.wisp_ev_free(e)
				continue
			}
			j := cgo.Handle(e.handle).Value().(*Job)
			if e.credit != 0 { // ASGI: room for more request body
				select {
				case j.credit <- struct{}{}:
				default:
				}
				C.wisp_ev_free(e)
				continue
			}
			ev := Event{e: e, Done: e.done != 0}
			if e.hdr != nil {
				ev.Hdr = cbytes(e.hdr, e.hdrlen)
			}
			ev.Data = cbytes(e.data, e.len)
			if e.fd >= 0 {
				ev.File = os.NewFile(uintptr(e.fd), "file_wrapper")
				ev.FileN = int64(e.n)
				ev.Raw = e.raw != 0
			}
			if ev.Done {
				ev.Code = Code(e.code)
				if e.err != nil {
					ev.Traceback = C.GoStringN(e.err, C.int(e.errlen))
				}
			}
			j.events <- ev
		}
	}
}

// Stop lets the threads finish the queued jobs, waits for them to exit and
// for every event to be delivered. No Submit may follow.
func (p *Pool) Stop() {
	close(p.quit)
	C.wisp_pool_quit(p.c)
	p.wg.Wait()
	C.wisp_pool_closed(p.c)
	<-p.drained
	p.efd.Close()
}

// Event is one hand-off of a response from a Python thread: the status and
// headers (with the first), body bytes, then FileN bytes of File (sendfile),
// or the end of the response (Done) with its Code and Traceback. Hdr and
// Data view C memory, valid until Release, which also closes File (KeepHdr
// keeps a copy of Hdr).
type Event struct {
	Hdr       []byte // "status\x00name\x00value\x00...", latin-1, validated
	Data      []byte
	File      *os.File
	FileN     int64
	Raw       bool // File is the response's spill: send what Job.SpillClaim gives, as it is (framed)
	Done      bool
	Code      Code
	Traceback string
	e         *C.wisp_ev
}

// Release frees the event's memory and lets its thread go on if it waited
// for room.
func (ev *Event) Release() {
	if ev.e == nil {
		return
	}
	if ev.File != nil {
		ev.File.Close()
	}
	C.wisp_ev_free(ev.e)
	*ev = Event{}
}

// Job is one request: Env is its environ, set before Submit; the response
// arrives on Events, the last one Done. A Job is reused through the Pool that
// made it (Put), only after its done event.
type Job struct {
	c      *C.wisp_job
	h      cgo.Handle
	pool   *Pool
	pin    runtime.Pinner
	Env    Environ
	events chan Event
	hdr    []byte        // the status and headers of the response, reused
	seq    atomic.Uint64 // counts the requests j carried (Submit)
	credit chan struct{} // ASGI: the app received request body (see Loop.WaitBody)
	// Tag is the caller's own: it comes back with the app's output written
	// while this job runs (Options.Trace).
	Tag any
}

// Job returns a fresh or reused Job.
func (p *Pool) Job() *Job {
	p.fmu.Lock()
	if n := len(p.free); n > 0 {
		j := p.free[n-1]
		p.free = p.free[:n-1]
		p.fmu.Unlock()
		return j
	}
	p.fmu.Unlock()
	j := &Job{pool: p, events: make(chan Event, eventCap), credit: make(chan struct{}, 1)}
	j.c = (*C.wisp_job)(C.calloc(1, C.sizeof_wisp_job))
	j.h = cgo.NewHandle(j)
	j.c.handle = C.uintptr_t(j.h)
	return j
}

// Waited is how long j waited in the queue for a Python thread (read it
// once the job is done).
func (j *Job) Waited() time.Duration { return time.Duration(j.c.waited) }

// Put returns j for reuse: its done event was taken and every event released.
func (p *Pool) Put(j *Job) {
	select {
	case <-j.credit: // a late credit of an ASGI request body
	default:
	}
	j.pin.Unpin()
	j.Env.Reset()
	p.fmu.Lock()
	p.free = append(p.free, j)
	p.fmu.Unlock()
}

// KeepHdr copies an event's Hdr into j's own buffer, valid until the next
// KeepHdr or until j is Put.
func (j *Job) KeepHdr(h []byte) []byte {
	j.hdr = append(j.hdr[:0], h...)
	return j.hdr
}

// Events is where the response arrives.
func (j *Job) Events() <-chan Event { return j.events }

// Submit queues j for app with its body in memory (body) or in bodyFile,
// which must stay open until the done event. It returns false when the queue
// is full.
func (p *Pool) Submit(j *Job, app int, body []byte, bodyFile *os.File) bool {
	var env, bp *C.char
	if n := len(j.Env.buf); n > 0 {
		env = (*C.char)(unsafe.Pointer(&j.Env.buf[0]))
	}
	if len(body) > 0 {
		j.pin.Pin(&body[0]) // C keeps this pointer until the done event
		bp = (*C.char)(unsafe.Pointer(&body[0]))
	}
	fd := C.int(-1)
	if bodyFile != nil {
		fd = C.int(bodyFile.Fd())
	}
	j.seq.Add(1)
	switch C.wisp_pool_submit(p.c, j.c, C.int(app), env, C.size_t(len(j.Env.buf)), bp, C.size_t(len(body)), fd) {
	case 0:
		return true
	case 1:
		select {
		case p.kick <- struct{}{}:
		default:
		}
		return true
	}
	j.pin.Unpin()
	return false
}

// Abort tells the app that the client is gone (or the request timed out):
// its next hand-off fails, and a job still queued is not run.
func (j *Job) Abort() { C.wisp_job_abort(j.c) }

// Thread returns the Python thread id running j (0 before it started).
func (j *Job) Thread() uint64 {
	return uint64(C.wisp_job_ident(j.c))
}

// StillRunning returns a check that reports whether the request j carries now
// is in the app: false once it has ended, even after j is reused for another
// request. Called holding the GIL (as Interrupt's still does), the answer
// cannot change meanwhile.
func (j *Job) StillRunning() func() bool {
	seq := j.seq.Load()
	return func() bool { return j.seq.Load() == seq && C.wisp_job_running(j.c) != 0 }
}

// Direct lets the thread running j write the rest of the response body to the
// client's socket itself, whenever no hand-off of j is waiting for Go: the
// app's buffers then go to the kernel with no copy and no hand-off. fd is a
// duplicate of the socket, which j closes when it ends (if Direct returns
// true; otherwise it stays the caller's). The other arguments are the
// framing and the bounds of the connection's own writes: left is the body the
// Content-Length still allows after what Go wrote (-1: none), rate the
// minimum rate in bytes/s with its grace, timeout the write timeout (0: none),
// and sent and waited the connection's rate accounting so far.
func (j *Job) Direct(fd int, chunked bool, left, rate int64, grace, timeout time.Duration, sent int64, waited time.Duration) bool {
	ch := C.int(0)
	if chunked {
		ch = 1
	}
	return C.wisp_job_direct(j.c, C.int(fd), ch, C.longlong(left), C.longlong(rate), C.longlong(grace),
		C.longlong(timeout), C.longlong(sent), C.longlong(waited)) != 0
}

// DirectResult is what the direct writes of a job did, read after its done
// event: the body bytes written, those of them whose writes waited for the
// client and how long (for the minimum rate), the error that ended them, and
// whether the app went past its Content-Length (the body was cut there).
type DirectResult struct {
	Sent, SentWaited int64
	Waited           time.Duration
	Err              syscall.Errno
	Over             bool
	SpillRaw         int64 // bytes the thread spilled for Go to send (framing included)
	SpillBody        int64 // the body bytes among them, not in Sent
}

// DirectResult returns what j's direct writes did; only after its done event.
func (j *Job) DirectResult() DirectResult {
	c := j.c
	return DirectResult{Sent: int64(c.dsent), SentWaited: int64(c.dsentw), Waited: time.Duration(c.dwaited),
		Err: syscall.Errno(c.derr), Over: c.dover != 0, SpillRaw: int64(c.sraw), SpillBody: int64(c.sbody)}
}

// Budget is a count of bytes that Go and the Python threads take from
// together (atomics on C memory): the disk for spilled request bodies and
// responses.
type Budget struct{ free *int64 }

// NewBudget returns a budget of max bytes. It is never freed.
func NewBudget(max int64) *Budget {
	p := (*int64)(C.malloc(8))
	*p = max
	return &Budget{free: p}
}

// Take reserves n bytes if they are free.
func (b *Budget) Take(n int64) bool {
	for {
		f := atomic.LoadInt64(b.free)
		if f < n {
			return false
		}
		if atomic.CompareAndSwapInt64(b.free, f, f-n) {
			return true
		}
	}
}

// Release gives back n bytes.
func (b *Budget) Release(n int64) {
	if n != 0 {
		atomic.AddInt64(b.free, n)
	}
}

// Free returns the bytes free now.
func (b *Budget) Free() int64 { return atomic.LoadInt64(b.free) }

// SetSpill lets the pool's direct writes put what a slow client does not
// take at once into temp files in dir, within b (see wisp_pool_spill): the
// app's thread then goes on instead of waiting for the client.
func (p *Pool) SetSpill(b *Budget, dir string) {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	C.wisp_pool_spill(p.c, (*C.longlong)(unsafe.Pointer(b.free)), cdir)
}

// SpillClaim returns how many bytes wait in the job's spill file, to be sent
// from the Raw event's File as they are; 0 means none wait and ends that
// event's work (bytes spilled later come with a new event).
func (j *Job) SpillClaim() int64 { return int64(C.wisp_spill_claim(j.c)) }

// TakeSpill returns the budget the job's spill file held at its end, for the
// caller to give back once the job's events are released, and clears it: a
// reused Job whose next request never reaches Submit gives nothing back twice.
// Only after the done event, or for a job not submitted.
func (j *Job) TakeSpill() int64 {
	n := int64(j.c.swoff)
	j.c.swoff = 0
	return n
}

// OldestWait is how long the oldest queued job has waited for a Python
// thread (0: none waits). Threads are woken within milliseconds of a stall
// (see watch), so a wait much longer than that means every thread is busy.
func (p *Pool) OldestWait() time.Duration { return time.Duration(C.wisp_pool_oldest(p.c)) }
