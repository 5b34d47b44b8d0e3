package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"wisp/internal/admin"
	"wisp/internal/cpusched"
	"wisp/internal/listen"
)

// complete fills what depends on the whole file: pool names, the implicit
// "default" pool, and absolute paths.
func (l *loader) complete(c *Config) {
	for name, p := range c.Pools {
		p.Name = name
	}
	for _, s := range c.Sites {
		// A static folder needs no Python: one with no pool of its own (the
		// implicit "default") is served by the pool that routes its site,
		// when the site has an app (Vdir.Pool "").
		hasApp := slices.ContainsFunc(s.Vdirs, func(v *Vdir) bool { return v.Static == "" })
		for _, v := range s.Vdirs {
			if hasApp && v.Static != "" && v.Pool == "default" && c.Pools["default"] == nil {
				v.Pool = ""
			}
		}
	}
	for _, s := range c.Sites {
		for _, v := range s.Vdirs {
			if v.Pool == "default" && c.Pools["default"] == nil {
				c.Pools["default"] = DefaultPool()
				c.Pools["default"].Name = "default"
			}
		}
	}
	if c.Server.ControlSocket != "" {
		c.Server.ControlSocket = l.abs(c.Server.ControlSocket)
	}
	if a := c.Server.AccessLog; a != "-" && a != "off" && a != "" {
		c.Server.AccessLog = l.abs(a)
	}
	for _, p := range c.Pools {
		p.Chdir = l.abs(p.Chdir) // "" is the config's folder
		if strings.Contains(p.Python, "/") {
			p.Python = l.abs(p.Python)
		}
		for i, d := range p.PythonPath {
			if d != "" {
				p.PythonPath[i] = l.abs(d)
			}
		}
	}
	for _, s := range c.Sites {
		for _, v := range s.Vdirs {
			v.App = l.resolveApp(v.App)
			if v.Static != "" {
				v.Static = l.abs(v.Static)
			}
		}
	}
}

func (l *loader) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.dir, p)
}

// resolveApp makes the file of a "file.py[:expr]" or "config:file.ini[#name]"
// target absolute, as wisp_boot.load reads them; module targets are kept.
func (l *loader) resolveApp(t string) string {
	t = strings.TrimSpace(t)
	switch {
	case strings.HasPrefix(t, "config:"):
		file, name, hash := strings.Cut(t[len("config:"):], "#")
		if file == "" {
			return t
		}
		t = "config:" + l.abs(file)
		if hash {
			t += "#" + name
		}
	case strings.HasSuffix(t, ".py"):
		t = l.abs(t)
	default:
		if i := strings.Index(t, ".py:"); i > 0 {
			t = l.abs(t[:i+3]) + t[i+3:]
		}
	}
	return t
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

const nameRule = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 bytes"

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

func (l *loader) validate(c *Config) {
	l.validateServer(c.Server)
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		l.validatePool(keyPath("pools", name), c.Pools[name])
	}
	if len(c.Sites) == 0 {
		// an empty server, as an IIS with no site: the first `wisp install`
		// (or a reload of an edited file) adds one
		l.warnf("sites", "no site is defined: nothing is served until one is (a [[sites]] table with a name, bindings and a [[sites.vdirs]], or wisp install)")
	}
	used := map[string]bool{}
	names := map[string]string{} // site name → its key path
	for i, s := range c.Sites {
		sp := indexPath("sites", i)
		switch {
		case s.Name == "":
			l.errorf(keyPath(sp, "name"), "a site needs a name")
		case !nameRE.MatchString(s.Name):
			l.errorf(keyPath(sp, "name"), "invalid site name %q: use %s", s.Name, nameRule)
		case names[s.Name] != "":
			l.errorf(keyPath(sp, "name"), "site name %q is already used by %s", s.Name, names[s.Name])
		default:
			names[s.Name] = sp
		}
		l.validateBindings(sp, s)
		if s.AccessLogFormat != "" {
			if err := checkLogFormat(s.AccessLogFormat); err != "" {
				l.errorf(keyPath(sp, "access_log_format"), "%s", err)
			}
		}
		if a := s.AccessLog; a != "" && a != "-" && a != "off" {
			s.AccessLog = l.abs(a)
		}
		l.validateHostnames(sp, s)
		l.validateTLS(sp, s)
		if len(s.Vdirs) == 0 {
			l.errorf(keyPath(sp, "vdirs"), "site %q has no vdir: add a [[sites.vdirs]] table with a path and an app", s.Name)
		}
		paths := map[string]string{}
		for j, v := range s.Vdirs {
			vp := indexPath(keyPath(sp, "vdirs"), j)
			l.validateVdir(vp, v, c)
			used[v.Pool] = true
			if prev, ok := paths[v.Path]; ok && v.Path != "" {
				l.errorf(keyPath(vp, "path"), "path %q is already used by %s", v.Path, prev)
			} else {
				paths[v.Path] = vp
			}
		}
	}
	l.checkSharedBindings(c.Sites)
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		if !used[name] {
			l.warnf(keyPath("pools", name), "pool %q is not used by any vdir", name)
		}
	}
}

func (l *loader) validateServer(s *Server) {
	if s.ControlSocket == "" {
		l.errorf("server.control_socket", "must be a socket path")
	} else if len(s.ControlSocket) > maxSocketPath {
		l.errorf("server.control_socket", "path %q is %d bytes long, a unix socket path may have at most %d",
			s.ControlSocket, len(s.ControlSocket), maxSocketPath)
	}
	if s.AccessLog == "" {
		l.errorf("server.access_log", `must be "-" (standard output), "off" or a file path`)
	}
	if s.HTTP2MaxStreams < 1 || s.HTTP2MaxStreams > 10000 {
		l.errorf("server.http2_max_streams", "must be from 1 to 10000, got %d", s.HTTP2MaxStreams)
	}
	if err := checkLogFormat(s.AccessLogFormat); err != "" {
		l.errorf("server.access_log_format", "%s", err)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		l.errorf("server.log_level", `must be "debug", "info", "warn" or "error", got %q`, s.LogLevel)
	}
	positive(l, "server.read_header_timeout", s.ReadHeaderTimeout)
	positive(l, "server.read_timeout", s.ReadTimeout)
	positive(l, "server.write_timeout", s.WriteTimeout)
	positive(l, "server.idle_timeout", s.IdleTimeout)
	notNegative(l, "server.graceful_timeout", s.GracefulTimeout)
	notNegative(l, "server.drain_delay", s.DrainDelay)
	for i, p := range s.TrustedProxies {
		if p == "*" {
			continue
		}
		_, perr := netip.ParsePrefix(p)
		_, aerr := netip.ParseAddr(p)
		if perr != nil && aerr != nil {
			l.errorf(indexPath("server.trusted_proxies", i), "invalid %q: want an IP address, a CIDR prefix such as \"10.0.0.0/8\", or \"*\"", p)
		}
	}
	switch s.ForwardedHeaders {
	case "x-forwarded", "forwarded":
	default:
		l.errorf("server.forwarded_headers", `must be "x-forwarded" or "forwarded", got %q`, s.ForwardedHeaders)
	}
	if s.Admin != "" {
		_, _, err := net.SplitHostPort(s.Admin)
		switch {
		case err != nil:
			l.errorf("server.admin", "invalid address %q: want host:port, like \"127.0.0.1:9100\"", s.Admin)
		case s.AdminToken == "" && !admin.IsLoopback(s.Admin):
			l.errorf("server.admin", "address %q is not loopback: set admin_token, so that only those who know it reach the admin listener", s.Admin)
		}
	}
	for i, h := range s.AdminHosts {
		if err := admin.CheckHost(h); err != nil {
			l.errorf(indexPath("server.admin_hosts", i), "%s", err.Error())
		}
	}
}

func (l *loader) validatePool(pp string, p *Pool) {
	key := func(k string) string { return keyPath(pp, k) }
	if !nameRE.MatchString(p.Name) {
		l.errorf(pp, "invalid pool name %q: use %s", p.Name, nameRule)
	}
	between(l, key("processes"), p.Processes, 1, 256)
	between(l, key("threads"), p.Threads, 1, 1024)
	switch p.Handler {
	case "threadpool":
	case "simple":
		if p.Threads != 1 && l.defined(key("threads")) {
			l.warnf(key("threads"), "the simple handler runs one Python thread; threads = %d has no effect", p.Threads)
		}
		p.Threads = 1
	default:
		l.errorf(key("handler"), `must be "threadpool" or "simple", got %q`, p.Handler)
	}
	switch p.Loop {
	case "", "auto", "asyncio", "uvloop":
	default:
		l.errorf(key("loop"), `must be "auto", "asyncio" or "uvloop", got %q`, p.Loop)
	}
	if !cpusched.Valid(p.SchedPolicy) {
		l.errorf(key("sched_policy"), `must be "batch" or "normal", got %q`, p.SchedPolicy)
	}
	if strings.ContainsRune(p.Python, 0) {
		l.errorf(key("python"), "must not contain a NUL byte")
	}
	if strings.ContainsRune(p.Chdir, 0) {
		l.errorf(key("chdir"), "must not contain a NUL byte")
	}
	for i, d := range p.PythonPath {
		if d == "" || strings.ContainsRune(d, 0) {
			l.errorf(indexPath(key("pythonpath"), i), "must be a non-empty folder path without NUL bytes")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			l.errorf(keyPath(key("env"), k), "invalid environment variable name %q: must be non-empty, without '=' or NUL", k)
		} else if strings.ContainsRune(p.Env[k], 0) {
			l.errorf(keyPath(key("env"), k), "must not contain a NUL byte")
		}
	}
	atLeast(l, key("max_requests"), p.MaxRequests, 0)
	if p.MaxRequests > 0 {
		between(l, key("max_requests_jitter"), p.MaxRequestsJitter, 0, p.MaxRequests)
	} else if atLeast(l, key("max_requests_jitter"), p.MaxRequestsJitter, 0) && p.MaxRequestsJitter > 0 {
		l.warnf(key("max_requests_jitter"), "has no effect without max_requests")
	}
	softOK := atLeast(l, key("max_rss_mb"), p.MaxRSSMB, 0)
	if atLeast(l, key("max_rss_hard_mb"), p.MaxRSSHardMB, 0) && softOK &&
		p.MaxRSSMB > 0 && p.MaxRSSHardMB > 0 && p.MaxRSSHardMB < p.MaxRSSMB {
		l.errorf(key("max_rss_hard_mb"), "must be at least max_rss_mb (%d), got %d", p.MaxRSSMB, p.MaxRSSHardMB)
	}
	notNegative(l, key("max_uptime"), p.MaxUptime)
	notNegative(l, key("idle_timeout"), p.IdleTimeout)
	notNegative(l, key("request_timeout"), p.RequestTimeout)
	positive(l, key("start_timeout"), p.StartTimeout)
	notNegative(l, key("graceful_timeout"), p.GracefulTimeout)
	between(l, key("rapid_fail_max"), p.RapidFailMax, 1, 1000)
	positive(l, key("rapid_fail_window"), p.RapidFailWindow)
	if p.User != "" && !validAccount(p.User) {
		l.errorf(key("user"), "invalid user %q: want a user name or a numeric uid", p.User)
	}
	if p.Group != "" && !validAccount(p.Group) {
		l.errorf(key("group"), "invalid group %q: want a group name or a numeric gid", p.Group)
	}
	between(l, key("queue"), p.Queue, 1, 1000000)
	if p.MaxBody <= 0 {
		l.errorf(key("max_body"), "must be positive, got %d", p.MaxBody)
	}
	if p.MinWriteRate < 0 {
		l.errorf(key("min_write_rate"), "must be 0 (none) or more bytes per second, got %d", p.MinWriteRate)
	}
	if p.MaxSpill <= 0 {
		l.errorf(key("max_spill"), "must be positive, got %d", p.MaxSpill)
	}
	if p.MaxHeaderBytes < 1<<10 || p.MaxHeaderBytes > 16<<20 {
		l.errorf(key("max_header_bytes"), "must be between 1KiB and 16MiB, got %d", p.MaxHeaderBytes)
	}
	if p.WebSocketMaxMessage <= 0 {
		l.errorf(key("websocket_max_message"), "must be a positive size, like \"16MiB\", got %d", p.WebSocketMaxMessage)
	}
	if p.WebSocketPingInterval < 0 {
		l.errorf(key("websocket_ping_interval"), "must not be negative (\"0s\" sends no pings), got %s", p.WebSocketPingInterval)
	}
	positive(l, key("websocket_ping_timeout"), p.WebSocketPingTimeout)
}

var accountRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$`)

// validAccount checks the syntax of a user or group: a name, or a numeric id
// below 2^32-1 (which means "no id" to the kernel).
func validAccount(s string) bool {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return n < 1<<32-1
	}
	return accountRE.MatchString(s)
}

func between(l *loader, p string, v, lo, hi int) bool {
	if v < lo || v > hi {
		l.errorf(p, "must be between %d and %d, got %d", lo, hi, v)
		return false
	}
	return true
}

func atLeast(l *loader, p string, v, lo int) bool {
	if v < lo {
		l.errorf(p, "must be at least %d, got %d", lo, v)
		return false
	}
	return true
}

func positive(l *loader, p string, d Duration) {
	if d <= 0 {
		l.errorf(p, "must be a positive duration, got %s", d)
	}
}

func notNegative(l *loader, p string, d Duration) {
	if d < 0 {
		l.errorf(p, "must not be negative, got %s", d)
	}
}

func (l *loader) validateVdir(vp string, v *Vdir, c *Config) {
	if v.Path == "" && !l.defined(keyPath(vp, "path")) {
		l.errorf(vp, `a vdir needs a path (a URL prefix like "/" or "/api")`)
	} else if path, err := cleanVdirPath(v.Path); err != nil {
		l.errorf(keyPath(vp, "path"), "%v", err)
		v.Path = ""
	} else {
		v.Path = path
	}
	app := strings.TrimSpace(v.App)
	if v.Static != "" || l.defined(keyPath(vp, "static")) {
		if app != "" {
			l.errorf(keyPath(vp, "static"), "a vdir serves an app or a static folder, not both")
		} else if v.Static == "" {
			l.errorf(keyPath(vp, "static"), "must name a folder")
		} else if st, err := os.Stat(v.Static); err != nil || !st.IsDir() {
			l.errorf(keyPath(vp, "static"), "folder %s: not found or not a folder", v.Static)
		}
		app = "static" // checked above
	}
	switch {
	case app == "" && !l.defined(keyPath(vp, "app")):
		l.errorf(vp, `a vdir needs an app ("module:callable", "file.py" or "config:file.ini")`)
	case app == "":
		l.errorf(keyPath(vp, "app"), "must not be empty")
	case app == "config:" || strings.HasPrefix(app, "config:#"):
		l.errorf(keyPath(vp, "app"), "target %q names no ini file", v.App)
	case strings.ContainsRune(app, 0):
		l.errorf(keyPath(vp, "app"), "must not contain a NUL byte")
	}
	if c.Pools[v.Pool] == nil && (v.Pool != "" || v.Static == "") {
		defined := slices.Sorted(maps.Keys(c.Pools))
		if c.Pools["default"] == nil {
			defined = append([]string{"default"}, defined...)
		}
		l.errorf(keyPath(vp, "pool"), "pool %q is not defined (pools: %s)", v.Pool, strings.Join(defined, ", "))
	}
	notNegative(l, keyPath(vp, "request_timeout"), v.RequestTimeout)
	if v.MaxBody < 0 {
		l.errorf(keyPath(vp, "max_body"), "must not be negative, got %d", v.MaxBody)
	}
	if v.MaxConcurrent < 0 {
		l.errorf(keyPath(vp, "max_concurrent"), "must not be negative, got %d", v.MaxConcurrent)
	}
	if v.Static != "" && (v.MaxBody != 0 || v.MaxConcurrent != 0) {
		l.errorf(vp, "max_body and max_concurrent apply to an app's vdir, not to a static folder")
	}
	switch v.Interface {
	case "", "auto", "wsgi", "asgi":
	default:
		l.errorf(keyPath(vp, "interface"), `must be "auto", "wsgi" or "asgi", got %q`, v.Interface)
	}
	switch v.Lifespan {
	case "", "auto", "on", "off":
	default:
		l.errorf(keyPath(vp, "lifespan"), `must be "auto", "on" or "off", got %q`, v.Lifespan)
	}
	if v.Static != "" && (v.Interface != "" || v.Lifespan != "") {
		l.errorf(vp, "interface and lifespan apply to an app's vdir, not to a static folder")
	}
	switch {
	case l.defined(keyPath(vp, "dotfiles")) && v.Static == "":
		l.errorf(keyPath(vp, "dotfiles"), "applies to a static folder, not to an app's vdir")
	case v.Dotfiles == "" && v.Static != "":
		v.Dotfiles = "deny"
	case v.Dotfiles != "" && v.Dotfiles != "deny" && v.Dotfiles != "allow":
		l.errorf(keyPath(vp, "dotfiles"), `must be "deny" or "allow", got %q`, v.Dotfiles)
	}
}

// validateTLS checks a site's tls table (files or ACME), redirect_http and
// the scheme of its bindings.
func (l *loader) validateTLS(sp string, s *Site) {
	t := s.TLS
	if t == nil {
		if s.RedirectHTTP {
			l.errorf(keyPath(sp, "redirect_http"), "redirects plain HTTP to https, but the site has no tls")
		}
		for i, b := range s.Bindings {
			if scheme, _ := SplitBinding(b); scheme == "https" {
				l.errorf(indexPath(keyPath(sp, "bindings"), i), `binding %q is https, but the site has no tls = { cert = "...", key = "..." } or { acme = true }`, b)
			}
		}
		return
	}
	tp := keyPath(sp, "tls")
	switch {
	case t.ACME && (t.Cert != "" || t.Key != ""):
		l.errorf(tp, "a site's certificate comes from files (cert, key) or from ACME (acme = true), not both")
	case t.ACME:
		if len(s.Hostnames) == 0 {
			l.errorf(tp, "acme = true needs the site's hostnames: they are the names the certificate is for")
		}
		for i, h := range s.Hostnames {
			switch {
			case strings.HasPrefix(h, "*."):
				l.errorf(indexPath(keyPath(sp, "hostnames"), i), "%q: ACME certificates for wildcard names need the DNS-01 challenge, which wisp does not answer; list the names, or give tls = { cert, key }", h)
			case netipOK(h):
				l.errorf(indexPath(keyPath(sp, "hostnames"), i), "%q: ACME certifies host names, not IP addresses", h)
			}
		}
		if t.CA != "" {
			if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
				l.errorf(keyPath(tp, "ca"), "%q: want the https URL of the CA's ACME directory, like %q", t.CA, "https://acme-v02.api.letsencrypt.org/directory")
			}
		}
		if t.CARoot != "" {
			t.CARoot = l.abs(t.CARoot)
			if raw, err := os.ReadFile(t.CARoot); err != nil {
				l.errorf(keyPath(tp, "ca_root"), "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(raw) {
				l.errorf(keyPath(tp, "ca_root"), "%s holds no PEM certificate", t.CARoot)
			}
		}
		if t.Storage != "" {
			t.Storage = l.abs(t.Storage)
		}
		if t.Email != "" && !strings.Contains(t.Email, "@") {
			l.errorf(keyPath(tp, "email"), "%q is not an email address", t.Email)
		}
	case t.Cert == "" || t.Key == "":
		l.errorf(tp, `want both files, tls = { cert = "site.crt", key = "site.key" }, or tls = { acme = true, email = "you@example.com" }`)
	default:
		if t.Email != "" || t.CA != "" || t.CARoot != "" || t.Storage != "" {
			l.errorf(tp, "email, ca, ca_root and storage are ACME settings: add acme = true, or leave them out")
		}
		t.Cert, t.Key = l.abs(t.Cert), l.abs(t.Key)
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			l.errorf(tp, "the certificate %s with key %s does not load: %v", t.Cert, t.Key, err)
		}
	}
	plain := 0
	for _, b := range s.Bindings {
		if !s.BindingTLS(b) {
			plain++
		}
	}
	if s.RedirectHTTP && plain == 0 {
		l.errorf(keyPath(sp, "redirect_http"), `redirects the site's plain bindings to https, but it has none: add one, like "http://:80"`)
	}
}

func netipOK(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// cleanVdirPath checks a URL prefix and drops its trailing slash.
func cleanVdirPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must start with /", p)
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '?' || r == '#' || r == '%' }); i >= 0 {
		return "", fmt.Errorf("path %q must not contain %q", p, p[i:i+1])
	}
	q := strings.TrimSuffix(p, "/")
	if q == "" {
		return "/", nil
	}
	for _, seg := range strings.Split(q[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("path %q must not have empty, . or .. segments", p)
		}
	}
	return q, nil
}

// binding is a parsed "host:port".
type binding struct {
	site, index int
	text        string
	scheme      string // "http", "https" or "" (see SplitBinding)
	host        string // canonical: lower case, IPs in netip form; "" for all interfaces
	port        int
}

func (b binding) overlaps(o binding) bool {
	return b.port == o.port && b.port != 0 && (b.host == o.host || b.host == "" || o.host == "")
}

// SplitBinding splits a binding into its scheme, "http" or "https" when it
// is written "http://:80" or "https://:443" ("" without one), and its
// address ("host:port" or "unix:PATH").
func SplitBinding(b string) (scheme, addr string) { return listen.Scheme(b) }

// BindingTLS reports whether the site serves binding b over TLS: b is
// written https://, or without a scheme on a site with tls.
func (s *Site) BindingTLS(b string) bool {
	scheme, _ := SplitBinding(b)
	return scheme == "https" || scheme == "" && s.TLS != nil
}

func parseBinding(s string) (binding, error) {
	scheme, addr := SplitBinding(s)
	b, err := parseAddr(addr)
	b.text, b.scheme = s, scheme
	return b, err
}

func parseAddr(s string) (binding, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		switch {
		case path == "":
			return binding{}, fmt.Errorf(`invalid binding %q: want unix:PATH, like "unix:/run/wisp/app.sock"`, s)
		case len(path) > maxSocketPath:
			return binding{}, fmt.Errorf("invalid binding %q: a unix socket path may have at most %d bytes, this one has %d", s, maxSocketPath, len(path))
		}
		return binding{text: s, host: s, port: -1}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return binding{}, fmt.Errorf(`invalid binding %q: want host:port, like "127.0.0.1:8080", "[::1]:8080" or ":8080", or unix:PATH`, s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return binding{}, fmt.Errorf("invalid binding %q: the port must be a number from 0 to 65535", s)
	}
	b := binding{text: s, port: n}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.IsUnspecified() {
			b.host = a.Unmap().String()
		}
	} else if host != "" {
		if !validHostname(host, false) {
			return binding{}, fmt.Errorf("invalid binding %q: %q is not an IP address or a host name", s, host)
		}
		b.host = strings.ToLower(host)
	}
	return b, nil
}

func (l *loader) validateBindings(sp string, s *Site) {
	bp := keyPath(sp, "bindings")
	if len(s.Bindings) == 0 {
		l.errorf(bp, `site %q has no binding: add bindings = ["127.0.0.1:8080"]`, s.Name)
	}
	var seen []binding
	for i, text := range s.Bindings {
		_, addr := SplitBinding(text)
		if path, ok := strings.CutPrefix(addr, "unix:"); ok && path != "" && !filepath.IsAbs(path) {
			text = strings.TrimSuffix(text, addr) + "unix:" + filepath.Join(l.dir, path)
			s.Bindings[i] = text
		}
		b, err := parseBinding(text)
		if err != nil {
			l.errorf(indexPath(bp, i), "%v", err)
			continue
		}
		for _, o := range seen {
			if b.host == o.host && b.port == o.port {
				l.errorf(indexPath(bp, i), "binding %q is listed twice (also %s)", text, indexPath(bp, o.index))
				break
			}
			if b.overlaps(o) {
				l.errorf(indexPath(bp, i), "binding %q overlaps %q (%s) of the same site", text, o.text, indexPath(bp, o.index))
				break
			}
		}
		b.index = i
		seen = append(seen, b)
	}
}

// validHostname checks a DNS name; wildcard allows a leading "*.".
func validHostname(h string, wildcard bool) bool {
	if wildcard {
		h = strings.TrimPrefix(h, "*.")
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (l *loader) validateHostnames(sp string, s *Site) {
	hp := keyPath(sp, "hostnames")
	seen := map[string]int{}
	for i, h := range s.Hostnames {
		if _, err := netip.ParseAddr(h); err != nil && !validHostname(h, true) {
			l.errorf(indexPath(hp, i), `invalid host name %q: want a name like "example.com" or "*.example.com", without port`, h)
			continue
		}
		k := strings.ToLower(strings.TrimSuffix(h, "."))
		if j, ok := seen[k]; ok { // sameHost
			l.errorf(indexPath(hp, i), "host name %q is listed twice (also %s)", h, indexPath(hp, j))
			continue
		}
		seen[k] = i
	}
}

// sameHost compares host names as DNS does: without case or trailing dot.
func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// checkSharedBindings applies the IIS rule to bindings (or overlapping
// wildcard and specific addresses) claimed by several sites: each site
// needs its own host names, and at most one may have none.
func (l *loader) checkSharedBindings(sites []*Site) {
	var all []binding
	for i, s := range sites {
		for j, text := range s.Bindings {
			if b, err := parseBinding(text); err == nil {
				b.site, b.index = i, j
				all = append(all, b)
			}
		}
	}
	reported := map[[2]int]bool{}
	for x, b := range all {
		for _, a := range all[:x] {
			if a.site == b.site || !a.overlaps(b) || reported[[2]int{a.site, b.site}] {
				continue
			}
			sa, sb := sites[a.site], sites[b.site]
			where := indexPath(keyPath(indexPath("sites", a.site), "bindings"), a.index)
			verb := "is already claimed by"
			if a.text != b.text {
				verb = fmt.Sprintf("overlaps %q of", a.text)
			}
			bp := indexPath(keyPath(indexPath("sites", b.site), "bindings"), b.index)
			if ta, tb := sa.BindingTLS(a.text), sb.BindingTLS(b.text); ta != tb {
				reported[[2]int{a.site, b.site}] = true
				l.errorf(bp, "binding %q %s site %q (%s), which serves it %s: sites sharing a binding all serve it over TLS or all without",
					b.text, verb, sa.Name, where, map[bool]string{true: "over TLS", false: "without TLS"}[ta])
				continue
			}
			if sa.ProxyProtocol != sb.ProxyProtocol {
				reported[[2]int{a.site, b.site}] = true
				l.errorf(bp, "binding %q %s site %q (%s), and only one of them has proxy_protocol: sites sharing a binding agree on it",
					b.text, verb, sa.Name, where)
				continue
			}
			if len(sa.Hostnames) == 0 && len(sb.Hostnames) == 0 {
				reported[[2]int{a.site, b.site}] = true
				l.errorf(indexPath(keyPath(indexPath("sites", b.site), "bindings"), b.index),
					"binding %q %s site %q (%s); sites sharing a binding need distinct hostnames (one of them may have none)",
					b.text, verb, sa.Name, where)
				continue
			}
			for k, h := range sb.Hostnames {
				if slices.ContainsFunc(sa.Hostnames, func(o string) bool { return sameHost(o, h) }) {
					reported[[2]int{a.site, b.site}] = true
					l.errorf(indexPath(keyPath(indexPath("sites", b.site), "hostnames"), k),
						"host name %q on binding %q is already claimed by site %q (%s)", h, b.text, sa.Name, where)
				}
			}
		}
	}
}

// checkLogFormat is the problem with an access log format, or "".
func checkLogFormat(f string) string {
	switch f {
	case "combined", "w3c", "json":
		return ""
	}
	return fmt.Sprintf(`must be "combined", "w3c" or "json", got %q`, f)
}
