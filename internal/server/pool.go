package server

import (
	"runtime"
	"sync"

	"wisp/internal/pyembed"
)

// pool is a fixed set of Python threads (the threadpool or simple handler)
// taking jobs from one bounded queue. Each thread is a goroutine locked to its
// OS thread for life, holding its own Python thread state.
type pool struct {
	jobs chan *job
	wg   sync.WaitGroup
}

func startPool(ip *pyembed.Interpreter, threads, queue int) (*pool, error) {
	p := &pool{jobs: make(chan *job, queue)}
	ready := make(chan struct{})
	for i := 0; i < threads; i++ {
		p.wg.Add(1)
		go p.worker(ip, ready)
	}
	for i := 0; i < threads; i++ {
		<-ready
	}
	return p, nil
}

func (p *pool) worker(ip *pyembed.Interpreter, ready chan<- struct{}) {
	defer p.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := ip.Attach()
	defer t.Detach()
	ready <- struct{}{}
	for j := range p.jobs {
		p.batch(t, j)
	}
}

// maxBatch bounds how many queued requests a thread runs under one GIL
// acquisition.
const maxBatch = 32

// batch runs j and then, while more jobs are already queued, those too without
// dropping the GIL in between: under load this saves a GIL hand-off (a thread
// switch) per request. Python still switches threads every switch interval.
func (p *pool) batch(t *pyembed.Thread, j *job) {
	t.Acquire()
	for n := 1; ; n++ {
		if j.run(t) {
			return // it released the GIL
		}
		if n == maxBatch {
			break
		}
		var ok bool
		select {
		case j, ok = <-p.jobs:
			if ok {
				continue
			}
		default:
		}
		break
	}
	t.Release()
}

// submit queues j without waiting; false means the queue is full.
func (p *pool) submit(j *job) bool {
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

// stop lets the threads finish the queued jobs and waits for them to exit.
// No submit may follow.
func (p *pool) stop() {
	close(p.jobs)
	p.wg.Wait()
}
