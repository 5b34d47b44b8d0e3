// Package config is the configuration model of `wisp serve -c wisp.toml`:
// sites, their virtual directories, and application pools, in the manner of
// IIS.
//
// A site listens on one or more bindings (host:port) and may be limited to
// some Host names. Its virtual directories (vdirs) map URL prefixes to WSGI
// apps, and each vdir names the pool whose worker processes run its app. A
// pool sets how many processes and Python threads run, which interpreter,
// when workers are recycled and what limits requests meet.
//
//	[server]
//	access_log = "-"
//
//	[pools.default]
//	processes = 2
//	max_requests = 10000
//
//	[pools.flask]
//	python = "/srv/flask/venv"
//	env = { APP_MODE = "prod" }
//
//	[[sites]]
//	name = "main"
//	bindings = ["127.0.0.1:8080"]
//
//	  [[sites.vdirs]]
//	  path = "/"
//	  app = "isapi_app.py"          # pool "default" when not given
//
//	  [[sites.vdirs]]
//	  path = "/flask"
//	  app = "flask_app:app"
//	  pool = "flask"
//
// # Loading
//
// Load and Parse decode strictly (a key the model does not know is an
// error), fill the defaults of the keys the file leaves out (an explicit
// value, even 0, is kept and checked), validate across objects, and make
// relative paths absolute against the config file's folder. All the errors
// of a file are reported at once, sorted by position, each naming the file,
// line, column, key path and constraint:
//
//	wisp.toml:12:1: pools.api.processes: must be between 1 and 256, got 0
//	wisp.toml:20:3: sites[0].vdirs[1].pool: pool "flsk" is not defined (pools: default, flask)
//
// Individual errors are *Error values inside an errors.Join tree.
//
// The same model marshals to JSON (encoding/json) with the TOML key names;
// durations become strings ("30s") and sizes integers (bytes).
//
// # TOML library
//
// The file is decoded with github.com/pelletier/go-toml/v2: first into a
// generic map (its syntax errors carry a line and column), then into the
// model by this package, which walks the document's syntax tree
// (go-toml's unstable.Parser) to learn the line and column of every key,
// array-table element included ("sites[1].vdirs[0]"). That gives positions
// to unknown keys, type errors and cross-object errors alike, and lets every
// error be reported rather than the first. BurntSushi/toml v1.6.0 keeps key
// positions private (and keyed without array indexes), so it could place
// only its own decode errors. The unstable package is outside go-toml's
// semver promise: go.mod pins the version.
package config

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Config is a loaded, validated configuration. Load and Parse return it with
// defaults filled and relative paths resolved; treat it as read-only.
type Config struct {
	// Server holds the process-wide settings ([server]).
	Server *Server `json:"server"`

	// Pools are the application pools ([pools.NAME]), by name. A pool named
	// "default" exists even when the file does not define it, as soon as a
	// vdir uses it (a vdir without pool uses "default").
	Pools map[string]*Pool `json:"pools"`

	// Sites are the sites ([[sites]]) in file order. There is at least one.
	Sites []*Site `json:"sites"`

	// File is the name the configuration was loaded from, as given to Load
	// or Parse. It prefixes error messages.
	File string `json:"-"`

	// Dir is the absolute folder relative paths were resolved against: the
	// folder of File.
	Dir string `json:"-"`

	// Warnings are problems that do not stop loading (a pool no vdir uses, a
	// setting with no effect), formatted like errors.
	Warnings []string `json:"-"`

	// Sources names the file each pool, site and vdir comes from (the main
	// file or a drop-in of wisp.d), by key path: "pools.NAME", "sites[0]",
	// "sites[0].vdirs[1]".
	Sources map[string]string `json:"-"`
}

// Server is the [server] section: the supervisor and the HTTP front end.
type Server struct {
	// ControlSocket is the unix socket of the control API (mode 0600).
	// Default "wisp.sock" in the config file's folder; a relative path is
	// resolved against that folder. After loading it is absolute, and at most
	// 107 bytes long (the limit of a unix socket address).
	ControlSocket string `json:"control_socket"`

	// AccessLog is where requests are logged: "-" for standard output (the
	// default), "off" for nowhere, else a file path (relative to the config
	// file's folder; absolute after loading), appended to.
	AccessLog string `json:"access_log"`

	// AccessLogFormat is the access log's format: "combined" (the
	// default), "w3c" (IIS's W3C Extended format) or "json". A site may set
	// its own.
	AccessLogFormat string `json:"access_log_format"`

	// LogLevel is the error log's level: "debug", "info" (the default),
	// "warn" or "error".
	LogLevel string `json:"log_level"`

	// ReadHeaderTimeout bounds reading a request's line and headers.
	// Default 10s; must be positive.
	ReadHeaderTimeout Duration `json:"read_header_timeout"`

	// ReadTimeout bounds reading a whole request, body included.
	// Default 120s; must be positive.
	ReadTimeout Duration `json:"read_timeout"`

	// WriteTimeout bounds any single write to a client. Default 60s; must be
	// positive.
	WriteTimeout Duration `json:"write_timeout"`

	// IdleTimeout is how long a keep-alive connection waits for its next
	// request. Default 60s; must be positive.
	IdleTimeout Duration `json:"idle_timeout"`

	// GracefulTimeout is how long in-flight requests get to finish when the
	// server stops. Default 30s; 0 closes connections at once.
	GracefulTimeout Duration `json:"graceful_timeout"`

	// DrainDelay is how long the server keeps serving after SIGTERM with
	// /readyz answering 503, before it stops accepting: the time a load
	// balancer (a Kubernetes Service) takes to stop sending it new requests.
	// Default 0: stop accepting at once.
	DrainDelay Duration `json:"drain_delay"`

	// TrustedProxies are the load balancers and reverse proxies in front of
	// wisp: IPs or CIDR prefixes ("10.0.0.0/8"), or "*" for all. From them
	// only, the ForwardedHeaders set REMOTE_ADDR (the right-most address
	// that is not a trusted proxy) and wsgi.url_scheme. Default none.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`

	// ForwardedHeaders is the family of headers the trusted proxies' client
	// address and scheme are read from: "x-forwarded" (X-Forwarded-For and
	// X-Forwarded-Proto, the default: what nginx, HAProxy, Caddy, Traefik
	// and cloud load balancers set) or "forwarded" (RFC 7239 Forwarded).
	// The other family is never read: a proxy passes the client's own copy
	// of it through untouched.
	ForwardedHeaders string `json:"forwarded_headers"`

	// Admin is the admin listener's address, host:port: /healthz and
	// /readyz (never served on a site's bindings). Default "": none.
	Admin string `json:"admin,omitempty"`

	// AdminToken is the bearer token the admin listener requires. Required
	// when Admin is not a loopback address.
	AdminToken string `json:"admin_token,omitempty"`

	// AdminHosts are the host names (or IP addresses) that a request to the
	// admin listener may name in its Host besides loopback names and the
	// listener's own address, such as the name a reverse proxy or the
	// operator's browser uses. Any other Host is refused (421), so that a web
	// page cannot read the admin listener through DNS rebinding. Default none.
	AdminHosts []string `json:"admin_hosts,omitempty"`

	// HTTP2MaxStreams is the HTTP/2 streams a client may have open at once
	// on one connection (SETTINGS_MAX_CONCURRENT_STREAMS); it also bounds
	// the requests one connection runs in the apps at once. Default 100;
	// 1 to 10000.
	HTTP2MaxStreams int `json:"http2_max_streams"`
}

// Pool is an application pool ([pools.NAME]): worker processes with an
// embedded Python each, running the apps of the vdirs that name the pool.
type Pool struct {
	// Name is the pool's key in [pools.NAME]: letters, digits, '_', '-'
	// and '.', starting with a letter or digit, at most 64 bytes.
	Name string `json:"-"`

	// Processes is the number of worker processes. Default 1; 1 to 256.
	Processes int `json:"processes"`

	// Threads is the number of Python threads per process for the
	// "threadpool" handler. Default 4; 1 to 1024. The "simple" handler runs
	// one thread: loading sets Threads to 1 for it (with a warning if the
	// file asked for more).
	Threads int `json:"threads"`

	// Handler is how requests reach Python: "threadpool" (the default; a
	// pool of Threads pinned Python threads) or "simple" (one thread).
	Handler string `json:"handler"`

	// Loop is the asyncio event loop each worker runs its ASGI apps on
	// (one per process, on a Python thread of its own): "auto" (uvloop when
	// it imports, else asyncio), "asyncio" or "uvloop" (a worker whose
	// uvloop does not import fails to start). Default "": auto.
	Loop string `json:"loop,omitempty"`

	// Python is the interpreter: a python executable, a virtualenv folder,
	// or a command looked up on PATH. A value with a '/' is a path (relative
	// to the config file's folder; absolute after loading); write "./venv"
	// for a venv beside the config file, since "venv" is a command name.
	// Default "": the python3 on PATH.
	Python string `json:"python,omitempty"`

	// Chdir is the workers' working folder (relative to the config file's
	// folder). Default, and after loading: absolute, the config file's
	// folder, so module targets ("app:app") beside it import.
	Chdir string `json:"chdir"`

	// PythonPath are folders put first on sys.path, in order (relative to
	// the config file's folder; absolute after loading). Default none.
	PythonPath []string `json:"pythonpath,omitempty"`

	// Env are environment variables set in the workers, over wisp's own
	// environment. Names must be non-empty and contain no '=' or NUL.
	Env map[string]string `json:"env,omitempty"`

	// MaxRequests recycles a worker after it has served this many requests.
	// Default 0: never.
	MaxRequests int `json:"max_requests"`

	// MaxRequestsJitter adds a random 0..MaxRequestsJitter to MaxRequests
	// per worker, so workers do not all recycle at once. Default 0; at most
	// MaxRequests.
	MaxRequestsJitter int `json:"max_requests_jitter"`

	// MaxRSSMB is the soft memory limit, in MiB of resident memory: a worker
	// above it is recycled gracefully (replacement first, then drain).
	// Default 0: no limit.
	MaxRSSMB int `json:"max_rss_mb"`

	// MaxRSSHardMB is the hard memory limit, in MiB of resident memory: a
	// worker above it is killed at once. Default 0: no limit. When both are
	// set it must be at least MaxRSSMB.
	MaxRSSHardMB int `json:"max_rss_hard_mb"`

	// MaxUptime recycles a worker this long after it started.
	// Default 0: never.
	MaxUptime Duration `json:"max_uptime"`

	// IdleTimeout stops all the pool's workers after this long without a
	// request (scale to zero); the next request starts them again.
	// Default 0: never.
	IdleTimeout Duration `json:"idle_timeout"`

	// RequestTimeout bounds one request in Python: on expiry the stuck
	// thread's stack is logged and an exception raised in it; a worker that
	// does not recover is recycled. A vdir may set its own.
	// Default 0: no limit.
	RequestTimeout Duration `json:"request_timeout"`

	// StartTimeout bounds a worker's start, app imports included, until it
	// reports ready. Default 60s; must be positive.
	StartTimeout Duration `json:"start_timeout"`

	// GracefulTimeout is how long a draining worker's in-flight requests
	// get before it is killed. Default 30s; 0 kills at once.
	GracefulTimeout Duration `json:"graceful_timeout"`

	// CPUAffinity pins each worker of a pool of 2 or more processes to its
	// share of the CPUs wisp may use (worker k of N gets the k-th of N equal
	// slices; with more workers than CPUs, CPU k mod CPUs), so that a
	// worker's Go and Python threads stay on the same caches and workers do
	// not preempt each other. It helps on a machine the pool has to itself;
	// it hurts when other busy processes need the same CPUs (a load
	// generator on a 2-core box lost a third of its hello rate).
	// Default false.
	CPUAffinity bool `json:"cpu_affinity"`

	// SchedPolicy is the Linux scheduling policy of the workers' threads:
	// "batch" (SCHED_BATCH: a woken Go thread does not preempt the app's
	// Python thread, so a loaded worker switches context a fraction as
	// often; other processes still preempt the workers as before) or
	// "normal" (SCHED_NORMAL, as started). Threads an operator put under
	// another policy (chrt) are left as they are; nice is kept.
	// Default "batch".
	SchedPolicy string `json:"sched_policy"`

	// RapidFail enables rapid-fail protection: after RapidFailMax worker
	// failures (crashes, failed starts) within RapidFailWindow the pool is
	// stopped and answers 503 until restarted. Default true.
	RapidFail bool `json:"rapid_fail"`

	// RapidFailMax is the number of failures that stops the pool.
	// Default 5; 1 to 1000.
	RapidFailMax int `json:"rapid_fail_max"`

	// RapidFailWindow is the period failures are counted in. Default 5m;
	// must be positive.
	RapidFailWindow Duration `json:"rapid_fail_window"`

	// User is the account workers run as: a name or a numeric uid. Only
	// meaningful when wisp runs as root; resolved when workers start.
	// Default "": wisp's own.
	User string `json:"user,omitempty"`

	// Group is the workers' group: a name or a numeric gid.
	// Default "": the user's primary group (or wisp's own).
	Group string `json:"group,omitempty"`

	// Queue is how many requests may wait for a Python thread, per process;
	// beyond it they get 503. Default 1024; 1 to 1000000.
	Queue int `json:"queue"`

	// MaxBody is the request body limit; beyond it, 413.
	// Default 1GiB; must be positive.
	MaxBody Size `json:"max_body"`

	// MaxHeaderBytes limits the request line and headers; beyond it, 431.
	// Default 64KiB; 1KiB to 16MiB.
	MaxHeaderBytes Size `json:"max_header_bytes"`

	// MinWriteRate is the least a client must take of a response, in bytes
	// per second of the time writes wait for it, after 10 s; a slower reader
	// is cut off and the app's thread freed. Default 1KiB; 0: none.
	MinWriteRate Size `json:"min_write_rate"`

	// MaxSpill bounds the request bodies in temp files at once, per worker;
	// a body that finds the space held gets 503. Default 10GiB; positive.
	MaxSpill Size `json:"max_spill"`

	// WebSocketCompression offers permessage-deflate (RFC 7692) to the
	// WebSocket clients of the pool's ASGI apps that ask for it.
	// Default true.
	WebSocketCompression bool `json:"websocket_compression"`

	// WebSocketMaxMessage is the largest WebSocket message taken from a
	// client (its fragments together); a larger one closes the connection
	// with 1009 (message too big). Default 16MiB; must be positive.
	WebSocketMaxMessage Size `json:"websocket_max_message"`

	// WebSocketPingInterval is how often an open WebSocket's client is
	// pinged; 0 sends no pings. Default 20s.
	WebSocketPingInterval Duration `json:"websocket_ping_interval"`

	// WebSocketPingTimeout closes a WebSocket (1011) whose client does not
	// answer a ping within it. Default 20s; must be positive.
	WebSocketPingTimeout Duration `json:"websocket_ping_timeout"`
}

// PingInterval maps a websocket_ping_interval (or the flag's value), where
// 0 sends no pings, to server.Config.WebSocketPingInterval, where 0 means
// the default and a negative interval no pings.
func PingInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Site is a [[sites]] entry: where to listen and what to serve there.
type Site struct {
	// Name identifies the site in logs and the control API. Required; the
	// same syntax as pool names; unique.
	Name string `json:"name"`

	// Bindings are the addresses to listen on, "host:port" ("127.0.0.1:8080",
	// "[::1]:8080", ":8080" for all interfaces; port 0 picks a free port).
	// At least one. Two sites may share a binding (or a wildcard one and a
	// specific one on the same port) only in the IIS way: each has its own
	// Hostnames, and at most one of them has none (it gets the other hosts).
	Bindings []string `json:"bindings"`

	// Hostnames limit the site to requests whose Host is one of them
	// ("example.com", or "*.example.com" for any subdomain), compared
	// without case. Default none: any host.
	Hostnames []string `json:"hostnames,omitempty"`

	// Vdirs are the site's virtual directories. At least one.
	Vdirs []*Vdir `json:"vdirs"`

	// AccessLog and AccessLogFormat give the site an access log of its own
	// (a file, "-" or "off"; combined, w3c or json). Default: [server]'s.
	AccessLog       string `json:"access_log,omitempty"`
	AccessLogFormat string `json:"access_log_format,omitempty"`

	// TLS serves the site's bindings over TLS, with HTTP/2 (ALPN h2) next
	// to HTTP/1.1: tls = { cert = "...", key = "..." } (PEM files, relative
	// to the config file's folder; absolute after loading; a change of the
	// files is served at the next handshake), or tls = { acme = true,
	// email = "..." } for certificates obtained and renewed automatically
	// for the site's Hostnames. Sites sharing a binding all have TLS or
	// none; the client's SNI name chooses the certificate. Default none:
	// plain HTTP.
	TLS *SiteTLS `json:"tls,omitempty"`

	// RedirectHTTP answers plain HTTP requests for a TLS site with a 308
	// redirect to https: on the site's bindings without TLS (a site with
	// TLS may list plain bindings too, "example.com:80" beside ":443").
	// Default false: plain bindings serve the site.
	RedirectHTTP bool `json:"redirect_http,omitempty"`

	// H2C serves HTTP/2 without TLS ("prior knowledge", RFC 9113 3.3) on
	// the site's plain bindings, for a proxy in front that speaks HTTP/2 to
	// wisp. Default false.
	H2C bool `json:"h2c,omitempty"`

	// ProxyProtocol expects the PROXY protocol (v1 or v2, as HAProxy and
	// load balancers send it) at the start of every connection on the
	// site's bindings; the client address it carries becomes REMOTE_ADDR.
	// With [server] trusted_proxies set, only those peers may send it (a
	// connection from anyone else is refused). Default false.
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`
}

// SiteTLS is a site's certificate: files, or ACME.
type SiteTLS struct {
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`

	// ACME obtains and renews the certificate from an ACME CA (Let's
	// Encrypt by default) for every name of the site's Hostnames, through
	// the TLS-ALPN-01 or HTTP-01 challenge answered on the site's
	// bindings. Email is the account's contact; CA the directory URL; CARoot
	// a PEM file of the root to trust when talking to a private CA; Storage
	// the folder of certificates and account keys (default: see package
	// acme).
	ACME    bool   `json:"acme,omitempty"`
	Email   string `json:"email,omitempty"`
	CA      string `json:"ca,omitempty"`
	CARoot  string `json:"ca_root,omitempty"`
	Storage string `json:"storage,omitempty"`
}

// Vdir is a virtual directory ([[sites.vdirs]]): a URL prefix served by a
// WSGI app in a pool.
type Vdir struct {
	// Path is the URL prefix: it starts with '/'; a trailing '/' is dropped
	// when loading ("/api/" becomes "/api"; "/" stays). Unique in its site.
	// A request goes to the vdir with the longest matching prefix.
	Path string `json:"path"`

	// App is the WSGI target: "module:callable", "path/app.py[:callable]"
	// or "config:path/app.ini[#name]" (Paste Deploy). Required. File paths
	// are resolved against the config file's folder when loading; module
	// targets import from the pool's Chdir and PythonPath.
	App string `json:"app"`

	// Pool names the pool running the app. Default "default"; for a static
	// folder, when no [pools.default] is defined and its site has an app,
	// "": it needs no Python, and the workers of the pool that routes the
	// site serve it.
	Pool string `json:"pool"`

	// RequestTimeout overrides the pool's RequestTimeout for this vdir.
	// Default 0: the pool's.
	RequestTimeout Duration `json:"request_timeout,omitempty"`

	// Static serves a folder instead of an app (relative to the config
	// file's folder; absolute after loading): by Go, with ETag, Range,
	// precompressed siblings and no listings. A vdir has an app or a
	// static folder. Its pool's workers serve it.
	Static string `json:"static,omitempty"`

	// CacheControl is the Cache-Control of a static vdir's answers.
	CacheControl string `json:"cache_control,omitempty"`

	// Dotfiles says whether a static vdir serves path segments that start
	// with '.' (.env, .git/config): "deny" answers them 404, except
	// .well-known/ at the vdir's root; "allow" serves them. Default
	// "deny" (set when loading, for a static vdir).
	Dotfiles string `json:"dotfiles,omitempty"`

	// MaxBody overrides the pool's MaxBody for this vdir: a larger request
	// body gets 413. Default 0: the pool's.
	MaxBody Size `json:"max_body,omitempty"`

	// MaxConcurrent bounds the requests the vdir's app runs at once; one
	// more gets 503 with Retry-After at once, so that one slow vdir cannot
	// take every Python thread of its pool. In a pool of N processes each
	// gets its share (rounded up). Default 0: no bound.
	MaxConcurrent int `json:"max_concurrent,omitempty"`

	// Interface is how the app is served: "auto" (an ASGI app, a coroutine
	// callable taking (scope, receive, send), is detected at import),
	// "wsgi" or "asgi"; a wrong one is an error at import. Default "": auto.
	Interface string `json:"interface,omitempty"`

	// Lifespan is an ASGI app's lifespan protocol, run once per worker
	// process (startup before it serves, shutdown when it stops): "auto"
	// (an app that does not speak it is served anyway), "on" (an app that
	// fails it does not start) or "off". It is the app's own, so it is a
	// vdir key, as IIS keeps an application's settings on the application.
	// Default "": auto.
	Lifespan string `json:"lifespan,omitempty"`

	// Description says what the vdir is, for people (`wisp list`); the
	// seed's VirtualDirParameters(Description=...).
	Description string `json:"description,omitempty"`
}

// DefaultServer returns the [server] settings used for keys a file leaves
// out. ControlSocket is relative ("wisp.sock"); loading resolves it.
func DefaultServer() *Server {
	return &Server{
		ControlSocket:     "wisp.sock",
		AccessLog:         "-",
		AccessLogFormat:   "combined",
		LogLevel:          "info",
		ReadHeaderTimeout: Duration(10e9),
		ReadTimeout:       Duration(120e9),
		WriteTimeout:      Duration(60e9),
		IdleTimeout:       Duration(60e9),
		GracefulTimeout:   Duration(30e9),
		HTTP2MaxStreams:   100,
		ForwardedHeaders:  "x-forwarded",
	}
}

// DefaultPool returns the settings of a pool whose keys are all left out.
// Chdir is empty; loading sets it to the config file's folder.
func DefaultPool() *Pool {
	return &Pool{
		Processes:       1,
		Threads:         4,
		Handler:         "threadpool",
		StartTimeout:    Duration(60e9),
		GracefulTimeout: Duration(30e9),
		SchedPolicy:     "batch",
		RapidFail:       true,
		RapidFailMax:    5,
		RapidFailWindow: Duration(300e9),
		Queue:           1024,
		MaxBody:         1 << 30,
		MaxHeaderBytes:  64 << 10,
		MinWriteRate:    1 << 10,
		MaxSpill:        10 << 30,

		WebSocketCompression:  true,
		WebSocketMaxMessage:   16 << 20,
		WebSocketPingInterval: Duration(20e9),
		WebSocketPingTimeout:  Duration(20e9),
	}
}

// Load reads and parses the configuration file at path, with the drop-ins
// of the wisp.d folder beside it (see ReadDropins).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dropins, err := ReadDropins(path)
	if err != nil {
		return nil, err
	}
	return ParseWithDropins(path, data, dropins)
}

// Parse parses a configuration. name is the file name used in messages
// ("<input>" if empty) and whose folder anchors relative paths (the working
// directory when name has no folder). The error, if any, joins one *Error
// per problem (see errors.As); the Config is nil then.
func Parse(name string, data []byte) (*Config, error) {
	dir, err := filepath.Abs(filepath.Dir(cmp.Or(name, ".")))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	l := &loader{file: cmp.Or(name, "<input>"), dir: dir}
	return l.load(data)
}
