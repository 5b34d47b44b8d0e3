// Package tlsconf holds the certificates wisp serves over TLS from files
// (--certfile/--keyfile, a site's tls = { cert, key }), and the TLS profile
// every TLS binding offers (CipherSuites, CurvePreferences). A certificate whose files change is loaded again
// at the next handshake (checked at most once a second); a change that does
// not load is logged and the previous certificate keeps serving.
package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// Store is one certificate and key pair, reloaded when its files change.
type Store struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]stamp // the files as loaded
	checked time.Time
}

// stamp tells whether a file changed: a rewrite, a rename over it (a new
// inode), or a copy that kept the modification time (the change time moves).
type stamp struct {
	mod, change time.Time
	size        int64
	ino         uint64
}

// Load reads the pair; an error names the files and what is wrong.
func Load(certFile, keyFile string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{certFile: certFile, keyFile: keyFile, log: log}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) stamps() ([2]stamp, error) {
	var st [2]stamp
	for i, f := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, err
		}
		st[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st[i].change, st[i].ino = time.Unix(sys.Ctim.Unix()), sys.Ino
		}
	}
	return st, nil
}

// reload loads the files; on error the previous certificate stays.
func (s *Store) reload() error {
	st, err := s.stamps()
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert, s.stamp = &c, st
	return nil
}

// Reload loads the files again now (SIGHUP); on error the previous
// certificate keeps serving.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

// current returns the certificate, first loading it again if its files
// changed since the last check (at most once a second).
func (s *Store) current() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.checked) >= time.Second {
		s.checked = now
		if st, err := s.stamps(); err == nil && st != s.stamp {
			if err := s.reload(); err != nil {
				s.stamp = st // say it once per change
				s.log.Error("TLS certificate changed but does not load: the previous one keeps serving", "err", err)
			} else {
				s.log.Info("TLS certificate reloaded", "cert", s.certFile)
			}
		}
	}
	return s.cert
}

// GetCertificate gives the certificate for a handshake (package edge
// chooses the Store by the SNI name).
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.current(), nil
}

// CipherSuites are the TLS 1.2 suites wisp offers: those of Mozilla's
// "intermediate" profile that Go implements (ECDHE with AES-GCM or
// ChaCha20-Poly1305; Go has no DHE). Go's defaults would also take the
// ECDHE AES-CBC-SHA suites, which the profile leaves out. TLS 1.3 suites
// are not configurable in Go, and all of them are fine.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// CurvePreferences are the key exchange groups wisp offers: the
// intermediate profile's X25519, P-256 and P-384, after the hybrid
// post-quantum X25519MLKEM768 that Go offers by default in TLS 1.3 (a list
// without it would turn that off).
func CurvePreferences() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
}
