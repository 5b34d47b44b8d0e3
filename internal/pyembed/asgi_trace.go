package pyembed

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import "runtime/cgo"

// go_wisp_log_job is called by wisp_py.c, with the GIL held, for what an
// ASGI request's task writes to sys.stdout, sys.stderr (print, logging) or
// the log: job is the handle of the request's Job, whose Tag the trace gets,
// as a WSGI request's output is tagged by the Pool's drain.

//export go_wisp_log_job
func go_wisp_log_job(h C.uintptr_t, job C.uintptr_t, level C.int, p *C.char, n C.size_t) {
	ip := cgo.Handle(h).Value().(*Interpreter)
	ip.logPython(int(level), C.GoStringN(p, C.int(n)), cgo.Handle(job).Value().(*Job).Tag)
}
