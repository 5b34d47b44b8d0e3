package supervisor

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"

	"wisp/internal/config"
	"wisp/internal/listen"
)

// listener is a socket the supervisor owns and passes to workers. While no
// worker serves it (its pool idle or stopped), the supervisor answers on it.
type listener struct {
	key     string
	addr    string
	sites   []*config.Site // for a binding: the sites sharing it, default first
	pool    string         // for a pool's unix socket
	fd      int            // our close-on-exec duplicate, passed to workers as is
	unlink  string         // a unix socket file wisp created, removed with the listener
	granted *[]uint32      // a pool socket: the uids it was opened to (nil: not yet)
	standby *http.Server
	sbLn    net.Listener
}

// Addrs returns the bound address of every site binding (ports resolved).
func (s *Supervisor) Addrs() map[string]string {
	out := map[string]string{}
	s.call(func() {
		for _, l := range s.listeners {
			if len(l.sites) > 0 {
				out[l.key] = l.addr
			}
		}
	})
	return out
}

// openListeners opens cfg's bindings that are not open yet, and its pools'
// sockets. On error it closes the bindings it opened, so that a reload that
// fails leaves the listeners as they were.
func (s *Supervisor) openListeners(cfg *config.Config) (opened []*listener, err error) {
	keys, sites := siteBindings(cfg)
	defer func() {
		if err != nil {
			s.closeOpened(opened)
			opened = nil
		}
	}()
	for _, k := range keys {
		if _, ok := s.listeners[k]; ok {
			continue
		}
		l, err := s.openBinding(sites[k][0], bindingOf(sites[k][0], k))
		if err != nil {
			return opened, err
		}
		l.sites = sites[k]
		s.listeners[k] = l
		opened = append(opened, l)
	}
	for name := range cfg.Pools {
		if err := s.openPoolSocket(name); err != nil {
			return opened, err
		}
	}
	return opened, nil
}

// closeOpened closes bindings openListeners opened, for a change that failed.
func (s *Supervisor) closeOpened(opened []*listener) {
	for _, l := range opened {
		l.close()
		delete(s.listeners, l.key)
	}
}

func (s *Supervisor) closeListeners() {
	for _, l := range s.listeners {
		s.standbyOff(l)
		l.close()
	}
}

// close closes our descriptor of the socket (once), and removes the file of
// a unix socket wisp created.
func (l *listener) close() {
	if l.fd >= 0 {
		syscall.Close(l.fd)
		l.fd = -1
	}
	if l.unlink != "" {
		os.Remove(l.unlink)
		l.unlink = ""
	}
}

// openBinding listens on a site's binding, or takes the socket systemd
// passed for it.
func (s *Supervisor) openBinding(st *config.Site, b string) (*listener, error) {
	var ln net.Listener
	var err error
	unlink := ""
	if a, ok := s.opt.Inherited.Take(b, st.Name); ok {
		ln = a.Ln
		if p, ok := listen.UnixPath(a.Addr()); ok && slices.Contains(s.opt.Owned, p) {
			unlink = p // the previous supervisor of an upgrade created it: ours to remove now
		}
		s.log.Info("socket activation: serving the socket systemd passed", "binding", b, "name", a.Name, "addr", a.Addr())
	} else if ln, err = listen.Open(b, s.opt.Unix); err == nil {
		unlink, _ = listen.UnixPath(b)
	}
	if err == nil {
		var fd int
		if fd, err = dupListener(ln); err == nil {
			addr := ln.Addr().String()
			if _, ok := ln.Addr().(*net.UnixAddr); ok {
				addr = "unix:" + addr
			}
			return &listener{key: bindingKey(st, b), addr: addr, fd: fd, unlink: unlink}, nil
		}
		if unlink != "" {
			os.Remove(unlink)
		}
	}
	return nil, fmt.Errorf("site %q: listen %s: %w", st.Name, b, err)
}

// dupListener returns a close-on-exec duplicate of ln's socket and closes ln.
// It never goes through os.File.Fd, which would switch the socket, shared
// with every worker, to blocking mode: an accept in a worker could then block
// for good after another worker took the connection.
func dupListener(ln net.Listener) (int, error) {
	defer ln.Close()
	sc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = sc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = derr
	}
	return nfd, err
}

// Socket is the listening socket of a site binding, as an upgrade hands it
// to the next supervisor.
type Socket struct {
	Key     string // the binding's key (site and binding)
	Binding string // the binding as configured (port 0 included), which the next supervisor takes it for
	Addr    string // its bound address: host:port, or unix:PATH
	FD      int    // the supervisor's close-on-exec descriptor; open until Shutdown
	Unlink  string // a unix socket's file this supervisor created (and removes at exit unless handed over)
}

// Sockets lists the site bindings' listening sockets, for the next
// supervisor of an upgrade (passed as socket activation passes them).
func (s *Supervisor) Sockets() []Socket {
	var out []Socket
	s.call(func() {
		for _, k := range slices.Sorted(maps.Keys(s.listeners)) {
			if l := s.listeners[k]; len(l.sites) > 0 && l.fd >= 0 {
				out = append(out, Socket{Key: k, Binding: bindingOf(l.sites[0], k), Addr: l.addr, FD: l.fd, Unlink: l.unlink})
			}
		}
	})
	return out
}

// HandedOver says the next supervisor of an upgrade serves the sockets now:
// the unix socket files wisp created stay when this one shuts down.
func (s *Supervisor) HandedOver() {
	s.call(func() {
		for _, l := range s.listeners {
			if len(l.sites) > 0 {
				l.unlink = ""
			}
		}
	})
}
