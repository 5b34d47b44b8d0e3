package supervisor

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"wisp/internal/metrics"
	"wisp/internal/poolstate"
)

// Crash restarts wait minBackoff, doubling per consecutive crash up to
// maxBackoff; crashes are consecutive unless backoffReset passed between them.
const (
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 10 * time.Second
	backoffReset = 30 * time.Second
	// maxRequestCrashBackoff caps the wait after a crash that is not early
	// (see earlyCrash), so that requests that crash workers cannot keep a
	// pool without workers for long.
	maxRequestCrashBackoff = time.Second
)

// earlyCrash is how long after becoming ready a worker that dies with no
// request in flight still counts for rapid-fail protection: a pool whose
// workers die while starting or at once after is one that cannot run. A
// worker that dies later, or while serving a request (a request that crashes
// the process, e.g. with os._exit or a segfault), is only replaced: counting
// those would let any client stop the pool with a few requests.
const earlyCrash = 10 * time.Second

// exited handles the end of a worker process.
func (p *pool) exited(w *worker, st *os.ProcessState, err error) {
	var inflight []string
	if p.board != nil {
		inflight = p.board.inflight(w.slot)
	}
	p.freeSlot(w)
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	gone := w.metrics
	gone.Retire()       // its gauges end with it
	p.retired.Add(gone) // its counters stay in the pool's totals
	w.metrics = metrics.Snapshot{}
	if w.killTimer != nil {
		w.killTimer.Stop()
	}
	if w.replacedBy != nil && w.replacedBy.replaces == w {
		w.replacedBy.replaces = nil
	}
	if w.state == poolstate.Draining || w.state == poolstate.Stopped {
		if w.outcome != nil {
			w.outcome.settle(p.s, p, w, "stopped before it was ready")
		}
		w.state = poolstate.Stopped
		p.remember(w)
		p.s.log.Info("worker stopped", "pool", p.name, "worker", w.id, "pid", w.pid)
		p.s.updateStandby()
		return
	}
	p.crashes++
	how := exitText(st, err)
	if w.startTimedOut {
		how = "did not become ready within start_timeout"
	}
	wasStarting := w.state == poolstate.Starting
	w.state = poolstate.Crashed
	w.exitHow = how
	if wasStarting {
		w.exitHow += " while starting"
	}
	p.remember(w)
	if old := w.replaces; old != nil {
		old.replacedBy = nil // it keeps serving; recycling is tried again later
	}
	if wasStarting {
		how += " while starting"
	}
	if w.outcome != nil {
		why := w.failure
		if why == "" {
			why = "worker " + how
		}
		w.outcome.settle(p.s, p, w, why)
	}
	// A failed replacement does not count: the worker it was to replace
	// serves on.
	early := w.replaces == nil && (wasStarting || (len(inflight) == 0 && time.Since(w.readyAt) < earlyCrash))
	p.failed(w, how, inflight, early)
}

// failed records a crash: an early one (see earlyCrash) counts for rapid-fail
// protection, which may stop the pool; otherwise a replacement starts after a
// capped backoff. inflight are the requests the worker was running.
func (p *pool) failed(w *worker, how string, inflight []string, early bool) {
	now := time.Now()
	if now.Sub(p.lastCrash) > backoffReset {
		p.backoff = minBackoff
	}
	p.lastCrash = now
	failures := p.recentFailures(now)
	if early {
		failures = append(failures, now)
		p.failures = failures
	}
	attrs := []any{"pool", p.name, "worker", w.id, "pid", w.pid, "how", how}
	if len(inflight) > 0 {
		attrs = append(attrs, "requests", strings.Join(inflight, ", "))
	} else {
		attrs = append(attrs, "requests", "none")
	}
	if early {
		attrs = append(attrs, "failures", len(failures), "window", time.Duration(p.cfg.RapidFailWindow).String())
	} else {
		attrs = append(attrs, "restart_in", min(p.backoff, maxRequestCrashBackoff).String())
	}
	if len(w.crash) > 0 {
		attrs = append(attrs, "fatal", w.crash[0])
	}
	p.s.log.Error("worker crashed", attrs...)
	for _, line := range w.crash[min(1, len(w.crash)):] {
		p.s.log.Error("crash stack", "pool", p.name, "worker", w.id, "pid", w.pid, "line", strings.TrimSpace(line))
	}
	if p.state != poolstate.PoolRunning {
		return
	}
	if early && p.cfg.RapidFail && len(p.failures) >= p.cfg.RapidFailMax {
		p.stop(fmt.Sprintf("rapid-fail protection: %d failures within %s", len(p.failures),
			time.Duration(p.cfg.RapidFailWindow)))
		return
	}
	if w.replaces != nil {
		return // a failed replacement: the old worker serves on
	}
	delay := p.backoff
	if !early {
		// a request crashed it: the app starts fine, and the crashes come
		// no faster than workers start; its siblings may all be down
		delay = min(delay, maxRequestCrashBackoff)
	}
	p.backoff = min(2*p.backoff, maxBackoff)
	p.restarting++
	time.AfterFunc(delay, func() {
		p.s.post(func() {
			p.restarting--
			if p.state == poolstate.PoolRunning && p.s.pools[p.name] == p && p.live() < p.cfg.Processes {
				p.s.spawn(p, nil)
			}
		})
	})
}

func (p *pool) recentFailures(now time.Time) []time.Time {
	window := time.Duration(p.cfg.RapidFailWindow)
	keep := p.failures[:0]
	for _, t := range p.failures {
		if now.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	p.failures = keep
	return keep
}

func exitText(st *os.ProcessState, err error) string {
	if err != nil || st == nil {
		return fmt.Sprint("wait failed: ", err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + signalName(ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", st.ExitCode())
}

// signalName is a signal's name as in kill -l (SIGSEGV), else its number.
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGHUP: "SIGHUP",
		syscall.SIGILL: "SIGILL", syscall.SIGINT: "SIGINT", syscall.SIGKILL: "SIGKILL", syscall.SIGPIPE: "SIGPIPE",
		syscall.SIGQUIT: "SIGQUIT", syscall.SIGSEGV: "SIGSEGV", syscall.SIGSYS: "SIGSYS", syscall.SIGTERM: "SIGTERM",
		syscall.SIGTRAP: "SIGTRAP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU",
		syscall.SIGXFSZ: "SIGXFSZ",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d (%s)", int(sig), sig.String())
}
