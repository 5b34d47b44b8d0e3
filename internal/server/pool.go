package server

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"wisp/internal/pyembed"
)

// pool is a fixed set of Python threads taking jobs from one bounded queue.
// Each thread is a goroutine locked to its OS thread for life, holding its
// own Python thread state.
//
// Waking a parked thread costs two OS thread switches, and a second thread
// running Python only fights the first for the GIL unless the first is
// blocked (in I/O, with the GIL released). So threads are woken lazily: a job
// wakes a thread only when none is running; a running thread takes queued
// jobs one after another under one GIL hold; and a watcher adds a thread when
// jobs wait, none was taken for wakeDelay, and the threads used less than
// half of that time on the CPU (they are blocked, not computing), or none was
// taken for busyStall at all. CPU-bound apps thus run on one thread with no
// hand-offs, I/O-bound apps still get every thread within a few wakeDelays,
// and a long CPU-bound request delays the queue by busyStall at most.
type pool struct {
	threads int
	jobs    chan *job     // the bounded queue
	wake    chan struct{} // parked threads wait for a token here
	kick    chan struct{} // tells the watcher that jobs are queued
	quit    chan struct{} // closed by stop
	running atomic.Int32  // threads currently taking jobs
	taken   atomic.Uint64 // jobs taken so far: the watcher's sign of progress
	wg      sync.WaitGroup

	cmu    sync.Mutex
	clocks []pyembed.CPUClock // of every thread
}

// cpu returns the CPU time all the pool's threads have used.
func (p *pool) cpu() time.Duration {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	var d time.Duration
	for _, c := range p.clocks {
		d += c.Used()
	}
	return d
}

// wakeDelay is how long queued jobs may see no progress before another
// thread is woken; maxBatch bounds the jobs run under one GIL acquisition.
// contendedAcquire is how long taking the GIL may take before it counts as
// waiting for another thread.
const (
	wakeDelay        = 500 * time.Microsecond
	maxBatch         = 64
	contendedAcquire = 200 * time.Microsecond
	busyStall        = 5 * time.Millisecond // Python's default switch interval
)

func startPool(ip *pyembed.Interpreter, threads, queue int) (*pool, error) {
	p := &pool{
		threads: threads,
		jobs:    make(chan *job, queue),
		wake:    make(chan struct{}, threads),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	ready := make(chan struct{})
	for i := 0; i < threads; i++ {
		p.wg.Add(1)
		go p.worker(ip, ready)
	}
	for i := 0; i < threads; i++ {
		<-ready
	}
	p.wg.Add(1)
	go p.watch()
	return p, nil
}

// submit queues j without waiting; false means the queue is full.
func (p *pool) submit(j *job) bool {
	select {
	case p.jobs <- j:
	default:
		return false
	}
	if p.running.Load() == 0 {
		p.wakeOne()
	} else {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return true
}

func (p *pool) wakeOne() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// poll takes a queued job without waiting, or returns nil.
func (p *pool) poll() *job {
	select {
	case j := <-p.jobs:
		p.taken.Add(1)
		return j
	default:
		return nil
	}
}

func (p *pool) worker(ip *pyembed.Interpreter, ready chan<- struct{}) {
	defer p.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := ip.NewThread()
	defer t.Close()
	defer pyembed.DetachOSThread()
	p.cmu.Lock()
	p.clocks = append(p.clocks, pyembed.ThreadCPUClock())
	p.cmu.Unlock()
	ready <- struct{}{}
	for {
		select {
		case <-p.wake:
		case <-p.quit:
			for j := p.poll(); j != nil; j = p.poll() {
				p.batch(t, j)
			}
			return
		}
		p.running.Add(1)
		for {
			j := p.poll()
			if j == nil {
				p.running.Add(-1)
				// A job queued just before the decrement saw running > 0 and
				// woke no one: look once more.
				if j = p.poll(); j == nil {
					break
				}
				p.running.Add(1)
			}
			if contended := p.batch(t, j); contended && p.running.Load() > 1 {
				// Another running thread held the GIL: two CPU-bound threads
				// only trade it every switch interval (a convoy that makes
				// tail latency). Step back; the watcher wakes threads again
				// if the queue stalls.
				p.running.Add(-1)
				break
			}
		}
	}
}

// batch runs j and then, while more jobs are queued, those too without
// dropping the GIL in between. Python still switches threads every switch
// interval when another thread wants the GIL. It reports whether taking the
// GIL had to wait for another thread.
func (p *pool) batch(t *pyembed.Thread, j *job) (contended bool) {
	start := time.Now()
	t.Acquire()
	contended = time.Since(start) > contendedAcquire
	for n := 1; ; n++ {
		if j.run(t) {
			return contended // it released the GIL
		}
		if n == maxBatch {
			break
		}
		if j = p.poll(); j == nil {
			break
		}
	}
	t.Release()
	return contended
}

// watch wakes another thread when jobs wait and none was taken for
// wakeDelay while the running threads barely used the CPU (they are blocked:
// I/O, sleep), or for busyStall even though they compute (a long CPU-bound
// request: a second thread then gets GIL time slices for the queued ones).
func (p *pool) watch() {
	defer p.wg.Done()
	for {
		select {
		case <-p.kick:
		case <-p.quit:
			return
		}
		var stalled time.Duration
		for len(p.jobs) > 0 {
			before, cpu := p.taken.Load(), p.cpu()
			delay := wakeDelay
			if int(p.running.Load()) >= p.threads {
				delay = 10 * wakeDelay // all busy: just keep an eye on it
			}
			select {
			case <-time.After(delay):
			case <-p.quit:
				return
			}
			if len(p.jobs) == 0 || p.taken.Load() != before {
				stalled = 0
				continue
			}
			stalled += delay
			if p.cpu()-cpu < delay/2 || stalled >= busyStall {
				p.wakeOne()
				stalled = 0
			}
		}
	}
}

// stop lets the threads finish the queued jobs and waits for them to exit.
// No submit may follow.
func (p *pool) stop() {
	close(p.quit)
	p.wg.Wait()
}
