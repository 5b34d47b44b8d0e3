package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/poolstate"
)

// Reload applies a new configuration: unchanged pools keep running
// untouched, pools whose routes only changed keep their workers, which get
// the new routes live; changed ones recycle overlapped, new ones start,
// removed ones drain. Bindings that appear are opened; a binding that cannot be opened
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
	changed, added, removed, _ := config.Diff(old, cfg)
	// A pool whose own settings or apps are the same keeps its workers
	// when only its routes change (a vdir of another pool appears, moves
	// or goes): they get the new routes live (reroute). Its workers are
	// replaced when its spec changes otherwise (its listeners, sites,
	// server settings).
	serverChanged := old.Server.Fingerprint() != cfg.Server.Fingerprint()
	rerouted := map[string]WorkerSpec{}
	for _, n := range slices.Sorted(maps.Keys(cfg.Pools)) {
		p := s.pools[n]
		if old.Pools[n] == nil || p == nil || slices.Contains(changed, n) {
			continue
		}
		np, err := s.newPool(cfg, n)
		switch {
		case err != nil || serverChanged || !routesOnly(p.spec, np.spec):
			changed = append(changed, n) // the error, if any, is logged below
		case !reflect.DeepEqual(p.spec, np.spec):
			rerouted[n] = np.spec
		}
	}
	// A pool whose last reload or recycle failed runs other settings than
	// the file says: try again.
	for n, p := range s.pools {
		if p.configNote != "" && cfg.Pools[n] != nil && !slices.Contains(changed, n) {
			changed = append(changed, n)
			delete(rerouted, n)
		}
	}
	s.cfg = cfg
	for _, k := range keys {
		s.listeners[k].sites = sites[k]
	}
	var recycle, start []*pool
	for _, n := range added {
		if p := s.pools[n]; p != nil && p.retiring {
			s.retire(p) // removed by a reload a moment ago: its workers go now
		}
	}
	for _, n := range changed {
		p := s.pools[n]
		np, err := s.newPool(cfg, n)
		if err != nil {
			s.log.Error("pool cannot be updated; it keeps its old settings", "pool", n, "err", err)
			continue
		}
		p.prev = &prevSettings{cfg: p.cfg, spec: p.spec, ident: p.ident}
		p.cfg, p.spec, p.ident = np.cfg, np.spec, np.ident
		if err := s.writeRoutes(p); err != nil {
			s.log.Warn("pool changed: its routes file is not written (its old workers ignore it)", "pool", n, "err", err)
		}
		s.log.Info("pool changed: recycling its workers", "pool", n)
		if p.state == poolstate.PoolRunning {
			recycle = append(recycle, p)
		}
	}
	for _, n := range added {
		p, err := s.newPool(cfg, n)
		if err != nil {
			s.log.Error("pool cannot start", "pool", n, "err", err)
			continue
		}
		s.pools[n] = p
		start = append(start, p)
	}
	// the users of the new settings may reach the sockets before their
	// workers start (those of the old settings until their workers are gone)
	s.grantPoolSockets()
	// New pools' sockets are open (openListeners) before routes point at
	// them; their requests wait there until the workers are ready.
	for _, p := range start {
		p.startWorkers()
		s.log.Info("pool added", "pool", p.name)
	}
	for _, n := range slices.Sorted(maps.Keys(rerouted)) {
		p := s.pools[n]
		oldCfg := p.cfg
		p.cfg = cfg.Pools[n]
		if err := s.reroute(p, rerouted[n]); err != nil {
			s.log.Error("pool's routes cannot be changed live: recycling its workers", "pool", n, "err", err)
			// what a failed recycle puts back: the settings before this reload
			p.prev = &prevSettings{cfg: oldCfg, spec: p.spec, ident: p.ident}
			p.spec = rerouted[n]
			changed = append(changed, n)
			if p.state == poolstate.PoolRunning {
				recycle = append(recycle, p)
			}
			continue
		}
		s.log.Info("pool's routes changed: its workers keep running", "pool", n)
	}
	for _, p := range recycle {
		for _, w := range p.workers {
			p.recycle(w, "configuration change")
		}
	}
	// Removed pools drain once the routes no longer point at them: their
	// workers answer what the old routes still send them until the
	// forwarding workers have their new routes (routesSettle).
	for _, n := range removed {
		p := s.pools[n]
		if p == nil || p.retiring {
			continue
		}
		p.state = poolstate.PoolStopped
		p.reason = "removed from the configuration"
		p.retiring = true
		s.log.Info("pool removed: it drains once the routes no longer point at it", "pool", n)
		time.AfterFunc(routesSettle, func() { s.post(func() { s.retire(p) }) })
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
		if p.state == poolstate.PoolStopped && strings.HasPrefix(p.reason, "rapid-fail") {
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
		if _, ok := rerouted[p.name]; !ok && !slices.Contains(changed, p.name) {
			for _, w := range p.workers {
				if w.state == poolstate.Ready {
					w.signal(syscall.SIGHUP)
				}
			}
		}
	}
	s.log.Info("configuration reloaded", "changed", strings.Join(changed, ","), "added", strings.Join(added, ","),
		"removed", strings.Join(removed, ","))
	return nil
}

// routesSettle is how long a removed pool's workers keep serving after a
// reload, while the workers that forwarded to it get their new routes
// (SIGHUP, then a swap between requests: moments).
const routesSettle = time.Second

// retire drains the workers of a pool a reload removed (once), and closes
// its socket unless a pool of its name is back in the configuration.
func (s *Supervisor) retire(p *pool) {
	if !p.retiring {
		return
	}
	p.retiring = false
	for _, w := range p.workers {
		p.drain(w, "removed from the configuration")
	}
	if s.pools[p.name] == p {
		delete(s.pools, p.name)
	}
	key := "pool:" + p.name
	if l := s.listeners[key]; l != nil && s.cfg.Pools[p.name] == nil && s.pools[p.name] == nil {
		l.close()
		delete(s.listeners, key)
	}
	s.log.Info("pool removed", "pool", p.name)
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
		if p.state != poolstate.PoolRunning {
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
