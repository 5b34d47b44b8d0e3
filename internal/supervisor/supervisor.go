package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/edge"
	"wisp/internal/listen"
	"wisp/internal/metrics"
	"wisp/internal/server"
	"wisp/internal/trace"
)

// Options are the supervisor's fixed settings.
type Options struct {
	Exe    string       // the wisp binary to exec as `wisp worker` ("": this one)
	Log    *slog.Logger // the supervisor's log
	Stdout io.Writer    // workers' stdout (access logs)
	Stderr io.Writer    // workers' stderr (their error logs)

	// Inherited are the sockets systemd passed (socket activation): a
	// binding they match is served from them instead of opened.
	Inherited *listen.Set
	// Unix is the mode and owner of the unix socket bindings wisp creates.
	Unix listen.Unix
	// DevReload makes workers whose apps fail to import serve the error as
	// a 500 page instead of failing, and turns rapid-fail protection off
	// (wisp run --reload, for development).
	DevReload bool
	// ErrorLog is the path of the error log file when Stderr is one: the
	// workers reopen it on SIGUSR1, as the supervisor does.
	ErrorLog string
}

// Supervisor owns the listeners and the worker pools of one configuration.
// All its state belongs to one goroutine (run), locked to its OS thread so
// that Pdeathsig of the workers it starts fires only when the supervisor dies;
// other goroutines reach it through post and call.
type Supervisor struct {
	opt       Options
	log       *slog.Logger
	cfg       *config.Config
	events    chan func()
	quit      chan struct{}
	done      chan struct{}
	listeners map[string]*listener // by address; pool sockets by "pool:NAME"
	pools     map[string]*pool
	rundir    string
	nextID    int
	stopping  bool
	draining  bool // /readyz says 503 ahead of the shutdown (drain delay)

	collect    *outcome // the reload or recycle being applied: it follows the workers spawn starts
	lastReload *outcome // the latest reload's, for AwaitReload

	certs    supCerts          // the sites' certificates (standby answers, ACME)
	acmeKeys map[string]string // the settings each ACME manager was made for

	forwarders sync.Map // socket+site → http.Handler, used by standby handlers
	devNull    *os.File // workers' stdin
	cpus       []int    // the CPUs wisp may use, shared out by CPUAffinity
}

// listener is a socket the supervisor owns and passes to workers. While no
// worker serves it (its pool idle or stopped), the supervisor answers on it.
type listener struct {
	key     string
	addr    string
	sites   []*config.Site // for a binding: the sites sharing it, default first
	pool    string         // for a pool's unix socket
	fd      int            // our close-on-exec duplicate, passed to workers as is
	unlink  string         // a unix socket file wisp created, removed with the listener
	standby *http.Server
	sbLn    net.Listener
}

// Start opens every binding, starts every pool, and returns once each pool
// has its workers starting. Use Wait, Shutdown, Reload, Recycle, StartPool
// and Status afterwards.
func Start(cfg *config.Config, opt Options) (*Supervisor, error) {
	if opt.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the wisp binary: %w", err)
		}
		opt.Exe = exe
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Stdout == nil {
		opt.Stdout = os.Stdout
	}
	if opt.Stderr == nil {
		opt.Stderr = os.Stderr
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	rundir, err := os.MkdirTemp("", "wisp-")
	if err != nil {
		devNull.Close()
		return nil, err
	}
	s := &Supervisor{
		opt: opt, log: opt.Log, events: make(chan func(), 256), quit: make(chan struct{}), done: make(chan struct{}),
		listeners: map[string]*listener{}, pools: map[string]*pool{}, rundir: rundir, devNull: devNull, cpus: allowedCPUs(),
	}
	if _, err := s.openListeners(cfg); err != nil {
		s.closeListeners()
		os.RemoveAll(rundir)
		return nil, err
	}
	if err := s.loadCerts(cfg); err != nil {
		s.closeListeners()
		os.RemoveAll(rundir)
		return nil, err
	}
	s.cfg = cfg
	ready := make(chan error, 1)
	go s.run(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return s, nil
}

// Addrs returns the bound address of every site binding (ports resolved).
func (s *Supervisor) Addrs() map[string]string {
	out := map[string]string{}
	s.call(func() {
		for _, l := range s.listeners {
			if len(l.sites) > 0 {
				out[l.key] = l.addr
			}
		}
	})
	return out
}

// openListeners opens cfg's bindings that are not open yet, and its pools'
// sockets. On error it closes the bindings it opened, so that a reload that
// fails leaves the listeners as they were.
func (s *Supervisor) openListeners(cfg *config.Config) (opened []*listener, err error) {
	keys, sites := siteBindings(cfg)
	defer func() {
		if err != nil {
			s.closeOpened(opened)
			opened = nil
		}
	}()
	for _, k := range keys {
		if _, ok := s.listeners[k]; ok {
			continue
		}
		l, err := s.openBinding(sites[k][0], bindingOf(sites[k][0], k))
		if err != nil {
			return opened, err
		}
		l.sites = sites[k]
		s.listeners[k] = l
		opened = append(opened, l)
	}
	for name := range cfg.Pools {
		if err := s.openPoolSocket(name); err != nil {
			return opened, err
		}
	}
	return opened, nil
}

// closeOpened closes bindings openListeners opened, for a change that failed.
func (s *Supervisor) closeOpened(opened []*listener) {
	for _, l := range opened {
		l.close()
		delete(s.listeners, l.key)
	}
}

func (s *Supervisor) openPoolSocket(name string) error {
	key := "pool:" + name
	if _, ok := s.listeners[key]; ok {
		return nil
	}
	path := filepath.Join(s.rundir, "pool-"+strconv.Itoa(len(s.listeners))+".sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("pool %q: socket: %w", name, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fd, err := dupListener(ln)
	if err != nil {
		return fmt.Errorf("pool %q: socket: %w", name, err)
	}
	s.listeners[key] = &listener{key: key, addr: path, pool: name, fd: fd}
	return nil
}

func (s *Supervisor) closeListeners() {
	for _, l := range s.listeners {
		s.standbyOff(l)
		l.close()
	}
}

// close closes our descriptor of the socket (once), and removes the file of
// a unix socket wisp created.
func (l *listener) close() {
	if l.fd >= 0 {
		syscall.Close(l.fd)
		l.fd = -1
	}
	if l.unlink != "" {
		os.Remove(l.unlink)
		l.unlink = ""
	}
}

// openBinding listens on a site's binding, or takes the socket systemd
// passed for it.
func (s *Supervisor) openBinding(st *config.Site, b string) (*listener, error) {
	var ln net.Listener
	var err error
	unlink := ""
	if a, ok := s.opt.Inherited.Take(b, st.Name); ok {
		ln = a.Ln
		s.log.Info("socket activation: serving the socket systemd passed", "binding", b, "name", a.Name, "addr", a.Addr())
	} else if ln, err = listen.Open(b, s.opt.Unix); err == nil {
		unlink, _ = listen.UnixPath(b)
	}
	if err == nil {
		var fd int
		if fd, err = dupListener(ln); err == nil {
			addr := ln.Addr().String()
			if _, ok := ln.Addr().(*net.UnixAddr); ok {
				addr = "unix:" + addr
			}
			return &listener{key: bindingKey(st, b), addr: addr, fd: fd, unlink: unlink}, nil
		}
		if unlink != "" {
			os.Remove(unlink)
		}
	}
	return nil, fmt.Errorf("site %q: listen %s: %w", st.Name, b, err)
}

// dupListener returns a close-on-exec duplicate of ln's socket and closes ln.
// It never goes through os.File.Fd, which would switch the socket, shared
// with every worker, to blocking mode: an accept in a worker could then block
// for good after another worker took the connection.
func dupListener(ln net.Listener) (int, error) {
	defer ln.Close()
	sc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = sc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = derr
	}
	return nfd, err
}

// run is the supervisor's goroutine: it owns every pool and worker.
func (s *Supervisor) run(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: Pdeathsig follows the thread that started the child
	defer close(s.done)
	names := make([]string, 0, len(s.cfg.Pools))
	for n := range s.cfg.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, err := s.newPool(s.cfg, n)
		if err != nil {
			ready <- err
			return
		}
		s.pools[n] = p
	}
	for _, n := range names {
		s.pools[n].startWorkers()
	}
	ready <- nil
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case f := <-s.events:
			f()
		case <-tick.C:
			s.tick()
		case <-s.quit:
			return
		}
		if s.stopping && s.liveWorkers() == 0 {
			return
		}
	}
}

// Responsive reports whether the supervisor's loop answers within 5 s and
// has a pool that can serve (systemd's watchdog pings only then).
func (s *Supervisor) Responsive() bool {
	ok := make(chan bool, 1)
	go s.call(func() {
		serving := len(s.pools) == 0
		for _, p := range s.pools {
			if p.state != PoolStopped {
				serving = true
			}
		}
		ok <- serving
	})
	select {
	case v := <-ok:
		return v
	case <-time.After(5 * time.Second):
		return false
	}
}

// Drain makes /readyz answer 503 from now on, while the server still serves:
// the start of a shutdown with a drain delay.
func (s *Supervisor) Drain() { s.call(func() { s.draining = true }) }

// Unready lists why the server cannot take traffic (for /readyz): a pool
// with no ready worker (an idle pool counts as ready: a request starts it),
// or shutting down. None: ready.
func (s *Supervisor) Unready() []string {
	var reasons []string
	if !s.call(func() {
		if s.stopping || s.draining {
			reasons = append(reasons, "draining: the server is shutting down")
			return
		}
		for _, name := range slices.Sorted(maps.Keys(s.pools)) {
			p := s.pools[name]
			switch p.state {
			case PoolIdle:
				continue
			case PoolStopped:
				reasons = append(reasons, fmt.Sprintf("pool %s is stopped (%s)", name, p.reason))
				continue
			}
			ready := false
			for _, w := range p.workers {
				ready = ready || w.state == Ready
			}
			if !ready {
				reasons = append(reasons, fmt.Sprintf("pool %s has no ready worker", name))
			}
		}
	}) {
		reasons = append(reasons, "stopped")
	}
	return reasons
}

// post queues f to run on the supervisor goroutine.
func (s *Supervisor) post(f func()) {
	select {
	case s.events <- f:
	case <-s.done:
	}
}

// call runs f on the supervisor goroutine and waits for it.
func (s *Supervisor) call(f func()) bool {
	done := make(chan struct{})
	select {
	case s.events <- func() { f(); close(done) }:
	case <-s.done:
		return false
	}
	select {
	case <-done:
		return true
	case <-s.done:
		return false
	}
}

func (s *Supervisor) liveWorkers() int {
	n := 0
	for _, p := range s.pools {
		n += len(p.workers)
	}
	return n
}

func (s *Supervisor) tick() {
	for _, p := range s.pools {
		p.tick()
	}
}

// Wait blocks until the supervisor has stopped.
func (s *Supervisor) Wait() { <-s.done }

// Shutdown drains every worker (in-flight requests finish within each pool's
// graceful timeout), kills what is left when ctx ends, and releases the
// listeners.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.call(func() {
		s.stopping = true
		for _, p := range s.pools {
			p.state = PoolStopped
			p.reason = "shutting down"
			for _, w := range p.workers {
				p.drain(w, "shutdown")
			}
		}
		// Close our copies of the listening sockets now: the workers close
		// theirs as the first step of draining, so the kernel refuses new
		// connections at once instead of queueing them on a socket nobody
		// accepts from and resetting them when we exit.
		for _, l := range s.listeners {
			s.standbyOff(l)
			l.close()
		}
	})
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = errors.New("grace period over: killed the remaining workers")
		s.call(func() {
			for _, p := range s.pools {
				for _, w := range p.workers {
					w.signal(syscall.SIGKILL)
				}
			}
		})
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			close(s.quit)
			<-s.done
		}
	}
	s.closeListeners()
	for _, m := range s.certs.acme {
		m.Stop()
	}
	os.RemoveAll(s.rundir)
	return err
}

// Reload applies a new configuration: unchanged pools keep running
// untouched, changed ones recycle overlapped, new ones start, removed ones
// drain. Bindings that appear are opened; a binding that cannot be opened
// fails the reload and changes nothing.
func (s *Supervisor) Reload(cfg *config.Config) error {
	var err error
	ok := s.call(func() {
		if s.stopping {
			err = errors.New("the server is shutting down")
			return
		}
		err = s.reload(cfg)
	})
	if !ok {
		return errors.New("the supervisor is stopping")
	}
	return err
}

func (s *Supervisor) reload(cfg *config.Config) error {
	old := s.cfg
	s.collect = newOutcome("reload")
	s.lastReload = s.collect
	defer func() { s.collect = nil }()
	// Open what is new first, so that a failure leaves everything as it was.
	opened, err := s.openListeners(cfg)
	if err != nil {
		return err
	}
	if err := s.loadCerts(cfg); err != nil {
		s.closeOpened(opened)
		return err
	}
	keys, sites := siteBindings(cfg)
	changed, added, removed, routes := config.Diff(old, cfg)
	if old.Server.Fingerprint() != cfg.Server.Fingerprint() || routes {
		// every worker's listeners, routes or server settings change
		changed = nil
		for n := range cfg.Pools {
			if old.Pools[n] != nil {
				changed = append(changed, n)
			}
		}
	}
	// A pool whose last reload or recycle failed runs other settings than
	// the file says: try again.
	for n, p := range s.pools {
		if p.configNote != "" && cfg.Pools[n] != nil && !slices.Contains(changed, n) {
			changed = append(changed, n)
		}
	}
	s.cfg = cfg
	for _, k := range keys {
		s.listeners[k].sites = sites[k]
	}
	for _, n := range removed {
		p := s.pools[n]
		p.state = PoolStopped
		p.reason = "removed from the configuration"
		for _, w := range p.workers {
			p.drain(w, "removed from the configuration")
		}
		delete(s.pools, n)
		s.log.Info("pool removed", "pool", n)
	}
	for _, n := range changed {
		p := s.pools[n]
		np, err := s.newPool(cfg, n)
		if err != nil {
			s.log.Error("pool cannot be updated; it keeps its old settings", "pool", n, "err", err)
			continue
		}
		p.prev = &prevSettings{cfg: p.cfg, spec: p.spec, cred: p.userCred}
		p.cfg, p.spec, p.userCred = np.cfg, np.spec, np.userCred
		s.log.Info("pool changed: recycling its workers", "pool", n)
		if p.state == PoolRunning {
			for _, w := range p.workers {
				p.recycle(w, "configuration change")
			}
		}
	}
	for _, n := range added {
		p, err := s.newPool(cfg, n)
		if err != nil {
			s.log.Error("pool cannot start", "pool", n, "err", err)
			continue
		}
		s.pools[n] = p
		p.startWorkers()
		s.log.Info("pool added", "pool", n)
	}
	// Bindings no site uses any more: close once the old workers are gone
	// (they hold their own copies; closing ours stops nothing in flight).
	for k, l := range s.listeners {
		if len(l.sites) > 0 && sites[k] == nil {
			s.standbyOff(l)
			l.close()
			delete(s.listeners, k)
		}
		if l.pool != "" && cfg.Pools[l.pool] == nil && s.pools[l.pool] == nil {
			l.close()
			delete(s.listeners, k)
		}
	}
	// A reload also restarts pools that rapid-fail protection stopped (as
	// `wisp start` does): the new configuration may be the fix.
	for _, p := range s.pools {
		if p.state == PoolStopped && strings.HasPrefix(p.reason, "rapid-fail") {
			p.start("configuration reloaded")
		}
	}
	for _, l := range s.listeners {
		if len(l.sites) > 0 {
			s.standbyOff(l) // answered again below, with the new sites and certificates
		}
	}
	s.updateStandby()
	// Workers that keep running read their certificate files again (a
	// renewed certificate at the same paths is served at once).
	for _, p := range s.pools {
		if !slices.Contains(changed, p.name) {
			for _, w := range p.workers {
				if w.state == Ready {
					w.signal(syscall.SIGHUP)
				}
			}
		}
	}
	s.log.Info("configuration reloaded", "changed", strings.Join(changed, ","), "added", strings.Join(added, ","),
		"removed", strings.Join(removed, ","))
	return nil
}

// AwaitReload waits until the workers the latest reload started are ready,
// and returns why they are not if some failed (their pools keep running
// their previous configuration).
func (s *Supervisor) AwaitReload() error {
	var o *outcome
	s.call(func() { o = s.lastReload })
	return s.wait(o)
}

// Recycle replaces every worker of a pool, overlapped, and waits until the
// new workers are ready; if they fail, the old ones keep serving and the
// error says why.
func (s *Supervisor) Recycle(name string) error {
	var err error
	o := newOutcome("recycle")
	s.call(func() {
		s.collect = o
		defer func() { s.collect = nil }()
		p := s.pools[name]
		if p == nil {
			err = fmt.Errorf("no pool %q", name)
			return
		}
		if p.state != PoolRunning {
			err = fmt.Errorf("pool %q is %s", name, p.state)
			return
		}
		for _, w := range p.workers {
			p.recycle(w, "on demand")
		}
	})
	if err != nil {
		return err
	}
	return s.wait(o)
}

// StartPool starts a pool that rapid-fail protection (or idleness) stopped.
func (s *Supervisor) StartPool(name string) error {
	return s.withPool(name, func(p *pool) error {
		if s.stopping {
			return errors.New("the server is shutting down")
		}
		p.start("on demand")
		return nil
	})
}

// withPool runs f with the named pool on the supervisor goroutine.
func (s *Supervisor) withPool(name string, f func(p *pool) error) error {
	var err error
	s.call(func() {
		p := s.pools[name]
		if p == nil {
			err = fmt.Errorf("no pool %q", name)
			return
		}
		err = f(p)
	})
	return err
}

// StopPool stops a pool on demand, as IIS stops an application pool: its
// workers drain, and its requests get 503 + Retry-After until StartPool or
// a reload.
func (s *Supervisor) StopPool(name string) error {
	return s.withPool(name, func(p *pool) error {
		p.stop("stopped on demand")
		return nil
	})
}

// Status returns a snapshot of every pool and worker.
func (s *Supervisor) Status() Status {
	st := Status{PID: os.Getpid()}
	s.call(func() {
		st.Config = s.cfg.File
		names := make([]string, 0, len(s.pools))
		for n := range s.pools {
			names = append(names, n)
		}
		sort.Strings(names)
		now := time.Now()
		for _, n := range names {
			p := s.pools[n]
			ps := PoolStatus{Name: n, State: p.state, Reason: p.reason, Failures: len(p.recentFailures(now)), ConfigNote: p.configNote}
			for _, w := range p.workers {
				ws := WorkerStatus{ID: w.id, PID: w.pid, State: w.state, RSSMB: float64(w.rss) / (1 << 20),
					Requests: w.requests, Conns: p.conns(w)}
				if !w.readyAt.IsZero() {
					ws.Uptime = now.Sub(w.readyAt).Truncate(time.Second).String()
				}
				ps.Workers = append(ps.Workers, ws)
			}
			ps.Exited = append(ps.Exited, p.history...)
			st.Pools = append(st.Pools, ps)
		}
	})
	return st
}

// newPool builds a pool's runtime and worker spec from cfg.
func (s *Supervisor) newPool(cfg *config.Config, name string) (*pool, error) {
	pc := cfg.Pools[name]
	p := &pool{s: s, name: name, cfg: pc, state: PoolRunning, backoff: minBackoff, lastActive: time.Now()}
	if pc.User != "" || pc.Group != "" {
		cred, err := credential(pc.User, pc.Group)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", name, err)
		}
		p.userCred = cred
	}
	sv := cfg.Server
	spec := WorkerSpec{
		Pool: name, Python: pc.Python, Chdir: pc.Chdir, PythonPath: pc.PythonPath,
		Handler: pc.Handler, Threads: pc.Threads, Queue: pc.Queue, MaxBody: int64(pc.MaxBody),
		MinWriteRate: int64(pc.MinWriteRate), MaxSpill: int64(pc.MaxSpill),
		MaxHeaderBytes: int(pc.MaxHeaderBytes), ReadHeader: time.Duration(sv.ReadHeaderTimeout),
		Read: time.Duration(sv.ReadTimeout), Write: time.Duration(sv.WriteTimeout), Idle: time.Duration(sv.IdleTimeout),
		Graceful: time.Duration(pc.GracefulTimeout), RequestTimeout: time.Duration(pc.RequestTimeout),
		Multiprocess: pc.Processes > 1, Processes: pc.Processes, AccessLog: sv.AccessLog, AccessFormat: sv.AccessLogFormat, LogLevel: sv.LogLevel, MaxStreams: sv.HTTP2MaxStreams, TrustedProxies: sv.TrustedProxies, ErrorLog: s.opt.ErrorLog, DevReload: s.opt.DevReload,
		SchedPolicy: pc.SchedPolicy,
	}
	// The bindings this pool's workers accept on, and the sites on them:
	// its workers route every request of those sites, forwarding the vdirs
	// of other pools.
	keys, bsites := siteBindings(cfg)
	accepts := map[string]bool{}
	for _, k := range keys {
		sites := bsites[k]
		if bindingPool(sites) != name {
			continue
		}
		first := sites[0]
		ls := ListenerSpec{Addr: k, TLS: first.BindingTLS(bindingOf(first, k)), ProxyProtocol: first.ProxyProtocol}
		for _, st := range sites {
			ls.Sites = append(ls.Sites, st.Name)
			ls.H2C = ls.H2C || st.H2C
			accepts[st.Name] = true
		}
		spec.Listeners = append(spec.Listeners, ls)
	}
	for _, st := range cfg.Sites {
		serves := accepts[st.Name]
		site := SiteSpec{Name: st.Name, AccessLog: st.AccessLog, AccessFormat: st.AccessLogFormat,
			Hostnames: st.Hostnames, RedirectHTTP: st.RedirectHTTP, TLS: st.TLS}
		if m := s.certs.acme[st.Name]; m != nil {
			t := *st.TLS
			t.Storage = m.Storage() // resolved: a worker of another user would find another default
			site.TLS = &t
		}
		if st.RedirectHTTP {
			site.HTTPSPort = s.httpsPort(st)
		}
		for _, v := range st.Vdirs {
			m := MountSpec{Prefix: v.Path, Timeout: time.Duration(v.RequestTimeout), MaxBody: int64(v.MaxBody),
				MaxConcurrent: shareOf(v.MaxConcurrent, pc.Processes)}
			if v.Pool == name {
				m.Target, m.Static, m.Cache, m.Dotfiles = v.App, v.Static, v.CacheControl, v.Dotfiles
				serves = true
			} else {
				m.Forward = s.listeners["pool:"+v.Pool].addr
			}
			site.Mounts = append(site.Mounts, m)
		}
		if serves {
			spec.Sites = append(spec.Sites, site)
		}
	}
	spec.Listeners = append(spec.Listeners, ListenerSpec{Addr: "pool:" + name})
	p.spec = spec
	return p, nil
}

// shareOf is one process's share of a pool-wide bound (0: none), rounded up.
func shareOf(bound, processes int) int {
	if bound <= 0 {
		return 0
	}
	return (bound + max(processes, 1) - 1) / max(processes, 1)
}

// httpsPort is the port of a site's first TLS binding as bound (port 0
// resolved), for redirect_http; "" for 443.
func (s *Supervisor) httpsPort(st *config.Site) string {
	for _, b := range st.Bindings {
		if !st.BindingTLS(b) {
			continue
		}
		if l := s.listeners[bindingKey(st, b)]; l != nil {
			if _, port, err := net.SplitHostPort(l.addr); err == nil && port != "443" {
				return port
			}
		}
		return ""
	}
	return ""
}

// primaryPool is the pool that accepts on a site's bindings: the one serving
// its shortest (usually root) vdir. Requests for other pools' vdirs are
// forwarded by its workers, the exception rather than the rule.
func primaryPool(st *config.Site) string {
	best := ""
	bestLen := -1
	for _, v := range st.Vdirs {
		if bestLen < 0 || len(v.Path) < bestLen {
			best, bestLen = v.Pool, len(v.Path)
		}
	}
	return best
}

// credential resolves a pool's user and group (names or ids); it needs root.
func credential(u, g string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user/group %q/%q: wisp must start as root to run a pool as another user", u, g)
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if u != "" {
		usr, err := user.Lookup(u)
		if err != nil {
			if usr, err = user.LookupId(u); err != nil {
				return nil, fmt.Errorf("user %q: no such user", u)
			}
		}
		uid, _ := strconv.Atoi(usr.Uid)
		gid, _ := strconv.Atoi(usr.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if g != "" {
		grp, err := user.LookupGroup(g)
		if err != nil {
			if grp, err = user.LookupGroupId(g); err != nil {
				return nil, fmt.Errorf("group %q: no such group", g)
			}
		}
		gid, _ := strconv.Atoi(grp.Gid)
		cred.Gid = uint32(gid)
	}
	cred.NoSetGroups = true
	return cred, nil
}

// spawn execs one worker of p; it replaces old once ready (nil: a new slot).
func (s *Supervisor) spawn(p *pool, old *worker) *worker {
	if s.stopping {
		return nil // the listeners are closed
	}
	s.nextID++
	spec := p.spec
	spec.ID = s.nextID
	spec.TraceSocket = filepath.Join(s.rundir, "trace-"+strconv.Itoa(s.nextID)+".sock")
	w := &worker{id: s.nextID, pool: p, state: Starting, started: time.Now(), replaces: old, slot: -1}
	if n := p.cfg.MaxRequests; n > 0 {
		w.maxRequests = n
		if j := p.cfg.MaxRequestsJitter; j > 0 {
			w.maxRequests += rand.IntN(j + 1)
		}
	}
	r, wr, err := os.Pipe()
	if err != nil {
		s.log.Error("cannot start a worker", "pool", p.name, "err", err)
		return nil
	}
	// Raw descriptors (syscall.ForkExec, not exec.Cmd): exec.Cmd would call
	// os.File.Fd on the shared listeners and make them blocking.
	fds := []uintptr{s.devNull.Fd(), s.fileFD(s.opt.Stdout), s.fileFD(s.opt.Stderr), wr.Fd()}
	for _, l := range spec.Listeners {
		fds = append(fds, uintptr(s.listeners[l.Addr].fd))
	}
	if old != nil {
		w.cpuIndex = old.cpuIndex // the replacement takes over its CPUs
	} else {
		w.cpuIndex = p.freeCPUIndex()
	}
	if p.cfg.CPUAffinity && p.cfg.Processes >= 2 {
		spec.CPUs = cpuShare(s.cpus, w.cpuIndex, p.cfg.Processes)
	}
	spec.BoardSlot = -1
	if p.board == nil {
		if b, err := newBoard(); err == nil {
			p.board = b
		} else {
			s.log.Warn("no connection balancing between the pool's workers", "pool", p.name, "err", err)
		}
	}
	if p.board != nil {
		if w.slot = p.board.take(); w.slot >= 0 {
			spec.BoardSlot = w.slot
			fds = append(fds, p.board.f.Fd())
		}
	}
	// The worker's trace socket, made here so that a worker running as
	// another user needs no right to the supervisor's folder.
	spec.TraceFD = -1
	var traceFD int = -1
	if ln, err := net.Listen("unix", spec.TraceSocket); err == nil {
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		if fd, err := dupListener(ln); err == nil {
			traceFD = fd
			spec.TraceFD = len(fds)
			fds = append(fds, uintptr(fd))
		}
	} else {
		s.log.Warn("no trace for a worker", "pool", p.name, "err", err)
	}
	raw, _ := json.Marshal(spec)
	env := os.Environ()
	for k, v := range p.cfg.Env {
		env = append(env, k+"="+v)
	}
	env = append(workerGODEBUG(env), WorkerEnv+"="+string(raw))
	pid, err := syscall.ForkExec(s.opt.Exe, []string{s.opt.Exe, "worker"}, &syscall.ProcAttr{
		Env: env, Files: fds,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: p.userCred},
	})
	wr.Close()
	if traceFD >= 0 {
		syscall.Close(traceFD) // the worker has its own
	}
	if err != nil {
		os.Remove(spec.TraceSocket)
		r.Close()
		p.freeSlot(w)
		if s.collect != nil {
			s.collect.failed(p, "cannot start a worker: "+err.Error())
		}
		s.log.Error("cannot start a worker", "pool", p.name, "err", err)
		p.failed(w, err.Error(), nil, true)
		return nil
	}
	proc, _ := os.FindProcess(pid)
	w.proc, w.pid = proc, pid
	p.workers = append(p.workers, w)
	s.log.Info("worker starting", "pool", p.name, "worker", w.id, "pid", w.pid)
	if s.collect != nil {
		s.collect.started(p, w)
	}
	statusDone := make(chan struct{})
	go func() { w.readStatus(r); close(statusDone) }()
	go func() {
		st, err := proc.Wait()
		os.Remove(spec.TraceSocket)
		// its last status lines (why it failed) are handled first
		select {
		case <-statusDone:
		case <-time.After(time.Second):
		}
		s.post(func() { p.exited(w, st, err) })
	}()
	timeout := time.Duration(p.cfg.StartTimeout)
	time.AfterFunc(timeout, func() {
		s.post(func() {
			if w.state == Starting {
				s.log.Error("worker did not become ready in time: killed", "pool", p.name, "worker", w.id,
					"start_timeout", timeout.String())
				w.startTimedOut = true
				w.signal(syscall.SIGKILL)
			}
		})
	})
	return w
}

// standbyOn makes the supervisor answer on l (no worker serves it).
func (s *Supervisor) standbyOn(l *listener) {
	if l.standby != nil {
		return
	}
	fd, err := syscall.Dup(l.fd)
	if err != nil {
		s.log.Error("standby listener", "addr", l.addr, "err", err)
		return
	}
	f := os.NewFile(uintptr(fd), l.addr)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		s.log.Error("standby listener", "addr", l.addr, "err", err)
		return
	}
	var b *edge.Binding
	if len(l.sites) > 0 {
		if b, err = s.standbyBinding(l); err != nil {
			ln.Close()
			s.log.Error("standby listener", "addr", l.addr, "err", err)
			return
		}
		ln = b.Listener(ln)
	}
	srv := &http.Server{Handler: s.standbyHandler(l, b), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	l.standby, l.sbLn = srv, ln
	go srv.Serve(ln)
}

// standbyOff stops answering on l: the listener closes now, requests being
// answered finish in the background.
func (s *Supervisor) standbyOff(l *listener) {
	if l.standby == nil {
		return
	}
	l.sbLn.Close()
	srv := l.standby
	l.standby, l.sbLn = nil, nil
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv.Shutdown(ctx)
	}()
}

// updateStandby turns standby on for every listener whose serving pool has
// no worker (idle or stopped) and off for the others.
func (s *Supervisor) updateStandby() {
	for _, l := range s.listeners {
		name := l.pool
		if len(l.sites) > 0 {
			name = bindingPool(l.sites)
		}
		p := s.pools[name]
		if s.stopping || (p != nil && p.state == PoolRunning) {
			s.standbyOff(l)
		} else {
			s.standbyOn(l)
		}
	}
}

// standbyHandler answers for pools without workers: a stopped pool gets 503
// with Retry-After; an idle one is started, and the request waits for it and
// is then forwarded to it.
func (s *Supervisor) standbyHandler(l *listener, b *edge.Binding) http.Handler {
	sites := map[string]*config.Site{}
	for _, st := range l.sites {
		sites[st.Name] = st
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		poolName := l.pool
		siteName := r.Header.Get("X-Wisp-Site")
		if b != nil {
			es, answered := b.Front(w, r)
			if answered {
				return
			}
			site := sites[es.Name]
			siteName = site.Name
			poolName = routePool(site, r.URL.Path)
		}
		if poolName == "" {
			http.Error(w, "404 Not Found: no application is mounted at this path", http.StatusNotFound)
			return
		}
		var wait chan struct{}
		var socket, reason string
		var timeout time.Duration
		s.call(func() {
			p := s.pools[poolName]
			if p == nil || s.stopping {
				reason = "the server is stopping"
				return
			}
			socket = s.listeners["pool:"+poolName].addr
			timeout = time.Duration(p.cfg.StartTimeout) + 5*time.Second
			switch p.state {
			case PoolStopped:
				reason = "pool " + p.name + " is stopped: " + p.reason
			case PoolIdle:
				p.start("a request arrived after idle timeout")
				fallthrough
			default:
				if p.hasReady() {
					return
				}
				wait = make(chan struct{})
				p.waiters = append(p.waiters, wait)
			}
		})
		if reason == "" && wait != nil {
			select {
			case <-wait:
			case <-time.After(timeout):
				reason = "pool " + poolName + " did not start in time"
			case <-r.Context().Done():
				return
			}
		}
		if reason != "" {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "503 Service Unavailable: "+reason, http.StatusServiceUnavailable)
			return
		}
		s.forwarder(socket, siteName).ServeHTTP(w, r)
	})
}

// forwarder returns the (cached) forwarder to a pool socket for a site, so
// that standby requests reuse connections.
func (s *Supervisor) forwarder(socket, site string) http.Handler {
	key := socket + "\x00" + site
	if f, ok := s.forwarders.Load(key); ok {
		return f.(http.Handler)
	}
	f, _ := s.forwarders.LoadOrStore(key, server.NewForwarder(socket, site, s.log))
	return f.(http.Handler)
}

// routePool finds the pool of the vdir serving path in site (longest prefix).
func routePool(site *config.Site, path string) string {
	best, bestLen := "", -1
	for _, v := range site.Vdirs {
		p := strings.TrimRight(v.Path, "/")
		if (p == "" || path == p || strings.HasPrefix(path, p+"/")) && len(p) > bestLen {
			best, bestLen = v.Pool, len(p)
		}
	}
	return best
}

// WaitReady waits until every running pool has a ready worker (or timeout).
func (s *Supervisor) WaitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := true
		if !s.call(func() {
			for _, p := range s.pools {
				if p.state == PoolRunning && !p.hasReady() {
					ok = false
				}
			}
		}) {
			return false
		}
		if ok {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// fileFD is w's descriptor for a child if w is a file, else /dev/null's.
// Only for the log streams, whose blocking mode does not matter.
func (s *Supervisor) fileFD(w io.Writer) uintptr {
	if f, ok := w.(*os.File); ok {
		return f.Fd()
	}
	if r, ok := w.(interface{ File() *os.File }); ok && r.File() != nil {
		return r.File().Fd() // a log file that is reopened (logrotate): the current one
	}
	return s.devNull.Fd()
}

// SignalWorkers sends sig to every live worker of every pool (SIGUSR1: each
// reopens its access log). It returns how many workers it signalled.
func (s *Supervisor) SignalWorkers(sig syscall.Signal) int {
	n := 0
	s.call(func() {
		for _, p := range s.pools {
			for _, w := range p.workers {
				w.signal(sig)
				n++
			}
		}
	})
	return n
}

// Trace streams the trace of every worker of every pool (f.Pool: of one
// pool) to out until ctx ends: the lines each keeps since f.Since, then live
// lines, from the workers running now and those that start meanwhile.
func (s *Supervisor) Trace(ctx context.Context, f trace.Filter, out func(trace.Line) error) error {
	var mu sync.Mutex
	var failed error
	send := func(l trace.Line) error {
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			return failed
		}
		if err := out(l); err != nil {
			failed = err
			return err
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	dialed := map[int]bool{}
	first := true
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		type target struct {
			id   int
			sock string
		}
		var targets []target
		if !s.call(func() {
			for _, p := range s.pools {
				if f.Pool != "" && p.name != f.Pool {
					continue
				}
				for _, w := range p.workers {
					if !dialed[w.id] && w.state != Stopped && w.state != Crashed {
						targets = append(targets, target{w.id, filepath.Join(s.rundir, "trace-"+strconv.Itoa(w.id)+".sock")})
					}
				}
			}
		}) {
			return nil
		}
		for _, t := range targets {
			dialed[t.id] = true
			wf := f
			if wf.Since.IsZero() && !first {
				wf.Since = began // a worker that started while we watch: everything it said
			}
			go func() {
				// the worker's socket appears once it has started: try until it serves
				for i := 0; i < 600 && ctx.Err() == nil; i++ {
					if err := trace.Dial(ctx, t.sock, wf, send); !errors.Is(err, trace.ErrNotServing) {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		mu.Lock()
		err := failed
		mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Metrics is every pool's counters and workers, for /metrics: the live
// workers' last reports added to what the gone ones left.
func (s *Supervisor) Metrics() []metrics.PoolView {
	var out []metrics.PoolView
	s.call(func() {
		for _, name := range slices.Sorted(maps.Keys(s.pools)) {
			p := s.pools[name]
			v := metrics.PoolView{Pool: name, State: string(p.state), Crashes: p.crashes, RapidFailStops: p.rapidFailStops,
				Recycles: maps.Clone(p.recycles)}
			v.Snap.Add(p.retired)
			for _, w := range p.workers {
				v.Snap.Add(w.metrics)
				v.Workers = append(v.Workers, metrics.WorkerView{PID: w.pid, State: w.state.String(), RSS: w.rss})
			}
			out = append(out, v)
		}
	})
	return out
}
