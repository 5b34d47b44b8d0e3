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

// The go_wisp_* functions are called by wisp_py.c on a Python worker thread,
// with the GIL held unless noted.

//export go_wisp_log
func go_wisp_log(h C.uintptr_t, level C.int, p *C.char, n C.size_t) {
	ip := cgo.Handle(h).Value().(*Interpreter)
	ip.logPython(int(level), C.GoStringN(p, C.int(n)))
}

//export go_wisp_start
func go_wisp_start(h C.uintptr_t, p *C.char, n C.size_t) C.int {
	t := cgo.Handle(h).Value().(*Thread)
	if t.sink.Start(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))) != nil {
		return -1
	}
	return 0
}

//export go_wisp_write
func go_wisp_write(h C.uintptr_t, p *C.char, n C.size_t, block C.int) C.int {
	t := cgo.Handle(h).Value().(*Thread)
	switch err := t.sink.Write(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), block != 0); err {
	case nil:
		return 0
	case ErrWouldBlock:
		return 1
	default:
		return -1
	}
}

//export go_wisp_sendfile
func go_wisp_sendfile(h C.uintptr_t, fd C.int, off, n C.longlong) C.int {
	t := cgo.Handle(h).Value().(*Thread)
	if t.sink.SendFile(int(fd), int64(off), int64(n)) != nil {
		return -1
	}
	return 0
}
