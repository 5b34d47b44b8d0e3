package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Manager obtains and renews the certificates of Options.Names from the CA,
// keeps them in the storage folder, and serves them. There must be exactly
// one per process that talks to the CA (wisp's in-process server, or a
// pool's supervisor); Followers of other processes serve what it obtains.
type Manager struct {
	s      *settled
	names  map[string]bool
	zl     *zap.Logger
	cache  *certmagic.Cache
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer

	mu      sync.Mutex
	cancel  context.CancelFunc // set by Start
	stopped bool
}

// NewManager checks o (see Validate) and creates the storage folder. It
// does not contact the CA: Start does. Stop it when done, started or not.
func NewManager(o Options) (*Manager, error) {
	s, err := o.settle()
	if err != nil {
		return nil, err
	}
	storage, err := newStorage(s)
	if err != nil {
		return nil, err
	}
	m := &Manager{s: s, names: nameSet(s.names), zl: newZapLogger(s.log)}
	m.cache, m.cfg = newCertmagicConfig(s, m.zl, certmagic.Config{Storage: storage})
	// TestCA is left to certmagic: Let's Encrypt's staging when the CA is
	// Let's Encrypt's production (a failed attempt is retried there first,
	// to spare the production rate limits), none for any other CA.
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA:                      s.ca,
		Email:                   s.email,
		Agreed:                  true, // configuring acme = true is the agreement
		TrustedRoots:            s.roots,
		DisableHTTPChallenge:    s.noHTTP,
		DisableTLSALPNChallenge: s.noALPN,
		ListenHost:              noListenHost,
		Logger:                  m.zl,
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// newCertmagicConfig returns a cache and a config on s's storage, logging to
// zl; base gives the settings that differ between Manager and Follower. The
// config has no Issuers yet.
func newCertmagicConfig(s *settled, zl *zap.Logger, base certmagic.Config) (*certmagic.Cache, *certmagic.Config) {
	var cfg atomic.Pointer[certmagic.Config]
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if c := cfg.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("acme: no configuration yet")
		},
		Logger: zl,
	})
	if base.Storage == nil {
		base.Storage = &certmagic.FileStorage{Path: s.storage}
	}
	base.Logger = zl
	base.OnDemand = nil // only the configured names, never one a client asks for
	c := certmagic.New(cache, base)
	cfg.Store(c)
	return cache, c
}

// Storage returns the storage folder the Manager uses (absolute), for its
// Followers: a worker running as another user would not find the same
// DefaultStorage.
func (m *Manager) Storage() string { return m.s.storage }

// Start begins obtaining (or loading from storage) and renewing the
// certificates in the background, and returns at once: a failure is logged
// with the name and the CA's message, and retried by certmagic with a
// growing interval (from a minute up to a day). Cancelling ctx, or Stop,
// ends the retries.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stopped:
		return errors.New("acme: the manager is stopped")
	case m.cancel != nil:
		return errors.New("acme: the manager is already started")
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.s.log.Info("ACME: managing certificates", "names", strings.Join(m.s.names, ","),
		"ca", m.s.ca, "storage", m.s.storage, "http01", !m.s.noHTTP, "tlsalpn01", !m.s.noALPN)
	if err := m.cfg.ManageAsync(ctx, m.s.names); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

// Stop ends the background work: retries, renewals, the cache's
// maintenance. An ACME request in flight is abandoned (certmagic may finish
// logging it after Stop returns). It is safe to call more than once.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	if m.cancel != nil {
		m.cancel()
	}
	m.cache.Stop()
}

// GetCertificate is for tls.Config.GetCertificate: the certificate for the
// client's server name, or the TLS-ALPN-01 challenge certificate when the
// CA validates one. A name that is not one of Options.Names, or whose
// certificate is not obtained yet, gets an error at once (the handshake
// fails); nothing is ever obtained during a handshake.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name, err := checkName(hello, m.names)
	if err != nil {
		return nil, err
	}
	if isChallengeHello(hello) {
		c, err := m.cfg.GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("acme: TLS-ALPN-01 challenge for %q: %w", name, err)
		}
		return c, nil
	}
	c, err := m.cfg.GetCertificate(hello)
	if err != nil {
		return nil, fmt.Errorf("acme: no certificate for %q yet: it is not obtained from %s (progress and errors are in the log): %w", name, m.s.ca, err)
	}
	return c, nil
}

// HTTPChallenge answers the CA's HTTP-01 request (GET
// /.well-known/acme-challenge/TOKEN for one of the names) and returns true;
// for any other request it writes nothing and returns false.
func (m *Manager) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) || !m.names[hostOf(r.Host)] {
		return false
	}
	return m.issuer.HandleHTTPChallenge(w, r)
}

// checkName returns hello's server name if it is one of names.
func checkName(hello *tls.ClientHelloInfo, names map[string]bool) (string, error) {
	name := serverName(hello)
	if name == "" {
		return "", errors.New("acme: the TLS client sent no server name (SNI), so no certificate can be chosen")
	}
	if !names[name] {
		return "", fmt.Errorf("acme: no certificate for %q: not one of the site's names", name)
	}
	return name, nil
}

func nameSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
