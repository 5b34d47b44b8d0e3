package supervisor

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"sort"
	"syscall"
	"time"

	"wisp/internal/metrics"
	"wisp/internal/poolstate"
)

// Status returns a snapshot of every pool and worker.
func (s *Supervisor) Status() poolstate.Status {
	st := poolstate.Status{PID: os.Getpid(), Build: s.opt.Build}
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
			ps := poolstate.PoolStatus{Name: n, State: p.state, Reason: p.reason, Failures: len(p.recentFailures(now)), ConfigNote: p.configNote}
			for _, w := range p.workers {
				ws := poolstate.WorkerStatus{ID: w.id, PID: w.pid, State: w.state, RSSMB: float64(w.rss) / (1 << 20),
					Requests: w.requests, Conns: p.conns(w), Build: w.build}
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

// ReportBuild is a worker's first line on its status pipe (fd 3): the build
// of its own binary, which may not be the supervisor's (the binary on disk
// replaced since the supervisor started). Written with no *os.File, which
// would close fd 3 when collected.
func ReportBuild(build string) {
	b, _ := json.Marshal(statusMsg{Event: "build", Build: build})
	syscall.Write(3, append(b, '\n'))
}

// noteBuild records the build worker w reported, and says so when it is not
// the supervisor's: the workers run the binary on disk, and only an upgrade
// (SIGUSR2, wisp upgrade) runs a new one as the supervisor too.
func (s *Supervisor) noteBuild(w *worker, build string) {
	w.build = build
	if s.opt.Build != "" && build != s.opt.Build {
		s.log.Warn("the worker runs another build than the supervisor: the wisp binary on disk was replaced; "+
			"`wisp upgrade` (or SIGUSR2) runs it as the supervisor too", "pool", w.pool.name, "worker", w.id, "pid", w.pid,
			"worker_build", build, "supervisor_build", s.opt.Build, "binary", s.opt.Exe)
	}
}
