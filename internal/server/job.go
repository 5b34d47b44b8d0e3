package server

import (
	"os"

	"wisp/internal/pyembed"
)

// job is one request on its way to a Python thread (a pyembed.Job) with what
// the connection goroutine keeps of it: the body, and what the response's
// events said so far. Only the connection goroutine touches it, or
// afterTimeout once that goroutine handed it over.
type job struct {
	*pyembed.Job
	body     []byte
	bodyMem  int64 // bytes of the memory budget the body holds
	spilled  int64 // bytes of the spill space the body file holds
	bodyFile *os.File
	hdr      []byte        // status and headers, from the event that carried them (valid until the Job is Put)
	aborted  bool          // Abort was called
	loop     *pyembed.Loop // the event loop an ASGI request runs on (nil: a Python thread)
	code     pyembed.Code
	tb       string
}

// goneNow stops the app at its next hand-off: the client is gone, or the
// response cannot go on.
func (j *job) goneNow() {
	if !j.aborted {
		j.aborted = true
		if j.loop != nil {
			j.loop.Disconnect(j.Job) // receive() gives http.disconnect
		} else {
			j.Abort()
		}
	}
}

// take records what an event of the job tells: its headers, its outcome.
func (j *job) take(ev *pyembed.Event) {
	if ev.Hdr != nil {
		j.hdr = j.KeepHdr(ev.Hdr)
	}
	if ev.Done {
		j.code, j.tb = ev.Code, ev.Traceback
	}
}
