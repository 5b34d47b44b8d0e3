// Package supervisor runs worker pools as IIS runs application pools: N
// worker processes per pool (started by exec, never fork), sharing inherited
// listeners; each becomes ready only after importing its apps. It recycles
// workers overlapped (the replacement is ready before the old one drains) on
// max requests, memory, uptime, idleness, configuration change or demand;
// replaces crashed workers with capped backoff; and stops a pool that fails
// too often (rapid-fail protection) until it is started again. It is never in
// the request path, except for a pool with no running worker.
package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"wisp/internal/config"
	"wisp/internal/metrics"
)

// WorkerSpec is everything one worker process needs. The supervisor passes it
// as JSON in the environment variable WorkerEnv; the listeners are inherited
// as file descriptors 4, 5, ... in Listeners order, and fd 3 is the status
// pipe on which the worker writes JSON lines (see statusMsg).
type WorkerSpec struct {
	Pool       string   `json:"pool"`
	ID         int      `json:"id"` // worker number within the supervisor, for logs
	Python     string   `json:"python"`
	Chdir      string   `json:"chdir"`
	PythonPath []string `json:"pythonpath"`
	// Env is the pool's `env =` (and -e): the only WISP_* variables its app sees.
	Env map[string]string `json:"env,omitempty"`

	Handler        string        `json:"handler"`
	Threads        int           `json:"threads"`
	Queue          int           `json:"queue"`
	MaxBody        int64         `json:"max_body"`
	MinWriteRate   int64         `json:"min_write_rate"` // 0: none
	MaxSpill       int64         `json:"max_spill"`
	MaxHeaderBytes int           `json:"max_header_bytes"`
	ReadHeader     time.Duration `json:"read_header_timeout"`
	Read           time.Duration `json:"read_timeout"`
	Write          time.Duration `json:"write_timeout"`
	Idle           time.Duration `json:"idle_timeout"`
	Graceful       time.Duration `json:"graceful_timeout"`
	RequestTimeout time.Duration `json:"request_timeout"`
	Multiprocess   bool          `json:"multiprocess"`
	Processes      int           `json:"processes"`  // of the pool: the worker sizes GOMAXPROCS to its share of the CPUs
	AccessLog      string        `json:"access_log"` // "-", "off" or a file
	AccessFormat   string        `json:"access_log_format,omitempty"`
	LogLevel       string        `json:"log_level"`
	MaxStreams     int           `json:"http2_max_streams"`
	TrustedProxies []string      `json:"trusted_proxies,omitempty"`
	ErrorLog       string        `json:"error_log,omitempty"`
	TraceSocket    string        `json:"trace_socket,omitempty"` // where the worker serves its trace
	TraceFD        int           `json:"trace_fd"`               // its listening socket, inherited; -1: none`  // a file the worker's fd 2 is, reopened on SIGUSR1
	DevReload      bool          `json:"dev_reload,omitempty"`   // an app that fails to import is served as a 500 page`

	ForwardedHeaders string `json:"forwarded_headers,omitempty"` // server.Config.ForwardedHeaders

	Sites []SiteSpec `json:"sites"`
	// RoutesFile holds the pool's Sites as a reload changed their routes
	// since the worker started; the worker reads it on SIGHUP (see
	// applyRoutes).
	RoutesFile string         `json:"routes_file,omitempty"`
	Listeners  []ListenerSpec `json:"listeners"`
	// BoardSlot is the worker's slot on its pool's board (see board), which
	// is inherited as the descriptor after the listeners; -1: none.
	BoardSlot int `json:"board_slot"`
	// CPUs are the CPUs the worker pins its threads to (none: no pinning).
	CPUs []int `json:"cpus,omitempty"`
	// SchedPolicy is its threads' scheduling policy (cpusched; "": as started).
	SchedPolicy string `json:"sched_policy,omitempty"`
	// Loop is the ASGI event loop (server.Config.Loop; "": auto).
	Loop string `json:"loop,omitempty"`
	// NoWebSocketCompression, WebSocketMaxMessage, WebSocketPingInterval
	// and WebSocketPingTimeout are the pool's WebSocket settings as
	// server.Config takes them (0: the server's default; a negative
	// interval: no pings). Each zero value is the default, so that a worker
	// of a newer binary started by an older supervisor (a recycle after an
	// upgrade on disk) gets the defaults from a spec without them.
	NoWebSocketCompression bool          `json:"no_websocket_compression,omitempty"`
	WebSocketMaxMessage    int64         `json:"websocket_max_message,omitempty"`
	WebSocketPingInterval  time.Duration `json:"websocket_ping_interval,omitempty"`
	WebSocketPingTimeout   time.Duration `json:"websocket_ping_timeout,omitempty"`
}

// SiteSpec is one site as a worker serves it: every vdir of the site, local
// (this worker's pool) or forwarded to the unix socket of another pool.
type SiteSpec struct {
	Name   string      `json:"name"`
	Mounts []MountSpec `json:"mounts"`
	// AccessLog and AccessFormat are the site's own access log ("": the pool's).
	AccessLog    string `json:"access_log,omitempty"`
	AccessFormat string `json:"access_log_format,omitempty"`
	// Hostnames choose the site on a binding it shares (none: the default).
	Hostnames []string `json:"hostnames,omitempty"`
	// TLS is the site's certificate (files, or ACME: the supervisor obtains
	// it, the worker reads it from the storage).
	TLS *config.SiteTLS `json:"tls,omitempty"`
	// RedirectHTTP answers the site's plain bindings with a 308 to https
	// on HTTPSPort ("": 443).
	RedirectHTTP bool   `json:"redirect_http,omitempty"`
	HTTPSPort    string `json:"https_port,omitempty"`
}

// MountSpec is one virtual directory.
type MountSpec struct {
	Prefix  string        `json:"prefix"`
	Target  string        `json:"target,omitempty"`
	Forward string        `json:"forward,omitempty"` // unix socket of the pool that serves it
	Static  string        `json:"static,omitempty"`  // a folder served by Go
	Cache   string        `json:"cache_control,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxBody and MaxConcurrent are the vdir's own limits (0: the pool's,
	// none); MaxConcurrent is this process's share.
	MaxBody       int64 `json:"max_body,omitempty"`
	MaxConcurrent int   `json:"max_concurrent,omitempty"`
	// Dotfiles is a static folder's dotfiles ("allow" serves them).
	Dotfiles string `json:"dotfiles,omitempty"`
	// Interface and Lifespan are the vdir's (server.Mount; "": auto).
	Interface string `json:"interface,omitempty"`
	Lifespan  string `json:"lifespan,omitempty"`
}

// ListenerSpec describes an inherited listener: a site binding shared by
// Sites (the default one first), or (no Sites) the pool's own unix socket
// that other pools forward to.
type ListenerSpec struct {
	Sites         []string `json:"sites,omitempty"`
	Addr          string   `json:"addr"`
	TLS           bool     `json:"tls,omitempty"`
	H2C           bool     `json:"h2c,omitempty"`
	ProxyProtocol bool     `json:"proxy_protocol,omitempty"`
}

// WorkerEnv is the environment variable carrying a worker's spec.
const WorkerEnv = "WISP_WORKER"

// statusMsg is one line a worker writes on its status pipe.
type statusMsg struct {
	Event    string            `json:"event"` // "ready", "stats", "recycle", "stuck", "failed" (it cannot start: Reason)
	Requests uint64            `json:"requests,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Metrics  *metrics.Snapshot `json:"metrics,omitempty"` // with "stats": the worker's counters
	Build    string            `json:"build,omitempty"`   // with "build" (its first line): the build of its binary
}

// ReadWorkerSpec reads the spec of the current process, if it is a worker.
func ReadWorkerSpec() (*WorkerSpec, error) {
	raw := os.Getenv(WorkerEnv)
	if raw == "" {
		return nil, fmt.Errorf("%s is not set: 'wisp worker' is started by 'wisp serve', not by hand", WorkerEnv)
	}
	var s WorkerSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("%s: %w", WorkerEnv, err)
	}
	return &s, nil
}
