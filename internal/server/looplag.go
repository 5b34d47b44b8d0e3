package server

import (
	"time"

	"wisp/internal/pyembed"
)

// The event loop's watch: how often it is probed, and how long it may not
// answer before it counts as blocked (and what blocks it is logged).
const (
	lagEvery     = 250 * time.Millisecond
	blockedAfter = time.Second
	inspectWait  = 2 * time.Second // the most a blocked loop's stack is waited for (the GIL)
	// taskStackWait is the most a timed-out task's stack is waited for:
	// the 504 waits for it (the task is cancelled only once it is read).
	taskStackWait = time.Second
)

// loopWatch measures how late the ASGI event loop answers, for the
// wisp_event_loop_lag_seconds metric, and logs once per incident what
// blocks it (a coroutine that does not yield: time.sleep, a CPU loop, a
// blocking call) with its handler and Python stack. It runs from startASGI
// to stopASGI.
type loopWatch struct {
	stop chan struct{}
	done chan struct{}
}

// watchLoop starts the loop's watch.
func (s *Server) watchLoop() {
	w := &loopWatch{stop: make(chan struct{}), done: make(chan struct{})}
	s.watch = w
	go s.runWatch(w, s.loop)
}

// unwatchLoop stops the loop's watch and waits for it.
func (s *Server) unwatchLoop() {
	if s.watch == nil {
		return
	}
	close(s.watch.stop)
	<-s.watch.done
	s.watch = nil
}

// runWatch posts a probe every lagEvery, unless one is still unanswered:
// the lag is how long the last one took to answer, or how long the one in
// flight has waited if that is longer, so that the metric rises while the
// loop is blocked, not only once it is free again.
func (s *Server) runWatch(w *loopWatch, l *pyembed.Loop) {
	defer close(w.done)
	tick := time.NewTicker(lagEvery)
	defer tick.Stop()
	var probe *pyembed.LagProbe
	var answered <-chan pyembed.Event
	claimed := false // this watch logged the incident under way
	post := func() {
		probe, answered = nil, nil
		if p, err := l.Probe(s.pool); err == nil {
			probe, answered = p, p.Answered()
		}
	}
	post()
	for {
		select {
		case <-w.stop:
			if probe != nil { // give its job back if the loop answers soon
				t := time.NewTimer(lagEvery)
				defer t.Stop()
				for {
					select {
					case ev := <-answered:
						if !probe.Done(ev) {
							continue
						}
					case <-t.C:
					}
					break
				}
			}
			if claimed {
				l.EndBlocked()
			}
			return
		case ev := <-answered:
			if !probe.Done(ev) {
				continue
			}
			lag := time.Since(probe.Sent)
			s.cfg.Metrics.LoopLag(lag)
			if claimed {
				claimed = false
				l.EndBlocked()
				s.log.Warn("the ASGI event loop answers again", "blocked_for", lag.Round(time.Millisecond).String())
			}
			probe, answered = nil, nil
		case <-tick.C:
			if probe == nil {
				post()
				continue
			}
			age := time.Since(probe.Sent)
			s.cfg.Metrics.LoopLag(age)
			if age >= blockedAfter && !claimed && l.ClaimBlocked() {
				claimed = true
				s.logBlocked(age)
			}
		}
	}
}

// logBlocked logs what blocks the loop: its handler, the request and the
// Python stack of the loop's thread.
func (s *Server) logBlocked(age time.Duration) {
	handler, uri, stack, err := s.ip.LoopBlocked(inspectWait)
	if err != nil {
		s.log.Error("the ASGI event loop is blocked: a coroutine does not yield; the other requests of this process wait",
			"blocked_for", age.Round(time.Millisecond).String(), "stack_err", err)
		return
	}
	s.log.Error("the ASGI event loop is blocked: a coroutine does not yield; the other requests of this process wait",
		"blocked_for", age.Round(time.Millisecond).String(), "handler", handler, "uri", uri, "stack", stack)
}

// cancelTask cancels the task of an ASGI request that timed out, and
// returns its coroutine stack, read just before (as a WSGI request's
// thread's stack is read before TimeoutError is raised in it).
func (s *Server) cancelTask(j *job) string {
	stack, err := s.ip.TaskStack(j.Job, taskStackWait)
	if err != nil {
		stack = "(no stack: " + err.Error() + ")"
	}
	j.loop.Cancel(j.Job)
	return stack
}
