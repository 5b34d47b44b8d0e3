package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"wisp/internal/poolstate"
	"wisp/internal/server"
)

// A reload that changes only the routing of a pool's workers (a vdir of
// another pool appears, moves or goes: the mounts they forward) does not
// replace them. The supervisor writes the pool's sites, as its workers
// route them, to the pool's routes file (WorkerSpec.RoutesFile) and sends
// its workers SIGHUP; each reads the file and swaps its routing table
// between requests (server.SetMounts).

// routesFile is the file of the routes of the pool named name, in the run
// folder (0711: its workers, whatever their user, can read it by name).
func (s *Supervisor) routesFile(name string) string {
	return filepath.Join(s.rundir, "routes-"+name+".json")
}

// writeRoutes writes p's sites, as its spec routes them, to its routes file
// (a temp file, then rename: a worker reads the old or the new one).
func (s *Supervisor) writeRoutes(p *pool) error {
	b, err := json.Marshal(p.spec.Sites)
	if err != nil {
		return fmt.Errorf("pool %q: routes: %w", p.name, err)
	}
	f, err := os.CreateTemp(s.rundir, ".routes-*")
	if err != nil {
		return fmt.Errorf("pool %q: routes: %w", p.name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p.spec.RoutesFile)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("pool %q: routes: %w", p.name, err)
	}
	return nil
}

// reroute gives p's running workers the routes of spec (p's new spec, which
// differs from its current one in its routes only), without replacing them:
// workers that start later get them in their spec, and those starting now
// are told when they are ready.
func (s *Supervisor) reroute(p *pool, spec WorkerSpec) error {
	old := p.spec
	p.spec = spec
	if err := s.writeRoutes(p); err != nil {
		p.spec = old
		return err
	}
	p.routesAt = time.Now()
	s.grantPoolSockets() // its workers' user may reach the sockets its new routes name
	for _, w := range p.workers {
		if w.state == poolstate.Ready {
			w.signal(syscall.SIGHUP)
		}
	}
	return nil
}

// routesOnly reports whether two specs of a pool differ at most in their
// routes: the mounts forwarded to other pools.
func routesOnly(a, b WorkerSpec) bool {
	strip := func(w WorkerSpec) []byte {
		sites := make([]SiteSpec, len(w.Sites))
		for i, st := range w.Sites {
			st.Mounts = slices.DeleteFunc(slices.Clone(st.Mounts), func(m MountSpec) bool { return m.Forward != "" })
			sites[i] = st
		}
		w.Sites = sites
		b, err := json.Marshal(w)
		if err != nil { // a spec holds only marshalable types
			panic("supervisor: spec: " + err.Error())
		}
		return b
	}
	return string(strip(a)) == string(strip(b))
}

// serverMounts are the mounts of a site as package server takes them.
func serverMounts(st SiteSpec) []server.Mount {
	ms := make([]server.Mount, 0, len(st.Mounts))
	for _, m := range st.Mounts {
		ms = append(ms, server.Mount{Prefix: m.Prefix, Target: m.Target, Forward: m.Forward, Timeout: m.Timeout, Site: st.Name,
			Static: m.Static, CacheControl: m.Cache, Dotfiles: m.Dotfiles, MaxBody: m.MaxBody, MaxConcurrent: m.MaxConcurrent,
			Interface: m.Interface, Lifespan: m.Lifespan})
	}
	return ms
}

// applyRoutes is a worker's side: on SIGHUP it reads its pool's routes file
// (none yet: nothing to do) and swaps each site's routing table. A table
// whose apps differ from the ones the worker loaded (the pool is being
// recycled: this worker is an old one) is left alone.
func applyRoutes(spec *WorkerSpec, sites map[string]*server.Server, log *slog.Logger) {
	if spec.RoutesFile == "" {
		return
	}
	b, err := os.ReadFile(spec.RoutesFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var table []SiteSpec
	if err == nil {
		err = json.Unmarshal(b, &table)
	}
	if err != nil {
		log.Error("SIGHUP: the routes do not load; the worker keeps its own", "file", spec.RoutesFile, "err", err)
		return
	}
	for _, st := range table {
		srv := sites[st.Name]
		if srv == nil {
			continue
		}
		if err := srv.SetMounts(serverMounts(st)); err != nil {
			log.Debug("SIGHUP: the new routes are not for this worker; it keeps its own", "site", st.Name, "err", err)
		}
	}
}
