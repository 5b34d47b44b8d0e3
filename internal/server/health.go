package server

import (
	"fmt"
	"time"
)

// The server's health: what /healthz and /readyz of `wisp run` report, and
// what makes a pool's worker stop accepting (Saturated, Shed).

// Healthy reports whether the server can serve: false, with the reason,
// while MaxStuckThreads Python threads are stuck in timed-out requests, or
// while the interpreter makes no progress (see Unresponsive).
func (s *Server) Healthy() (bool, string) {
	if n := int(s.stuck.Load()); n >= s.cfg.MaxStuckThreads {
		return false, fmt.Sprintf("%d Python threads are stuck in timed-out requests (the bound is %d)", n, s.cfg.MaxStuckThreads)
	}
	if why := s.Unresponsive(); why != "" {
		return false, why
	}
	return true, ""
}

// Shed makes the server shed its keep-alive connections while on, for a
// pool's worker that stops accepting while it cannot serve (see Saturated):
// the idle ones are closed now (h1.Server.CloseIdle; an HTTP/2 connection
// is not), and every response carries Connection: close, so that the
// clients' next requests open new connections, which the pool's other
// workers accept. It returns how many idle connections it closed.
func (s *Server) Shed(on bool) int {
	s.shedding.Store(on)
	if !on {
		return 0
	}
	return s.h1.CloseIdle()
}

// DefaultStallBound is Config.StallBound's default.
const DefaultStallBound = time.Second

// Unresponsive says why no Python thread can make progress ("" when they
// can): the interpreter has left its heartbeat unanswered for StallBound
// (a thread holds the GIL inside C code: a regex backtracking, a C
// extension's long call) while requests wait for a Python thread or run in
// one. An idle server is never unresponsive: nothing waits on it.
func (s *Server) Unresponsive() string {
	d := s.ip.Unanswered()
	if d < s.cfg.StallBound {
		return ""
	}
	if q, b := s.pool.Stats(); q == 0 && b == 0 {
		return ""
	}
	return fmt.Sprintf("no Python thread has made progress for %v: the interpreter has not answered its heartbeat (a thread holds the GIL in C code) while requests wait or run (the bound is %v)",
		d.Round(100*time.Millisecond), s.cfg.StallBound)
}

// Saturated says why the server should take no more connections now ("" when
// it may): a request has waited StallBound for a Python thread, so every
// thread is busy (the pool wakes an idle one within milliseconds), or the
// interpreter is Unresponsive. A pool's worker then stops accepting, and its
// siblings take the new connections.
func (s *Server) Saturated() string {
	if why := s.Unresponsive(); why != "" {
		return why
	}
	if w := s.pool.OldestWait(); w >= s.cfg.StallBound {
		return fmt.Sprintf("every Python thread is busy: a request has waited %v for one (the bound is %v)",
			w.Round(100*time.Millisecond), s.cfg.StallBound)
	}
	return ""
}
