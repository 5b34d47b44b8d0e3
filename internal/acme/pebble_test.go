package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run pebble, Let's Encrypt's test CA, and pebble-challtestsrv, its
// DNS server (every name is 127.0.0.1), as child processes: built once per
// test run from the tools module (../../tools) into a temporary folder.

// pebbleTools builds the binaries at most once per test binary run.
var pebbleTools struct {
	dir                  string // set by TestMain, removed after the run
	once                 sync.Once
	pebble, challtestsrv string
	err                  error
}

// waitLimit bounds every wait of these tests.
const waitLimit = 60 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(followerChildEnv) != "" {
		os.Exit(followerChild())
	}
	dir, err := os.MkdirTemp("", "wisp-acme-tools-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pebbleTools.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needPebble returns the paths of pebble and pebble-challtestsrv, or skips
// the test saying why they cannot be built.
func needPebble(t *testing.T) (pebble, challtestsrv string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the ACME tests run pebble")
	}
	pebbleTools.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			pebbleTools.err = fmt.Errorf("no go command on PATH to build pebble: %w", err)
			return
		}
		tools, err := filepath.Abs(filepath.Join("..", "..", "tools"))
		if err == nil {
			_, err = os.Stat(filepath.Join(tools, "go.mod"))
		}
		if err != nil {
			pebbleTools.err = fmt.Errorf("no tools module to build pebble from: %w", err)
			return
		}
		for _, p := range []struct {
			dst *string
			pkg string
		}{
			{&pebbleTools.pebble, "github.com/letsencrypt/pebble/v2/cmd/pebble"},
			{&pebbleTools.challtestsrv, "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"},
		} {
			out := filepath.Join(pebbleTools.dir, filepath.Base(p.pkg))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, p.pkg)
			cmd.Dir = tools
			b, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				pebbleTools.err = fmt.Errorf("cd %s && go build %s: %v\n%s", tools, p.pkg, err, b)
				return
			}
			*p.dst = out
		}
	})
	if pebbleTools.err != nil {
		t.Skipf("skipping: the ACME tests need pebble, which does not build here: %v", pebbleTools.err)
	}
	return pebbleTools.pebble, pebbleTools.challtestsrv
}

// testCA is a running pebble.
type testCA struct {
	dir    string         // the ACME directory URL
	caRoot string         // the PEM file of the root of pebble's own HTTPS
	roots  *x509.CertPool // the root that issues the certificates
}

// startCA starts pebble-challtestsrv and pebble, which validates HTTP-01 on
// 127.0.0.1:httpPort and TLS-ALPN-01 on 127.0.0.1:tlsPort (really: no
// PEBBLE_VA_ALWAYS_VALID) and never reuses an authorization, so that every
// order is validated again. Both processes are killed at the end of t.
func startCA(t *testing.T, httpPort, tlsPort int) *testCA {
	t.Helper()
	pebble, challtestsrv := needPebble(t)
	caRoot, err := filepath.Abs(filepath.Join("testdata", "pebble.minica.pem"))
	if err != nil {
		t.Fatal(err)
	}
	minica := x509.NewCertPool()
	if b, err := os.ReadFile(caRoot); err != nil || !minica.AppendCertsFromPEM(b) {
		t.Fatalf("testdata: pebble.minica.pem: %v", err)
	}

	dnsPort := freeTCPUDPPort(t)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	startProcess(t, "pebble-challtestsrv", exec.Command(challtestsrv,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", dnsAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", freePort(t))))
	waitFor(t, "pebble-challtestsrv's DNS", func() error {
		c, err := net.DialTimeout("tcp", dnsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})

	apiPort, mgmtPort := freePort(t), freePort(t)
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    abs("pebble-localhost.pem"),
		"privateKey":                     abs("pebble-localhost.key"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"keyAlgorithm":                   "ecdsa",
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "wisp tests", "validityPeriod": 7776000},
		},
	}}
	confFile := filepath.Join(t.TempDir(), "pebble-config.json")
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pebble, "-config", confFile, "-dnsserver", dnsAddr)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEBBLE_") { // PEBBLE_VA_ALWAYS_VALID above all
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	startProcess(t, "pebble", cmd)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: minica},
	}}
	defer client.CloseIdleConnections()
	ca := &testCA{dir: fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort), caRoot: caRoot}
	waitFor(t, "pebble's directory", func() error {
		resp, err := client.Get(ca.dir)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	var rootPEM []byte
	waitFor(t, "pebble's root", func() error {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rootPEM, err = io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = errors.New(resp.Status)
		}
		return err
	})
	ca.roots = x509.NewCertPool()
	if !ca.roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's /roots/0 is not PEM: %q", rootPEM)
	}
	return ca
}

// startProcess starts cmd, which is killed (and reaped) at the end of t; its
// output is shown if t failed. The returned buffer fills with its output.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	cmd.Stderr = out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return out
}

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

// waitFor calls try until it returns nil, for at most waitLimit.
func waitFor(t *testing.T, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", waitLimit, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, port := listen(t)
	ln.Close()
	return port
}

// freeTCPUDPPort returns a port of 127.0.0.1 free for both TCP and UDP (DNS).
func freeTCPUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
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
	waitFor(t, "a verified certificate for "+name, func() error {
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
