// Package admin is wisp's admin listener (`--admin ADDR`, `[server] admin`):
// the dashboard (/), /metrics (Prometheus), and the health endpoints that load balancers and
// Kubernetes probe, /healthz
// (the process works) and /readyz (it can take traffic: every pool has a
// ready worker and the server is not draining). It is never reachable
// through a site's bindings. Loopback by default; any other address needs a
// bearer token.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Report is a health answer: OK, and the reasons when not (or details).
type Report struct {
	OK      bool     `json:"ok"`
	Status  string   `json:"status"` // "ok" or "unavailable"
	Reasons []string `json:"reasons,omitempty"`
}

// NewReport makes a Report from its reasons: none means OK.
func NewReport(reasons []string) Report {
	r := Report{OK: len(reasons) == 0, Status: "ok", Reasons: reasons}
	if !r.OK {
		r.Status = "unavailable"
	}
	return r
}

// Source is what the endpoints ask.
type Source interface {
	Health() Report          // /healthz
	Ready() Report           // /readyz
	Metrics() http.Handler   // /metrics (nil: none)
	Dashboard() http.Handler // / and /api/ (nil: none)
}

// Server is a running admin listener.
type Server struct {
	http *http.Server
	ln   net.Listener
}

// IsLoopback reports whether a host:port address is on the loopback
// interface only (a name other than localhost counts as not loopback).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Check refuses an address that is not host:port, and a non-loopback one
// without a token.
func Check(addr, token string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("admin address %q: want host:port, such as 127.0.0.1:9100", addr)
	}
	if !IsLoopback(addr) && token == "" {
		return fmt.Errorf("admin address %q is not loopback: set a bearer token (--admin-token, or admin_token in [server]), so that only those who know it can reach it", addr)
	}
	return nil
}

// Listen serves the admin endpoints of src on addr.
func Listen(addr, token string, src Source, log *slog.Logger) (*Server, error) {
	if err := Check(addr, token); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { write(w, src.Health()) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { write(w, src.Ready()) })
	if h := src.Metrics(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	if h := src.Dashboard(); h != nil {
		mux.Handle("/", h)
	}
	var h http.Handler = mux
	if token != "" {
		h = bearer(token, mux)
	}
	s := &Server{ln: ln, http: &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go s.http.Serve(ln)
	return s, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
}

func write(w http.ResponseWriter, r Report) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !r.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(r)
}

// bearer lets through requests with "Authorization: Bearer token".
func bearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wisp admin"`)
			http.Error(w, "401 Unauthorized: this admin listener needs its bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
