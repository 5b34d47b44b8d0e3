package server

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wisp/internal/h1"
	"wisp/internal/httphdr"
	"wisp/internal/pyembed"
	"wisp/internal/trace"
)

// exchange is the per-request state of ServeH1, allocated as one object.
type exchange struct {
	p   responder
	j   job
	tag trace.Tag // what the app's output is tagged with (Job.Tag)
}

// newExchange readies the exchange of a request of m's app, run by a Python
// thread (loop nil) or on the event loop; its output is tagged with rid
// when the server traces.
func (s *Server) newExchange(m *mount, rid trace.ID, loop *pyembed.Loop) *exchange {
	x := &exchange{}
	j := &x.j
	j.Job = s.pool.Job()
	j.loop = loop
	if s.cfg.Trace != nil {
		x.tag = trace.Tag{Request: rid, Site: m.site, Vdir: cmp.Or(m.prefix, "/")}
		j.Tag = &x.tag
	} else {
		j.Tag = nil
	}
	return x
}

// ServeH1 routes one request to its app, runs it on a Python thread and
// writes the response as the thread hands it over.
func (s *Server) ServeH1(w *h1.Response, r *h1.Request) {
	defer s.requests.Add(1)
	if s.draining.Load() || s.shedding.Load() {
		w.SetClose()
	}
	if s.access == nil && s.cfg.Trace == nil && s.cfg.Metrics == nil {
		s.serve(w, r, trace.ID{})
		return
	}
	start := time.Now()
	rid := requestID(r)
	s.cfg.Metrics.Begin()
	m := s.serve(w, r, rid)
	s.cfg.Metrics.End()
	dur, status, n := time.Since(start), w.Status(), w.Written()
	if status == 0 || status == 101 && overH2(r) {
		status = 200 // over HTTP/2 a WebSocket is accepted with 200 (RFC 8441 5), which internal/h2 sent
	}
	// a forwarded request is counted and traced by the pool that runs it
	own := m == nil || m.proxy == nil || m.static
	if c := s.cfg.Metrics; c != nil && own {
		if m == nil {
			c.Request("", "", status, max(r.ContentLength, 0), n, dur)
		} else {
			m.route.Request(status, max(r.ContentLength, 0), n, dur)
		}
	}
	if s.access != nil {
		s.logAccess(r, m, status, n, start, dur, rid)
	}
	if s.cfg.Trace != nil && own {
		s.traceRequest(r, m, status, n, start, dur, rid)
	}
}

// serve answers the request; it returns its mount (nil: none).
func (s *Server) serve(w *h1.Response, r *h1.Request, rid trace.ID) *mount {
	path := h1.UnescapePath(r.Path)
	m, pathInfo := s.route(path)
	if m == nil {
		plain(w, 404, "404 Not Found: no application is mounted at this path")
		return nil
	}
	if !m.asgi && (m.proxy == nil || m.static) && overH2(r) && isWebSocket(r) {
		// an extended CONNECT (RFC 8441) that a WSGI app or a folder would
		// answer 200, which the client would take for an open WebSocket
		plain(w, 501, "501 Not Implemented: no WebSocket application is mounted at this path")
		return m
	}
	if m.proxy != nil {
		if b, ok := m.proxy.(bridge); ok && b.forward {
			b.serve(w, r, rid) // the pool that runs it traces it under the same id
		} else {
			m.proxy.ServeH1(w, r)
		}
		return m
	}
	if m.asgi {
		if isWebSocket(r) {
			s.serveWebSocket(w, r, m, rid)
		} else {
			s.serveASGI(w, r, m, rid)
		}
		return m
	}
	x := s.newExchange(m, rid, nil)
	j := &x.j
	defer func() {
		if j != nil { // not handed to afterTimeout
			s.endJob(j)
		}
	}()
	if !s.admit(w, m) {
		return m
	}
	if m.sem != nil {
		defer m.sem.Release()
	}
	if status, msg := s.readBody(r, j, m.maxBody); status != 0 {
		w.SetClose()
		if status == 503 {
			w.AddHeader("Retry-After", "5")
		}
		plain(w, status, msg)
		return m
	}
	s.environ(&j.Env, r, m.prefix, pathInfo, int64(len(j.body)), j.bodyFile)
	p := &x.p
	*p = responder{s: s, w: w, r: r}
	if s.cfg.AppBegin != nil {
		defer s.cfg.AppEnd(s.cfg.AppBegin(r))
	}
	if s.pool.Submit(j.Job, m.app, j.body, j.bodyFile) {
		done := s.respond(p, j, m.timeout)
		if done {
			s.cfg.Metrics.Wait(j.Waited())
		}
		if !done {
			// Timed out: the app still holds the job (and reads its body
			// file); afterTimeout releases them once it returns.
			go s.afterTimeout(j, r.Target, time.Now())
			j = nil
			if p.wrote {
				w.Abort() // the response had started: never end it as if complete
			}
		}
	} else if s.stopping.Load() {
		// the grace period ended with the request still waiting (a
		// forwarded one is handed back: see NewForwarder)
		w.SetClose()
		w.AddHeader("Retry-After", "1")
		if r.Trusted {
			w.AddHeader(hdrUnserved, "stopping")
		}
		plain(w, 503, "503 Service Unavailable: this worker is shutting down; retry")
		s.log.Warn("request not run: the worker's Python threads have stopped (shutting down); answered 503 with Retry-After: 1",
			"path", r.Path)
		s.cfg.Metrics.Refused("503 shutting down")
	} else {
		w.AddHeader("Retry-After", "1")
		plain(w, 503, "503 Service Unavailable: all Python threads are busy and the queue is full")
		queued, busy := s.pool.Stats()
		s.log.Warn("request queue full: every Python thread of this worker is busy and its queue of waiting requests is full; answered 503 with Retry-After: 1",
			"path", r.Path, "threads", s.cfg.Threads, "busy", busy, "queue", s.cfg.Queue, "queued", queued)
		s.cfg.Metrics.Refused("503 queue full")
	}
	return m
}

// admit takes one of the mount's slots (MaxConcurrent), or answers 503 and
// reports false; the caller releases the slot.
func (s *Server) admit(w *h1.Response, m *mount) bool {
	if m.sem != nil && !m.sem.TryAcquire() {
		w.AddHeader("Retry-After", "1")
		plain(w, 503, "503 Service Unavailable: this path's bound of "+strconv.Itoa(m.sem.Cap())+" requests at once is reached")
		s.cfg.Metrics.Refused("503 vdir busy")
		return false
	}
	return true
}

// errTruncated means the app sent more than its Content-Length: the declared
// bytes went out and the response is complete; the app must stop.
var errTruncated = errors.New("response longer than its Content-Length")

// errBadResponse means the app's status or headers were refused; a 500 went out instead.
var errBadResponse = errors.New("bad response from app")

// responder writes one response as the Python side hands it over: the status
// line and headers with the first hand-off, then body bytes and files.
type responder struct {
	s       *Server
	w       *h1.Response
	r       *h1.Request
	wrote   bool  // the status line is written
	allowed bool  // the status allows a body
	left    int64 // body bytes the app's Content-Length still allows; -1: no limit

	// the hand-offs of one write: one mostly, more once a stream gets ahead
	// of the client (more and data are then allocated, once per request)
	one  [1]pyembed.Event
	one1 [1][]byte
	more []pyembed.Event
	data [][]byte

	triedDirect bool // startDirect was called
	direct      bool // the app's thread may write the body itself
	spillSent   int64

	// ASGI: the request body, streamed to the app while it runs (nil for
	// WSGI, whose body is read before the app is called), and the answer
	// owed if reading it failed before the response started.
	body       *asgiBody
	failStatus int
	failMsg    string

	// ASGI WebSocket handshake: respond returns at the app's accept (an
	// event whose Hdr starts with 'A'), leaving it in accept.
	ws     bool
	accept pyembed.Event
}

// directAfter is how much body a response must have sent through Go before
// the socket is handed to the app's thread: a stream pays for the hand-over
// (a dup, and a close at the end) once, a page whose body and end arrive as
// two hand-offs (Django's and Flask's iterables) never does.
const directAfter = 128 << 10

// startDirect lets the app's thread write the rest of the body straight to
// the client (see pyembed.Job.Direct), once the head went out: a streamed
// response then costs no hand-off and no copy per block. Where the
// connection cannot be written that way, the body keeps coming through Go.
func (p *responder) startDirect(j *job) {
	p.triedDirect = true
	d, ok := p.w.Direct()
	if !ok {
		return
	}
	if j.Direct(d.FD, d.Chunked, d.Left, d.Rate, d.Grace, d.Timeout, d.Sent, d.Waited) {
		p.direct = true
		return
	}
	syscall.Close(d.FD)
	p.w.DirectDone(0, 0, 0, nil)
}

// sendSpill sends what waits in the job's spill file (framed already, and
// counted as body by the app's thread), until nothing more waits.
// It sends spillPiece at a time: the minimum rate judges each write by its
// size, and a whole claim can be a gigabyte.
func (p *responder) sendSpill(j *job, f *os.File) error {
	for {
		n := j.SpillClaim()
		if n == 0 {
			return nil
		}
		for n > 0 {
			k := min(n, spillPiece)
			if err := p.w.SendRaw(f, k); err != nil {
				return err
			}
			p.spillSent += k
			n -= k
		}
	}
}

// spillPiece is the most of a spill file sent in one write: small enough
// that a client which reads nothing gets little credit toward the minimum
// rate from what the kernel's buffers took.
const spillPiece = 64 << 10

// endDirect takes the body back from the app's thread at the done event and
// reports whether the response is complete although the app was stopped
// (it went past its Content-Length: what was declared went out). A failed
// direct write (the client is gone or too slow) stops the app and aborts
// the connection, as a failed write of Go's own does.
func (p *responder) endDirect(j *job) (complete bool) {
	p.direct = false
	r := j.DirectResult()
	var err error
	switch r.Err {
	case 0:
	case syscall.ETIMEDOUT:
		err = os.ErrDeadlineExceeded
		p.logTooSlow()
	default:
		err = r.Err
	}
	sent := r.Sent
	if r.SpillRaw > 0 {
		// the spilled body bytes that reached the client (framing is in the spill too)
		sent += int64(float64(r.SpillBody) * float64(min(p.spillSent, r.SpillRaw)) / float64(r.SpillRaw))
	}
	p.w.DirectDone(sent, r.SentWaited, r.Waited, err)
	if err != nil {
		j.aborted = true // the app was stopped by the failed write
		return false
	}
	if r.Over {
		p.logCut()
		j.aborted = true
		return true
	}
	return false
}

// logTooSlow logs a response cut off by the minimum write rate.
func (p *responder) logTooSlow() {
	p.s.log.Warn("client too slow to take the response: cut off, the app's thread is freed", "method", p.r.Method,
		"uri", p.r.Target, "remote", p.r.RemoteAddr, "min_write_rate", p.s.cfg.MinWriteRate)
}

// logCut logs a response cut at its Content-Length (the app sent more).
func (p *responder) logCut() {
	p.s.log.Error("app sent more body than its Content-Length; the response was cut there",
		"method", p.r.Method, "uri", p.r.Target)
}

// release releases every event of batch.
func release(batch []pyembed.Event) {
	for i := range batch {
		batch[i].Release()
	}
}

// deliver writes hand-offs: the body bytes of data in order, then n bytes
// of file. hdr are the app's status and headers, used on the first hand-off.
// An error means the client is gone or the response cannot go on (it was
// logged).
func (p *responder) deliver(hdr []byte, data [][]byte, file *os.File, n int64, done bool) error {
	size := 0
	for _, d := range data {
		size += len(d)
	}
	if !p.wrote {
		status, length, err := p.s.writeHeader(p.w, hdr, size, file, n, done, p.r.Method == "HEAD")
		if err != nil {
			p.s.log.Error("bad response from app", "method", p.r.Method, "uri", p.r.Target, "err", err)
			plain(p.w, 500, "500 Internal Server Error")
			p.wrote = true
			return errBadResponse
		}
		p.wrote = true
		p.allowed = bodyAllowed(status)
		p.left = length
	}
	if !p.allowed {
		return nil
	}
	over := false
	if p.left >= 0 && int64(size) > p.left {
		left := p.left
		for i, d := range data {
			if int64(len(d)) > left {
				data[i], data = d[:left], data[:i+1]
				break
			}
			left -= int64(len(d))
		}
		size, over = int(p.left), true
	}
	if size > 0 {
		if _, err := p.w.WriteVec(data); err != nil {
			return err
		}
		if p.left >= 0 {
			p.left -= int64(size)
		}
	}
	if file != nil && p.left >= 0 && n > p.left {
		n, over = p.left, true
	}
	if over {
		// A response longer than its Content-Length would desynchronize the
		// connection: send what was declared and stop the app.
		p.logCut()
	}
	if file != nil && n > 0 {
		if _, err := p.w.WriteFile(file, n); err != nil {
			return err
		}
	}
	if over {
		return errTruncated
	}
	if !done {
		return p.w.Flush()
	}
	return nil
}

// abort ends a response that cannot be completed: with the answer owed for
// a request body that failed (ASGI), if nothing was written yet; else by
// aborting the connection.
func (p *responder) abort() {
	if p.failStatus != 0 && !p.wrote {
		p.w.SetClose()
		plain(p.w, p.failStatus, p.failMsg)
		return
	}
	p.w.Abort()
}

// finish ends the response after the app returned with code: a failure before
// anything was written becomes a 500; one after the response started aborts the
// connection, so that a broken body never looks complete.
func (p *responder) finish(code pyembed.Code, tb string) {
	switch code {
	case pyembed.ErrEarly, pyembed.ErrLate:
		p.s.appError(p.r, tb, p.wrote)
		if !p.wrote {
			plain(p.w, 500, "500 Internal Server Error")
			return
		}
		p.w.Abort()
	case pyembed.Gone:
		p.w.Abort()
	}
}

// watchAfter is how long an app may run before its client's connection is
// watched for a hang-up (a watch costs a goroutine and a read; most requests
// end sooner, and a vanished client is seen at the first failed write anyway).
const watchAfter = 50 * time.Millisecond

// respond relays the events of a pool job until its done event, watching the
// client. Hand-offs that arrive while earlier ones are still unwritten are
// written together: one writev, and a Content-Length when that ends the body.
// Once a stream has sent directAfter bytes, the app's thread writes the rest
// itself (startDirect) and respond waits for its done event, sending only
// what the thread spilled for a slow client (sendSpill).
//
// With a timeout, it answers 504 when the app overstays it (if nothing was
// written yet), logs and interrupts the stuck thread, and returns
// false without waiting: the job then still belongs to the app.
func (s *Server) respond(p *responder, j *job, timeout time.Duration) bool {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	watch := time.NewTimer(watchAfter)
	defer watch.Stop()
	var gone <-chan struct{}
	complete := false // the response is whole (cut at Content-Length, or a 500 for bad headers)
	events := j.Events()
	// ASGI: the client is watched only once its body was read to its end
	// (the body's goroutine reads the connection until then)
	var bodyDone <-chan struct{}
	var bodyErr <-chan error
	watched := false
	if p.body != nil {
		bodyDone, bodyErr = p.body.done, p.body.errc
	}
	for {
		var ev pyembed.Event
		select {
		case ev = <-events:
			if p.ws && len(ev.Hdr) > 0 && ev.Hdr[0] == 'A' && !j.aborted {
				p.accept = ev
				return true
			}
			j.take(&ev)
		case <-watch.C:
			watched = true
			if bodyDone == nil {
				gone = p.r.Gone()
			}
			continue
		case <-bodyDone:
			bodyDone = nil
			if watched {
				gone = p.r.Gone()
			}
			continue
		case err := <-bodyErr:
			bodyErr = nil
			p.failStatus, p.failMsg = s.bodyError(err, p.body.max)
			j.goneNow() // the app sees http.disconnect
			continue
		case <-gone:
			j.goneNow() // the app stops at its next hand-off; keep watching the timeout
			gone = nil
			continue
		case <-expired:
			s.timedOut(p, j, timeout)
			return false
		}
		// Take the hand-offs already waiting too and write them at once,
		// none past a file (bytes after it would go out of order).
		batch := p.one[:1]
		batch[0] = ev
		for last := &batch[0]; !last.Done && last.File == nil; last = &batch[len(batch)-1] {
			var n pyembed.Event
			got := false
			select {
			case n = <-events:
				got = true
			default:
			}
			if !got {
				break
			}
			j.take(&n)
			if len(batch) == 1 {
				batch = append(p.more[:0], batch[0])
			}
			batch = append(batch, n)
		}
		if len(batch) > 1 {
			p.more = batch
		}
		done := batch[len(batch)-1].Done
		if done && p.direct {
			complete = p.endDirect(j) || complete
		}
		if j.aborted {
			release(batch)
			if done {
				if !complete {
					p.abort()
				}
				return true
			}
			continue
		}
		if done && !p.wrote && (j.code == pyembed.ErrEarly || j.code == pyembed.ErrLate) {
			release(batch)
			p.finish(j.code, j.tb)
			return true
		}
		data := p.one1[:]
		if len(batch) > 1 {
			data = p.data[:0]
			for i := range batch {
				data = append(data, batch[i].Data)
			}
			p.data = data
		} else {
			data[0] = batch[0].Data
		}
		last := &batch[len(batch)-1]
		var err error
		if last.Raw {
			// bytes the client was too slow for, spilled by the app's thread
			if err = p.deliver(j.hdr, data, nil, 0, false); err == nil {
				err = p.sendSpill(j, last.File)
			}
		} else {
			err = p.deliver(j.hdr, data, last.File, last.FileN, done)
		}
		clear(data)
		release(batch)
		if err == nil && !done && !p.triedDirect && last.File == nil && p.w.Written() >= directAfter {
			p.startDirect(j)
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			p.logTooSlow()
		}
		if err != nil {
			// Stop the app; its remaining events are dropped above until done.
			j.goneNow()
			complete = err == errBadResponse || err == errTruncated
			if done {
				if !complete {
					p.w.Abort()
				}
				return true
			}
			continue
		}
		if done {
			if j.trailers != nil {
				p.w.SetTrailers(j.trailers)
			}
			p.finish(j.code, j.tb)
			return true
		}
	}
}

// endJob releases what a job held once the app is done with it.
func (s *Server) endJob(j *job) {
	if j.bodyFile != nil {
		j.bodyFile.Close()
	}
	s.bodies.release(j.bodyMem)
	s.spill.release(j.spilled + j.TakeSpill())
	j.body, j.bodyMem, j.spilled = nil, 0, 0
	s.pool.Put(j.Job)
}

// afterTimeout waits for a timed-out job to end. Its thread, if the app
// still runs on it, is written off at once and a new thread replaces it (up
// to MaxStuckThreads written-off threads at once), so that a request stuck
// in C code, where the TimeoutError cannot land, does not hold a thread the
// other requests wait for; the written-off thread ends when the app returns,
// and the pool is back to its size. If the job has not ended StuckGrace
// later, its thread is stuck: that is logged, counted (Health) and OnStuck is
// told (a pool recycles the worker).
func (s *Server) afterTimeout(j *job, uri string, began time.Time) {
	ended := make(chan struct{})
	go func() {
		drain(j)
		close(ended)
	}()
	grace := s.cfg.StuckGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	defer s.endJob(j)
	replaced := s.writeOff(j)
	if replaced {
		defer s.writtenOff.Add(-1)
	}
	select {
	case <-ended:
	case <-time.After(grace):
		since := time.Since(began).Round(time.Millisecond).String()
		if !replaced && j.Thread() != 0 {
			// it started after the timeout (it was queued): replace it now
			if replaced = s.writeOff(j); replaced {
				defer s.writtenOff.Add(-1)
			}
		}
		switch {
		case j.Thread() == 0:
			// never started: it waits in the queue, behind busy threads
			s.log.Error("a timed-out request is still queued: every Python thread is busy", "uri", uri, "since", since)
		case replaced:
			n := s.stuck.Add(1)
			defer s.stuck.Add(-1)
			s.log.Error("a timed-out request has not returned: its Python thread is written off and a new one replaces it",
				"uri", uri, "since", since, "stuck_threads", n, "max_stuck_threads", s.cfg.MaxStuckThreads)
			if int(n) >= s.cfg.MaxStuckThreads {
				s.log.Error("unhealthy: the bound of stuck Python threads is reached; later stuck threads are not replaced",
					"stuck_threads", n)
			}
		default:
			s.log.Error("unhealthy: a timed-out request has not returned, and no more stuck Python threads are replaced",
				"uri", uri, "since", since, "stuck_threads", s.stuck.Load(), "max_stuck_threads", s.cfg.MaxStuckThreads)
		}
		if s.cfg.OnStuck != nil {
			s.cfg.OnStuck(uri)
		}
		<-ended
	}
	s.log.Warn("the timed-out request has ended", "uri", uri, "after", time.Since(began).Round(time.Millisecond).String(),
		"traceback", j.tb)
}

// writeOff writes off the thread running the timed-out job j and starts a
// new one in its place, unless MaxStuckThreads threads are written off
// already or j is not in the app (not started, or ended). If it reports
// true, the caller gives the slot back (writtenOff) once j has ended.
func (s *Server) writeOff(j *job) bool {
	if j.Thread() == 0 {
		return false
	}
	if int(s.writtenOff.Add(1)) > s.cfg.MaxStuckThreads || !s.pool.WriteOff(j.Job) {
		s.writtenOff.Add(-1)
		return false
	}
	return true
}

// interrupt logs the Python stack of the thread running a timed-out request
// and raises TimeoutError in it if (checked under the GIL) it still runs it.
func (s *Server) interrupt(thread uint64, uri string, still func() bool) {
	stack, hit, err := s.ip.Interrupt(thread, 5*time.Second, still)
	if err != nil {
		s.log.Error("stuck request: cannot interrupt it", "uri", uri, "err", err)
		return
	}
	s.log.Error("stuck request: its Python stack; TimeoutError raised in it", "uri", uri, "thread", thread,
		"interrupted", hit, "stack", stack)
}

// timedOut handles a request that overstayed its timeout.
func (s *Server) timedOut(p *responder, j *job, timeout time.Duration) {
	j.goneNow()
	var stack string
	if j.loop != nil {
		stack = s.cancelTask(j) // ASGI: its task's coroutine stack, then cancel it
	}
	s.log.Error("request timed out in the app; answered 504", "method", p.r.Method, "uri", p.r.Target,
		"timeout", timeout.String())
	if j.loop != nil {
		s.log.Error("stuck request: its task's coroutine stack; the task is cancelled", "uri", p.r.Target, "stack", stack)
	}
	if th := j.Thread(); th != 0 {
		go s.interrupt(th, p.r.Target, j.StillRunning()) // bound to this request: j is reused once it ends
	}
	if p.wrote {
		return // the caller aborts the connection once the job is handed over
	}
	p.w.SetClose()
	plain(p.w, 504, "504 Gateway Timeout: the application did not answer in time")
}

// drain waits for the app to finish after the client went away.
func drain(j *job) {
	for {
		ev := <-j.Events()
		j.take(&ev)
		done := ev.Done
		ev.Release()
		if done {
			return
		}
	}
}

func (s *Server) appError(r *h1.Request, tb string, late bool) {
	msg := "app raised an exception; answered 500"
	if late {
		msg = "app raised an exception after the response started; connection aborted"
	}
	s.log.Error(msg, "method", r.Method, "uri", r.Target, "traceback", tb)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

// headerSink receives a response's status and headers (an *h1.Response).
type headerSink interface {
	SetStatus(code int, line string)
	AddHeader(name, value string)
	SetContentLength(n int64)
	SetClose()
}

// writeHeader applies the app's status and headers ("status\0name\0value\0...",
// validated on the Python side) and returns the status and the Content-Length
// (-1: none). The first hand-off (size body bytes, then fileN bytes of file;
// done if that is all) gives the Content-Length when the app sent none (head:
// the request is a HEAD, whose empty body tells nothing).
func (s *Server) writeHeader(w headerSink, hdr []byte, size int, file *os.File, fileN int64, done, head bool) (int, int64, error) {
	i := bytes.IndexByte(hdr, 0)
	if i < 3 {
		return 0, -1, errors.New("no status")
	}
	line := string(hdr[:i])
	status, _ := strconv.Atoi(line[:3])
	if status < 200 {
		return 0, -1, errors.New("status " + line + ": an informational status cannot end a response")
	}
	// One string holds every name and value. A first pass finds the
	// Content-Length, so that a bad one is refused before any of the app's
	// headers reach w: the 500 that follows carries only its own.
	all := string(hdr[i+1:])
	length := int64(-1)
	trailers := false // the app sends trailers (ASGI): the body stays chunked
	for rest := all; len(rest) > 0; {
		var name, value string
		name, value, rest = nextHeader(rest)
		if len(name) == 14 && strings.EqualFold(name, "Content-Length") {
			n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil || n < 0 || length >= 0 {
				return 0, -1, errors.New("invalid or repeated Content-Length " + strconv.Quote(value))
			}
			length = n
		}
	}
	for rest := all; len(rest) > 0; {
		var name, value string
		name, value, rest = nextHeader(rest)
		if len(name) == 14 && strings.EqualFold(name, "Content-Length") {
			continue
		}
		if len(name) == len(hdrUnserved) && strings.EqualFold(name, hdrUnserved) {
			continue // wisp's own word that the app did not run (the forwarder sends the request again)
		}
		if name == trailersMark {
			trailers = true
			continue
		}
		if httphdr.HopByHop(name) { // refused by start_response already; a safeguard
			if len(name) == 10 && strings.EqualFold(name, "Connection") && strings.Contains(strings.ToLower(value), "close") {
				w.SetClose()
			}
			continue
		}
		w.AddHeader(name, value)
	}
	if s.draining.Load() || s.shedding.Load() {
		w.SetClose() // the client's next request goes to another worker
	}
	if length < 0 && bodyAllowed(status) && !trailers {
		switch {
		case file != nil: // a file_wrapper's file always ends the body
			length = int64(size) + fileN
		case done && (size > 0 || !head): // an empty HEAD body says nothing of GET's length
			length = int64(size)
		}
	}
	if length >= 0 {
		w.SetContentLength(length)
	}
	w.SetStatus(status, line)
	return status, length, nil
}

// trailersMark is the last field of an ASGI app's head when trailers
// follow its body (wisp_asgi.py TRAILERS_MARK); it is not a token, so no
// header of the app's can be it.
const trailersMark = "\x01trailers"

// nextHeader splits the first "name\0value\0" off the app's header string.
func nextHeader(s string) (name, value, rest string) {
	name, rest, _ = strings.Cut(s, "\x00")
	value, rest, _ = strings.Cut(rest, "\x00")
	return name, value, rest
}

// plain answers with a short text/plain message.
func plain(w *h1.Response, status int, msg string) {
	w.SetStatus(status, "")
	w.AddHeader("Content-Type", "text/plain; charset=utf-8")
	w.SetContentLength(int64(len(msg) + 1))
	w.Write([]byte(msg + "\n"))
}
