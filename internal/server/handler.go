package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"wisp/internal/pyembed"
)

// exchange is the per-request state of ServeHTTP, allocated as one object.
type exchange struct {
	sw statusWriter
	p  responder
	j  job
}

// ServeHTTP routes one request to its app, runs it on a Python thread and
// writes the response as the thread hands it over.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{sw: statusWriter{ResponseWriter: w}}
	rw := &x.sw
	defer s.requests.Add(1)
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	if s.access != nil {
		start := time.Now()
		defer func() { s.access.log(r, rw.status, rw.n, start) }()
	}
	s.serve(x, r)
}

func (s *Server) serve(x *exchange, r *http.Request) {
	w := &x.sw
	rawPath, query := splitURI(r)
	path := unescapePath(rawPath)
	m, pathInfo := s.route(path)
	if m == nil {
		plain(w, http.StatusNotFound, "404 Not Found: no application is mounted at this path")
		return
	}
	if m.proxy != nil {
		m.proxy.ServeHTTP(w, r)
		return
	}
	j := &x.j
	j.Job = s.pool.Job()
	defer func() {
		if j != nil { // not handed to afterTimeout
			s.endJob(j)
		}
	}()
	if status, msg := s.readBody(w, r, j); status != 0 {
		w.Header().Set("Connection", "close")
		plain(w, status, msg)
		return
	}
	s.environ(&j.Env, r, m.prefix, pathInfo, query, int64(len(j.body)), j.bodyFile)
	p := &x.p
	*p = responder{s: s, w: w, r: r, rc: *http.NewResponseController(w.ResponseWriter)}
	if s.pool.Submit(j.Job, m.app, j.body, j.bodyFile) {
		if !s.respond(p, j, m.timeout) {
			// Timed out: the app still holds the job (and reads its body
			// file); afterTimeout releases them once it returns.
			go s.afterTimeout(j, r.RequestURI, time.Now())
			j = nil
			if p.wrote {
				panic(http.ErrAbortHandler) // the response had started: never end it as if complete
			}
		}
	} else {
		w.Header().Set("Retry-After", "1")
		plain(w, http.StatusServiceUnavailable, "503 Service Unavailable: all Python threads are busy and the queue is full")
		s.log.Warn("request queue full: answered 503", "path", r.URL.Path, "queue", s.cfg.Queue)
	}
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
	w       *statusWriter
	r       *http.Request
	rc      http.ResponseController
	wrote   bool  // the status line is written
	allowed bool  // the status allows a body
	left    int64 // body bytes the app's Content-Length still allows; -1: no limit
}

// deliver writes one hand-off: the body bytes a then b, then n bytes of file.
// hdr are the app's status and headers, used on the first hand-off. An error
// means the client is gone or the response cannot go on (it was logged).
func (p *responder) deliver(hdr, a, b []byte, file *os.File, n int64, done bool) error {
	if !p.wrote {
		status, err := p.s.writeHeader(p.w, hdr, len(a)+len(b), file, n, done, p.r.Method == http.MethodHead)
		if err != nil {
			p.s.log.Error("bad response from app", "method", p.r.Method, "uri", p.r.RequestURI, "err", err)
			plain(p.w, http.StatusInternalServerError, "500 Internal Server Error")
			p.wrote = true
			return errBadResponse
		}
		p.wrote = true
		p.allowed = bodyAllowed(status)
		p.left = -1
		if cl := p.w.Header()["Content-Length"]; len(cl) == 1 {
			p.left, _ = strconv.ParseInt(cl[0], 10, 64)
		}
	}
	if !p.allowed {
		return nil
	}
	over := false
	for _, d := range [2][]byte{a, b} {
		if p.left >= 0 && int64(len(d)) > p.left {
			d, over = d[:p.left], true
		}
		if len(d) == 0 {
			continue
		}
		p.rc.SetWriteDeadline(time.Now().Add(p.s.cfg.WriteTimeout))
		if _, err := p.w.Write(d); err != nil {
			return err
		}
		if p.left >= 0 {
			p.left -= int64(len(d))
		}
	}
	if file != nil && p.left >= 0 && n > p.left {
		n, over = p.left, true
	}
	if over {
		// A response longer than its Content-Length would desynchronize the
		// connection: send what was declared and stop the app.
		p.s.log.Error("app sent more body than its Content-Length; the response was cut there",
			"method", p.r.Method, "uri", p.r.RequestURI)
	}
	if file != nil && n > 0 {
		p.rc.SetWriteDeadline(time.Now().Add(p.s.cfg.WriteTimeout + time.Duration(n>>20)*time.Second))
		if _, err := io.Copy(p.w, io.LimitReader(file, n)); err != nil {
			return err
		}
	}
	if over {
		return errTruncated
	}
	if !done {
		p.rc.Flush()
	}
	return nil
}

// finish ends the response after the app returned with code: a failure before
// anything was written becomes a 500; one after the response started aborts the
// connection, so that a broken body never looks complete.
func (p *responder) finish(code pyembed.Code, tb string) {
	switch code {
	case pyembed.ErrEarly, pyembed.ErrLate:
		p.s.appError(p.r, tb, p.wrote)
		if !p.wrote {
			plain(p.w, http.StatusInternalServerError, "500 Internal Server Error")
			return
		}
		panic(http.ErrAbortHandler)
	case pyembed.Gone:
		panic(http.ErrAbortHandler)
	}
}

// respond relays the events of a pool job until its done event, watching the
// client. A hand-off that arrives while the previous one is still unwritten is
// written with it: one write, and a Content-Length when that ends the body.
//
// With a timeout, it answers 504 when the app overstays it (if nothing was
// written yet), reports the stuck thread through Config.OnTimeout, and returns
// false without waiting: the job then still belongs to the app.
func (s *Server) respond(p *responder, j *job, timeout time.Duration) bool {
	ctx := p.r.Context()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var pending *pyembed.Event
	gone := ctx.Done()
	complete := false // the response is whole (cut at Content-Length, or a 500 for bad headers)
	events := j.Events()
	for {
		var ev pyembed.Event
		if pending != nil {
			ev, pending = *pending, nil
		} else {
			select {
			case ev = <-events:
				j.take(&ev)
			case <-gone:
				j.goneNow() // the app stops at its next hand-off; keep watching the timeout
				gone = nil
				continue
			case <-expired:
				s.timedOut(p, j, timeout)
				return false
			}
		}
		var next pyembed.Event // merged into ev's write
		if !ev.Done {
			select {
			case n := <-events:
				j.take(&n)
				// merge unless it would put bytes after ev's file out of order
				if n.File == nil && (ev.File == nil || len(n.Data) == 0) {
					next = n
				} else {
					pending = &n
				}
			default:
			}
		}
		done := ev.Done || next.Done
		if j.aborted {
			ev.Release()
			next.Release()
			if done {
				if complete {
					return true
				}
				panic(http.ErrAbortHandler)
			}
			continue
		}
		if done && !p.wrote && (j.code == pyembed.ErrEarly || j.code == pyembed.ErrLate) {
			ev.Release()
			next.Release()
			p.finish(j.code, j.tb)
			return true
		}
		err := p.deliver(j.hdr, ev.Data, next.Data, ev.File, ev.FileN, done)
		ev.Release()
		next.Release()
		if err != nil {
			// Stop the app; its remaining events are dropped above until done.
			j.goneNow()
			complete = err == errBadResponse || err == errTruncated
			if done {
				if complete {
					return true
				}
				panic(http.ErrAbortHandler)
			}
			continue
		}
		if done {
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
	j.body, j.bodyMem = nil, 0
	s.pool.Put(j.Job)
}

// afterTimeout waits for a timed-out job to end, and reports it through
// OnStuck if it has not ended StuckGrace later.
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
	select {
	case <-ended:
	case <-time.After(grace):
		s.log.Error("a timed-out request has not returned: it holds a Python thread", "uri", uri,
			"since", time.Since(began).Round(time.Millisecond).String())
		if s.cfg.OnStuck != nil {
			s.cfg.OnStuck(uri)
		}
		<-ended
	}
	s.log.Warn("the timed-out request has ended", "uri", uri, "after", time.Since(began).Round(time.Millisecond).String(),
		"traceback", j.tb)
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
	s.log.Error("request timed out in the app; answered 504", "method", p.r.Method, "uri", p.r.RequestURI,
		"timeout", timeout.String())
	if th := j.Thread(); th != 0 {
		go s.interrupt(th, p.r.RequestURI, j.StillRunning()) // bound to this request: j is reused once it ends
	}
	if p.wrote {
		return // the caller aborts the connection once the job is handed over
	}
	p.w.Header().Set("Connection", "close")
	plain(p.w, http.StatusGatewayTimeout, "504 Gateway Timeout: the application did not answer in time")
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

func (s *Server) appError(r *http.Request, tb string, late bool) {
	msg := "app raised an exception; answered 500"
	if late {
		msg = "app raised an exception after the response started; connection aborted"
	}
	s.log.Error(msg, "method", r.Method, "uri", r.RequestURI, "traceback", tb)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// hopByHop are the response headers a WSGI app must not send (PEP 3333);
// framing is the server's job.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true,
}

// writeHeader applies the app's status and headers ("status\0name\0value\0...").
// The first hand-off (size body bytes, then fileN bytes of file; done if that
// is all) gives the Content-Length when the app sent none (head: the request
// is a HEAD, whose empty body tells nothing).
func (s *Server) writeHeader(w *statusWriter, hdr []byte, size int, file *os.File, fileN int64, done, head bool) (int, error) {
	i := bytes.IndexByte(hdr, 0)
	if i < 3 {
		return 0, errors.New("no status")
	}
	status, _ := strconv.Atoi(string(hdr[:3]))
	if status < 200 {
		return 0, errors.New("status " + string(hdr[:i]) + ": an informational status cannot end a response")
	}
	h := w.Header()
	// One string holds every name and value, and one array every value
	// slice: two allocations for the whole header block.
	rest := string(hdr[i+1:])
	vals := make([]string, 0, bytes.Count(hdr[i+1:], []byte{0})/2+1)
	add := func(key, value string) {
		if old := h[key]; old != nil {
			h[key] = append(old, value)
			return
		}
		vals = append(vals, value)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	hasLength, hasType := false, false
	for len(rest) > 0 {
		a := strings.IndexByte(rest, 0)
		name := rest[:a]
		rest = rest[a+1:]
		b := strings.IndexByte(rest, 0)
		value := rest[:b]
		rest = rest[b+1:]
		key := http.CanonicalHeaderKey(name) // no copy when already canonical
		switch key {
		case "Content-Length":
			t := strings.TrimSpace(value)
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil || n < 0 || hasLength {
				return 0, errors.New("invalid or repeated Content-Length " + strconv.Quote(value))
			}
			hasLength = true
			if t != value || t[0] == '+' || (len(t) > 1 && t[0] == '0') {
				value = strconv.FormatInt(n, 10)
			}
		case "Content-Type":
			hasType = true
		}
		if hopByHop[key] {
			if key == "Connection" && strings.Contains(strings.ToLower(value), "close") {
				h.Set("Connection", "close")
			}
			continue
		}
		add(key, value)
	}
	if !hasType {
		h["Content-Type"] = nil // no sniffing: send none, as the app did
	}
	if s.draining.Load() {
		h.Set("Connection", "close") // the client's next request goes to another worker
	}
	if !hasLength && bodyAllowed(status) {
		switch {
		case file != nil: // a file_wrapper's file always ends the body
			add("Content-Length", strconv.FormatInt(int64(size)+fileN, 10))
		case done && (size > 0 || !head): // an empty HEAD body says nothing of GET's length
			add("Content-Length", strconv.Itoa(size))
		}
	}
	w.WriteHeader(status)
	return status, nil
}

// statusWriter remembers the status and body size for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path reachable through the wrapper.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.n += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// readBody reads the request body before the app is called (a slow client must
// never hold a Python thread): in memory up to MemBody if the memory budget
// has room for it, in an unlinked temp file otherwise, never more than MaxBody. It returns a status and message when
// the request must be refused.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, j *job) (int, string) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return 0, ""
	}
	if r.ContentLength > s.cfg.MaxBody {
		return http.StatusRequestEntityTooLarge, "413 Content Too Large: the body exceeds the limit of " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	// room in memory: the declared length; for a body of unknown length, a
	// first 64 KiB (most are small), more only if free at once
	want := min(s.cfg.MemBody, 64<<10)
	if r.ContentLength > 0 && r.ContentLength <= s.cfg.MemBody {
		want = r.ContentLength
	}
	var mem bytes.Buffer
	if r.ContentLength <= s.cfg.MemBody && s.bodies.acquire(want, s.cfg.BodyWait) {
		j.bodyMem = want
		if r.ContentLength > 0 {
			buf := make([]byte, r.ContentLength)
			if _, err := io.ReadFull(body, buf); err != nil {
				return bodyError(err)
			}
			j.body = buf
			return 0, ""
		}
		// Unknown length: gather what fits in memory, then spill.
		n, err := io.Copy(&mem, io.LimitReader(body, want+1))
		if err != nil {
			return bodyError(err)
		}
		if n > want && want < s.cfg.MemBody && s.bodies.acquire(s.cfg.MemBody-want, 0) {
			j.bodyMem = s.cfg.MemBody
			var more int64
			more, err = io.Copy(&mem, io.LimitReader(body, s.cfg.MemBody-n+1))
			if err != nil {
				return bodyError(err)
			}
			n += more
			want = s.cfg.MemBody
		}
		if n <= want {
			j.body = mem.Bytes()
			return 0, ""
		}
		s.bodies.release(j.bodyMem) // it goes to a file after all
		j.bodyMem = 0
	}
	f, err := os.CreateTemp("", "wisp-body-*")
	if err != nil {
		s.log.Error("cannot spill request body", "err", err)
		return http.StatusInternalServerError, "500 Internal Server Error"
	}
	os.Remove(f.Name())
	j.bodyFile = f
	if _, err := f.Write(mem.Bytes()); err != nil {
		return http.StatusInternalServerError, "500 Internal Server Error"
	}
	if _, err := io.Copy(f, body); err != nil {
		if _, ok := err.(*os.PathError); ok {
			s.log.Error("cannot spill request body", "err", err)
			return http.StatusInternalServerError, "500 Internal Server Error"
		}
		return bodyError(err)
	}
	return 0, ""
}

func bodyError(err error) (int, string) {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge, "413 Content Too Large: the body exceeds the limit of " + strconv.FormatInt(mb.Limit, 10) + " bytes"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusRequestTimeout, "408 Request Timeout: the body did not arrive in time"
	}
	return http.StatusBadRequest, "400 Bad Request: incomplete or malformed request body"
}
