package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"wisp/internal/acme/pebbletest"
)

// The tests that run pebble, Let's Encrypt's test CA, start it with
// pebbletest.Start; the helpers below serve and fetch HTTPS on 127.0.0.1.

// sharedTempDir returns a new folder that every user can reach (t.TempDir's
// parent is private), removed at the end of t.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wisp-acme-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listen returns a TCP listener on a free port of 127.0.0.1, closed at the
// end of t, and its port.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// get does an HTTPS GET of https://name/ on 127.0.0.1:port, verifying the
// server's chain against roots for name; it returns the leaf and the body.
func get(name string, port int, roots *x509.CertPool) (*x509.Certificate, string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + name + "/")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	return resp.TLS.PeerCertificates[0], string(body), nil
}

// waitServed waits until https://name/ on 127.0.0.1:port verifies against
// roots and answers body, with a certificate other than old (if not nil).
func waitServed(t *testing.T, name string, port int, roots *x509.CertPool, body string, old *x509.Certificate) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	pebbletest.WaitFor(t, "a verified certificate for "+name, func() error {
		c, b, err := get(name, port, roots)
		if err != nil {
			return err
		}
		if b != body {
			return fmt.Errorf("body %q, want %q", b, body)
		}
		if old != nil && c.SerialNumber.Cmp(old.SerialNumber) == 0 {
			return fmt.Errorf("still the certificate with serial %x", c.SerialNumber)
		}
		leaf = c
		return nil
	})
	return leaf
}

// serveTLS serves HTTPS on ln, answering body, with getCert; stopped at the
// end of t.
func serveTLS(t *testing.T, ln net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), body string) {
	t.Helper()
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }),
		TLSConfig: &tls.Config{GetCertificate: getCert, NextProtos: NextProtos("h2", "http/1.1")},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	serve(t, srv, func() error { return srv.ServeTLS(ln, "", "") })
}

// serve runs run (srv's Serve) until the end of t.
func serve(t *testing.T, srv *http.Server, run func() error) {
	done := make(chan struct{})
	go func() {
		run()
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// testLog returns a debug logger into a buffer, shown if t fails.
func testLog(t *testing.T) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
