// Package admin is wisp's admin listener (`--admin ADDR`, `[server] admin`):
// the dashboard (/), /metrics (Prometheus), and the health endpoints that load balancers and
// Kubernetes probe, /healthz
// (the process works) and /readyz (it can take traffic: every pool has a
// ready worker and the server is not draining). It is never reachable
// through a site's bindings. Loopback by default; any other address needs a
// bearer token.
//
// What it accepts (docs/admin.md): a request whose Host is a loopback name,
// the listener's own address or one of the operator's admin hosts (against
// DNS rebinding); a state-changing request that a browser does not mark as
// cross-site (against a page that posts to it); with a token, the token on
// everything but the dashboard's page itself and the health endpoints' host
// check.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
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

// Options are the admin listener's settings.
type Options struct {
	// Addr is the address to listen on, host:port.
	Addr string
	// Token is the bearer token every request but the dashboard's page
	// needs. "": none (allowed on a loopback Addr only).
	Token string
	// Hosts are the extra host names (or IP addresses) a request's Host
	// may name, beyond loopback names and the listener's own address
	// (`admin_hosts` in [server], --admin-host).
	Hosts []string
}

// Server is a running admin listener.
type Server struct {
	http *http.Server
	ln   net.Listener
}

// IsLoopback reports whether a host:port address is on the loopback
// interface only (a name other than localhost counts as not loopback).
// It is the one copy of this rule: the configuration's validation uses it.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
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

// CheckHost refuses an admin host (`admin_hosts`, --admin-host) that is not
// a host name or an IP address: a port, a scheme, a path or a wildcard.
func CheckHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty admin host: want a host name or an IP address, such as admin.example.com")
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return nil
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("admin host %q: want a host name or an IP address, such as admin.example.com (no scheme, port, path or wildcard)", h)
		}
	}
	return nil
}

// Listen serves the admin endpoints of src on o.Addr.
func Listen(o Options, src Source, log *slog.Logger) (*Server, error) {
	if err := Check(o.Addr, o.Token); err != nil {
		return nil, err
	}
	for _, h := range o.Hosts {
		if err := CheckHost(h); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	s := &Server{ln: ln, http: &http.Server{
		Handler: handler(o, ln.Addr(), src), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go s.http.Serve(ln)
	return s, nil
}

// handler is the admin listener's handler: the endpoints of src behind the
// host check, the cross-origin check and the token (when o.Token is set).
func handler(o Options, bound net.Addr, src Source) http.Handler {
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
	if o.Token != "" {
		h = bearer(o.Token, h)
	}
	// A POST that a browser marks as sent by another site (Sec-Fetch-Site,
	// or an Origin that is not the Host) is refused with 403: a page the
	// operator has open cannot stop a pool.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "403 Forbidden: a cross-site request (its Origin or Sec-Fetch-Site names another site); "+
			"the admin listener takes a "+r.Method+" only from its own page or from a client that is not a browser", http.StatusForbidden)
	}))
	h = cop.Handler(h)
	h = noCrossSiteReads(h)
	return hostCheck(o, bound, h)
}

// noCrossSiteReads refuses (403) a request for the API or the metrics that
// a browser marks as sent by another site, whatever its method: a page
// cannot read the answer, but a GET of /api/trace would open a trace
// subscription for each one. The dashboard's own calls are same-origin, and
// clients that are not browsers send no Sec-Fetch-Site.
func noCrossSiteReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if site := r.Header.Get("Sec-Fetch-Site"); (site == "cross-site" || site == "same-site") &&
			(strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics") {
			http.Error(w, "403 Forbidden: a cross-site request (Sec-Fetch-Site: "+site+"); the admin API answers its own page and clients that are not browsers", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
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

// bearer lets through requests with "Authorization: Bearer token" (the
// scheme in any case, RFC 9110 11.1), and the dashboard's page itself
// (GET / carries no token: a browser keeps the #token= fragment to itself;
// the page sends it on its API calls).
func bearer(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		scheme, got, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		// Compared as digests: constant time, and the length is not told.
		sum := sha256.Sum256([]byte(strings.TrimLeft(got, " ")))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wisp admin"`)
			http.Error(w, "401 Unauthorized: this admin listener needs its bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostCheck refuses (421) a request whose Host is not a loopback name, the
// listener's own address (as configured or bound, or the IP the request
// arrived on) or one of o.Hosts: a page that rebinds its own name to this
// address then cannot read it. /healthz and /readyz are not checked, so that
// a load balancer's probe works whatever Host it sends; they tell nothing
// but the health.
func hostCheck(o Options, bound net.Addr, next http.Handler) http.Handler {
	var own []string
	for _, a := range []string{o.Addr, bound.String()} {
		h, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(h); err != nil || h == "" || ip != nil && ip.IsUnspecified() {
			continue // 0.0.0.0 or ::: the IP the request arrived on
		}
		own = append(own, normHost(h))
	}
	for _, h := range o.Hosts {
		own = append(own, normHost(h))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = normHost(host)
		// No Host at all (HTTP/1.0) names the server that was connected
		// to; a browser always sends one.
		if r.Host == "" || loopbackName(host) || slices.Contains(own, host) || arrivedOn(r, host) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, fmt.Sprintf("421 Misdirected Request: this admin listener does not answer to the host %q (it answers to loopback names and its own address). "+
			"To reach it by this name, add it to admin_hosts in [server] (or --admin-host)", r.Host), http.StatusMisdirectedRequest)
	})
}

// normHost is a host name or IP address as compared: lower case, without
// IPv6 brackets or a final dot.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// loopbackName reports whether a (normalized) Host names the loopback
// interface: localhost, *.localhost (RFC 6761), 127.0.0.0/8 or ::1.
func loopbackName(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// arrivedOn reports whether host is the literal IP address the request
// arrived on (a listener bound to 0.0.0.0 or :: answers to each of its
// addresses).
func arrivedOn(r *http.Request, host string) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	h, _, err := net.SplitHostPort(local.String())
	return err == nil && net.ParseIP(h) != nil && normHost(h) == host
}
