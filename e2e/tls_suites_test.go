package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeRSACert writes a self-signed RSA certificate for 127.0.0.1 and
// returns it as a pool of roots.
func writeRSACert(t *testing.T, certPath, keyPath string) *x509.CertPool {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "rsa"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TLS 1.2 offers Mozilla's intermediate profile: a client offering only an
// AES-CBC-SHA suite is refused, AES-GCM and ChaCha20-Poly1305 clients are
// served; with an RSA and an ECDSA certificate, in-process and as a pool.
func TestTLS12CipherSuites(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		for _, kind := range []string{"ecdsa", "rsa"} {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
			var roots *x509.CertPool
			cbc, gcm, chacha := tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
			if kind == "rsa" {
				roots = writeRSACert(t, certPath, keyPath)
				cbc, gcm, chacha = tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
			} else {
				roots = writeCert(t, certPath, keyPath, "ecdsa")
			}
			w := start(t, append([]string{app("environ/app.py"), "--certfile", certPath, "--keyfile", keyPath}, extra...)...)
			dial := func(suite uint16) error {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", w.Addr, &tls.Config{RootCAs: roots,
					MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
				if err == nil {
					c.Close()
				}
				return err
			}
			if err := dial(cbc); err == nil {
				t.Errorf("%v %s: a TLS 1.2 client offering only %s was served", extra, kind, tls.CipherSuiteName(cbc))
			}
			for _, s := range []uint16{gcm, chacha} {
				if err := dial(s); err != nil {
					t.Errorf("%v %s: a TLS 1.2 client offering %s: %v", extra, kind, tls.CipherSuiteName(s), err)
				}
			}
			// TLS 1.3 is still served
			if c, err := tls.Dial("tcp", w.Addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}); err != nil {
				t.Errorf("%v %s: TLS 1.3: %v", extra, kind, err)
			} else {
				c.Close()
			}
			w.stop()
		}
	}
}
