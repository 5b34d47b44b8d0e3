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
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"wisp/internal/httphdr"
)

//go:embed py/wisp_boot.py
var bootSource string

// started guards the one interpreter a process may hold: CPython cannot be
// initialized twice in one process.
var started atomic.Bool

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
	// Trace, if set, receives every line the apps write (print and
	// sys.stdout: "stdout"; sys.stderr and logging: "stderr"; wsgi.errors
	// and wisp's messages: "wsgi.errors"), with the Tag of the Job it was
	// written in (nil outside a request). It must not block.
	Trace func(stream, text string, tag any)
	// Env is the app's own environment variables, KEY=VALUE (`env =` and
	// -e). Start removes every WISP_* variable from the process environment
	// (wisp must have read what it needs), then sets these, before the
	// interpreter starts: the app and its subprocesses see wisp's
	// environment without wisp's own variables, plus Env.
	Env []string
}

// Interpreter is the embedded CPython of this process.
type Interpreter struct {
	Info   *Interp
	log    *slog.Logger
	trace  func(stream, text string, tag any)
	handle cgo.Handle
	calls  chan func() // run on the main Python thread
	// finish carries finalization, the main thread's last call; closed is
	// closed when Close begins, after which calls takes nothing new.
	finish chan func()
	closed chan struct{}

	// imu guards closing and interrupts: Close sets closing, then waits for
	// the interrupts under way, so that none calls into Python during or
	// after finalization. Request timeouts and Close take it.
	imu        sync.Mutex
	closing    bool
	interrupts sync.WaitGroup // and the heartbeat's beat under way

	// The heartbeat (heartbeat.go): when the beat under way began (ns since
	// born, plus one; 0: none is under way), and the garbage collector's
	// count it read last.
	born      time.Time
	beatStart atomic.Int64
	gc        atomic.Int64

	// lmu guards the ASGI event loop, one per process, shared by the
	// servers (sites) of the process: see AcquireLoop.
	lmu   sync.Mutex
	loop  *Loop
	loops int // its users
}

// ErrClosed is what Interrupt returns once Close has begun.
var ErrClosed = errors.New("python is shutting down")

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
	if info.NoGIL != 0 {
		// wisp_py.c declares the PyObject header of the default build; a
		// free-threaded one lays it out differently and would crash.
		return nil, fmt.Errorf("python %s at %s is a free-threaded build (Py_GIL_DISABLED), which wisp does not support yet: use the default build with the GIL (python3.13, not python3.13t)",
			info.Release(), info.Executable)
	}
	if !started.CompareAndSwap(false, true) {
		return nil, errors.New("python is already embedded in this process")
	}
	if err := appEnv(opts.Env); err != nil {
		return nil, fmt.Errorf("start python: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ip := &Interpreter{Info: info, log: log, trace: opts.Trace, calls: make(chan func()),
		finish: make(chan func()), closed: make(chan struct{}), born: time.Now()}
	ip.handle = cgo.NewHandle(ip)
	ready := make(chan error, 1)
	go ip.mainThread(opts, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	first := make(chan struct{})
	go ip.heartbeat(first)
	<-first
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
	hop := strings.Join(httphdr.Names(), "\x00") + "\x00"
	ch := C.CString(hop)
	C.wisp_set_hop_by_hop(ch, C.size_t(len(hop)))
	C.free(unsafe.Pointer(ch))
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
	installCrashHandler(2, "wisp: ")
	ready <- nil
	for {
		select {
		case f := <-ip.calls:
			f()
		case f := <-ip.finish:
			f()
			return
		}
	}
}

// onMain runs f on the main Python thread and waits for it. Once Close has
// begun it does not run f and returns ErrClosed.
func (ip *Interpreter) onMain(f func()) error {
	done := make(chan struct{})
	select {
	case ip.calls <- func() { f(); close(done) }:
	case <-ip.closed:
		return ErrClosed
	}
	<-done
	return nil
}

// LoadApp imports a WSGI target (module:callable, file.py, config:file.ini[#name]).
// multithread and multiprocess become wsgi.multithread and wsgi.multiprocess.
func (ip *Interpreter) LoadApp(target string, multithread, multiprocess bool) (App, error) {
	var app App
	var err error
	if cerr := ip.onMain(func() {
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
	}); cerr != nil {
		return app, fmt.Errorf("load %q: %w", target, cerr)
	}
	return app, err
}

// GCCollections is how many collections Python's garbage collector has
// made (all generations), as the heartbeat read it last (at most BeatEvery
// ago, or longer while a thread holds the GIL), or -1 once the interpreter is
// closing. It never waits for the GIL: the loops that report a worker's
// state and handle its signals call it. It may be called at any time, also
// during and after Close (the /metrics of a server that is stopping).
func (ip *Interpreter) GCCollections() int64 {
	select {
	case <-ip.closed:
		return -1
	default:
	}
	return ip.gc.Load()
}

// SetMultithread changes wsgi.multithread for an app loaded with LoadApp.
func (ip *Interpreter) SetMultithread(app int, on bool) {
	ip.onMain(func() { C.wisp_set_multithread(C.int(app), cbool(on)) }) // closing: nothing to change
}

// Close finalizes Python on its main thread. Every Thread must be detached
// first. A finalization that hangs (a non-daemon Python thread) is abandoned
// after timeout and reported. Calls that need the main thread (LoadApp)
// made during or after Close do not run: they return ErrClosed; GCCollections
// returns -1. Close may be called once; later calls return ErrClosed.
func (ip *Interpreter) Close(timeout time.Duration) error {
	// No interrupt may start now, and those under way must end before
	// finalization: one waiting for the GIL would take it from a finalizing
	// (or finalized) interpreter, which ends the calling thread or crashes.
	ip.imu.Lock()
	if ip.closing {
		ip.imu.Unlock()
		return ErrClosed
	}
	ip.closing = true
	close(ip.closed) // the main thread takes no new calls
	ip.imu.Unlock()
	waited := make(chan struct{})
	go func() { ip.interrupts.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(timeout):
		return fmt.Errorf("python not finalized: a request-timeout interrupt or the heartbeat still waits for the GIL after %v (a thread stuck in C code holds it)", timeout)
	}
	done := make(chan int, 1)
	ip.finish <- func() { done <- int(C.wisp_finalize()) } // after the calls already taken
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

// Levels of _wisp.log above the error log's: a line the app wrote to
// sys.stdout or sys.stderr (already written there), for the trace only.
const (
	levelStdout = 10
	levelStderr = 11
)

func (ip *Interpreter) logPython(level int, msg string, tag any) {
	if t := ip.trace; t != nil {
		switch level {
		case levelStdout:
			t("stdout", msg, tag)
			return
		case levelStderr:
			t("stderr", msg, tag)
			return
		}
		if level > 0 { // wisp's own debug messages stay out of the trace
			t("wsgi.errors", msg, tag)
		}
	} else if level >= levelStdout {
		return
	}
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

// Interrupt diagnoses and stops a request stuck in Python: it returns the
// Python stack of thread ident and, if still() (called holding the GIL, so
// the thread cannot finish its request meanwhile) reports that the stuck
// request is still running, raises TimeoutError in that thread, which sees it
// at its next bytecode (not while blocked inside a C call such as
// time.sleep). It gives up waiting after wait when it cannot get the GIL (a
// thread stuck in C code holding it); the attempt then completes later, still
// guarded by still(). Once Close has begun it returns ErrClosed and does not
// touch Python.
func (ip *Interpreter) Interrupt(ident uint64, wait time.Duration, still func() bool) (stack string, hit bool, err error) {
	type result struct {
		stack string
		hit   bool
	}
	ip.imu.Lock()
	if ip.closing {
		ip.imu.Unlock()
		return "", false, ErrClosed
	}
	ip.interrupts.Add(1)
	ip.imu.Unlock()
	done := make(chan result, 1)
	go func() {
		defer ip.interrupts.Done()
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
