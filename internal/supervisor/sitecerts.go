package supervisor

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"wisp/internal/edge"
	"wisp/internal/h1"
	"wisp/internal/tlsconf"
)

// siteCerts are the certificates of the sites a worker serves over TLS:
// from files, or from the ACME storage the supervisor fills.
type siteCerts struct {
	log   *slog.Logger
	sites map[string]*SiteSpec
	files map[string]*tlsconf.Store
	acme  map[string]acmeSite
}

// acmeSite serves a site's ACME certificates and answers its challenges:
// an acme.Follower in a worker, an acme.Manager in the supervisor.
type acmeSite interface {
	edge.Certs
	edge.Challenger
	Stop()
}

// frontSite is a site as a binding's front presents it, in a worker and in
// the supervisor's own answers alike: on a TLS binding its certificate
// (ACME's, which also answers TLS-ALPN-01, or its files'), on a plain one
// ACME's HTTP-01 answers and the redirect to https (on httpsPort).
func frontSite(name string, hostnames []string, tlsBinding bool, acme acmeSite, files *tlsconf.Store, redirect bool, httpsPort string) edge.Site {
	site := edge.Site{Name: name, Hostnames: hostnames}
	switch {
	case tlsBinding && acme != nil:
		site.Certs = acme
	case tlsBinding && files != nil:
		site.Certs = files
	case acme != nil:
		site.Challenges = acme
	}
	if !tlsBinding && redirect {
		site.Redirect, site.RedirectPort = true, httpsPort
	}
	return site
}

func newSiteCerts(spec *WorkerSpec, log *slog.Logger) (*siteCerts, error) {
	c := &siteCerts{log: log, sites: map[string]*SiteSpec{}, files: map[string]*tlsconf.Store{}, acme: map[string]acmeSite{}}
	for i := range spec.Sites {
		ss := &spec.Sites[i]
		c.sites[ss.Name] = ss
		switch t := ss.TLS; {
		case t == nil:
		case t.ACME:
			f, err := newACMEFollower(ss, log)
			if err != nil {
				c.stop()
				return nil, fmt.Errorf("site %q: %w", ss.Name, err)
			}
			c.acme[ss.Name] = f
		default:
			store, err := tlsconf.Load(t.Cert, t.Key, log)
			if err != nil {
				c.stop()
				return nil, fmt.Errorf("site %q: %w", ss.Name, err)
			}
			c.files[ss.Name] = store
		}
	}
	return c, nil
}

// binding assembles what the listener l serves: its sites by host name,
// each with its handler, certificate and redirect. owner is its first site.
func (c *siteCerts) binding(l ListenerSpec, trusted []netip.Prefix, headerTimeout time.Duration, handler func(string) h1.Handler) (*edge.Binding, string, error) {
	b := edge.Binding{Addr: l.Addr, TLS: l.TLS, H2C: l.H2C, ProxyProtocol: l.ProxyProtocol, Trusted: trusted, HeaderTimeout: headerTimeout}
	for _, name := range l.Sites {
		ss := c.sites[name]
		h := handler(name)
		if ss == nil || h == nil {
			return nil, "", fmt.Errorf("binding %s: site %q is not loaded in this worker", l.Addr, name)
		}
		site := frontSite(name, ss.Hostnames, l.TLS, c.acme[name], c.files[name], ss.RedirectHTTP, ss.HTTPSPort)
		site.Handler = h
		b.Sites = append(b.Sites, site)
	}
	nb, err := edge.New(b)
	if err != nil {
		return nil, "", err
	}
	return nb, l.Sites[0], nil
}

// reload reads the certificate files again now (the supervisor reloaded).
func (c *siteCerts) reload() {
	for name, s := range c.files {
		if err := s.Reload(); err != nil {
			c.log.Error("TLS certificate does not load; the previous one keeps serving", "site", name, "err", err)
		}
	}
}

func (c *siteCerts) stop() {
	for _, a := range c.acme {
		a.Stop()
	}
}
