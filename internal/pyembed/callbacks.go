package pyembed

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// go_wisp_log is called by wisp_py.c, with the GIL held, for wsgi.errors and
// the interpreter's own messages written on threads other than a Pool's (the
// main thread, threads the app starts); a Pool's threads queue theirs as
// events instead, so that they never call into Go.

//export go_wisp_log
func go_wisp_log(h C.uintptr_t, level C.int, p *C.char, n C.size_t) {
	ip := cgo.Handle(h).Value().(*Interpreter)
	ip.logPython(int(level), C.GoStringN(p, C.int(n)), nil)
}

// cbytes views C memory as a slice, valid only while C keeps it.
func cbytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}
