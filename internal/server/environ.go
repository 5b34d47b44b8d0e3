package server

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"wisp/internal/h1"
	"wisp/internal/pyembed"
)

// environ fills e with the request's CGI variables (PEP 3333); the wsgi.*
// constants and wsgi.input are added on the Python side.
func (s *Server) environ(e *pyembed.Environ, r *h1.Request, scriptName, pathInfo string, bodyLen int64, bodyFile *os.File) {
	e.Add("REQUEST_METHOD", r.Method)
	e.Add("SCRIPT_NAME", scriptName)
	e.Add("PATH_INFO", pathInfo)
	e.Add("QUERY_STRING", r.Query)
	e.Add("REQUEST_URI", r.Target)
	e.Add("RAW_URI", r.Target)
	proto := r.Proto
	if r.Trusted { // forwarded by another pool's worker: the client's protocol
		if p := r.Header("X-Wisp-Protocol"); p == "HTTP/2.0" {
			proto = p
		}
	}
	e.Add("SERVER_PROTOCOL", proto)
	if ct := r.Header("Content-Type"); ct != "" {
		e.Add("CONTENT_TYPE", ct)
	}
	if bodyFile != nil {
		if st, err := bodyFile.Stat(); err == nil {
			bodyLen = st.Size()
		}
	}
	if bodyLen > 0 || r.ContentLength != 0 || r.Header("Content-Length") != "" {
		e.Add("CONTENT_LENGTH", strconv.FormatInt(bodyLen, 10))
	}
	var port, name string
	switch a := r.Local.(type) {
	case *net.TCPAddr:
		port = strconv.Itoa(a.Port)
	default:
		if r.Trusted { // a request forwarded from another pool: its X-Wisp-* headers are wisp's
			port = r.Header("X-Wisp-Server-Port")
		} else { // a unix socket binding: the port the client asked for, as a proxy in front sends it
			port = hostPort(r.Host)
		}
	}
	if r.Host != "" {
		e.Add("HTTP_HOST", r.Host)
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			name = strings.Trim(h, "[]")
		} else {
			name = r.Host
		}
	} else if a, ok := r.Local.(*net.TCPAddr); ok {
		name = a.IP.String()
	}
	e.Add("SERVER_NAME", name)
	e.Add("SERVER_PORT", port)
	c := s.clientOf(r)
	addRemote(e, c.remote, c.forwarded)
	if c.scheme == "https" {
		e.Add("wsgi.url_scheme", "https")
		e.Add("HTTPS", "on")
	}
	fields := r.Fields
	skip := skipHeader
	if proto == "HTTP/2.0" {
		// HTTP/2 has no Transfer-Encoding (RFC 9113 8.2.2): one here is the
		// framing internal/h2 gave the body on its way to h1, not the client's
		skip = func(name string) bool { return skipHeader(name) || strings.EqualFold(name, "Transfer-Encoding") }
	}
	if len(fields) > 16 {
		addHeadersMany(e, fields, skip)
		return
	}
	for i, f := range fields {
		name := f.Name
		if skip(name) {
			continue
		}
		v := f.Value
		dup := false
		for _, g := range fields[:i] {
			if strings.EqualFold(g.Name, name) {
				dup = true // joined with its first occurrence
				break
			}
		}
		if dup {
			continue
		}
		for _, g := range fields[i+1:] {
			if strings.EqualFold(g.Name, name) {
				v += joiner(name) + g.Value
			}
		}
		e.AddHeader(name, v)
	}
}

// client is who the app is told sent a request: REMOTE_ADDR (and
// REMOTE_PORT) and wsgi.url_scheme.
type client struct {
	remote    string // "ip:port" of the peer, or a forwarded address (forwarded)
	forwarded bool   // remote came from a trusted proxy's forwarding header
	scheme    string // "http" or "https"
}

// The headers that carry a request's client to the pool it is forwarded to
// (see NewForwarder). They are read only from a pool's internal socket
// (h1.Request.Trusted); the client's own copies are dropped by the forwarder
// and never reach an app (skipHeader).
const (
	hdrRemote = "X-Wisp-Remote-Addr" // client.remote
	hdrScheme = "X-Wisp-Scheme"      // client.scheme
	// hdrClient says the two above are the client as the forwarding worker
	// resolved it ("peer" or "forwarded": client.forwarded), final: the
	// trusted proxies are not applied a second time. Without it (the
	// supervisor's forwarder for an idle pool) remote is the peer.
	hdrClient = "X-Wisp-Client"
	// hdrRequestID is the request id the accepting worker gave the request
	// (requestID), so that the pool that runs it logs and traces it under
	// the same id without adding an X-Request-Id the app would see.
	hdrRequestID = "X-Wisp-Request-Id"
)

// clientOf finds the client of r: the peer, or the address and scheme a
// trusted proxy forwarded; for a request forwarded from another pool, the
// client the forwarding worker found.
func (s *Server) clientOf(r *h1.Request) client {
	c := client{remote: r.RemoteAddr, scheme: "http"}
	if r.TLS {
		c.scheme = "https"
	}
	if r.Trusted { // forwarded by a worker of another pool: the client's own address and scheme
		if fw := r.Header(hdrRemote); fw != "" {
			c.remote = fw
		}
		switch how := r.Header(hdrClient); how {
		case "peer", "forwarded":
			c.forwarded = how == "forwarded"
			if sch := r.Header(hdrScheme); sch == "http" || sch == "https" {
				c.scheme = sch
			}
			return c
		}
		if r.Header(hdrScheme) == "https" {
			c.scheme = "https"
		}
	}
	if len(s.proxies) > 0 && trusts(s.proxies, c.remote) {
		client, sch := forwardedClient(s.proxies, s.cfg.ForwardedHeaders, r)
		if client != "" {
			c.remote, c.forwarded = client, true
		}
		if sch != "" {
			c.scheme = sch
		}
	}
	return c
}

// addHeadersMany adds the HTTP_* variables of a long header list in linear
// time (the pairwise search above would be quadratic: a client could send
// thousands of short headers).
func addHeadersMany(e *pyembed.Environ, fields []h1.Field, skip func(string) bool) {
	type group struct {
		name string
		b    strings.Builder
	}
	index := make(map[string]int, len(fields))
	var groups []*group
	for _, f := range fields {
		if skip(f.Name) {
			continue
		}
		key := strings.ToLower(f.Name)
		if i, ok := index[key]; ok {
			g := groups[i]
			g.b.WriteString(joiner(g.name))
			g.b.WriteString(f.Value)
			continue
		}
		index[key] = len(groups)
		g := &group{name: f.Name}
		g.b.WriteString(f.Value)
		groups = append(groups, g)
	}
	for _, g := range groups {
		e.AddHeader(g.name, g.b.String())
	}
}

// joiner separates the values of a repeated header in its HTTP_* variable.
func joiner(name string) string {
	if strings.EqualFold(name, "Cookie") {
		return "; "
	}
	return ","
}

// skipHeader reports the request headers that do not become HTTP_* variables:
// CONTENT_* are set apart, HTTP_HOST from the target; a name with '_' would
// collide with its '-' twin in HTTP_* (header spoofing), so it is dropped, as
// nginx and gunicorn do.
func skipHeader(name string) bool {
	if strings.IndexByte(name, '_') >= 0 {
		return true
	}
	switch {
	case len(name) == 4:
		return strings.EqualFold(name, "Host")
	case len(name) == 12:
		return strings.EqualFold(name, "Content-Type")
	case len(name) == 14:
		return strings.EqualFold(name, "Content-Length")
	case len(name) > 7:
		return strings.EqualFold(name[:7], "X-Wisp-")
	}
	return false
}

// hostPort is the port of a Host header value, else 80 (CGI wants a
// SERVER_PORT; a request on a unix socket has none of its own).
func hostPort(host string) string {
	if _, p, err := net.SplitHostPort(host); err == nil && p != "" {
		return p
	}
	return "80"
}

// addRemote adds REMOTE_ADDR and REMOTE_PORT from an "ip:port" peer, or
// from a forwarded client's address, which may have no port.
func addRemote(e *pyembed.Environ, remote string, forwarded bool) {
	if forwarded {
		if a, err := netip.ParseAddr(strings.Trim(remote, "[]")); err == nil {
			e.Add("REMOTE_ADDR", a.String())
			return
		}
	}
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		e.Add("REMOTE_ADDR", strings.Trim(remote[:i], "[]"))
		e.Add("REMOTE_PORT", remote[i+1:])
	} else {
		e.Add("REMOTE_ADDR", remote)
	}
}
