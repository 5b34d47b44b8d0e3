package e2e

// ACME against a real CA: pebble (Let's Encrypt's test CA) and
// pebble-challtestsrv (its DNS server, which answers 127.0.0.1 for every
// name), built from the tools module (../tools) and run as child processes.
// pebble really validates the challenges (never PEBBLE_VA_ALWAYS_VALID) on
// wisp's own bindings: HTTP-01 on the plain one, TLS-ALPN-01 on the TLS one.
// In `wisp serve` the supervisor obtains the certificate and the workers,
// which accept the connections, answer the challenges and serve the
// certificate from the storage folder. pebble is started by package
// pebbletest, as for the tests of internal/acme.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"wisp/internal/acme/pebbletest"
)

// startPebble starts pebble (pebbletest.Start) for wisp's ports httpPort
// (HTTP-01) and tlsPort (TLS-ALPN-01), as this package writes them.
func startPebble(t *testing.T, httpPort, tlsPort string) *pebbletest.CA {
	t.Helper()
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(tlsPort)
	return pebbletest.Start(t, hp, tp)
}

// acmeHandshake does a TLS handshake with 127.0.0.1:port for name, verifying
// the chain against roots, and returns the leaf.
func acmeHandshake(port, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+port)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// waitACMECert waits (pebbletest.WaitLimit at most) until a handshake with
// 127.0.0.1:PORT0 of s for name verifies against roots, and returns the
// leaf. It fails at once when the supervisor logs that obtaining failed and
// will be retried: certmagic's first retry comes a minute later.
func waitACMECert(t *testing.T, s *poolServer, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(pebbletest.WaitLimit)
	for {
		leaf, err := acmeHandshake(s.Ports[0], name, roots)
		if err == nil {
			return leaf
		}
		if retry := logLines(s.Stderr(), "will retry"); len(retry) > 0 {
			t.Fatalf("no certificate for %s: obtaining it failed (handshake: %v):\n%s", name, err, retry[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for a certificate for %s on 127.0.0.1:%s that verifies against pebble's root: %v", pebbletest.WaitLimit, name, s.Ports[0], err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// acmeStart starts s (wisp serve) and, if the test fails, shows the ACME
// story of its log: every line above debug, and the debug lines about
// challenges, without the repeated handshake failures of the wait (the
// general tail of the log that poolServer shows is full of them).
func acmeStart(t *testing.T, s *poolServer) {
	t.Helper()
	s.start(t)
	w := s.wisp
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var keep []string
		for _, line := range strings.Split(w.Stderr(), "\n") {
			msg := logAttr(line, "msg")
			if msg == "TLS handshake failed" || msg == "http request" {
				continue
			}
			if logAttr(line, "level") != "DEBUG" || strings.Contains(line, "challenge") || strings.Contains(msg, "key authentication") {
				keep = append(keep, line)
			}
		}
		if len(keep) > 200 {
			keep = append(keep[:100], append([]string{"..."}, keep[len(keep)-100:]...)...)
		}
		t.Logf("wisp's ACME log (pid %d; no debug lines but about challenges):\n%s", w.Pid(), strings.Join(keep, "\n"))
	})
}

// pidApp answers the id of the worker process that ran it.
const pidApp = `
import os
def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// writeACMEShop writes the config of s: a pool of two processes serving
// site shop (shop.test) on bindings, with an ACME certificate from the CA
// of directory caDir, trusted through caRoot, stored in @DIR@/acme. The
// error log is at debug, where certmagic's routine steps (each ACME
// request, each challenge answered) are logged with the process they
// happen in: a worker's lines carry pool= and worker=, the supervisor's
// do not.
func writeACMEShop(t *testing.T, s *poolServer, bindings, caDir, caRoot string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, "pid.py"), []byte(pidApp), 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, fmt.Sprintf(`
[server]
access_log = "off"
log_level = "debug"

[pools.shop]
python = "@PY@"
processes = 2

[[sites]]
name = "shop"
bindings = [%s]
hostnames = ["shop.test"]
tls = { acme = true, email = "ops@shop.test", ca = %q, ca_root = %q, storage = "@DIR@/acme" }
redirect_http = true

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/environ/app.py"
  pool = "shop"

  [[sites.vdirs]]
  path = "/pid"
  app = "@DIR@/pid.py"
  pool = "shop"
`, bindings, caDir, caRoot))
}

// acmeStoredCert returns the certificate file of shop.test in the storage
// folder of s (certificates/ISSUER/shop.test/shop.test.crt), "" if none.
func acmeStoredCert(t *testing.T, s *poolServer) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.Dir, "acme", "certificates", "*", "shop.test", "shop.test.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		return ""
	}
	if len(m) > 1 {
		t.Errorf("certificates of shop.test from several issuers: %v", m)
	}
	return m[0]
}

// acmeCAContact checks in the error log that only the supervisor (lines
// without pool=) talked to the CA: registered the account, ordered, made
// ACME requests, obtained. It returns how many certificates the supervisor
// obtained, and the challenges the workers answered by type.
func acmeCAContact(t *testing.T, log string) (obtained int, answered map[string]int) {
	t.Helper()
	answered = map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		msg, pool := logAttr(line, "msg"), logAttr(line, "pool")
		switch {
		case msg == "obtaining certificate", msg == "certificate obtained successfully", msg == "new ACME account registered",
			msg == "renewing certificate", logAttr(line, "logger") == ".acme_client":
			if pool != "" {
				t.Errorf("a worker talked to the CA (only the supervisor may): %s", line)
			} else if msg == "certificate obtained successfully" {
				obtained++
			}
		case strings.HasPrefix(msg, "served key authentication") && pool != "":
			answered[logAttr(line, "challenge")]++
		}
	}
	return obtained, answered
}

// checkACMEServed checks what s serves with the certificate leaf: the same
// certificate as in storage, HTTPS over HTTP/1.1 and HTTP/2 to the environ
// app, from both workers of the pool.
func checkACMEServed(t *testing.T, s *poolServer, roots *x509.CertPool, leaf *x509.Certificate) {
	t.Helper()
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "shop.test" {
		t.Errorf("certificate for %v, want [shop.test]", leaf.DNSNames)
	}
	crt := acmeStoredCert(t, s)
	if crt == "" {
		t.Fatalf("a certificate is served, but none is in %s/acme/certificates/", s.Dir)
	}
	if b, err := os.ReadFile(crt); err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Errorf("%s: %v %q", crt, err, trunc(b))
	} else if stored := firstPEMCert(t, b); !stored.Equal(leaf) {
		t.Errorf("served certificate (serial %x) is not the one in %s (serial %x)", leaf.SerialNumber, crt, stored.SerialNumber)
	}
	if fi, err := os.Stat(strings.TrimSuffix(crt, ".crt") + ".key"); err != nil {
		t.Errorf("the certificate's key file: %v", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the certificate's key file %s has mode %v, want private (0600)", fi.Name(), fi.Mode().Perm())
	}

	addr := "127.0.0.1:" + s.Ports[0]
	for _, h2 := range []bool{false, true} {
		c := hostClient(addr, roots, h2)
		code, body, resp := getBody(t, c, "https://shop.test:"+s.Ports[0]+"/env?x=1")
		c.CloseIdleConnections()
		wantMajor, wantProto := 1, "HTTP/1.1"
		if h2 {
			wantMajor, wantProto = 2, "HTTP/2.0"
		}
		var env envReply
		if code != 200 || !jsonOK([]byte(body), &env) {
			t.Errorf("%s GET https://shop.test/env: %d %q", wantProto, code, trunc([]byte(body)))
			continue
		}
		if resp.ProtoMajor != wantMajor || env.Environ["wsgi.url_scheme"] != "https" || env.Environ["SERVER_PROTOCOL"] != wantProto ||
			env.Environ["HTTP_HOST"] != "shop.test:"+s.Ports[0] || env.Environ["PATH_INFO"] != "/env" {
			t.Errorf("%s GET https://shop.test/env: %s, environ url_scheme %q SERVER_PROTOCOL %q HTTP_HOST %q PATH_INFO %q", wantProto, resp.Proto,
				env.Environ["wsgi.url_scheme"], env.Environ["SERVER_PROTOCOL"], env.Environ["HTTP_HOST"], env.Environ["PATH_INFO"])
		}
		if got := resp.TLS.PeerCertificates[0]; !got.Equal(leaf) {
			t.Errorf("%s: served certificate serial %x, want %x", wantProto, got.SerialNumber, leaf.SerialNumber)
		}
	}

	// Both workers serve it: new connections until each worker answered.
	want := s.readyWorkers(t, "shop", 2)
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	seen := map[int]int{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		resp, err := c.Get("https://shop.test:" + s.Ports[0] + "/pid")
		if err != nil {
			t.Fatalf("GET /pid (connection %d): %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pid, err := strconv.Atoi(string(b))
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET /pid: %d %q", resp.StatusCode, b)
		}
		if got := resp.TLS.PeerCertificates[0]; !got.Equal(leaf) {
			t.Errorf("worker %d served certificate serial %x, want %x", pid, got.SerialNumber, leaf.SerialNumber)
		}
		seen[pid]++
	}
	for _, pid := range want {
		if seen[pid] == 0 {
			t.Errorf("worker pid %d never answered over TLS (answers by pid: %v, ready workers %v)", pid, seen, want)
		}
	}
}

// firstPEMCert returns the first certificate of a PEM file's content (the
// leaf of a chain).
func firstPEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			t.Fatalf("no CERTIFICATE in %q", trunc(b))
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
}

// TestACMEPebble: `wisp serve` with a pool of two workers gets a certificate
// for shop.test from pebble, which validates it for real on wisp's own
// bindings (TLS-ALPN-01 on the TLS one, HTTP-01 on the plain one: certmagic
// picks either). The supervisor is the only process that talks to the CA;
// the workers answer the challenge and serve the certificate from the
// storage folder, over HTTP/1.1 and HTTP/2, each of them; the plain
// binding redirects to https (redirect_http).
func TestACMEPebble(t *testing.T) {
	s := newPoolServer(t)
	ca := startPebble(t, s.Ports[1], s.Ports[0])
	writeACMEShop(t, s, `"127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"`, ca.Dir, ca.CARoot)
	t0 := time.Now()
	acmeStart(t, s)
	leaf := waitACMECert(t, s, "shop.test", ca.Roots)
	t.Logf("certificate (serial %x) served %v after start", leaf.SerialNumber, time.Since(t0).Round(time.Millisecond))
	checkACMEServed(t, s, ca.Roots, leaf)

	// the plain binding redirects a normal path to https
	plain := hostClient("127.0.0.1:"+s.Ports[1], nil, false)
	code, _, resp := getBody(t, plain, "http://shop.test:"+s.Ports[1]+"/cart?id=7")
	if loc := resp.Header.Get("Location"); code != 308 || loc != "https://shop.test:"+s.Ports[0]+"/cart?id=7" {
		t.Errorf("plain binding: %d Location %q, want 308 to https://shop.test:%s/cart?id=7", code, loc, s.Ports[0])
	}

	obtained, answered := acmeCAContact(t, s.Stderr())
	if obtained != 1 {
		t.Errorf("the supervisor logged %d \"certificate obtained successfully\", want 1", obtained)
	}
	if answered["tls-alpn-01"]+answered["http-01"] == 0 {
		t.Errorf("no worker logged answering a challenge (served key authentication), yet pebble validated one: %v", answered)
	}
	t.Logf("challenges answered by the workers: %v", answered)
}

// TestACMEPebbleOneChallenge: pebble can reach only one of wisp's bindings
// for the validation (the other challenge's port is one where nothing
// listens), and the certificate is still obtained through it, answered by
// the workers. For HTTP-01 that is the plain binding of a site with
// redirect_http: the challenge must be answered, not redirected. Then (in
// http-01) wisp restarts on the same storage with pebble gone: the stored
// certificate is served at once, and nothing is ordered again.
func TestACMEPebbleOneChallenge(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			s := newPoolServer(t)
			httpPort, tlsPort := s.Ports[1], s.Ports[0]
			if challenge == "http-01" {
				tlsPort = pickPort(t) // nothing listens there
			} else {
				httpPort = pickPort(t)
			}
			ca := startPebble(t, httpPort, tlsPort)
			writeACMEShop(t, s, `"http://127.0.0.1:@PORT1@", "127.0.0.1:@PORT0@"`, ca.Dir, ca.CARoot)
			t0 := time.Now()
			acmeStart(t, s)
			leaf := waitACMECert(t, s, "shop.test", ca.Roots)
			t.Logf("certificate served %v after start", time.Since(t0).Round(time.Millisecond))
			checkACMEServed(t, s, ca.Roots, leaf)
			obtained, answered := acmeCAContact(t, s.Stderr())
			other := map[string]string{"http-01": "tls-alpn-01", "tls-alpn-01": "http-01"}[challenge]
			if obtained != 1 || answered[challenge] == 0 || answered[other] != 0 {
				t.Errorf("%d certificates obtained (want 1); challenges answered by the workers %v, want only %s", obtained, answered, challenge)
			}
			if challenge != "http-01" {
				return
			}

			// Restart on the same storage, the CA gone.
			ca.Stop()
			s.stop()
			first := s.Stderr()
			t1 := time.Now()
			acmeStart(t, s)
			var again *x509.Certificate
			if !eventually(5*time.Second, func() bool {
				var err error
				again, err = acmeHandshake(s.Ports[0], "shop.test", ca.Roots)
				return err == nil
			}) {
				t.Fatalf("after a restart on the same storage (CA stopped), no verified certificate within 5 s of listening")
			}
			t.Logf("restart: stored certificate served %v after start", time.Since(t1).Round(time.Millisecond))
			if !again.Equal(leaf) {
				t.Errorf("after the restart: certificate serial %x, want the stored %x", again.SerialNumber, leaf.SerialNumber)
			}
			checkACMEServed(t, s, ca.Roots, leaf)
			second := s.Stderr()
			if lines := logLines(second, "obtaining certificate"); len(lines) > 0 {
				t.Errorf("after the restart wisp ordered a certificate again, though storage has a valid one: %q", lines)
			}
			if !strings.Contains(first, "certificate obtained successfully") {
				t.Errorf("the first run logged no \"certificate obtained successfully\"")
			}
		})
	}
}

// TestACMEPebbleWrongCARoot: with a ca_root that did not sign pebble's
// HTTPS certificate, the supervisor cannot talk to the CA: it logs why, and
// no certificate is obtained, stored or served (TLS handshakes fail).
func TestACMEPebbleWrongCARoot(t *testing.T) {
	s := newPoolServer(t)
	ca := startPebble(t, s.Ports[1], s.Ports[0])
	wrong := filepath.Join(s.Dir, "wrong-root.pem")
	writeHostCert(t, wrong, filepath.Join(s.Dir, "wrong-root.key"), "not pebble's root", "localhost")
	writeACMEShop(t, s, `"127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"`, ca.Dir, wrong)
	acmeStart(t, s)
	if got := s.waitLog("", 1, 30*time.Second, "level=ERROR", "unknown authority"); len(got) == 0 {
		t.Fatalf("no error about the CA's certificate (unknown authority) in the log within 30 s")
	} else {
		t.Logf("wisp: %s", got[0])
	}
	// The error is there: nothing may come of it for a while.
	time.Sleep(2 * time.Second)
	if leaf, err := acmeHandshake(s.Ports[0], "shop.test", ca.Roots); err == nil {
		t.Errorf("a certificate (serial %x) is served though the CA could not be reached", leaf.SerialNumber)
	}
	if crt := acmeStoredCert(t, s); crt != "" {
		t.Errorf("a certificate was stored though the CA could not be reached: %s", crt)
	}
	if strings.Contains(ca.Log(), "sign-me-up") {
		t.Errorf("pebble registered an account though wisp should not trust it")
	}
	if obtained, _ := acmeCAContact(t, s.Stderr()); obtained != 0 {
		t.Errorf("%d certificates obtained, want 0", obtained)
	}
}
