package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"wisp/internal/config"
	"wisp/internal/listen"
	"wisp/internal/logfile"
	"wisp/internal/server"
	"wisp/internal/supervisor"
)

// poolConfig is the configuration `wisp run` serves as a pool: the flags as
// the wisp.toml they stand for, or, with -c, the file with the flags (and
// their environment variables) that were given written over it. Without
// -c, sock is the control socket (--control-socket or its default).
func (o *runOptions) poolConfig(fs *pflag.FlagSet, ms []server.Mount, sock string) (*config.Config, error) {
	processes := o.processes
	if processes == 0 {
		processes = 1
	}
	if o.config == "" {
		binds := o.binds
		if len(binds) == 0 {
			binds = []string{"127.0.0.1:8000"}
		}
		toml, err := poolTOML(runPool{
			binds: binds, mounts: ms, python: o.python, pythonpath: o.pypath, processes: processes, threads: o.threads,
			handler: o.handler, queue: o.queue, maxBody: o.maxBody, maxHeader: o.maxHeader, timeout: o.timeout,
			maxReq: o.maxReq, maxReqJitter: o.maxReqJitter, maxRSS: o.maxRSS, maxRSSHard: o.maxRSSHard,
			maxUptime: o.maxUptime, idle: o.poolIdle, start: o.startTimeout, grace: o.grace, socket: sock,
			access: o.accessLog, level: o.level, rht: o.rht, rt: o.rt, wt: o.wt, it: o.it, cpuAffinity: o.cpuAffinity,
			schedPolicy: o.schedPolicy, loop: o.loop, minWriteRate: o.minRate, maxSpill: o.maxSpill, rapidFail: o.rapidFail && !o.reload, rapidFailMax: o.rapidFailMax,
			rapidFailWindow: o.rapidFailWindow, env: o.env, user: o.user, group: o.group,
			admin: o.adminAddr, adminToken: o.adminToken, adminHosts: o.adminHosts, drain: o.drainDelay, proxies: o.proxies, forwardedHeaders: o.forwardedHeaders,
			cert: absPath(o.certFile), key: absPath(o.keyFile), accessFormat: o.accessFormat,
			h2c: o.h2c, proxyProtocol: o.proxyProtocol, maxStreams: o.maxStreams,
			wsCompression: o.wsCompression, wsMaxMessage: o.wsMaxMessage, wsPingInterval: o.wsPingInterval, wsPingTimeout: o.wsPingTimeout,
		})
		if err != nil {
			return nil, usageError{err}
		}
		cfg, err := config.Parse("flags", []byte(toml))
		if err != nil {
			return nil, fmt.Errorf("pool settings: %w", err)
		}
		return cfg, nil
	}
	base, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	m, err := base.Map()
	if err != nil {
		return nil, err
	}
	if err := o.overlay(m, changedFlags(fs), ms); err != nil {
		return nil, usageError{err}
	}
	text, err := config.MapTOML(m)
	if err != nil {
		return nil, err
	}
	// Named after the file, so that relative paths and messages refer to it.
	cfg, err := config.Parse(o.config, text)
	if err != nil {
		return nil, fmt.Errorf("%s with the command line's flags over it: %w", o.config, err)
	}
	cfg.Warnings = append(base.Warnings, cfg.Warnings...)
	return cfg, nil
}

// serverKeys and poolKeys map the flags of `wisp run` to the configuration
// keys they override with -c: [server] keys, and keys of every pool.
var serverKeys = map[string]string{
	"access-log": "access_log", "access-log-format": "access_log_format", "log-level": "log_level", "read-header-timeout": "read_header_timeout",
	"read-timeout": "read_timeout", "write-timeout": "write_timeout", "idle-timeout": "idle_timeout",
	"graceful-timeout": "graceful_timeout", "control-socket": "control_socket", "admin": "admin",
	"admin-token": "admin_token", "admin-host": "admin_hosts",
	"drain-delay": "drain_delay", "forwarded-allow-ips": "trusted_proxies", "http2-max-streams": "http2_max_streams",
	"forwarded-headers": "forwarded_headers",
}

var poolKeys = map[string]string{
	"processes": "processes", "threads": "threads", "handler": "handler", "python": "python", "chdir": "chdir",
	"pythonpath": "pythonpath", "queue": "queue", "max-body": "max_body", "max-header-bytes": "max_header_bytes",
	"timeout": "request_timeout", "max-requests": "max_requests", "max-requests-jitter": "max_requests_jitter",
	"max-rss": "max_rss_mb", "max-rss-hard": "max_rss_hard_mb", "max-uptime": "max_uptime",
	"pool-idle-timeout": "idle_timeout", "start-timeout": "start_timeout", "cpu-affinity": "cpu_affinity",
	"sched-policy": "sched_policy", "rapid-fail": "rapid_fail", "rapid-fail-max": "rapid_fail_max", "rapid-fail-window": "rapid_fail_window",
	"min-write-rate": "min_write_rate", "max-spill": "max_spill", "user": "user", "group": "group", "loop": "loop",
	"graceful-timeout": "graceful_timeout", "websocket-compression": "websocket_compression",
	"websocket-max-message": "websocket_max_message", "websocket-ping-interval": "websocket_ping_interval",
	"websocket-ping-timeout": "websocket_ping_timeout",
}

// overlay writes the flags that were set over the document of a -c file.
// --bind and a TARGET or --mount need a file with one site.
func (o *runOptions) overlay(m map[string]any, set map[string]bool, ms []server.Mount) error {
	values := map[string]any{
		"access-log": o.accessLog, "access-log-format": o.accessFormat, "log-level": o.level, "read-header-timeout": o.rht.String(),
		"read-timeout": o.rt.String(), "write-timeout": o.wt.String(), "idle-timeout": o.it.String(),
		"graceful-timeout": o.grace.String(), "control-socket": absPath(o.ctlSocket), "admin": o.adminAddr, "admin-token": o.adminToken, "admin-host": anyList(o.adminHosts), "drain-delay": o.drainDelay.String(), "forwarded-allow-ips": anyList(o.proxies), "http2-max-streams": int64(o.maxStreams),
		"forwarded-headers": o.forwardedHeaders, "processes": int64(o.processes), "threads": int64(o.threads), "handler": o.handler, "python": o.python,
		"chdir": absPath(o.chdir), "pythonpath": absList(o.pypath), "queue": int64(o.queue), "max-body": o.maxBody,
		"max-header-bytes": int64(o.maxHeader), "timeout": o.timeout.String(), "max-requests": int64(o.maxReq),
		"max-requests-jitter": int64(o.maxReqJitter), "max-rss": int64(o.maxRSS), "max-rss-hard": int64(o.maxRSSHard),
		"max-uptime": o.maxUptime.String(), "pool-idle-timeout": o.poolIdle.String(),
		"start-timeout": o.startTimeout.String(), "cpu-affinity": o.cpuAffinity, "sched-policy": o.schedPolicy, "rapid-fail": o.rapidFail && !o.reload,
		"rapid-fail-max": int64(o.rapidFailMax), "rapid-fail-window": o.rapidFailWindow.String(),
		"min-write-rate": o.minRate, "max-spill": o.maxSpill, "user": o.user, "group": o.group, "loop": o.loop,
		"websocket-compression": o.wsCompression, "websocket-max-message": o.wsMaxMessage,
		"websocket-ping-interval": o.wsPingInterval.String(), "websocket-ping-timeout": o.wsPingTimeout.String(),
	}
	if o.reload {
		set["rapid-fail"] = true
	}
	srv, _ := m["server"].(map[string]any)
	for flag, key := range serverKeys {
		if set[flag] && srv != nil {
			srv[key] = values[flag]
		}
	}
	pools, _ := m["pools"].(map[string]any)
	for _, pv := range pools {
		p, _ := pv.(map[string]any)
		for flag, key := range poolKeys {
			if set[flag] {
				p[key] = values[flag]
			}
		}
		if len(o.env) > 0 {
			env, _ := p["env"].(map[string]any)
			if env == nil {
				env = map[string]any{}
			}
			for _, kv := range o.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			p["env"] = env
		}
	}
	sites, _ := m["sites"].([]any)
	for _, sv := range sites { // --h2c and --proxy-protocol apply to every site
		site, _ := sv.(map[string]any)
		if set["h2c"] {
			site["h2c"] = o.h2c
		}
		if set["proxy-protocol"] {
			site["proxy_protocol"] = o.proxyProtocol
		}
	}
	if len(o.binds) > 0 || len(ms) > 0 || o.certFile != "" {
		if len(sites) != 1 {
			return fmt.Errorf("--bind, --certfile, --mount and a TARGET apply to a configuration with one site; %s has %d: set them in the file", o.config, len(sites))
		}
		site := sites[0].(map[string]any)
		if o.certFile != "" {
			site["tls"] = map[string]any{"cert": absPath(o.certFile), "key": absPath(o.keyFile)}
		}
		if len(o.binds) > 0 {
			var bs []any
			for _, b := range o.binds {
				bs = append(bs, b)
			}
			site["bindings"] = bs
		}
		if len(ms) > 0 {
			pool := "default"
			if len(pools) == 1 {
				for name := range pools {
					pool = name
				}
			}
			vdirs, _ := site["vdirs"].([]any)
			for _, mt := range ms {
				path := "/" + strings.Trim(mt.Prefix, "/")
				v := map[string]any{"path": path, "app": mt.Target, "pool": pool}
				if mt.Interface != "" && mt.Interface != "auto" {
					v["interface"] = mt.Interface
				}
				if mt.Lifespan != "" && mt.Lifespan != "auto" {
					v["lifespan"] = mt.Lifespan
				}
				if mt.Static != "" {
					v = map[string]any{"path": path, "static": mt.Static, "pool": pool}
				}
				replaced := false
				for i, x := range vdirs {
					if vm, ok := x.(map[string]any); ok && vm["path"] == path {
						vdirs[i], replaced = v, true
					}
				}
				if !replaced {
					vdirs = append(vdirs, v)
				}
			}
			site["vdirs"] = vdirs
		}
	}
	return nil
}

func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func anyList(ss []string) []any {
	out := []any{}
	for _, s := range ss {
		out = append(out, s)
	}
	return out
}

func absList(ps []string) []any {
	out := []any{}
	for _, p := range ps {
		out = append(out, absPath(p))
	}
	return out
}

// printConfig is --print-config: the effective configuration as TOML.
func printConfig(cfg *config.Config, inProcess bool, stdout io.Writer) error {
	b, err := cfg.TOML()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "# the effective configuration of this command line, as a wisp.toml for 'wisp serve -c'")
	if inProcess {
		fmt.Fprintln(stdout, "# (wisp run serves it in its own process; as a file it is a pool of one worker process)")
	}
	_, err = stdout.Write(b)
	return err
}

// checkApps is --check-config for a pool: each pool's apps are imported by a
// throwaway `wisp run --check-config` of the pool's own interpreter, folder,
// paths and environment (static vdirs import nothing). Every problem is
// reported; the error names the pools that failed.
func checkApps(cfg *config.Config, stdout, stderr io.Writer) error {
	byPool := map[string][]string{}
	// each vdir's interface and lifespan go with its --mount
	for _, st := range cfg.Sites {
		for _, v := range st.Vdirs {
			if v.App == "" {
				continue // a static folder
			}
			prefix := strings.TrimSuffix(v.Path, "/")
			byPool[v.Pool] = append(byPool[v.Pool], "--mount", prefix+"="+v.App)
			if v.Interface != "" {
				byPool[v.Pool] = append(byPool[v.Pool], "--mount-interface", prefix+"="+v.Interface)
			}
			if v.Lifespan != "" {
				byPool[v.Pool] = append(byPool[v.Pool], "--mount-lifespan", prefix+"="+v.Lifespan)
			}
		}
	}
	var failed []string
	for _, name := range sortedKeys(byPool) {
		text, err := runCheck(cfg.Pools[name], byPool[name]...)
		if err != nil {
			failed = append(failed, name)
			fmt.Fprintf(stderr, "pool %s: the apps do not import:\n%s\n", name, indent(text))
			continue
		}
		fmt.Fprintf(stdout, "pool %s: %s\n", name, strings.ReplaceAll(text, "\n", "\n  "))
	}
	if len(failed) > 0 {
		return fmt.Errorf("check failed: pool(s) %s", strings.Join(failed, ", "))
	}
	fmt.Fprintln(stdout, "configuration ok")
	return nil
}

// runCheck runs a throwaway `wisp run --check-config` with a pool's
// interpreter, folder, paths and environment, and args (the apps); it
// returns the process's output.
func runCheck(p *config.Pool, args ...string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	full := []string{"run", "--check-config", "--log-format", "text"}
	if p.Loop != "" {
		full = append(full, "--loop", p.Loop)
	}
	if p.Python != "" {
		full = append(full, "--python", p.Python)
	}
	if p.Chdir != "" {
		full = append(full, "--chdir", p.Chdir)
	}
	for _, d := range p.PythonPath {
		full = append(full, "--pythonpath", d)
	}
	for _, k := range sortedKeys(p.Env) {
		full = append(full, "--env", k+"="+p.Env[k])
	}
	cmd := exec.Command(exe, append(full, args...)...)
	// as the pool's user: an app only root can read must fail here too
	cred, env, err := supervisor.PoolCredential(p.User, p.Group, os.Environ())
	if err != nil {
		return "the pool's user: " + err.Error(), fmt.Errorf("the pool's user: %w", err)
	}
	cmd.Env = env
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return strings.TrimRight(out.String(), "\n"), err
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// logFile is the error log: stderr, or the --error-logfile file, reopened
// on SIGUSR1 (logrotate's convention).
type logFile struct {
	mu     sync.Mutex // orders the writes to stderr
	stderr io.Writer
	file   *logfile.File // nil: stderr
	path   string        // the file's path; "" for stderr
}

// openErrorLog opens --error-logfile ("-": stderr).
func openErrorLog(path string, stderr io.Writer) (*logFile, error) {
	l := &logFile{stderr: stderr}
	if path == "" || path == "-" {
		return l, nil
	}
	f, err := logfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--error-logfile: %w", err)
	}
	l.file, l.path = f, path
	return l, nil
}

func (l *logFile) Write(b []byte) (int, error) {
	if l.file != nil {
		return l.file.Write(b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stderr.Write(b)
}

// Reopen opens the file again (after logrotate moved it).
func (l *logFile) Reopen() error {
	if l.file == nil {
		return nil
	}
	if err := l.file.Reopen(); err != nil {
		return fmt.Errorf("--error-logfile: %w", err)
	}
	return nil
}

// File lets the supervisor hand the file itself to its workers.
func (l *logFile) File() *os.File {
	if l.file != nil {
		return l.file.File()
	}
	if f, ok := l.stderr.(*os.File); ok {
		return f
	}
	return nil
}

func (l *logFile) Close() error {
	if l.file != nil {
		return l.file.Close()
	}
	return nil
}

// pidFile is a --pid file this process wrote.
type pidFile string

// writePIDFile writes the process id to path ("" for none). A file that
// names a live process other than predecessor (the supervisor an upgrade
// takes over from; 0: none) is an error (another server runs).
func writePIDFile(path string, predecessor int) (pidFile, error) {
	if path == "" {
		return "", nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() && pid != predecessor {
			if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
				return "", fmt.Errorf("--pid %s: process %d named there is running (another wisp?); stop it or remove the file", path, pid)
			}
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("--pid: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("--pid: %w", err)
	}
	return pidFile(path), nil
}

// remove deletes the file if it still names this process.
func (p pidFile) remove() {
	if p == "" {
		return
	}
	if b, err := os.ReadFile(string(p)); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(string(p))
	}
}

// switchUser makes the process run as user and group (--user, --group),
// after its sockets are open and before Python starts. Go changes every
// thread's credentials (setuid applies to the whole process).
func switchUser(userName, groupName string) error {
	if userName == "" && groupName == "" {
		return nil
	}
	uid, gid := -1, -1
	var err error
	if userName != "" {
		if uid, err = listen.LookupUser(userName); err != nil {
			return usageError{fmt.Errorf("--user: %w", err)}
		}
	}
	if groupName != "" {
		if gid, err = listen.LookupGroup(groupName); err != nil {
			return usageError{fmt.Errorf("--group: %w", err)}
		}
	} else if uid >= 0 {
		gid = primaryGroup(userName, uid)
	}
	if os.Geteuid() != 0 {
		if (uid < 0 || uid == os.Geteuid()) && (gid < 0 || gid == os.Getegid()) {
			return nil
		}
		return fmt.Errorf("--user/--group: wisp runs as uid %d; switching identity needs it to start as root", os.Geteuid())
	}
	if gid >= 0 {
		// exactly the user's groups, as initgroups(3) gives them (a pool's
		// workers get the same): never root's own
		groups := []int{gid}
		if uid >= 0 {
			usr, lerr := user.LookupId(strconv.Itoa(uid))
			if lerr == nil {
				ids, gerr := listen.UserGroups(usr, uint32(gid))
				if gerr != nil {
					return fmt.Errorf("--user: %w", gerr)
				}
				groups = groups[:0]
				for _, g := range ids {
					groups = append(groups, int(g))
				}
			}
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("--group: setgroups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("--group: setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("--user: setuid %d: %w", uid, err)
		}
		if u, err := userHome(userName); err == nil {
			os.Setenv("HOME", u)
		}
		os.Setenv("USER", userName)
		os.Setenv("LOGNAME", userName)
	}
	return nil
}

// runPool is `wisp run` with --processes: the flags of a one-pool server.
type runPool struct {
	python, handler, socket, access, level   string
	user, group, chdir, admin, adminToken    string
	cert, key, accessFormat                  string
	forwardedHeaders                         string
	binds                                    []string
	mounts                                   []server.Mount
	pythonpath, env, proxies, adminHosts     []string
	processes, threads, queue, maxHeader     int
	maxReq, maxReqJitter, maxRSS, maxRSSHard int
	maxBody, minWriteRate, maxSpill          int64
	timeout, maxUptime, idle, start, grace   time.Duration
	drain                                    time.Duration
	rht, rt, wt, it                          time.Duration
	cpuAffinity, rapidFail                   bool
	schedPolicy, loop                        string
	h2c, proxyProtocol                       bool
	maxStreams                               int
	rapidFailMax                             int
	rapidFailWindow                          time.Duration
	wsCompression                            bool
	wsMaxMessage                             int64 // 0: the key's default
	wsPingInterval, wsPingTimeout            time.Duration
}

// poolTOML writes the flags as the configuration file they stand for, so that
// they get the same defaults and validation as 'wisp serve'.
func poolTOML(p runPool) (string, error) {
	var b strings.Builder
	q := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	all := []string{p.python, p.socket, p.access, p.user, p.group, p.chdir, p.admin, p.adminToken, p.cert, p.key, p.forwardedHeaders}
	for _, l := range [][]string{p.binds, p.pythonpath, p.env, p.proxies, p.adminHosts} {
		all = append(all, l...)
	}
	for _, s := range all {
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
			return "", fmt.Errorf("control characters in %q", s)
		}
	}
	d := func(v time.Duration) string { return q(v.String()) }
	fmt.Fprintf(&b, "[server]\ncontrol_socket = %s\naccess_log = %s\nlog_level = %s\n", q(p.socket), q(p.access), q(p.level))
	if p.accessFormat != "" {
		fmt.Fprintf(&b, "access_log_format = %s\n", q(p.accessFormat))
	}
	if len(p.proxies) > 0 {
		var qs []string
		for _, s := range p.proxies {
			qs = append(qs, q(s))
		}
		fmt.Fprintf(&b, "trusted_proxies = [%s]\n", strings.Join(qs, ", "))
	}
	if p.forwardedHeaders != "" {
		fmt.Fprintf(&b, "forwarded_headers = %s\n", q(p.forwardedHeaders))
	}
	if p.admin != "" {
		fmt.Fprintf(&b, "admin = %s\nadmin_token = %s\n", q(p.admin), q(p.adminToken))
		if len(p.adminHosts) > 0 {
			var qs []string
			for _, s := range p.adminHosts {
				qs = append(qs, q(s))
			}
			fmt.Fprintf(&b, "admin_hosts = [%s]\n", strings.Join(qs, ", "))
		}
	}
	if p.maxStreams > 0 {
		fmt.Fprintf(&b, "http2_max_streams = %d\n", p.maxStreams)
	}
	fmt.Fprintf(&b, "read_header_timeout = %s\nread_timeout = %s\nwrite_timeout = %s\nidle_timeout = %s\ngraceful_timeout = %s\ndrain_delay = %s\n",
		d(p.rht), d(p.rt), d(p.wt), d(p.it), d(p.grace), d(p.drain))
	fmt.Fprintf(&b, "\n[pools.default]\nprocesses = %d\nthreads = %d\nqueue = %d\nmax_body = %d\nmax_header_bytes = %d\n",
		p.processes, p.threads, p.queue, p.maxBody, p.maxHeader)
	if p.handler != "" {
		fmt.Fprintf(&b, "handler = %s\n", q(p.handler))
	}
	if p.python != "" {
		fmt.Fprintf(&b, "python = %s\n", q(absIfPath(p.python)))
	}
	if p.chdir != "" {
		fmt.Fprintf(&b, "chdir = %s\n", q(absPath(p.chdir)))
	}
	if p.user != "" {
		fmt.Fprintf(&b, "user = %s\n", q(p.user))
	}
	if p.group != "" {
		fmt.Fprintf(&b, "group = %s\n", q(p.group))
	}
	if len(p.pythonpath) > 0 {
		var qs []string
		for _, s := range p.pythonpath {
			qs = append(qs, q(s))
		}
		fmt.Fprintf(&b, "pythonpath = [%s]\n", strings.Join(qs, ", "))
	}
	fmt.Fprintf(&b, "max_requests = %d\nmax_requests_jitter = %d\nmax_rss_mb = %d\nmax_rss_hard_mb = %d\n",
		p.maxReq, p.maxReqJitter, p.maxRSS, p.maxRSSHard)
	fmt.Fprintf(&b, "cpu_affinity = %v\n", p.cpuAffinity)
	if p.loop != "" && p.loop != "auto" {
		fmt.Fprintf(&b, "loop = %s\n", q(p.loop))
	}
	if p.schedPolicy != "" {
		fmt.Fprintf(&b, "sched_policy = %s\n", q(p.schedPolicy))
	}
	fmt.Fprintf(&b, "max_uptime = %s\nidle_timeout = %s\nrequest_timeout = %s\nstart_timeout = %s\ngraceful_timeout = %s\n",
		d(p.maxUptime), d(p.idle), d(p.timeout), d(p.start), d(p.grace))
	fmt.Fprintf(&b, "min_write_rate = %d\nmax_spill = %d\n", p.minWriteRate, p.maxSpill)
	fmt.Fprintf(&b, "rapid_fail = %v\nrapid_fail_max = %d\nrapid_fail_window = %s\n", p.rapidFail, p.rapidFailMax, d(p.rapidFailWindow))
	fmt.Fprintf(&b, "websocket_compression = %v\nwebsocket_ping_interval = %s\n", p.wsCompression, d(p.wsPingInterval))
	if p.wsMaxMessage > 0 {
		fmt.Fprintf(&b, "websocket_max_message = %d\n", p.wsMaxMessage)
	}
	if p.wsPingTimeout > 0 {
		fmt.Fprintf(&b, "websocket_ping_timeout = %s\n", d(p.wsPingTimeout))
	}
	if len(p.env) > 0 {
		env := map[string]string{}
		for _, kv := range p.env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "\n[pools.default.env]\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", q(k), q(env[k]))
		}
	}
	var bq []string
	for _, s := range p.binds {
		bq = append(bq, q(s))
	}
	fmt.Fprintf(&b, "\n[[sites]]\nname = \"default\"\nbindings = [%s]\n", strings.Join(bq, ", "))
	if p.cert != "" {
		fmt.Fprintf(&b, "tls = { cert = %s, key = %s }\n", q(p.cert), q(p.key))
	}
	if p.h2c {
		fmt.Fprintf(&b, "h2c = true\n")
	}
	if p.proxyProtocol {
		fmt.Fprintf(&b, "proxy_protocol = true\n")
	}
	for _, m := range p.mounts {
		path := m.Prefix
		if path == "" {
			path = "/"
		}
		if m.Static != "" {
			fmt.Fprintf(&b, "\n  [[sites.vdirs]]\n  path = %s\n  static = %s\n  pool = \"default\"\n", q(path), q(m.Static))
			continue
		}
		fmt.Fprintf(&b, "\n  [[sites.vdirs]]\n  path = %s\n  app = %s\n  pool = \"default\"\n", q(path), q(m.Target))
		b.WriteString(asgiKeys(m))
	}
	return b.String(), nil
}

// asgiKeys are the vdir keys of a mount's --interface and --lifespan
// (none for their default, auto).
func asgiKeys(m server.Mount) string {
	var b strings.Builder
	if m.Interface != "" && m.Interface != "auto" {
		fmt.Fprintf(&b, "  interface = %q\n", m.Interface)
	}
	if m.Lifespan != "" && m.Lifespan != "auto" {
		fmt.Fprintf(&b, "  lifespan = %q\n", m.Lifespan)
	}
	return b.String()
}

// absIfPath makes a --python value that is a path (it has a '/') absolute;
// a command name stays as it is.
func absIfPath(p string) string {
	if strings.Contains(p, "/") {
		return absPath(p)
	}
	return p
}

// primaryGroup is the primary gid of a user (else -1).
func primaryGroup(name string, uid int) int {
	u, err := user.Lookup(name)
	if err != nil {
		u, err = user.LookupId(strconv.Itoa(uid))
	}
	if err != nil {
		return -1
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return -1
	}
	return gid
}

// userHome is a user's home folder.
func userHome(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return "", err
		}
	}
	return u.HomeDir, nil
}
