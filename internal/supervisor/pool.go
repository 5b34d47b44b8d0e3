package supervisor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/metrics"
	"wisp/internal/poolstate"
)

// pool is one application pool at run time. Owned by the supervisor goroutine.
type pool struct {
	s          *Supervisor
	name       string
	cfg        *config.Pool
	spec       WorkerSpec
	ident      *identity // nil: the supervisor's
	state      poolstate.PoolState
	reason     string      // why the pool is stopped
	workers    []*worker   // starting, ready or draining
	failures   []time.Time // recent crashes that count for rapid-fail protection
	backoff    time.Duration
	lastCrash  time.Time
	restarting int // restarts scheduled after a crash
	requests   uint64
	lastActive time.Time
	waiters    []chan struct{}          // standby requests waiting for a ready worker
	history    []poolstate.WorkerStatus // the last workers that exited, newest last
	board      *board                   // connection counts shared by the workers (nil: not balanced)
	prev       *prevSettings            // what its workers ran before the last reload changed it
	configNote string                   // why the running pool differs from the file (a failed reload or recycle)
	routesAt   time.Time                // when a reload last changed its routes only (see reroute)
	retiring   bool                     // removed by a reload: drains after routesSettle (see retire)

	// metrics: the counters of the workers that are gone (live ones are
	// added when read), recycles by reason, crashes, rapid-fail stops
	retired        metrics.Snapshot
	recycles       map[string]uint64
	crashes        uint64
	rapidFailStops uint64
}

// freeCPUIndex picks the CPU share (0..processes-1) held by the fewest of the
// pool's workers that are not draining, the lowest on a tie.
func (p *pool) freeCPUIndex() int {
	n := max(p.cfg.Processes, 1)
	count := make([]int, n)
	for _, w := range p.workers {
		if w.state != poolstate.Draining && w.cpuIndex < n {
			count[w.cpuIndex]++
		}
	}
	best := 0
	for k := range count {
		if count[k] < count[best] {
			best = k
		}
	}
	return best
}

// conns is how many client connections a worker holds, as it published
// them on the board (0 without one).
func (p *pool) conns(w *worker) int64 {
	if p.board == nil || w.slot < 0 {
		return 0
	}
	return atomic.LoadInt64(word(p.board.mem, w.slot, 0))
}

// freeSlot releases an exited worker's board slot.
func (p *pool) freeSlot(w *worker) {
	if p.board != nil && w.slot >= 0 {
		p.board.free(w.slot)
		w.slot = -1
	}
}

// historySize is how many exited workers `wisp status` still shows.
const historySize = 5

// remember keeps an exited worker for `wisp status`.
func (p *pool) remember(w *worker) {
	p.history = append(p.history, poolstate.WorkerStatus{ID: w.id, PID: w.pid, State: w.state, RSSMB: float64(w.rss) / (1 << 20),
		Requests: w.requests, Uptime: "exited " + time.Now().Format(time.TimeOnly), How: w.exitHow})
	if len(p.history) > historySize {
		p.history = p.history[1:]
	}
}

// worker is one worker process.
type worker struct {
	id            int
	pool          *pool
	proc          *os.Process
	pid           int
	state         poolstate.State
	started       time.Time
	readyAt       time.Time
	requests      uint64
	rss           int64
	maxRequests   int
	replaces      *worker // the worker this one takes over from once ready
	replacedBy    *worker
	killTimer     *time.Timer
	startTimedOut bool
	slot          int              // on the pool's board; -1: none
	outcome       *outcome         // the reload or recycle that started it, until it is ready or fails
	crash         []string         // its crash report: the fatal signal, then the Python stack
	failure       string           // why it could not start, as it reported it
	metrics       metrics.Snapshot // its counters, as it last reported them
	exitHow       string           // why it went: recycled for what, drained why, or how it crashed
	cpuIndex      int              // which share of the CPUs it runs on (CPUAffinity)
	build         string           // the build of its binary, as it reported it
}

func (w *worker) signal(sig syscall.Signal) {
	if w.proc != nil {
		w.proc.Signal(sig)
	}
}

// crashPrefix starts the line a worker's crash handler writes on its status
// pipe; the Python stack of the crashing thread follows (see pyembed's
// wisp_crash.c).
const crashPrefix = "crash: "

// maxCrashLines bounds what the supervisor keeps of a crash report.
const maxCrashLines = 120

// readStatus relays the worker's status pipe to the supervisor goroutine:
// its JSON messages, and a crash report (kept for the log of its death).
func (w *worker) readStatus(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	crashing, lines := false, 0
	for sc.Scan() {
		var m statusMsg
		if line := sc.Text(); strings.HasPrefix(line, crashPrefix) || (crashing && !strings.HasPrefix(line, "{")) {
			if crashing = true; lines < maxCrashLines && strings.TrimSpace(line) != "" {
				lines++
				line = strings.TrimPrefix(line, crashPrefix)
				w.pool.s.post(func() { w.crash = append(w.crash, line) })
			}
			continue
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		w.pool.s.post(func() { w.pool.message(w, m) })
	}
}

// startWorkers starts the pool's processes.
func (p *pool) startWorkers() {
	for i := p.live(); i < p.cfg.Processes; i++ {
		p.s.spawn(p, nil)
	}
}

// live counts the pool's filled slots: workers starting for a slot of their
// own, ready workers (a ready one being replaced counts once), and restarts
// scheduled after a crash.
func (p *pool) live() int {
	n := p.restarting
	for _, w := range p.workers {
		if (w.state == poolstate.Starting && w.replaces == nil) || w.state == poolstate.Ready {
			n++
		}
	}
	return n
}

func (p *pool) hasReady() bool {
	for _, w := range p.workers {
		if w.state == poolstate.Ready {
			return true
		}
	}
	return false
}

func (p *pool) message(w *worker, m statusMsg) {
	if m.Metrics != nil {
		w.metrics = *m.Metrics
	}
	if m.Requests > w.requests {
		p.requests += m.Requests - w.requests
		p.lastActive = time.Now()
		w.requests = m.Requests
	}
	switch m.Event {
	case "build":
		p.s.noteBuild(w, m.Build)
	case "failed":
		w.failure = m.Reason
	case "ready":
		if w.state != poolstate.Starting {
			return
		}
		if w.outcome != nil {
			w.outcome.settle(p.s, p, w, "")
		}
		w.state = poolstate.Ready
		w.readyAt = time.Now()
		p.s.log.Info("worker ready", "pool", p.name, "worker", w.id, "pid", w.pid,
			"start", time.Since(w.started).Round(time.Millisecond).String())
		if w.started.Before(p.routesAt) {
			w.signal(syscall.SIGHUP) // it started with older routes than the pool's
		}
		if old := w.replaces; old != nil && old.state == poolstate.Ready {
			p.drain(old, "replaced")
		}
		w.replaces = nil
		if p.state == poolstate.PoolRunning {
			for _, c := range p.waiters {
				close(c)
			}
			p.waiters = nil
		}
		p.s.updateStandby()
	case "stats":
		if w.state == poolstate.Ready && w.maxRequests > 0 && w.requests >= uint64(w.maxRequests) {
			p.recycle(w, fmt.Sprintf("max requests (%d)", w.maxRequests))
		}
	case "stuck":
		p.recycle(w, "a request timed out and did not return")
	}
}

// recycle replaces w overlapped: a new worker starts, and w drains once the
// new one is ready.
func (p *pool) recycle(w *worker, reason string) {
	if w.state != poolstate.Ready || w.replacedBy != nil || p.state != poolstate.PoolRunning {
		if w.state == poolstate.Starting {
			// its settings are stale already: replace it when it is ready
			w.signal(syscall.SIGKILL)
			w.state = poolstate.Stopped
			p.s.spawn(p, nil)
		}
		return
	}
	p.s.log.Info("recycling worker", "pool", p.name, "worker", w.id, "pid", w.pid, "reason", reason)
	p.countRecycle(reasonClass(reason))
	w.exitHow = "recycled: " + reason
	if nw := p.s.spawn(p, w); nw != nil {
		w.replacedBy = nw
	}
}

// countRecycle counts a worker replaced or stopped for class (a metric
// label: requests, memory, uptime, idle, config, on demand, stuck).
func (p *pool) countRecycle(class string) {
	if p.recycles == nil {
		p.recycles = map[string]uint64{}
	}
	p.recycles[class]++
}

// reasonClass is the metric label of a recycle's reason (the reason itself
// names numbers, which would make a label per value).
func reasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, "max requests"):
		return "requests"
	case strings.HasPrefix(reason, "memory"):
		return "memory"
	case strings.HasPrefix(reason, "max uptime"):
		return "uptime"
	case reason == "configuration change":
		return "config"
	case reason == "on demand":
		return "on demand"
	case strings.HasPrefix(reason, "a request timed out"):
		return "stuck"
	}
	return "other"
}

// drain asks w to finish its in-flight requests and exit; after the graceful
// timeout it is killed.
func (p *pool) drain(w *worker, reason string) {
	if w.state == poolstate.Draining || w.state == poolstate.Stopped {
		return
	}
	if w.state == poolstate.Starting {
		w.state = poolstate.Stopped
		w.signal(syscall.SIGKILL)
		return
	}
	w.state = poolstate.Draining
	p.s.log.Info("worker draining", "pool", p.name, "worker", w.id, "pid", w.pid, "reason", reason)
	w.signal(drainSignal(reason))
	grace := time.Duration(p.cfg.GracefulTimeout) + 5*time.Second
	w.killTimer = time.AfterFunc(grace, func() {
		p.s.post(func() {
			if w.state == poolstate.Draining {
				p.s.log.Warn("worker did not drain in time: killed", "pool", p.name, "worker", w.id, "pid", w.pid)
				w.signal(syscall.SIGKILL)
			}
		})
	})
}

// stop stops the pool (rapid-fail protection): its workers drain, and the
// supervisor answers its requests with 503 until it is started again.
func (p *pool) stop(reason string) {
	if p.state == poolstate.PoolStopped {
		return
	}
	p.state = poolstate.PoolStopped
	p.reason = reason
	if strings.HasPrefix(reason, "rapid-fail") {
		p.rapidFailStops++
	}
	p.s.log.Error("pool stopped: answering 503 until 'wisp start "+p.name+"' or a reload", "pool", p.name, "reason", reason)
	for _, w := range p.workers {
		p.drain(w, "pool stopped")
	}
	for _, c := range p.waiters {
		close(c)
	}
	p.waiters = nil
	p.s.updateStandby()
}

// start (re)starts a stopped or idle pool.
func (p *pool) start(why string) {
	if p.state == poolstate.PoolRunning {
		return
	}
	p.s.log.Info("pool starting", "pool", p.name, "was", string(p.state), "why", why)
	p.state = poolstate.PoolRunning
	p.reason = ""
	p.failures = nil
	p.backoff = minBackoff
	p.lastActive = time.Now()
	p.startWorkers()
	p.s.updateStandby()
}

// tick checks memory, uptime and idleness once a second.
func (p *pool) tick() {
	now := time.Now()
	for _, w := range append([]*worker(nil), p.workers...) {
		w.rss = readRSS(w.pid)
		if w.state != poolstate.Ready {
			continue
		}
		mb := w.rss >> 20
		switch {
		case p.cfg.MaxRSSHardMB > 0 && mb >= int64(p.cfg.MaxRSSHardMB):
			p.countRecycle("memory")
			p.s.log.Warn("worker over its hard memory limit: killed and replaced", "pool", p.name, "worker", w.id,
				"pid", w.pid, "rss_mb", mb, "max_rss_hard_mb", p.cfg.MaxRSSHardMB)
			w.state = poolstate.Stopped
			w.signal(syscall.SIGKILL)
			if w.replacedBy == nil {
				p.s.spawn(p, nil)
			}
		case p.cfg.MaxRSSMB > 0 && mb >= int64(p.cfg.MaxRSSMB):
			p.recycle(w, fmt.Sprintf("memory: rss %d MB over max_rss_mb %d", mb, p.cfg.MaxRSSMB))
		case p.cfg.MaxUptime > 0 && now.Sub(w.readyAt) >= time.Duration(p.cfg.MaxUptime):
			p.recycle(w, "max uptime "+time.Duration(p.cfg.MaxUptime).String())
		}
	}
	if p.state == poolstate.PoolRunning && p.cfg.IdleTimeout > 0 && now.Sub(p.lastActive) >= time.Duration(p.cfg.IdleTimeout) &&
		len(p.waiters) == 0 && p.hasReady() {
		p.s.log.Info("pool idle: scaling to zero; the next request starts it", "pool", p.name,
			"idle_timeout", time.Duration(p.cfg.IdleTimeout).String())
		p.state = poolstate.PoolIdle
		for _, w := range p.workers {
			p.drain(w, "idle")
			p.countRecycle("idle")
		}
		p.s.updateStandby()
	}
	if p.state == poolstate.PoolRunning && p.live() < p.cfg.Processes {
		p.startWorkers()
	}
}

// readRSS returns the resident memory of a process in bytes (0 if gone).
func readRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

// drainSignal is how a worker is told to drain: SIGTERM when another
// worker takes its place (its WebSockets close with 1012, service restart),
// SIGINT when the pool or the server stops (1001, going away).
func drainSignal(reason string) syscall.Signal {
	switch reason {
	case "shutdown", "pool stopped", "removed from the configuration":
		return syscall.SIGINT
	}
	return syscall.SIGTERM
}
