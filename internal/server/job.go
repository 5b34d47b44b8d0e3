package server

import (
	"os"

	"wisp/internal/h1"
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
	trailers []h1.Field // the trailers the response ends with (ASGI)
}

// parseFields reads "name\0value\0..." (names and values checked on the
// Python side).
func parseFields(b []byte) []h1.Field {
	f := []h1.Field{}
	for rest := string(b); len(rest) > 0; {
		var name, value string
		name, value, rest = nextHeader(rest)
		if name != "" {
			f = append(f, h1.Field{Name: name, Value: value})
		}
	}
	return f
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
	if len(ev.Hdr) > 0 && ev.Hdr[0] == 0 && ev.Done {
		// an ASGI app's trailers ("\0name\0value\0...")
		j.trailers = parseFields(ev.Hdr[1:])
	} else if ev.Hdr != nil {
		j.hdr = j.KeepHdr(ev.Hdr)
	}
	if ev.Done {
		j.code, j.tb = ev.Code, ev.Traceback
	}
}
