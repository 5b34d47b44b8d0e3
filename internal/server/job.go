package server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"wisp/internal/pyembed"
)

// flushSize is how much response body a job gathers before handing it to the
// connection goroutine; eventQueue bounds how many such hand-offs may wait.
// Together they bound the memory of one streaming response.
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
	cur     []byte // body gathered since the last hand-off
	events  chan event
	abort   chan struct{} // closed when the client is gone
	aborted atomic.Bool
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
	j.body, j.bodyFile, j.hdr, j.cur, j.tb = nil, nil, j.hdr[:0], nil, ""
	j.aborted.Store(false)
	jobPool.Put(j)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*flushSize); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) >= flushSize && cap(b) <= 4*flushSize {
		b = b[:0]
		bufPool.Put(&b)
	}
}

// run executes the job on Python thread t and signals completion.
func (j *job) run(t *pyembed.Thread) {
	if j.aborted.Load() {
		j.code = pyembed.Gone
	} else {
		j.code, j.tb = t.Handle(j.app, &j.env, j.body, j.bodyFile, j)
	}
	j.events <- event{data: j.cur, done: true}
	j.cur = nil
}

// goneNow marks the client as gone (connection goroutine side).
func (j *job) goneNow() {
	if j.aborted.CompareAndSwap(false, true) {
		close(j.abort)
	}
}

// Start implements pyembed.Sink.
func (j *job) Start(hdr []byte) error {
	j.hdr = append(j.hdr[:0], hdr...)
	if j.aborted.Load() {
		return errGone
	}
	return nil
}

// Write implements pyembed.Sink: small chunks gather in j.cur; a full buffer
// goes to the connection goroutine, waiting only when block is true.
func (j *job) Write(p []byte, block bool) error {
	if j.aborted.Load() {
		return errGone
	}
	if len(j.cur)+len(p) <= flushSize {
		if j.cur == nil {
			j.cur = getBuf()
		}
		j.cur = append(j.cur, p...)
		return nil
	}
	// Only this thread sends on events, so a free slot now stays free.
	if !block && len(j.events) == cap(j.events) {
		return pyembed.ErrWouldBlock
	}
	if j.cur == nil {
		j.cur = getBuf()
	}
	ev := event{data: append(j.cur, p...)}
	j.cur = nil
	return j.send(ev)
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
func (j *job) SendFile(fd int, off, n int64) error {
	if j.aborted.Load() {
		return errGone
	}
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	if _, err := f.Seek(off, 0); err != nil {
		f.Close()
		return err
	}
	ev := event{data: j.cur, file: f, fileN: n}
	j.cur = nil
	return j.send(ev)
}
