package tlsconf

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// The TLS 1.2 suites are Mozilla intermediate's: AEAD only (no CBC), all
// among Go's secure suites, with the one HTTP/2 requires (RFC 9113 9.2.2).
func TestCipherSuites(t *testing.T) {
	secure := map[uint16]bool{}
	for _, s := range tls.CipherSuites() {
		secure[s.ID] = true
	}
	for _, id := range CipherSuites() {
		name := tls.CipherSuiteName(id)
		if !secure[id] || strings.Contains(name, "CBC") || !strings.HasPrefix(name, "TLS_ECDHE_") {
			t.Errorf("%s is not an intermediate-profile suite", name)
		}
	}
	if !slices.Contains(CipherSuites(), tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) {
		t.Error("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which HTTP/2 requires, is missing")
	}
	if len(CipherSuites()) != 6 {
		t.Errorf("%d suites, want the profile's 6 that Go implements", len(CipherSuites()))
	}
}
