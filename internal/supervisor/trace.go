package supervisor

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"wisp/internal/poolstate"
	"wisp/internal/trace"
)

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
		live := map[int]bool{} // the dialed workers still listed: the others are forgotten
		if !s.call(func() {
			for _, p := range s.pools {
				if f.Pool != "" && p.name != f.Pool {
					continue
				}
				for _, w := range p.workers {
					live[w.id] = dialed[w.id]
					if !dialed[w.id] && w.state != poolstate.Stopped && w.state != poolstate.Crashed {
						targets = append(targets, target{w.id, filepath.Join(s.rundir, "trace-"+strconv.Itoa(w.id)+".sock")})
					}
				}
			}
		}) {
			return nil
		}
		dialed = live
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
