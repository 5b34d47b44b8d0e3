package supervisor

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"wisp/internal/config"
)

// An outcome collects what became of the workers that one reload or recycle
// started, so that `wisp reload` and `wisp recycle` report whether they took
// effect rather than only that they were asked. Owned by the supervisor
// goroutine; done is closed once every worker is ready or has failed.
type outcome struct {
	what     string // "reload" or "recycle"
	pending  int
	pools    map[string]bool   // pools that started workers
	failures map[string]string // pool → why its first worker failed
	done     chan struct{}
	timeout  time.Duration // how long to wait: the longest start_timeout of its pools, and a margin
}

func newOutcome(what string) *outcome {
	return &outcome{what: what, pools: map[string]bool{}, failures: map[string]string{}, done: make(chan struct{})}
}

// started counts a worker w of pool p that the operation started.
func (o *outcome) started(p *pool, w *worker) {
	w.outcome = o
	o.pending++
	o.pools[p.name] = true
	o.timeout = max(o.timeout, time.Duration(p.cfg.StartTimeout)+5*time.Second)
}

// settle records the end of a worker's start ("" if it became ready).
func (o *outcome) settle(s *Supervisor, p *pool, w *worker, failure string) {
	w.outcome = nil
	if failure != "" {
		o.failed(p, failure)
	}
	o.pending--
	o.finishIfDone(s)
}

// failed records that pool p could not start a worker.
func (o *outcome) failed(p *pool, failure string) {
	o.pools[p.name] = true
	if _, ok := o.failures[p.name]; !ok {
		o.failures[p.name] = failure
	}
}

// finishIfDone applies the verdict once nothing is pending: a pool whose new
// workers failed goes back to the settings its old workers run, and its
// status says that the running pool differs from the file.
func (o *outcome) finishIfDone(s *Supervisor) {
	if o.pending > 0 {
		return
	}
	select {
	case <-o.done:
		return
	default:
	}
	now := time.Now().Format(time.TimeOnly)
	for name := range o.pools {
		p := s.pools[name]
		if p == nil {
			continue
		}
		why, failed := o.failures[name]
		switch {
		case !failed:
			p.configNote = ""
			p.prev = nil
		case o.what == "reload" && p.prev != nil:
			p.cfg, p.spec, p.ident = p.prev.cfg, p.prev.spec, p.prev.ident
			s.writeRoutes(p) // the routes its workers run (an error: they keep their own)
			p.configNote = fmt.Sprintf("reload failed at %s: %s; running the previous configuration", now, why)
		case p.hasReady():
			p.configNote = fmt.Sprintf("%s failed at %s: %s; the old workers keep serving", o.what, now, why)
		default:
			p.configNote = fmt.Sprintf("%s failed at %s: %s", o.what, now, why)
		}
		if failed {
			s.log.Error(o.what+" failed: "+why, "pool", name, "status", p.configNote)
		}
	}
	s.grantPoolSockets() // to the users of the settings that run now
	close(o.done)
}

// err is the verdict once done.
func (o *outcome) err() error {
	if len(o.failures) == 0 {
		return nil
	}
	names := make([]string, 0, len(o.failures))
	for n := range o.failures {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "pool %s: %s", n, o.failures[n])
	}
	keeps := "the old workers keep serving"
	if o.what == "reload" {
		keeps = "running the previous configuration"
	}
	return fmt.Errorf("%s failed: %s (%s)", o.what, b.String(), keeps)
}

// wait waits for the verdict of o (nil: nothing to wait for).
func (s *Supervisor) wait(o *outcome) error {
	if o == nil {
		return nil
	}
	timeout := time.Minute // nothing started (yet): no start timeout to go by
	s.call(func() {
		timeout = max(timeout, o.timeout)
		o.finishIfDone(s)
	})
	select {
	case <-o.done:
	case <-s.done:
		return errors.New("the supervisor stopped")
	case <-time.After(timeout):
		return fmt.Errorf("%s: the new workers were not ready within %s", o.what, timeout)
	}
	var err error
	if !s.call(func() { err = o.err() }) {
		return errors.New("the supervisor stopped")
	}
	return err
}

// prevSettings are what a pool ran before a reload changed it, restored if
// the reload's workers fail.
type prevSettings struct {
	cfg   *config.Pool
	spec  WorkerSpec
	ident *identity
}
