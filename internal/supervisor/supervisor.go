package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/listen"
	"wisp/internal/poolstate"
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
	// Build is the supervisor's build (version and commit), shown by Status
	// and compared with the build each worker reports.
	Build string
	// Owned are the paths of the unix sockets among Inherited that the
	// previous supervisor of an upgrade created: removed at exit as if
	// this one had.
	Owned []string
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
	// poolSockets counts the pool sockets opened, which names them.
	poolSockets int
	stopping    bool
	draining    bool // /readyz says 503 ahead of the shutdown (drain delay)

	collect    *outcome // the reload or recycle being applied: it follows the workers spawn starts
	lastReload *outcome // the latest reload's, for AwaitReload

	certs    supCerts          // the sites' certificates (standby answers, ACME)
	acmeKeys map[string]string // the settings each ACME manager was made for

	forwarders sync.Map // socket+site → http.Handler, used by standby handlers
	devNull    *os.File // workers' stdin
	cpus       []int    // the CPUs wisp may use, shared out by CPUAffinity
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
	if err == nil {
		// pools of other users reach the sockets of the pools they forward
		// to through it (see poolsockets.go); nobody may list it
		if err = os.Chmod(rundir, 0o711); err != nil {
			os.RemoveAll(rundir)
		}
	}
	if err != nil {
		devNull.Close()
		return nil, fmt.Errorf("run folder: %w", err)
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
	s.grantPoolSockets()
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
			if p.state != poolstate.PoolStopped {
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
			case poolstate.PoolIdle:
				continue
			case poolstate.PoolStopped:
				reasons = append(reasons, fmt.Sprintf("pool %s is stopped (%s)", name, p.reason))
				continue
			}
			ready := false
			for _, w := range p.workers {
				ready = ready || w.state == poolstate.Ready
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
			p.state = poolstate.PoolStopped
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
		s.Abort("grace period over")
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

// Abort ends every worker at once (SIGKILL), for a shutdown that cannot
// wait (a second stop signal, or the grace period over). It logs each
// worker cut off with the requests it was running at its last report (once
// a second) and its open connections, and returns the requests cut off.
func (s *Supervisor) Abort(why string) int {
	n := 0
	s.call(func() {
		for _, name := range slices.Sorted(maps.Keys(s.pools)) {
			for _, w := range s.pools[name].workers {
				busy := int(w.metrics.Busy)
				n += busy
				s.log.Warn("killed: requests in flight cut off", "why", why, "pool", name, "worker", w.id, "pid", w.pid,
					"state", w.state.String(), "requests_in_flight", busy, "connections", s.pools[name].conns(w))
				w.signal(syscall.SIGKILL)
			}
		}
	})
	return n
}

// WaitReady waits until every running pool has a ready worker (or timeout).
func (s *Supervisor) WaitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := true
		if !s.call(func() {
			for _, p := range s.pools {
				if p.state == poolstate.PoolRunning && !p.hasReady() {
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
