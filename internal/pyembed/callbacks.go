package pyembed

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"errors"
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

//export go_wisp_write
func go_wisp_write(h C.uintptr_t, hdr *C.char, hl C.size_t, a *C.char, al C.size_t, b *C.char, bl C.size_t, block C.int) C.int {
	t := cgo.Handle(h).Value().(*Thread)
	switch err := t.sink.Write(cbytes(hdr, hl), cbytes(a, al), cbytes(b, bl), block != 0); err {
	case nil:
		return 0
	case ErrWouldBlock:
		return 1
	default:
		return -1
	}
}

//export go_wisp_sendfile
func go_wisp_sendfile(h C.uintptr_t, hdr *C.char, hl C.size_t, a *C.char, al C.size_t, fd C.int, off, n C.longlong, block C.int) C.int {
	t := cgo.Handle(h).Value().(*Thread)
	switch err := t.sink.SendFile(cbytes(hdr, hl), cbytes(a, al), int(fd), int64(off), int64(n), block != 0); {
	case err == nil:
		return 0
	case err == ErrWouldBlock:
		return 1
	case errors.Is(err, ErrFileUnusable):
		return -2
	default:
		return -1
	}
}

// cbytes views C memory as a slice, valid only while C keeps it.
func cbytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}
