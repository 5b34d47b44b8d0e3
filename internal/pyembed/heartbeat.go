package pyembed

/*
#include "wisp_py.h"
*/
import "C"

import (
	"runtime"
	"time"
)

// BeatEvery is how often the heartbeat asks for the GIL. A beat costs one GIL
// hand-off (a thread running bytecode gives the GIL up at its next switch
// interval), and every countEvery-th one a read of the garbage collector's
// count (gc.get_stats allocates): nothing on the request path.
const BeatEvery = 250 * time.Millisecond

// countEvery is how many beats go by between reads of the collector's count:
// once a second, as often as the metrics snapshots ask for it.
const countEvery = 4

// heartbeat runs on its own OS thread (with its own Python thread state, kept
// for life) for the life of the interpreter: every BeatEvery it takes the GIL,
// reads the garbage collector's count (every countEvery-th beat, and the
// first), and drops it. While a thread holds the
// GIL inside C code (a regex backtracking, a C extension's long call), the
// beat waits; Unanswered tells how long. first is closed after the first
// beat. It ends when Close begins, and Close waits for a beat under way (as
// for an interrupt) before it finalizes.
func (ip *Interpreter) heartbeat(first chan<- struct{}) {
	runtime.LockOSThread() // never unlocked: the thread state stays with this thread
	t := time.NewTicker(BeatEvery)
	defer t.Stop()
	for beat := 0; ; beat++ {
		ip.imu.Lock()
		if ip.closing {
			ip.imu.Unlock()
			return
		}
		ip.interrupts.Add(1)
		ip.imu.Unlock()
		ip.beatStart.Store(int64(time.Since(ip.born)) + 1)
		count := C.int(0)
		if beat%countEvery == 0 {
			count = 1
		}
		n := C.wisp_beat(count)
		ip.beatStart.Store(0)
		if n >= 0 {
			ip.gc.Store(int64(n))
		}
		ip.interrupts.Done()
		if first != nil {
			close(first)
			first = nil
		}
		select {
		case <-t.C:
		case <-ip.closed:
			return
		}
	}
}

// Unanswered is how long the heartbeat under way has waited for the GIL: 0
// while the interpreter answers (a beat waits a switch interval at most while
// threads run bytecode); more than a second or so means a thread holds the GIL
// in C code and no other Python thread makes progress.
func (ip *Interpreter) Unanswered() time.Duration {
	s := ip.beatStart.Load()
	if s == 0 {
		return 0
	}
	return max(time.Since(ip.born)-time.Duration(s-1), 0)
}
