package supervisor

import (
	"fmt"
	"net"
	"time"

	"wisp/internal/config"
	"wisp/internal/poolstate"
)

// newPool builds a pool's runtime and worker spec from cfg.
func (s *Supervisor) newPool(cfg *config.Config, name string) (*pool, error) {
	pc := cfg.Pools[name]
	p := &pool{s: s, name: name, cfg: pc, state: poolstate.PoolRunning, backoff: minBackoff, lastActive: time.Now()}
	if pc.User != "" || pc.Group != "" {
		id, err := lookupIdentity(pc.User, pc.Group)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", name, err)
		}
		p.ident = id
	}
	sv := cfg.Server
	spec := WorkerSpec{
		Pool: name, Python: pc.Python, Chdir: pc.Chdir, PythonPath: pc.PythonPath,
		Handler: pc.Handler, Threads: pc.Threads, Queue: pc.Queue, MaxBody: int64(pc.MaxBody),
		MinWriteRate: int64(pc.MinWriteRate), MaxSpill: int64(pc.MaxSpill),
		MaxHeaderBytes: int(pc.MaxHeaderBytes), ReadHeader: time.Duration(sv.ReadHeaderTimeout),
		Read: time.Duration(sv.ReadTimeout), Write: time.Duration(sv.WriteTimeout), Idle: time.Duration(sv.IdleTimeout),
		Graceful: time.Duration(pc.GracefulTimeout), RequestTimeout: time.Duration(pc.RequestTimeout),
		Multiprocess: pc.Processes > 1, Processes: pc.Processes, AccessLog: sv.AccessLog, AccessFormat: sv.AccessLogFormat, LogLevel: sv.LogLevel, MaxStreams: sv.HTTP2MaxStreams, TrustedProxies: sv.TrustedProxies, ForwardedHeaders: sv.ForwardedHeaders, ErrorLog: s.opt.ErrorLog, DevReload: s.opt.DevReload,
		SchedPolicy: pc.SchedPolicy, Env: pc.Env, Loop: pc.Loop,
		NoWebSocketCompression: !pc.WebSocketCompression, WebSocketMaxMessage: int64(pc.WebSocketMaxMessage),
		WebSocketPingInterval: config.PingInterval(time.Duration(pc.WebSocketPingInterval)),
		WebSocketPingTimeout:  time.Duration(pc.WebSocketPingTimeout),
	}
	// The bindings this pool's workers accept on, and the sites on them:
	// its workers route every request of those sites, forwarding the vdirs
	// of other pools.
	keys, bsites := siteBindings(cfg)
	accepts := map[string]bool{}
	for _, k := range keys {
		sites := bsites[k]
		if bindingPool(sites) != name {
			continue
		}
		first := sites[0]
		ls := ListenerSpec{Addr: k, TLS: first.BindingTLS(bindingOf(first, k)), ProxyProtocol: first.ProxyProtocol}
		for _, st := range sites {
			ls.Sites = append(ls.Sites, st.Name)
			ls.H2C = ls.H2C || st.H2C
			accepts[st.Name] = true
		}
		spec.Listeners = append(spec.Listeners, ls)
	}
	for _, st := range cfg.Sites {
		serves := accepts[st.Name]
		site := SiteSpec{Name: st.Name, AccessLog: st.AccessLog, AccessFormat: st.AccessLogFormat,
			Hostnames: st.Hostnames, RedirectHTTP: st.RedirectHTTP, TLS: st.TLS}
		if m := s.certs.acme[st.Name]; m != nil {
			t := *st.TLS
			t.Storage = m.Storage() // resolved: a worker of another user would find another default
			site.TLS = &t
		}
		if st.RedirectHTTP {
			site.HTTPSPort = s.httpsPort(st)
		}
		for _, v := range st.Vdirs {
			m := MountSpec{Prefix: v.Path, Timeout: time.Duration(v.RequestTimeout), MaxBody: int64(v.MaxBody),
				MaxConcurrent: shareOf(v.MaxConcurrent, pc.Processes)}
			switch {
			case v.Pool == name:
				m.Target, m.Static, m.Cache, m.Dotfiles = v.App, v.Static, v.CacheControl, v.Dotfiles
				m.Interface, m.Lifespan = v.Interface, v.Lifespan
				serves = true
			case v.Pool == "": // a static folder with no pool: served here, no Python needed
				m.Static, m.Cache, m.Dotfiles = v.Static, v.CacheControl, v.Dotfiles
			default:
				m.Forward = s.listeners["pool:"+v.Pool].addr
			}
			site.Mounts = append(site.Mounts, m)
		}
		if serves {
			spec.Sites = append(spec.Sites, site)
		}
	}
	spec.Listeners = append(spec.Listeners, ListenerSpec{Addr: "pool:" + name})
	spec.RoutesFile = s.routesFile(name)
	p.spec = spec
	return p, nil
}

// shareOf is one process's share of a pool-wide bound (0: none), rounded up.
func shareOf(bound, processes int) int {
	if bound <= 0 {
		return 0
	}
	return (bound + max(processes, 1) - 1) / max(processes, 1)
}

// httpsPort is the port of a site's first TLS binding as bound (port 0
// resolved), for redirect_http; "" for 443.
func (s *Supervisor) httpsPort(st *config.Site) string {
	for _, b := range st.Bindings {
		if !st.BindingTLS(b) {
			continue
		}
		if l := s.listeners[bindingKey(st, b)]; l != nil {
			if _, port, err := net.SplitHostPort(l.addr); err == nil && port != "443" {
				return port
			}
		}
		return ""
	}
	return ""
}
