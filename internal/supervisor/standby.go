package supervisor

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"wisp/internal/config"
	"wisp/internal/edge"
	"wisp/internal/poolstate"
	"wisp/internal/server"
)

// standbyOn makes the supervisor answer on l (no worker serves it).
func (s *Supervisor) standbyOn(l *listener) {
	if l.standby != nil {
		return
	}
	fd, err := syscall.Dup(l.fd)
	if err != nil {
		s.log.Error("standby listener", "addr", l.addr, "err", err)
		return
	}
	f := os.NewFile(uintptr(fd), l.addr)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		s.log.Error("standby listener", "addr", l.addr, "err", err)
		return
	}
	var b *edge.Binding
	if len(l.sites) > 0 {
		if b, err = s.standbyBinding(l); err != nil {
			ln.Close()
			s.log.Error("standby listener", "addr", l.addr, "err", err)
			return
		}
		ln = b.Listener(ln)
	}
	srv := &http.Server{Handler: s.standbyHandler(l, b), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	l.standby, l.sbLn = srv, ln
	go srv.Serve(ln)
}

// standbyOff stops answering on l: the listener closes now, requests being
// answered finish in the background.
func (s *Supervisor) standbyOff(l *listener) {
	if l.standby == nil {
		return
	}
	l.sbLn.Close()
	srv := l.standby
	l.standby, l.sbLn = nil, nil
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv.Shutdown(ctx)
	}()
}

// updateStandby turns standby on for every listener whose serving pool has
// no worker (idle or stopped) and off for the others.
func (s *Supervisor) updateStandby() {
	for _, l := range s.listeners {
		name := l.pool
		if len(l.sites) > 0 {
			name = bindingPool(l.sites)
		}
		p := s.pools[name]
		// a pool a reload removed keeps serving on its socket until it
		// retires (routesSettle): the supervisor must not take its
		// connections meanwhile and answer that it is stopped
		if s.stopping || (p != nil && (p.state == poolstate.PoolRunning || p.retiring)) {
			s.standbyOff(l)
		} else {
			s.standbyOn(l)
		}
	}
}

// standbyHandler answers for pools without workers: a stopped pool gets 503
// with Retry-After; an idle one is started, and the request waits for it and
// is then forwarded to it.
func (s *Supervisor) standbyHandler(l *listener, b *edge.Binding) http.Handler {
	sites := map[string]*config.Site{}
	for _, st := range l.sites {
		sites[st.Name] = st
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		poolName := l.pool
		siteName := r.Header.Get("X-Wisp-Site")
		if b != nil {
			es, answered := b.Front(w, r)
			if answered {
				return
			}
			site := sites[es.Name]
			siteName = site.Name
			poolName = routePool(site, r.URL.Path)
		}
		if poolName == "" {
			http.Error(w, "404 Not Found: no application is mounted at this path", http.StatusNotFound)
			return
		}
		var wait chan struct{}
		var socket, reason string
		var timeout time.Duration
		s.call(func() {
			p := s.pools[poolName]
			if p == nil || s.stopping {
				reason = "the server is stopping"
				return
			}
			socket = s.listeners["pool:"+poolName].addr
			timeout = time.Duration(p.cfg.StartTimeout) + 5*time.Second
			switch p.state {
			case poolstate.PoolStopped:
				reason = "pool " + p.name + " is stopped: " + p.reason
			case poolstate.PoolIdle:
				p.start("a request arrived after idle timeout")
				fallthrough
			default:
				if p.hasReady() {
					return
				}
				wait = make(chan struct{})
				p.waiters = append(p.waiters, wait)
			}
		})
		if reason == "" && wait != nil {
			select {
			case <-wait:
			case <-time.After(timeout):
				reason = "pool " + poolName + " did not start in time"
			case <-r.Context().Done():
				return
			}
		}
		if reason != "" {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "503 Service Unavailable: "+reason, http.StatusServiceUnavailable)
			return
		}
		s.forwarder(socket, siteName).ServeHTTP(w, r)
	})
}

// forwarder returns the (cached) forwarder to a pool socket for a site, so
// that standby requests reuse connections.
func (s *Supervisor) forwarder(socket, site string) http.Handler {
	key := socket + "\x00" + site
	if f, ok := s.forwarders.Load(key); ok {
		return f.(http.Handler)
	}
	f, _ := s.forwarders.LoadOrStore(key, server.NewForwarder(socket, site, s.log))
	return f.(http.Handler)
}

// routePool finds the pool of the vdir serving path in site (longest prefix).
func routePool(site *config.Site, path string) string {
	best, bestLen := "", -1
	for _, v := range site.Vdirs {
		p := strings.TrimRight(v.Path, "/")
		if _, ok := edge.MatchPrefix(path, p); ok && len(p) > bestLen {
			best, bestLen = v.Pool, len(p)
		}
	}
	if best == "" && bestLen >= 0 {
		return primaryPool(site) // a static folder with no pool: the site's routing pool serves it
	}
	return best
}
