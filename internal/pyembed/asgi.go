package pyembed

/*
#include <stdlib.h>
#include <sys/eventfd.h>
#include "wisp_py.h"
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

//go:embed py/wisp_asgi.py
var asgiSource string

// Interfaces an app may be served through (AppInterface's want).
const (
	InterfaceAuto = "auto"
	InterfaceWSGI = "wsgi"
	InterfaceASGI = "asgi"
)

// AppInterface decides whether a loaded app is served as ASGI: want "asgi"
// or "wsgi" says so (an ASGI app given "wsgi" is an error, never a 500 at
// the first request), "auto" (or "") detects a coroutine callable taking
// (scope, receive, send).
func (ip *Interpreter) AppInterface(app int, want string) (asgi bool, err error) {
	if want == "" {
		want = InterfaceAuto
	}
	if cerr := ip.onMain(func() {
		cw, cs := C.CString(want), C.CString(asgiSource)
		defer C.free(unsafe.Pointer(cw))
		defer C.free(unsafe.Pointer(cs))
		var e *C.char
		switch C.wisp_app_interface(C.int(app), cw, cs, &e) {
		case 1:
			asgi = true
		case 0:
		default:
			err = errors.New(strings.TrimRight(takeCString(e), "\n"))
		}
	}); cerr != nil {
		return false, cerr
	}
	return asgi, err
}

// Loop is the process's asyncio event loop, on a Python thread of its own
// (a goroutine locked to it for the loop's life). Go hands it requests and
// messages through a queue in C with one eventfd wake-up per batch; the
// responses come back as Events of the Pool's Jobs, as WSGI responses do.
type Loop struct {
	c     *C.wisp_loop
	efd   int
	ended chan struct{} // closed when the loop's thread has left Python
	err   error         // why the loop ended early (read after ended)
	// blocked is set while a blocked-loop incident is logged (asgi_watch.go)
	blocked atomic.Bool
	// Name is the loop in use ("uvloop 0.17.0", "asyncio"), for the log.
	Name string
}

// LoopKinds are the values --loop takes.
var LoopKinds = []string{"auto", "asyncio", "uvloop"}

// AcquireLoop returns the process's event loop, starting it (of kind auto:
// uvloop when it imports, asyncio or uvloop) if it does not run yet. Each
// request's responses come through the Pool of its Job; pool answers the
// start. Each AcquireLoop is paired with a ReleaseLoop.
func (ip *Interpreter) AcquireLoop(pool *Pool, kind string) (*Loop, error) {
	ip.lmu.Lock()
	defer ip.lmu.Unlock()
	if ip.loop != nil {
		ip.loops++
		return ip.loop, nil
	}
	l, err := startLoop(pool, kind)
	if err != nil {
		return nil, err
	}
	ip.loop, ip.loops = l, 1
	return l, nil
}

// ReleaseLoop gives back a loop of AcquireLoop; the last user stops it
// (its tasks still running are cancelled), waiting up to timeout.
func (ip *Interpreter) ReleaseLoop(timeout time.Duration) error {
	ip.lmu.Lock()
	defer ip.lmu.Unlock()
	if ip.loops--; ip.loops > 0 || ip.loop == nil {
		return nil
	}
	l := ip.loop
	ip.loop = nil
	return l.stop(timeout)
}

// startLoop starts an event loop and waits until it runs.
func startLoop(pool *Pool, kind string) (*Loop, error) {
	if kind == "" {
		kind = "auto"
	}
	fd, err := C.eventfd(0, C.EFD_NONBLOCK|C.EFD_CLOEXEC)
	if fd < 0 {
		return nil, fmt.Errorf("asgi loop: eventfd: %w", err)
	}
	l := &Loop{efd: int(fd), ended: make(chan struct{})}
	if l.c = C.wisp_loop_new(fd); l.c == nil {
		syscall.Close(int(fd))
		return nil, errors.New("asgi loop: out of memory")
	}
	go l.run(kind)
	j := pool.Job()
	if err := l.control(pool, j, C.WISP_A_PING, 0, 0, "", 0); err != nil {
		return nil, err
	}
	pool.Put(j)
	return l, nil
}

func (l *Loop) run(kind string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ck, cs := C.CString(kind), C.CString(asgiSource)
	e := C.wisp_loop_run(l.c, ck, cs)
	C.free(unsafe.Pointer(ck))
	C.free(unsafe.Pointer(cs))
	C.wisp_thread_detach()
	if e != nil {
		l.err = fmt.Errorf("asgi loop: %s", strings.TrimRight(takeCString(e), "\n"))
	}
	close(l.ended)
}

// control posts a message that the loop answers with a done event, and
// waits for it (up to timeout; 0: no bound). It returns the loop's error
// message, if any. After a timeout, j stays the loop's.
func (l *Loop) control(pool *Pool, j *Job, kind C.int, app int, more int, data string, timeout time.Duration) error {
	var cd *C.char
	if data != "" {
		cd = C.CString(data)
		defer C.free(unsafe.Pointer(cd))
	}
	gen := j.seq.Add(1)
	if C.wisp_loop_submit(l.c, pool.c, j.c, kind, C.ulonglong(gen), C.int(app), C.int(more), cd, C.size_t(len(data)), nil, 0) != 0 {
		return l.endedErr()
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case ev := <-j.events:
			done, code, tb := ev.Done, Code(ev.Code), ev.Traceback
			ev.Release()
			if !done {
				continue
			}
			if code != OK {
				return errors.New(strings.TrimRight(tb, "\n"))
			}
			return nil
		case <-l.ended:
			return l.endedErr()
		case <-expired:
			return fmt.Errorf("no answer from the event loop within %v", timeout)
		}
	}
}

func (l *Loop) endedErr() error {
	select {
	case <-l.ended:
		if l.err != nil {
			return l.err
		}
	default:
	}
	return errors.New("asgi loop: the event loop has stopped")
}

// Lifespan runs the lifespan protocol's startup (or shutdown) of an ASGI
// app on the loop, in mode "auto" (an app that does not speak it is served
// anyway) or "on" (it must), and waits up to timeout for its outcome: nil,
// or the app's failure message or traceback. Its answer comes through pool.
func (l *Loop) Lifespan(pool *Pool, app int, shutdown bool, mode string, timeout time.Duration) error {
	j := pool.Job()
	more := 0
	if shutdown {
		more = 1
	}
	err := l.control(pool, j, C.WISP_A_LIFESPAN, app, more, mode, timeout)
	if err == nil || !strings.HasPrefix(err.Error(), "no answer") {
		pool.Put(j)
	}
	return err
}

// stop stops the loop and waits up to timeout for its thread to leave Python.
func (l *Loop) stop(timeout time.Duration) error {
	C.wisp_loop_post(l.c, C.WISP_A_QUIT, nil, 0, 0, nil, 0, nil, 0)
	select {
	case <-l.ended:
		syscall.Close(l.efd)
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("the event loop did not stop within %v (a coroutine blocks it)", timeout)
	}
}

// Submit hands the loop a request for app: scope is its flat scope (see
// wisp_asgi.py make_scope), body its first body bytes, more whether more
// follow (Body). The response arrives on j's Events, as for Pool.Submit.
func (l *Loop) Submit(j *Job, app int, scope, body []byte, more bool) bool {
	var sp, bp *C.char
	if len(scope) > 0 {
		sp = (*C.char)(unsafe.Pointer(&scope[0]))
	}
	if len(body) > 0 {
		bp = (*C.char)(unsafe.Pointer(&body[0]))
	}
	gen := j.seq.Add(1)
	return C.wisp_loop_submit(l.c, j.pool.c, j.c, C.WISP_A_NEW, C.ulonglong(gen), C.int(app), cbool(more),
		sp, C.size_t(len(scope)), bp, C.size_t(len(body))) == 0
}

// Body hands the app more of its request body (copied); more false ends it.
func (l *Loop) Body(j *Job, chunk []byte, more bool) {
	var bp *C.char
	if len(chunk) > 0 {
		bp = (*C.char)(unsafe.Pointer(&chunk[0]))
	}
	C.wisp_loop_post(l.c, C.WISP_A_BODY, j.c, 0, cbool(more), nil, 0, bp, C.size_t(len(chunk)))
}

// WaitBody waits until the app has received enough of the body handed to it
// that more may follow (WISP_BODY_AHEAD bytes are ahead at most), or stop
// is closed (false).
func (l *Loop) WaitBody(j *Job, stop <-chan struct{}) bool {
	q := (*int64)(unsafe.Pointer(&j.c.bodyq))
	w := (*int32)(unsafe.Pointer(&j.c.bodywait))
	for atomic.LoadInt64(q) > C.WISP_BODY_AHEAD {
		atomic.StoreInt32(w, 1)
		if atomic.LoadInt64(q) <= C.WISP_BODY_AHEAD {
			break
		}
		select {
		case <-j.credit:
		case <-stop:
			return false
		}
	}
	return true
}

// Disconnect tells the app its client is gone: receive() gives
// http.disconnect, send() raises.
func (l *Loop) Disconnect(j *Job) {
	C.wisp_job_abort(j.c)
	C.wisp_loop_post(l.c, C.WISP_A_GONE, j.c, 0, 0, nil, 0, nil, 0)
}

// Cancel cancels the request's task (its request timed out).
func (l *Loop) Cancel(j *Job) {
	C.wisp_job_abort(j.c)
	C.wisp_loop_post(l.c, C.WISP_A_CANCEL, j.c, 0, 0, nil, 0, nil, 0)
}

// SubmitWebSocket hands the loop a WebSocket handshake for app (scope is
// its flat scope, as Submit's): the app gets websocket.connect, and its
// answer (accept, close, or a denial response) arrives on j's Events.
func (l *Loop) SubmitWebSocket(j *Job, app int, scope []byte) bool {
	var sp *C.char
	if len(scope) > 0 {
		sp = (*C.char)(unsafe.Pointer(&scope[0]))
	}
	gen := j.seq.Add(1)
	return C.wisp_loop_submit(l.c, j.pool.c, j.c, C.WISP_A_WS, C.ulonglong(gen), C.int(app), 0,
		sp, C.size_t(len(scope)), nil, 0) == 0
}

// Message hands a WebSocket app a message the client sent (copied), text or
// binary; it counts against the same window as a request body (WaitBody),
// with WISP_MSG_COST bytes more for each message.
func (l *Loop) Message(j *Job, text bool, p []byte) {
	var bp *C.char
	if len(p) > 0 {
		bp = (*C.char)(unsafe.Pointer(&p[0]))
	}
	kind := C.int(2)
	if text {
		kind = 1
	}
	C.wisp_loop_post(l.c, C.WISP_A_MSG, j.c, 0, kind, nil, 0, bp, C.size_t(len(p)))
}

// Closed tells a WebSocket app its connection ended, with the close code
// and reason (1006 and "" when it ended without a close frame): receive()
// gives websocket.disconnect, and send() raises.
func (l *Loop) Closed(j *Job, code int, reason string) {
	var rp *C.char
	if reason != "" {
		rp = C.CString(reason)
		defer C.free(unsafe.Pointer(rp))
	}
	C.wisp_job_abort(j.c)
	C.wisp_loop_post(l.c, C.WISP_A_GONE, j.c, C.int(code), 0, rp, C.size_t(len(reason)), nil, 0)
}
