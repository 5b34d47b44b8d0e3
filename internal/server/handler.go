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

// ServeHTTP routes one request to its app, runs it on a Python thread and
// writes the response as the thread hands it over.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &statusWriter{ResponseWriter: w}
	if s.access != nil {
		start := time.Now()
		defer func() { s.access.log(r, rw.status, rw.n, start) }()
	}
	s.serve(rw, r)
}

func (s *Server) serve(w *statusWriter, r *http.Request) {
	rawPath, query := splitURI(r)
	path := unescapePath(rawPath)
	m, pathInfo := s.route(path)
	if m == nil {
		plain(w, http.StatusNotFound, "404 Not Found: no application is mounted at this path")
		return
	}
	j := getJob()
	defer putJob(j)
	if status, msg := s.readBody(w, r, j); status != 0 {
		if j.bodyFile != nil {
			j.bodyFile.Close()
		}
		w.Header().Set("Connection", "close")
		plain(w, status, msg)
		return
	}
	if j.bodyFile != nil {
		defer j.bodyFile.Close()
	}
	j.app = m.app
	s.environ(&j.env, r, m.prefix, pathInfo, rawPath, query, int64(len(j.body)), j.bodyFile)
	if !s.pool.submit(j) {
		w.Header().Set("Retry-After", "1")
		plain(w, http.StatusServiceUnavailable, "503 Service Unavailable: all Python threads are busy and the queue is full")
		s.log.Warn("request queue full: answered 503", "path", r.URL.Path, "queue", s.cfg.Queue)
		return
	}
	s.respond(w, r, j)
}

// respond writes the events of j until the done event, watching the client.
func (s *Server) respond(w *statusWriter, r *http.Request, j *job) {
	ctx := r.Context()
	wrote := false // the status line is written
	allowed := true
	rc := http.NewResponseController(w.ResponseWriter)
	for {
		var ev event
		select {
		case ev = <-j.events:
		case <-ctx.Done():
			j.goneNow()
			ev = <-j.events
		}
		if j.aborted.Load() {
			putBuf(ev.data)
			if ev.file != nil {
				ev.file.Close()
			}
			if ev.done {
				return
			}
			continue
		}
		if !wrote {
			if ev.done && (j.code == pyembed.ErrEarly || j.code == pyembed.ErrLate) {
				s.appError(r, j, false)
				putBuf(ev.data)
				plain(w, http.StatusInternalServerError, "500 Internal Server Error")
				return
			}
			status, err := s.writeHeader(w, r, j.hdr, ev)
			if err != nil {
				putBuf(ev.data)
				s.log.Error("bad response from app", "method", r.Method, "uri", r.RequestURI, "err", err)
				if ev.file != nil {
					ev.file.Close()
				}
				if !ev.done {
					j.goneNow()
					drain(j)
				}
				plain(w, http.StatusInternalServerError, "500 Internal Server Error")
				return
			}
			wrote = true
			allowed = bodyAllowed(status)
		}
		if err := s.writeEvent(w, rc, ev, allowed); err != nil {
			j.goneNow()
			if !ev.done {
				drain(j)
			}
			panic(http.ErrAbortHandler)
		}
		if ev.done {
			if j.code == pyembed.ErrLate {
				s.appError(r, j, true)
				panic(http.ErrAbortHandler) // never end a broken body as if complete
			}
			return
		}
		rc.Flush()
	}
}

// drain waits for the app to finish after the client went away.
func drain(j *job) {
	for ev := range j.events {
		putBuf(ev.data)
		if ev.file != nil {
			ev.file.Close()
		}
		if ev.done {
			return
		}
	}
}

func (s *Server) appError(r *http.Request, j *job, late bool) {
	msg := "app raised an exception; answered 500"
	if late {
		msg = "app raised an exception after the response started; connection aborted"
	}
	s.log.Error(msg, "method", r.Method, "uri", r.RequestURI, "traceback", j.tb)
}

func (s *Server) writeEvent(w *statusWriter, rc *http.ResponseController, ev event, allowed bool) error {
	if len(ev.data) > 0 {
		if allowed {
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := w.Write(ev.data); err != nil {
				putBuf(ev.data)
				if ev.file != nil {
					ev.file.Close()
				}
				return err
			}
		}
	}
	putBuf(ev.data)
	if ev.file != nil {
		defer ev.file.Close()
		if allowed {
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout + time.Duration(ev.fileN>>20)*time.Second))
			if _, err := io.Copy(w, io.LimitReader(ev.file, ev.fileN)); err != nil {
				return err
			}
		}
	}
	return nil
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// hopByHop are the response headers a WSGI app must not send (PEP 3333);
// framing is the server's job.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Authenticate": false,
}

// writeHeader applies the app's status and headers ("status\0name\0value\0...").
func (s *Server) writeHeader(w *statusWriter, r *http.Request, hdr []byte, first event) (int, error) {
	i := bytes.IndexByte(hdr, 0)
	if i < 3 {
		return 0, errors.New("no status")
	}
	status, _ := strconv.Atoi(string(hdr[:3]))
	if status < 200 {
		return 0, errors.New("status " + string(hdr[:i]) + ": an informational status cannot end a response")
	}
	h := w.Header()
	rest := hdr[i+1:]
	hasLength, hasType := false, false
	for len(rest) > 0 {
		a := bytes.IndexByte(rest, 0)
		name := string(rest[:a])
		rest = rest[a+1:]
		b := bytes.IndexByte(rest, 0)
		value := string(rest[:b])
		rest = rest[b+1:]
		key := http.CanonicalHeaderKey(name)
		switch key {
		case "Content-Length":
			n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil || n < 0 || hasLength {
				return 0, errors.New("invalid or repeated Content-Length " + strconv.Quote(value))
			}
			hasLength = true
			value = strconv.FormatInt(n, 10)
		case "Content-Type":
			hasType = true
		}
		if hopByHop[key] {
			if key == "Connection" && strings.Contains(strings.ToLower(value), "close") {
				h.Set("Connection", "close")
			}
			continue
		}
		h[key] = append(h[key], value)
	}
	if !hasType {
		h["Content-Type"] = nil // no sniffing: send none, as the app did
	}
	if !hasLength && bodyAllowed(status) {
		switch {
		case first.file != nil && len(first.data) == 0:
			h["Content-Length"] = []string{strconv.FormatInt(first.fileN, 10)}
		case first.done:
			h["Content-Length"] = []string{strconv.Itoa(len(first.data))}
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
// never hold a Python thread): in memory up to MemBody, in an unlinked temp
// file beyond, never more than MaxBody. It returns a status and message when
// the request must be refused.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, j *job) (int, string) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return 0, ""
	}
	if r.ContentLength > s.cfg.MaxBody {
		return http.StatusRequestEntityTooLarge, "413 Content Too Large: the body exceeds the limit of " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	var buf []byte
	if r.ContentLength > 0 && r.ContentLength <= s.cfg.MemBody {
		buf = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			return bodyError(err)
		}
		j.body = buf
		return 0, ""
	}
	// Unknown or large length: gather up to MemBody, then spill.
	var mem bytes.Buffer
	n, err := io.Copy(&mem, io.LimitReader(body, s.cfg.MemBody+1))
	if err != nil {
		return bodyError(err)
	}
	if n <= s.cfg.MemBody {
		j.body = mem.Bytes()
		return 0, ""
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
