// Package control is wisp's control API: JSON over HTTP on a unix socket
// (mode 0600) that the CLI (`wisp status`, `wisp recycle`, `wisp start`,
// `wisp reload`) uses to reach a running `wisp serve`.
package control

import (
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

	"wisp/internal/supervisor"
)

// Target is what the API controls.
type Target interface {
	Status() supervisor.Status
	Recycle(pool string) error
	StartPool(pool string) error
	// AwaitReload waits for the outcome of the latest reload.
	AwaitReload() error
}

// Server serves the control API.
type Server struct {
	http *http.Server
	path string
}

// Listen serves the API for t on the unix socket path; reload is called by
// POST /v1/reload (it re-reads the configuration file), which then waits for
// the new workers (t.AwaitReload). Recycle also answers once its workers are
// ready or failed.
func Listen(path string, t Target, reload func() error, log *slog.Logger) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another wisp is running there", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, t.Status(), nil) })
	mux.HandleFunc("POST /v1/pools/{pool}/recycle", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"recycling": r.PathValue("pool")}, t.Recycle(r.PathValue("pool")))
	})
	mux.HandleFunc("POST /v1/pools/{pool}/start", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"started": r.PathValue("pool")}, t.StartPool(r.PathValue("pool")))
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		err := reload()
		if err == nil {
			err = t.AwaitReload()
		}
		reply(w, map[string]string{"reloaded": "ok"}, err)
	})
	s := &Server{path: path, http: &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go s.http.Serve(ln)
	return s, nil
}

// Close stops the API and removes its socket.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
	os.Remove(s.path)
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// Call performs one API request on the socket and decodes the answer into out.
func Call(socket, method, path string, out any) error {
	timeout := 2 * time.Minute
	if method == "POST" {
		timeout = 30 * time.Minute // a reload or recycle answers once its workers are ready (start_timeout)
	}
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}}
	req, _ := http.NewRequest(method, "http://wisp"+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach wisp on %s (is 'wisp serve' running?): %w", socket, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}
