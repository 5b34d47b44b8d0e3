package pyembed

/*
#include <stdlib.h>
#include "wisp_py.h"
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

//go:embed py/wisp_boot.py
var bootSource string

// started guards the one interpreter a process may hold: CPython cannot be
// initialized twice in one process.
var started atomic.Bool

// ErrWouldBlock is returned by Sink.Write when block is false and the chunk
// cannot be taken without waiting.
var ErrWouldBlock = errors.New("would block")

// ErrFileUnusable is returned (wrapped) by Sink.SendFile when it cannot use
// the file; the app then gets an OSError (a 500 unless its body started).
var ErrFileUnusable = errors.New("cannot send the file_wrapper's file")

// Sink receives one response from a Python worker thread, in hand-offs of up
// to 64 KiB: the thread gathers small chunks itself and calls the sink only
// when its buffer is full. Its methods run on that thread with the GIL held
// unless stated, so they must not wait. Every slice is valid only during the call.
type Sink interface {
	// Write takes the status and headers (on the first hand-off only, else
	// nil; validated, latin-1, "status\x00name\x00value\x00...") and the body
	// bytes a then b. With block false it returns ErrWouldBlock rather than
	// wait; it is then called again with block true and the GIL released. Any
	// other error means the client is gone.
	Write(hdr, a, b []byte, block bool) error
	// SendFile is like Write with the body bytes a, followed by n bytes of the
	// regular file fd from offset off (block as for Write). fd belongs to the
	// app: the sink must open its own copy before returning.
	SendFile(hdr, a []byte, fd int, off, n int64, block bool) error
}

// Code is the outcome of one request.
type Code int

const (
	OK       Code = C.WISP_OK        // the response is complete
	ErrEarly Code = C.WISP_ERR_EARLY // the app failed before its headers were sent
	ErrLate  Code = C.WISP_ERR_LATE  // the app failed after its headers were sent
	Gone     Code = C.WISP_GONE      // the client went away
)

// Options configures the interpreter.
type Options struct {
	Python string       // interpreter path, venv folder or command; "" is python3
	Paths  []string     // prepended to sys.path, in order
	Logger *slog.Logger // receives wsgi.errors and interpreter messages
}

// Interpreter is the embedded CPython of this process.
type Interpreter struct {
	Info   *Interp
	log    *slog.Logger
	handle cgo.Handle
	calls  chan func() // run on the main Python thread
	closed chan struct{}
}

// App identifies a loaded WSGI application.
type App struct {
	ID   int
	Hint string // "simple" or "threadpool" when an ISAPI-WSGI handler asked for one
}

// Start probes the interpreter, loads its libpython and initializes it on a
// dedicated OS thread (Python's main thread).
func Start(opts Options) (*Interpreter, error) {
	info, err := Probe(opts.Python)
	if err != nil {
		return nil, err
	}
	if !started.CompareAndSwap(false, true) {
		return nil, errors.New("python is already embedded in this process")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ip := &Interpreter{Info: info, log: log, calls: make(chan func()), closed: make(chan struct{})}
	ip.handle = cgo.NewHandle(ip)
	ready := make(chan error, 1)
	go ip.mainThread(opts, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return ip, nil
}

func (ip *Interpreter) mainThread(opts Options, ready chan<- error) {
	runtime.LockOSThread() // never unlocked: Python's main thread stays with this goroutine
	var ebuf [512]C.char
	lib := C.CString(ip.Info.Lib)
	defer C.free(unsafe.Pointer(lib))
	if C.wisp_load_lib(lib, &ebuf[0], C.size_t(len(ebuf))) != 0 {
		ready <- fmt.Errorf("load %s: %s", ip.Info.Lib, C.GoString(&ebuf[0]))
		return
	}
	if v := C.GoString(C.wisp_version()); v != ip.Info.Version {
		ready <- fmt.Errorf("loaded %s but it is Python %q, not the interpreter's %q (is LD_LIBRARY_PATH pointing at another build?)",
			ip.Info.Lib, firstWord(v), firstWord(ip.Info.Version))
		return
	}
	prog := C.CString(ip.Info.Executable)
	boot := C.CString(bootSource)
	keys := strings.Join(envKeys[1:], "\x00") + "\x00"
	paths := ""
	for _, p := range opts.Paths {
		paths += p + "\x00"
	}
	ck, cp := C.CString(keys), C.CString(paths)
	var cerr *C.char
	rc := C.wisp_init(prog, C.uintptr_t(ip.handle), boot, ck, C.size_t(len(keys)), cp, C.size_t(len(paths)), &cerr)
	C.free(unsafe.Pointer(prog))
	C.free(unsafe.Pointer(boot))
	C.free(unsafe.Pointer(ck))
	C.free(unsafe.Pointer(cp))
	if rc != 0 {
		ready <- fmt.Errorf("start python %s: %s", firstWord(ip.Info.Version), takeCString(cerr))
		return
	}
	ready <- nil
	for f := range ip.calls {
		f()
	}
}

// onMain runs f on the main Python thread and waits for it.
func (ip *Interpreter) onMain(f func()) {
	done := make(chan struct{})
	ip.calls <- func() { f(); close(done) }
	<-done
}

// LoadApp imports a WSGI target (module:callable, file.py, config:file.ini[#name]).
// multithread and multiprocess become wsgi.multithread and wsgi.multiprocess.
func (ip *Interpreter) LoadApp(target string, multithread, multiprocess bool) (App, error) {
	var app App
	var err error
	ip.onMain(func() {
		ct := C.CString(target)
		defer C.free(unsafe.Pointer(ct))
		var hint, cerr, ctb *C.char
		id := C.wisp_load_app(ct, cbool(multithread), cbool(multiprocess), &hint, &cerr, &ctb)
		if id < 0 {
			msg, tb := takeCString(cerr), takeCString(ctb)
			if tb != "" {
				ip.log.Error("the app failed to load", "target", target, "traceback", tb)
			}
			if !strings.HasPrefix(msg, "target ") {
				msg = fmt.Sprintf("load %q: %s", target, msg)
			}
			err = errors.New(strings.TrimRight(msg, "\n"))
			return
		}
		app = App{ID: int(id), Hint: takeCString(hint)}
	})
	return app, err
}

// SetMultithread changes wsgi.multithread for an app loaded with LoadApp.
func (ip *Interpreter) SetMultithread(app int, on bool) {
	ip.onMain(func() { C.wisp_set_multithread(C.int(app), cbool(on)) })
}

// Close finalizes Python on its main thread. Every Thread must be detached
// first. A finalization that hangs (a non-daemon Python thread) is abandoned
// after timeout and reported.
func (ip *Interpreter) Close(timeout time.Duration) error {
	done := make(chan int, 1)
	ip.calls <- func() { done <- int(C.wisp_finalize()) }
	close(ip.calls)
	select {
	case rc := <-done:
		if rc != 0 {
			return errors.New("python finalization reported errors")
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("python finalization did not finish within %v (a non-daemon thread still running?)", timeout)
	}
}

func (ip *Interpreter) logPython(level int, msg string) {
	lv := slog.LevelError
	switch level {
	case 0:
		lv = slog.LevelDebug
	case 1:
		lv = slog.LevelInfo
	case 2:
		lv = slog.LevelWarn
	}
	ip.log.Log(nil, lv, msg, "source", "python")
}

// Thread is a handle through which Go runs requests: the callbacks of the
// request in flight reach its Sink. The Python thread state itself belongs to
// the OS thread (created by its first Acquire), so a goroutine must stay
// locked to its OS thread from Acquire to Release.
type Thread struct {
	ip    *Interpreter
	h     cgo.Handle
	sink  Sink
	ident uint64 // Python thread id of the OS thread that last acquired
}

// Ident returns the Python thread id of the OS thread that last called Acquire.
func (t *Thread) Ident() uint64 { return t.ident }

// NewThread makes a Thread. Free it with Close.
func (ip *Interpreter) NewThread() *Thread {
	t := &Thread{ip: ip}
	t.h = cgo.NewHandle(t)
	return t
}

// Close frees t.
func (t *Thread) Close() { t.h.Delete() }

// DetachOSThread destroys the Python thread state of the calling OS thread
// (for a goroutine that locked it and is about to exit).
func DetachOSThread() { C.wisp_thread_detach() }

// Acquire takes the GIL for the calling OS thread, to which the goroutine must
// be locked; Handle may then run several requests until Release.
func (t *Thread) Acquire() {
	C.wisp_acquire()
	if t.ident == 0 {
		t.ident = uint64(C.wisp_thread_ident())
	}
}

// Release drops the GIL.
func (t *Thread) Release() { C.wisp_release() }

// Result is what remains of a response when Handle returns.
type Result struct {
	Code      Code
	Hdr       []byte // status and headers, if no Write hand-off took them yet
	Body      []byte // body bytes not handed off yet
	Traceback string // the app's traceback for ErrEarly and ErrLate
}

// Handle runs one request of app on this thread, which holds the GIL: env is
// its environ; the body is in memory or in bodyFile. The response goes to
// sink, and the rest of it comes back in the Result, whose Hdr and Body stay
// valid until this thread's next Handle.
func (t *Thread) Handle(app int, env *Environ, body []byte, bodyFile *os.File, sink Sink) Result {
	t.sink = sink
	var bp *C.char
	if len(body) > 0 {
		bp = (*C.char)(unsafe.Pointer(&body[0]))
	}
	fd := C.int(-1)
	if bodyFile != nil {
		fd = C.int(bodyFile.Fd())
	}
	var ep *C.char
	if len(env.buf) > 0 {
		ep = (*C.char)(unsafe.Pointer(&env.buf[0]))
	}
	var out C.wisp_out
	rc := C.wisp_handle(C.uintptr_t(t.h), C.int(app), ep, C.size_t(len(env.buf)), bp, C.size_t(len(body)), fd, &out)
	t.sink = nil
	runtime.KeepAlive(bodyFile)
	res := Result{Code: Code(rc), Hdr: cbytes(out.hdr, out.hdrlen), Body: cbytes(out.body, out.bodylen)}
	if out.err != nil {
		res.Traceback = C.GoStringN(out.err, C.int(out.errlen))
		C.free(unsafe.Pointer(out.err))
	}
	return res
}

func takeCString(p *C.char) string {
	if p == nil {
		return ""
	}
	s := C.GoString(p)
	C.free(unsafe.Pointer(p))
	return s
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// ThreadIdent returns the Python thread id (threading.get_ident) of the
// calling OS thread.
func ThreadIdent() uint64 { return uint64(C.wisp_thread_ident()) }

// Interrupt diagnoses and stops a request stuck in Python: it returns the
// Python stack of thread ident and, if still() (called holding the GIL, so
// the thread cannot finish its request meanwhile) reports that the stuck
// request is still running, raises TimeoutError in that thread, which sees it
// at its next bytecode (not while blocked inside a C call such as
// time.sleep). It gives up waiting after wait when it cannot get the GIL (a
// thread stuck in C code holding it); the attempt then completes later, still
// guarded by still().
func (ip *Interpreter) Interrupt(ident uint64, wait time.Duration, still func() bool) (stack string, hit bool, err error) {
	type result struct {
		stack string
		hit   bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		stack := takeCString(C.wisp_interrupt_begin(C.ulong(ident)))
		hit := still() && C.wisp_interrupt_raise(C.ulong(ident)) > 0
		C.wisp_release()
		done <- result{stack, hit}
	}()
	select {
	case r := <-done:
		return r.stack, r.hit, nil
	case <-time.After(wait):
		return "", false, fmt.Errorf("no GIL within %v: a thread holds it inside C code", wait)
	}
}
