// Package control is wisp's control API: JSON over HTTP on a unix socket
// (mode 0600 from its creation). Every CLI command that talks to a running server uses it
// (status, recycle, start, stop, reload, install, remove, trace); the
// endpoints are documented, with an example each, in docs/control-api.md.
//
//	GET   /v1/status                   pools and workers
//	GET   /v1/config                   the whole model, as JSON
//	PUT   /v1/config                   replace it: validated like a file, applied like a reload
//	PATCH /v1/config                   an RFC 7396 merge patch of it, the same way
//	POST  /v1/reload                   re-read the files (main and drop-ins) and apply them
//	POST  /v1/pools/{pool}/recycle     replace a pool's workers, overlapped
//	POST  /v1/pools/{pool}/start       start a stopped pool
//	POST  /v1/pools/{pool}/stop        stop a pool (503 until started)
//	POST  /v1/upgrade                  exec the wisp binary on disk as the next supervisor
//	GET   /v1/trace                    the trace, streamed as JSON lines
//
// A command that changes something answers once it is done: a reload or
// recycle when the new workers are ready, or with the reason they failed.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"wisp/internal/config"
	"wisp/internal/poolstate"
	"wisp/internal/trace"
)

// Target is a server the API controls: a pool supervisor, or an in-process
// server (which answers only status and trace; pool actions and
// configuration changes are refused).
type Target interface {
	Status() poolstate.Status
	Recycle(pool string) error
	StartPool(pool string) error
	StopPool(pool string) error
}

// Options are what the API serves.
type Options struct {
	Target Target
	// Reload re-reads the configuration files and applies them, returning
	// once the new workers are ready or failed.
	Reload func() error
	// Config returns the running model; nil: no configuration (in-process).
	Config func() *config.Config
	// Apply applies a model sent by PUT or PATCH, as a reload does.
	Apply func(*config.Config) error
	// Trace streams the trace.
	Trace func(ctx context.Context, f trace.Filter, out func(trace.Line) error) error
	// Upgrade starts the binary on disk as the next supervisor, handing it
	// the sockets, and answers once it serves (what it answers: its pid and
	// build) or failed (the running one keeps serving); nil: refused.
	Upgrade func() (any, error)
	Log     *slog.Logger
	// Listener is the control socket inherited from the previous
	// supervisor of an upgrade, already at the path (nil: create it).
	Listener *net.UnixListener
}

// Server serves the control API.
type Server struct {
	http *http.Server
	ln   *net.UnixListener
	path string
	file os.FileInfo // the socket file, removed at Close if still there (nil: handed over)
}

// maxBody bounds a PUT or PATCH body.
const maxBody = 8 << 20

// Listen serves the API on the unix socket path, created with mode 0600.
// A socket nothing answers on there is replaced; anything else there is an
// error naming path (see listenSocket).
func Listen(path string, o Options) (*Server, error) {
	ln, fi, err := o.Listener, os.FileInfo(nil), error(nil)
	if ln != nil {
		// an upgrade's: the socket file is the previous supervisor's,
		// the same socket, and now this one's to remove at Close
		fi, err = os.Lstat(path)
	} else {
		ln, fi, err = listenSocket(path)
	}
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, o.Target.Status(), nil) })
	for _, verb := range []string{"recycle", "start", "stop"} {
		mux.HandleFunc("POST /v1/pools/{pool}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			pool := r.PathValue("pool")
			reply(w, map[string]string{"pool": pool, "done": verb}, PoolAction(o.Target, verb, pool))
		})
	}
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if o.Reload == nil {
			reply(w, nil, errors.New("this server has no configuration to reload (in-process wisp run)"))
			return
		}
		reply(w, map[string]string{"reloaded": "ok"}, o.Reload())
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		if o.Config == nil {
			reply(w, nil, errors.New("this server has no configuration model (in-process wisp run)"))
			return
		}
		m, err := o.Config().Map()
		reply(w, m, err)
	})
	change := func(w http.ResponseWriter, r *http.Request) {
		if o.Config == nil || o.Apply == nil {
			reply(w, nil, errors.New("this server has no configuration model (in-process wisp run)"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			reply(w, nil, err)
			return
		}
		cur := o.Config()
		source := r.Method + " /v1/config"
		var nc *config.Config
		if r.Method == http.MethodPut {
			nc, err = config.FromJSON(source, cur.Dir, body)
		} else {
			var doc, patch map[string]any
			if doc, err = cur.Map(); err == nil {
				if patch, err = config.DecodeJSON(body); err != nil {
					err = &config.Error{File: source, Msg: "not a JSON object: " + err.Error()}
				} else {
					nc, err = config.FromMap(source, cur.Dir, config.MergePatch(doc, patch))
				}
			}
		}
		if err != nil {
			invalid(w, err)
			return
		}
		nc.File = cur.File
		if err := o.Apply(nc); err != nil {
			reply(w, nil, err)
			return
		}
		m, err := nc.Map()
		reply(w, m, err)
	}
	mux.HandleFunc("PUT /v1/config", change)
	mux.HandleFunc("PATCH /v1/config", change)
	mux.HandleFunc("GET /v1/trace", func(w http.ResponseWriter, r *http.Request) {
		if o.Trace == nil {
			reply(w, nil, errors.New("no trace"))
			return
		}
		q := r.URL.Query()
		f := trace.Filter{Site: q.Get("site"), Vdir: q.Get("vdir"), Pool: q.Get("pool")}
		if s := q.Get("since"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				invalid(w, &config.Error{File: "GET /v1/trace", Key: "since", Msg: fmt.Sprintf("%q: want a duration such as 30s or 5m", s)})
				return
			}
			f.Since = time.Now().Add(-d)
		}
		StreamTrace(w, r, f, o.Trace)
	})
	mux.HandleFunc("POST /v1/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if o.Upgrade == nil {
			reply(w, nil, errors.New("this server cannot upgrade itself"))
			return
		}
		v, err := o.Upgrade()
		reply(w, v, err)
	})
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Server{ln: ln, path: path, file: fi, http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go s.http.Serve(ln)
	return s, nil
}

// PoolAction carries out a pool verb: recycle, start or stop.
func PoolAction(t Target, verb, pool string) error {
	switch verb {
	case "recycle":
		return t.Recycle(pool)
	case "start":
		return t.StartPool(pool)
	case "stop":
		return t.StopPool(pool)
	}
	return fmt.Errorf("unknown pool action %q: want recycle, start or stop", verb)
}

// StreamTrace answers r with the trace lines src gives, as JSON lines,
// flushed one by one, until the client goes away.
func StreamTrace(w http.ResponseWriter, r *http.Request, f trace.Filter,
	src func(ctx context.Context, f trace.Filter, out func(trace.Line) error) error) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	enc := json.NewEncoder(w)
	src(r.Context(), f, func(l trace.Line) error {
		if err := enc.Encode(l); err != nil {
			return err
		}
		return rc.Flush()
	})
}

// Close stops the API and removes its socket (unless another file took
// its place meanwhile).
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
	if s.file != nil {
		removeSocket(s.path, s.file)
	}
}

// DupFD returns a close-on-exec duplicate of the control socket's
// descriptor, to hand to the next supervisor of an upgrade (the caller
// closes it). The socket stays non-blocking (no os.File.Fd).
func (s *Server) DupFD() (int, error) {
	sc, err := s.ln.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := sc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return nfd, derr
}

// HandOver stops accepting on the control socket, which the next
// supervisor of an upgrade serves now: the calls under way are answered,
// and Close leaves the socket file, now the next one's, in place.
func (s *Server) HandOver() {
	s.file = nil
	s.ln.Close()
}

// Problem is one configuration problem in an error answer: the same
// file, line, key and constraint as the CLI prints.
type Problem struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Key    string `json:"key,omitempty"`
	Msg    string `json:"msg"`
}

// ErrorBody is the answer of a request that failed.
type ErrorBody struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
}

func errorBody(err error) ErrorBody {
	b := ErrorBody{Error: err.Error()}
	for _, p := range config.Problems(err) {
		b.Problems = append(b.Problems, Problem{File: p.File, Line: p.Line, Column: p.Column, Key: p.Key, Msg: p.Msg})
	}
	return b
}

// invalid answers 400 for a request whose content is refused.
func invalid(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(errorBody(err))
}

// reply answers v, or 409 with the error: the request was understood but
// could not be carried out (a reload whose workers fail, an unknown pool).
func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(errorBody(err))
		return
	}
	json.NewEncoder(w).Encode(v)
}

// client is an HTTP client on the unix socket.
func client(socket string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}}
}

// APIError is an error answer of the API.
type APIError struct{ Body ErrorBody }

func (e *APIError) Error() string { return e.Body.Error }

// Call performs one API request on the socket: body (if not nil) is sent as
// JSON, and the answer is decoded into out.
func Call(socket, method, path string, body, out any) error {
	timeout := 2 * time.Minute
	if method != "GET" {
		timeout = 30 * time.Minute // a reload or recycle answers once its workers are ready (start_timeout)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytesReader(b)
	}
	req, _ := http.NewRequest(method, "http://wisp"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client(socket, timeout).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach wisp on %s (is it running?): %w", socket, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &APIError{e}
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Reachable reports whether a server answers on the socket.
func Reachable(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stream performs a streaming GET (the trace) and calls line for each JSON
// line, until the server ends the stream or ctx ends.
func Stream(ctx context.Context, socket, path string, line func([]byte) error) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://wisp"+path, nil)
	resp, err := client(socket, 0).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach wisp on %s (is it running?): %w", socket, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		data, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &APIError{e}
		}
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := line(raw); err != nil {
			return err
		}
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
