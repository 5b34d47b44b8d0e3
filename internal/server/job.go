package server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"wisp/internal/pyembed"
)

// flushSize is how much response body a Python thread gathers before handing
// it to the connection goroutine (wisp_py.c's BODY_BUF); eventQueue bounds how
// many such hand-offs may wait. Together they bound the memory of one
// streaming response.
const (
	flushSize  = 64 << 10
	eventQueue = 4
)

var errGone = errors.New("client gone")

// event is one hand-off from a Python thread to the connection goroutine.
type event struct {
	data  []byte   // body bytes (a pooled buffer), may be empty
	file  *os.File // then send n bytes of this file (sendfile)
	fileN int64
	done  bool // the app finished; code and tb are set
}

// job is one request travelling from the connection goroutine to a Python
// thread and its response travelling back. It implements pyembed.Sink.
// The connection goroutine owns it again once it has received the done event.
type job struct {
	app      int
	env      pyembed.Environ
	body     []byte
	bodyFile *os.File

	hdr     []byte // status and headers from start_response, set before the first event
	events  chan event
	abort   chan struct{} // closed when the client is gone
	aborted atomic.Bool
	thread  atomic.Uint64 // Python thread id running the job
	running atomic.Bool   // in the app; changes only under the GIL
	code    pyembed.Code
	tb      string
}

var jobPool = sync.Pool{New: func() any {
	return &job{events: make(chan event, eventQueue)}
}}

func getJob() *job {
	j := jobPool.Get().(*job)
	j.abort = make(chan struct{})
	return j
}

func putJob(j *job) {
	j.env.Reset()
	j.body, j.bodyFile, j.hdr, j.tb = nil, nil, j.hdr[:0], ""
	j.aborted.Store(false)
	j.thread.Store(0)
	jobPool.Put(j)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*flushSize); return &b }}

// getBuf returns an empty buffer for n bytes: pooled for big hand-offs,
// exact-sized for small ones (most responses), which keeps memory low.
func getBuf(n int) []byte {
	if n > 2*flushSize {
		return make([]byte, 0, n)
	}
	if n > 4096 {
		return (*bufPool.Get().(*[]byte))[:0]
	}
	return make([]byte, 0, n)
}

func putBuf(b []byte) {
	if cap(b) == 2*flushSize {
		b = b[:0]
		bufPool.Put(&b)
	}
}

// run executes the job on Python thread t, which holds the GIL, and hands the
// rest of the response to the connection goroutine. It reports whether it had
// to release the GIL to do so.
func (j *job) run(t *pyembed.Thread) (released bool) {
	ev := event{done: true}
	j.thread.Store(t.Ident())
	if j.aborted.Load() {
		j.code = pyembed.Gone
	} else {
		j.running.Store(true)
		res := t.Handle(j.app, &j.env, j.body, j.bodyFile, j)
		j.running.Store(false)
		j.code, j.tb = res.Code, res.Traceback
		if res.Hdr != nil {
			j.hdr = append(j.hdr[:0], res.Hdr...)
		}
		if len(res.Body) > 0 {
			ev.data = append(getBuf(len(res.Body)), res.Body...)
		}
	}
	select {
	case j.events <- ev:
		return false
	default:
	}
	t.Release()
	j.events <- ev // the connection goroutine (or drain, after a timeout) always takes it
	return true
}

// goneNow marks the client as gone (connection goroutine side).
func (j *job) goneNow() {
	if j.aborted.CompareAndSwap(false, true) {
		close(j.abort)
	}
}

// Write implements pyembed.Sink.
func (j *job) Write(hdr, a, b []byte, block bool) error {
	if j.aborted.Load() {
		return errGone
	}
	// Only this thread sends on events, so a free slot now stays free.
	if !block && len(j.events) == cap(j.events) {
		return pyembed.ErrWouldBlock
	}
	if hdr != nil {
		j.hdr = append(j.hdr[:0], hdr...)
	}
	buf := getBuf(len(a) + len(b))
	buf = append(append(buf, a...), b...)
	return j.send(event{data: buf})
}

func (j *job) send(ev event) error {
	select {
	case j.events <- ev:
		return nil
	case <-j.abort:
		putBuf(ev.data)
		if ev.file != nil {
			ev.file.Close()
		}
		return errGone
	}
}

// SendFile implements pyembed.Sink: it opens its own description of the file,
// so the app may close fd at once, and queues it for sendfile.
func (j *job) SendFile(hdr, a []byte, fd int, off, n int64, block bool) error {
	if j.aborted.Load() {
		return errGone
	}
	if !block && len(j.events) == cap(j.events) {
		return pyembed.ErrWouldBlock
	}
	f, err := openFD(fd, off)
	if err != nil {
		return fmt.Errorf("%w: %v", pyembed.ErrFileUnusable, err)
	}
	if hdr != nil {
		j.hdr = append(j.hdr[:0], hdr...)
	}
	ev := event{file: f, fileN: n}
	if len(a) > 0 {
		ev.data = append(getBuf(len(a)), a...)
	}
	return j.send(ev)
}

// openFD opens a new description of the app's file fd, positioned at off, so
// that the app may close or move fd at once.
func openFD(fd int, off int64) (*os.File, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(off, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
