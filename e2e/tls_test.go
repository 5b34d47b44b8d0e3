package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// with the common name cn, and returns its pool of roots.
func writeCert(t *testing.T, certPath, keyPath, cn string) *x509.CertPool {
	t.Helper()
	return writeHostCert(t, certPath, keyPath, cn, "localhost")
}

// --certfile/--keyfile serve HTTPS (TLS 1.2+; the app sees https), a
// change of the files is served live, a plain-HTTP client gets no hang, and
// a bad file is a clear error at start.
func TestTLSFromFiles(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
		roots := writeCert(t, certPath, keyPath, "first")
		w := start(t, append([]string{app("environ/app.py"), "--certfile", certPath, "--keyfile", keyPath}, extra...)...)
		client := func(roots *x509.CertPool) *http.Client {
			return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}}
		}
		url := "https://" + w.Addr + "/"
		resp, err := client(roots).Get(url)
		if err != nil {
			t.Fatalf("%v: HTTPS: %v", extra, err)
		}
		var out struct{ Environ map[string]string }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.Environ["wsgi.url_scheme"] != "https" || out.Environ["HTTPS"] != "on" || resp.TLS == nil {
			t.Errorf("%v: %d, scheme %q, HTTPS %q", extra, resp.StatusCode, out.Environ["wsgi.url_scheme"], out.Environ["HTTPS"])
		}
		// TLS 1.1 is refused
		if c, err := tls.Dial("tcp", w.Addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
			c.Close()
			t.Errorf("%v: a TLS 1.1 handshake succeeded", extra)
		}
		// plain HTTP on the TLS port: an answer or a close, never a hang
		if c, err := net.DialTimeout("tcp", w.Addr, 5*time.Second); err == nil {
			c.SetDeadline(time.Now().Add(15 * time.Second))
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			buf := make([]byte, 512)
			n, err := io.ReadFull(c, buf)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("%v: a plain-HTTP request on the TLS port hangs", extra)
			} else if !strings.HasPrefix(string(buf[:n]), "HTTP/1.0 400") || !strings.Contains(string(buf[:n]), "HTTPS port") {
				t.Errorf("%v: a plain-HTTP request on the TLS port: %q, want a 400 that says so", extra, buf[:n])
			}
			c.Close()
		}
		// a new certificate is served without a restart
		roots2 := writeCert(t, certPath, keyPath, "second")
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := tls.Dial("tcp", w.Addr, &tls.Config{RootCAs: roots2})
			if err == nil {
				cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
				c.Close()
				if cn == "second" {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: the new certificate is not served within 10s: %v", extra, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// a broken file keeps the current certificate serving
		os.WriteFile(certPath, []byte("not a certificate"), 0o644)
		time.Sleep(1100 * time.Millisecond)
		if resp, err := client(roots2).Get(url); err != nil {
			t.Errorf("%v: after a broken certificate file: %v", extra, err)
		} else {
			resp.Body.Close()
		}
		if !w.waitStderr("does not load", 5*time.Second) {
			t.Errorf("%v: the broken certificate is not logged", extra)
		}
		if extra == nil {
			// in-process, `wisp reload` reads the files again: refused
			// while broken, then the new certificate
			sock := controlSocketOf(t, w)
			if code, out, errOut := runWisp(t, 30*time.Second, "", "reload", "--socket", sock); code == 0 || !strings.Contains(out+errOut, "does not load") {
				t.Errorf("wisp reload with a broken certificate: exit %d %s %s", code, out, errOut)
			}
			roots3 := writeCert(t, certPath, keyPath, "third")
			if code, out, errOut := runWisp(t, 30*time.Second, "", "reload", "--socket", sock); code != 0 {
				t.Errorf("wisp reload: exit %d %s %s", code, out, errOut)
			}
			if c, err := tls.Dial("tcp", w.Addr, &tls.Config{RootCAs: roots3}); err != nil {
				t.Errorf("after wisp reload: %v", err)
			} else {
				c.Close()
			}
			os.WriteFile(certPath, []byte("not a certificate"), 0o644)
		}
		// a bad file at start is an error naming it
		code, _, stderr := runWisp(t, time.Minute, "", append([]string{"run", "--python", python, "--bind", "127.0.0.1:0",
			"--certfile", certPath, "--keyfile", keyPath, app("environ/app.py")}, extra...)...)
		if code == 0 || !strings.Contains(stderr, certPath) {
			t.Errorf("%v: a bad certificate at start: exit %d, %s", extra, code, stderr)
		}
	}
}
