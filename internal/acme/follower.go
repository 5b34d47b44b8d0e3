package acme

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Recheck is how long a Follower serves a certificate before it looks at the
// storage files again (a stat of two files); a certificate it does not have
// yet is looked for at every handshake.
const Recheck = 2 * time.Second

// Follower serves the certificates a Manager of another process (a pool's
// supervisor) obtained into the same storage folder, and answers the
// challenges that Manager presented, read from the same folder. It never
// contacts the CA: its work happens in GetCertificate and HTTPChallenge
// (the only goroutine is the maintenance of a certmagic cache that no
// certificate enters). Its process needs read access to the folder (see
// Options.Group).
type Follower struct {
	s      *settled
	names  map[string]bool
	zl     *zap.Logger
	cache  *certmagic.Cache
	cfg    *certmagic.Config     // for challenges only: no Manage call ever
	issuer *certmagic.ACMEIssuer // for its IssuerKey and HandleHTTPChallenge
	files  *certmagic.FileStorage

	recheck time.Duration // Recheck; shorter in tests

	mu    sync.Mutex
	certs map[string]*followed

	stop sync.Once
}

// followed is one name's certificate as last read from storage.
type followed struct {
	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  [2]os.FileInfo // certificate and key files when cert was read
	bad     [2]os.FileInfo // the files when they last failed to load
	checked time.Time
}

// NewFollower checks o (see Validate; only Names, CA, Storage and Log
// matter: give it the Manager's Storage()) and returns a Follower of that
// storage folder, which may not exist yet. Stop it when done.
func NewFollower(o Options) (*Follower, error) {
	o.CARoot, o.Group, o.DisableHTTP01, o.DisableTLSALPN01 = "", "", false, false
	s, err := o.settle()
	if err != nil {
		return nil, err
	}
	f := &Follower{s: s, names: nameSet(s.names), zl: newZapLogger(s.log),
		recheck: Recheck, certs: map[string]*followed{}}
	// No OCSP fetching, no ARI, no storage write test: the follower only reads.
	f.cache, f.cfg = newCertmagicConfig(s, f.zl, certmagic.Config{
		OCSP:                certmagic.OCSPConfig{DisableStapling: true},
		DisableARI:          true,
		DisableStorageCheck: true,
	})
	f.issuer = certmagic.NewACMEIssuer(f.cfg, certmagic.ACMEIssuer{
		CA:         s.ca,
		Email:      s.email,
		ListenHost: noListenHost,
		Logger:     f.zl,
	})
	f.cfg.Issuers = []certmagic.Issuer{f.issuer}
	f.files = f.cfg.Storage.(*certmagic.FileStorage)
	return f, nil
}

// GetCertificate is for tls.Config.GetCertificate: the certificate for the
// client's server name as the Manager last stored it, or the TLS-ALPN-01
// challenge certificate when the CA validates a challenge the Manager
// presented. A name that is not one of Options.Names, or whose certificate
// is not in storage yet, gets an error at once (the handshake fails).
func (f *Follower) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name, err := checkName(hello, f.names)
	if err != nil {
		return nil, err
	}
	if isChallengeHello(hello) {
		// certmagic reads the challenge the Manager wrote to storage
		// (acme/ISSUER/challenge_tokens/NAME.json) and makes its certificate.
		c, err := f.cfg.GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("acme: TLS-ALPN-01 challenge for %q: %w", name, err)
		}
		return c, nil
	}
	return f.current(name)
}

// HTTPChallenge answers the CA's HTTP-01 request for a challenge the Manager
// presented (read from storage) and returns true; for any other request it
// writes nothing and returns false.
func (f *Follower) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) || !f.names[hostOf(r.Host)] {
		return false
	}
	return f.issuer.HandleHTTPChallenge(w, r)
}

// Stop releases the Follower's certmagic cache. It is safe to call more
// than once.
func (f *Follower) Stop() {
	f.stop.Do(f.cache.Stop)
}

// current returns name's certificate, read again from storage if its files
// changed since (checked at most every Recheck while one is served).
func (f *Follower) current(name string) (*tls.Certificate, error) {
	f.mu.Lock()
	e := f.certs[name]
	if e == nil {
		e = &followed{}
		f.certs[name] = e
	}
	f.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if e.cert != nil && now.Sub(e.checked) < f.recheck {
		return e.cert, nil
	}
	e.checked = now

	certFile := f.files.Filename(certmagic.StorageKeys.SiteCert(f.issuer.IssuerKey(), name))
	keyFile := f.files.Filename(certmagic.StorageKeys.SitePrivateKey(f.issuer.IssuerKey(), name))
	var st [2]os.FileInfo
	var err error
	for i, file := range []string{certFile, keyFile} {
		if st[i], err = os.Stat(file); err != nil {
			break
		}
	}
	switch {
	case err == nil:
	case e.cert != nil:
		return e.cert, nil // removed? keep serving what we have
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("acme: no certificate for %q yet: the ACME manager has not stored it in %s (progress and errors are in its log)", name, f.s.storage)
	default:
		return nil, fmt.Errorf("acme: certificate for %q: %w (%s)", name, err, readHint(err))
	}
	if e.cert != nil && sameFiles(st, e.loaded) {
		return e.cert, nil
	}
	if sameFiles(st, e.bad) {
		if e.cert != nil {
			return e.cert, nil
		}
		return nil, fmt.Errorf("acme: certificate for %q: the files in %s do not load (see the log)", name, f.s.storage)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// Possibly read between the renewal's writes of the key and the
		// certificate: the next check (different files) tries again.
		e.bad = st
		hint := readHint(err)
		f.s.log.Warn("ACME: certificate files do not load; "+hint, "name", name, "file", certFile, "err", err)
		if e.cert != nil {
			return e.cert, nil
		}
		return nil, fmt.Errorf("acme: certificate for %q: %w (%s)", name, err, hint)
	}
	if e.cert != nil {
		f.s.log.Info("ACME: serving the renewed certificate", "name", name, "not_after", pair.Leaf.NotAfter)
	}
	e.cert, e.loaded, e.bad = &pair, st, [2]os.FileInfo{}
	return e.cert, nil
}

// readHint says what to do about an error reading the storage.
func readHint(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return "this process cannot read the storage folder: give it the group of the Manager's Options.Group"
	}
	return "retried when the files change"
}

// sameFiles tells whether a and b are the same files, unchanged: certmagic
// replaces a file by renaming a new one over it, so a new file is a new
// inode; and a file shared with a group (Options.Group) changes mode after
// its rename.
func sameFiles(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) || a[i].Mode() != b[i].Mode() ||
			!a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
