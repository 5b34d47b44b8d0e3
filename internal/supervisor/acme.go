package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os/user"

	"wisp/internal/acme"
	"wisp/internal/config"
)

// newACMEManager starts obtaining and renewing a site's ACME certificates
// (the supervisor is the one process that talks to the CA). The CA may
// validate by TLS-ALPN-01 where the site has a TLS binding and by HTTP-01
// where it has a plain one; group lets the site's workers, when they run as
// another user, read what the manager stores.
func newACMEManager(st *config.Site, group string, log *slog.Logger) (acmeManager, error) {
	t := st.TLS
	tlsB, plainB := false, false
	for _, b := range st.Bindings {
		if st.BindingTLS(b) {
			tlsB = true
		} else {
			plainB = true
		}
	}
	m, err := acme.NewManager(acme.Options{Names: st.Hostnames, Email: t.Email, CA: t.CA, CARoot: t.CARoot, Storage: t.Storage,
		Group: group, DisableTLSALPN01: !tlsB, DisableHTTP01: !plainB, Log: log.With("site", st.Name)})
	if err != nil {
		return nil, err
	}
	if err := m.Start(context.Background()); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// acmeGroup is the group a site's workers run as when it is not wisp's own
// ("" when they run as wisp's user).
func acmeGroup(cfg *config.Config, st *config.Site) string {
	p := cfg.Pools[primaryPool(st)]
	if p == nil {
		return ""
	}
	if p.Group != "" {
		return p.Group
	}
	if p.User != "" {
		u, err := user.Lookup(p.User)
		if err != nil {
			u, err = user.LookupId(p.User)
		}
		if err == nil {
			return u.Gid // the user's primary group
		}
	}
	return ""
}

// newACMEFollower serves a site's ACME certificates in a worker, from the
// storage the supervisor's manager fills: it never talks to the CA.
func newACMEFollower(ss *SiteSpec, log *slog.Logger) (acmeSite, error) {
	if ss.TLS == nil || ss.TLS.Storage == "" {
		return nil, errors.New("ACME: the supervisor gave no storage folder")
	}
	// the CA names the storage folders (certmagic keys them by its URL)
	return acme.NewFollower(acme.Options{Names: ss.Hostnames, CA: ss.TLS.CA, Storage: ss.TLS.Storage, Log: log.With("site", ss.Name)})
}
