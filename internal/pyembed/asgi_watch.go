package pyembed

/*
#include <stdlib.h>
#include "wisp_py.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// LagProbe is one measurement of the event loop's lag in flight: a message
// the loop answers as soon as it runs its callbacks, as it does a request.
type LagProbe struct {
	pool *Pool
	j    *Job
	// Sent is when the probe was posted.
	Sent time.Time
}

// Probe posts a probe to the loop; its answer comes through pool's events
// (Answered). It fails once the loop has stopped.
func (l *Loop) Probe(pool *Pool) (*LagProbe, error) {
	j := pool.Job()
	gen := j.seq.Add(1)
	sent := time.Now()
	if C.wisp_loop_submit(l.c, pool.c, j.c, C.WISP_A_PING, C.ulonglong(gen), 0, 0, nil, 0, nil, 0) != 0 {
		pool.Put(j)
		return nil, l.endedErr()
	}
	return &LagProbe{pool: pool, j: j, Sent: sent}, nil
}

// Answered is where the loop's answer arrives; give it to Done.
func (p *LagProbe) Answered() <-chan Event { return p.j.events }

// Done takes an event of Answered and reports whether it was the answer;
// then the probe is over (its job goes back to the pool).
func (p *LagProbe) Done(ev Event) bool {
	done := ev.Done
	ev.Release()
	if done {
		p.pool.Put(p.j)
	}
	return done
}

// ClaimBlocked reports whether the caller is the first to see the loop
// blocked in the incident under way: the servers of a process share one
// loop, and only one of them logs each incident. EndBlocked ends it, once
// the loop answers again.
func (l *Loop) ClaimBlocked() bool { return l.blocked.CompareAndSwap(false, true) }

// EndBlocked ends the incident ClaimBlocked claimed.
func (l *Loop) EndBlocked() { l.blocked.Store(false) }

// LoopBlocked tells what blocks the event loop: the coroutine of the task
// running on it (handler), the request that task serves ("METHOD /path?q",
// or "" for none) and the loop thread's Python stack. It reads them from
// another thread, holding the GIL, which a loop blocked in time.sleep or
// I/O has released (and one that computes gives up every switch interval);
// it gives up after wait.
func (ip *Interpreter) LoopBlocked(wait time.Duration) (handler, uri, stack string, err error) {
	s, err := ip.inspectLoop(nil, wait)
	if err != nil {
		return "", "", "", err
	}
	parts := strings.SplitN(s, "\x00", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], strings.TrimRight(parts[2], "\n"), nil
}

// TaskStack returns the coroutine stack of the task running j's ASGI
// request (where it awaits, or runs if it blocks the loop), or what keeps
// the loop from starting it; read from another thread as LoopBlocked does.
// Call it before cancelling the task.
func (ip *Interpreter) TaskStack(j *Job, wait time.Duration) (string, error) {
	s, err := ip.inspectLoop(j, wait)
	return strings.TrimRight(s, "\n"), err
}

// inspectLoop calls wisp_loop_inspect on a thread of its own, waiting up to
// wait: a thread holding the GIL inside C code would keep it waiting (the
// call then completes later, reading only).
func (ip *Interpreter) inspectLoop(j *Job, wait time.Duration) (string, error) {
	ip.imu.Lock()
	if ip.closing {
		ip.imu.Unlock()
		return "", ErrClosed
	}
	ip.interrupts.Add(1)
	ip.imu.Unlock()
	var cj *C.wisp_job
	var gen uint64
	if j != nil {
		cj, gen = j.c, j.seq.Load()
	}
	done := make(chan string, 1)
	go func() {
		defer ip.interrupts.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var n C.size_t
		p := C.wisp_loop_inspect(cj, C.ulonglong(gen), &n)
		s := "(no ASGI event loop)"
		if p != nil {
			s = C.GoStringN(p, C.int(n))
			C.free(unsafe.Pointer(p))
		}
		done <- s
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s := <-done:
		return s, nil
	case <-t.C:
		return "", fmt.Errorf("no GIL within %v: a thread holds it inside C code", wait)
	}
}
