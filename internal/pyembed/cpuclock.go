package pyembed

/*
#include <pthread.h>
#include <time.h>

static int wisp_thread_clock(clockid_t *id) { return pthread_getcpuclockid(pthread_self(), id); }

static long long wisp_clock_ns(clockid_t id) {
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0) return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
*/
import "C"

import "time"

// CPUClock reads the CPU time of one OS thread (a Python worker's), from any
// thread. It tells a worker that computes (holding the GIL: another thread
// would only wait for it) from one blocked in I/O (another thread can run).
type CPUClock struct {
	id C.clockid_t
	ok bool
}

// ThreadCPUClock returns the clock of the calling OS thread; the goroutine
// must be locked to it.
func ThreadCPUClock() CPUClock {
	var c CPUClock
	c.ok = C.wisp_thread_clock(&c.id) == 0
	return c
}

// Used returns the thread's CPU time so far (0 if unknown or the thread ended).
func (c CPUClock) Used() time.Duration {
	if !c.ok {
		return 0
	}
	ns := C.wisp_clock_ns(c.id)
	if ns < 0 {
		return 0
	}
	return time.Duration(ns)
}
