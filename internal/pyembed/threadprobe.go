package pyembed

/*
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static int wisp_thread_clock(clockid_t *id) { return pthread_getcpuclockid(pthread_self(), id); }

static long long wisp_clock_ns(clockid_t id) {
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0) return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int wisp_gettid(void) { return (int)gettid(); }
*/
import "C"

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// threadProbe watches one OS thread (a Python thread of a Pool) from any
// other thread: its CPU time, and whether it is runnable. Together they tell a
// thread that computes or waits for a CPU (it holds the GIL, or will: another
// thread would only wait for it) from one blocked in I/O (another can run).
type threadProbe struct {
	clock C.clockid_t
	ok    bool
	stat  string // /proc/self/task/<tid>/stat
}

// probeThisThread returns the probe of the calling OS thread; the goroutine
// must be locked to it.
func probeThisThread() threadProbe {
	var t threadProbe
	t.ok = C.wisp_thread_clock(&t.clock) == 0
	t.stat = "/proc/self/task/" + strconv.Itoa(int(C.wisp_gettid())) + "/stat"
	return t
}

// cpu returns the thread's CPU time so far (0 if unknown or the thread ended).
func (t threadProbe) cpu() time.Duration {
	if !t.ok {
		return 0
	}
	ns := C.wisp_clock_ns(t.clock)
	if ns < 0 {
		return 0
	}
	return time.Duration(ns)
}

// runnable reports whether the thread is on a CPU or waiting for one (state
// R), as opposed to sleeping in a system call.
func (t threadProbe) runnable() bool {
	b, err := os.ReadFile(t.stat)
	if err != nil {
		return false
	}
	// "tid (comm) S ...": comm may hold anything, the state follows the last ')'
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'R'
}
