package acme

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wisp/internal/acme/pebbletest"
)

// TestManagerTLSALPN01 obtains a certificate from pebble through the
// TLS-ALPN-01 challenge, answered by the Manager's GetCertificate on the
// test's own TLS listener, and serves it.
func TestManagerTLSALPN01(t *testing.T) {
	t.Parallel()
	tlsLn, tlsPort := listen(t)
	ca := pebbletest.Start(t, pebbletest.FreePort(t), tlsPort) // nothing on the HTTP-01 port
	logger, logs := testLog(t)
	storage := t.TempDir()
	m, err := NewManager(Options{
		Names: []string{"Shop.Test."}, Email: "ops@shop.test",
		CA: ca.Dir, CARoot: ca.CARoot, Storage: storage,
		DisableHTTP01: true, Log: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	serveTLS(t, tlsLn, m.GetCertificate, "shop")

	// Before the certificate exists, handshakes fail at once, clearly.
	_, err = m.GetCertificate(hello(t, "shop.test"))
	wantErr(t, err, `no certificate for "shop.test" yet`)
	_, err = m.GetCertificate(hello(t, "other.test"))
	wantErr(t, err, `"other.test": not one of the site's names`)
	_, err = m.GetCertificate(hello(t, ""))
	wantErr(t, err, "no server name (SNI)")
	start := time.Now()
	if _, _, err := get("shop.test", tlsPort, ca.Roots); err == nil {
		t.Fatal("a handshake succeeded before the certificate was obtained")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the failing handshake took %v", d)
	}

	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Error("a second Start did not fail")
	}
	leaf := waitServed(t, "shop.test", tlsPort, ca.Roots, "shop", nil)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "shop.test" {
		t.Errorf("certificate for %v, want [shop.test]", leaf.DNSNames)
	}

	// Where the package documentation says certificates land.
	for _, f := range []string{"shop.test.crt", "shop.test.key", "shop.test.json"} {
		matches, _ := filepath.Glob(filepath.Join(storage, "certificates", "*", "shop.test", f))
		if len(matches) != 1 {
			t.Errorf("certificates/ISSUER/shop.test/%s: found %v", f, matches)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(storage, "acme", "*", "users", "ops@shop.test", "*.key"))
	if len(matches) != 1 {
		t.Errorf("acme/ISSUER/users/ops@shop.test/*.key: found %v", matches)
	}
	// certmagic's log went to slog, the result at info.
	pebbletest.WaitFor(t, "the log of the issuance", func() error {
		return logHas(logs.String(), `level=INFO msg="certificate obtained successfully"`, `identifier=shop.test`)
	})
}

// TestManagerLogsCAError has nothing answer the challenge: pebble really
// validates, so the order fails, and the Manager logs it at error with the
// name and pebble's message; handshakes keep failing at once.
func TestManagerLogsCAError(t *testing.T) {
	t.Parallel()
	ca := pebbletest.Start(t, pebbletest.FreePort(t), pebbletest.FreePort(t)) // nothing listens on either
	logger, logs := testLog(t)
	m, err := NewManager(Options{
		Names: []string{"down.test"}, CA: ca.Dir, CARoot: ca.CARoot, Storage: t.TempDir(),
		DisableHTTP01: true, Log: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pebbletest.WaitFor(t, "the error in the log", func() error {
		return logHas(logs.String(), "level=ERROR", "down.test", "Failed to connect to 127.0.0.1")
	})
	_, err = m.GetCertificate(hello(t, "down.test"))
	wantErr(t, err, `no certificate for "down.test" yet`)
	start := time.Now()
	m.Stop()
	m.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Error("Start after Stop did not fail")
	}
}

// TestManagerHTTP01 obtains a certificate through the HTTP-01 challenge,
// answered by the Manager's HTTPChallenge on the test's plain HTTP listener.
func TestManagerHTTP01(t *testing.T) {
	t.Parallel()
	httpLn, httpPort := listen(t)
	tlsLn, tlsPort := listen(t)
	ca := pebbletest.Start(t, httpPort, tlsPort)
	logger, _ := testLog(t)
	m, err := NewManager(Options{
		Names: []string{"blog.test"}, Email: "ops@blog.test",
		CA: ca.Dir, CARoot: ca.CARoot, Storage: t.TempDir(),
		DisableTLSALPN01: true, Log: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	var answered, alpn atomic.Int32
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.HTTPChallenge(w, r) {
			answered.Add(1)
			return
		}
		http.NotFound(w, r)
	})}
	serve(t, plain, func() error { return plain.Serve(httpLn) })
	serveTLS(t, tlsLn, func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if isChallengeHello(hello) {
			alpn.Add(1)
		}
		return m.GetCertificate(hello)
	}, "blog")

	// Requests that are not a challenge of ours are left to the site.
	for _, target := range []string{"http://blog.test/", "http://blog.test/.well-known/acme-challenge/nosuchtoken", "http://other.test/.well-known/acme-challenge/x"} {
		w := httptest.NewRecorder()
		if m.HTTPChallenge(w, httptest.NewRequest("GET", target, nil)) || w.Body.Len() > 0 {
			t.Errorf("HTTPChallenge took GET %s", target)
		}
	}

	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitServed(t, "blog.test", tlsPort, ca.Roots, "blog", nil)
	if answered.Load() == 0 || alpn.Load() != 0 {
		t.Errorf("HTTP-01 requests answered: %d, TLS-ALPN-01 handshakes: %d; want some and none", answered.Load(), alpn.Load())
	}
}

// TestFollowerServesManagersCertificates runs a Follower in another
// process, which alone accepts the connections of the ports pebble
// validates (as a pool's worker: this process holds the listeners, as the
// supervisor, but never accepts), while the Manager here talks to pebble. The
// challenges are answered by the Follower from storage, the certificate is
// served by it, and renewals are picked up without restarting it.
func TestFollowerServesManagersCertificates(t *testing.T) {
	t.Parallel()
	tlsLn, tlsPort := listen(t)
	httpLn, httpPort := listen(t)
	ca := pebbletest.Start(t, httpPort, tlsPort)
	// As root, the follower runs as nobody:nogroup, as a pool's worker with
	// --user: it reads the storage through Options.Group.
	var cred *syscall.Credential
	group := ""
	if os.Geteuid() == 0 {
		cred, group = &syscall.Credential{Uid: 65534, Gid: 65534}, "65534"
	}
	storage := filepath.Join(sharedTempDir(t), "acme")
	child, childLog := startFollowerChild(t, followerArgs{Names: []string{"api.test"}, CA: ca.Dir, Storage: storage}, cred, tlsLn, httpLn)

	// Nothing stored yet: the follower fails the handshake, at once.
	if _, _, err := get("api.test", tlsPort, ca.Roots); err == nil {
		t.Fatal("the follower completed a handshake before any certificate was stored")
	}
	pebbletest.WaitFor(t, "the follower's handshake error", func() error {
		return logHas(childLog.Output(), `no certificate for \"api.test\" yet`)
	})

	logger, _ := testLog(t)
	opts := Options{Names: []string{"api.test"}, Email: "ops@api.test", CA: ca.Dir, CARoot: ca.CARoot, Storage: storage, Group: group, Log: logger}
	// 1. Obtained with TLS-ALPN-01, answered by the follower.
	alpnOpts := opts
	alpnOpts.DisableHTTP01 = true
	m, err := NewManager(alpnOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same follower process answers throughout: no restart.
	body := fmt.Sprintf("follower pid=%d", child.Process.Pid)
	first := waitServed(t, "api.test", tlsPort, ca.Roots, body, nil)
	pebbletest.WaitFor(t, "the follower's TLS-ALPN-01 answer from storage", func() error {
		return logHas(childLog.Output(), `msg="served key authentication certificate"`, "challenge=tls-alpn-01", "distributed=true")
	})

	// 2. Renewed by the Manager: the follower serves the new certificate.
	ctx, cancel := context.WithTimeout(context.Background(), pebbletest.WaitLimit)
	defer cancel()
	if err := m.cfg.RenewCertSync(ctx, "api.test", true); err != nil {
		t.Fatalf("forced renewal: %v", err)
	}
	second := waitServed(t, "api.test", tlsPort, ca.Roots, body, first)
	m.Stop()

	// 3. Renewed by another Manager of the storage, through HTTP-01 this
	// time, answered by the follower.
	httpOpts := opts
	httpOpts.DisableTLSALPN01 = true
	m2, err := NewManager(httpOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m2.Stop)
	if err := m2.cfg.RenewCertSync(ctx, "api.test", true); err != nil {
		t.Fatalf("forced renewal through HTTP-01: %v", err)
	}
	waitServed(t, "api.test", tlsPort, ca.Roots, body, second)
	// the follower's log arrives through a pipe: waited for, as in step 1
	pebbletest.WaitFor(t, "the follower's HTTP-01 answer from storage", func() error {
		return logHas(childLog.Output(), `msg="served key authentication"`, "challenge=http-01", "distributed=true")
	})
	pebbletest.WaitFor(t, "the follower's renewed certificate", func() error {
		return logHas(childLog.Output(), `msg="ACME: serving the renewed certificate"`)
	})
}

// logHas reports a line of log that contains all of parts, or an error.
func logHas(log string, parts ...string) error {
	for line := range strings.Lines(log) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return nil
		}
	}
	return &missingLog{parts}
}

type missingLog struct{ parts []string }

func (m *missingLog) Error() string {
	return "no log line with " + strings.Join(m.parts, " and ")
}

// hello returns a ClientHelloInfo for name, on a connection (certmagic logs
// its addresses).
func hello(t *testing.T, name string, protos ...string) *tls.ClientHelloInfo {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos, Conn: a}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}
