package supervisor

import (
	"fmt"

	"wisp/internal/config"
	"wisp/internal/edge"
	"wisp/internal/server"
	"wisp/internal/tlsconf"
)

// supCerts are the supervisor's certificates: the sites' files, for its own
// answers while a pool has no worker, and the ACME managers, which obtain
// and renew certificates for every worker (the supervisor is the only
// process that talks to the CA; workers read the storage).
type supCerts struct {
	files map[string]*tlsconf.Store // by site
	acme  map[string]acmeManager    // by site
}

// acmeManager obtains and renews one site's ACME certificate.
type acmeManager interface {
	acmeSite
	Storage() string // the folder the workers read
}

// loadCerts loads the certificates of cfg's sites, keeping the ACME
// managers of sites whose ACME settings did not change. On error nothing
// changes.
func (s *Supervisor) loadCerts(cfg *config.Config) error {
	next := supCerts{files: map[string]*tlsconf.Store{}, acme: map[string]acmeManager{}}
	var started []acmeManager
	fail := func(err error) error {
		for _, m := range started {
			m.Stop()
		}
		return err
	}
	for _, st := range cfg.Sites {
		t := st.TLS
		switch {
		case t == nil:
		case t.ACME:
			if m := s.certs.acme[st.Name]; m != nil && s.acmeKeys[st.Name] == acmeKey(st) {
				next.acme[st.Name] = m
				continue
			}
			m, err := newACMEManager(st, acmeGroup(cfg, st), s.log)
			if err != nil {
				return fail(fmt.Errorf("site %q: %w", st.Name, err))
			}
			started = append(started, m)
			next.acme[st.Name] = m
		default:
			store, err := tlsconf.Load(t.Cert, t.Key, s.log)
			if err != nil {
				return fail(fmt.Errorf("site %q: %w", st.Name, err))
			}
			next.files[st.Name] = store
		}
	}
	for name, m := range s.certs.acme {
		if next.acme[name] != m {
			m.Stop()
		}
	}
	s.certs = next
	s.acmeKeys = map[string]string{}
	for _, st := range cfg.Sites {
		if st.TLS != nil && st.TLS.ACME {
			s.acmeKeys[st.Name] = acmeKey(st)
		}
	}
	return nil
}

// acmeKey identifies what an ACME manager was made for.
func acmeKey(st *config.Site) string {
	t := st.TLS
	return fmt.Sprint(st.Hostnames, t.Email, t.CA, t.CARoot, t.Storage, st.Bindings)
}

// standbyBinding is the front of l for the supervisor's own answers.
func (s *Supervisor) standbyBinding(l *listener) (*edge.Binding, error) {
	first := l.sites[0]
	b := edge.Binding{Addr: l.addr, TLS: first.BindingTLS(bindingOf(first, l.key)), ProxyProtocol: first.ProxyProtocol}
	b.Trusted, _ = server.ParseProxies(s.cfg.Server.TrustedProxies)
	for _, st := range l.sites {
		b.Sites = append(b.Sites, frontSite(st.Name, st.Hostnames, b.TLS, s.certs.acme[st.Name], s.certs.files[st.Name], st.RedirectHTTP, s.httpsPort(st)))
	}
	return edge.New(b)
}
