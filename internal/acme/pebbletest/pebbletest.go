// Package pebbletest is test support, imported only by tests (those of
// internal/acme and the e2e ACME tests): it runs pebble, Let's Encrypt's
// test CA, and pebble-challtestsrv, its DNS server (every name is
// 127.0.0.1), as child processes on 127.0.0.1.
//
// The two commands are built at most once per test binary run from the
// tools module (tools/ of the wisp module): `go tool -n` builds them into
// Go's build cache and prints their paths, so a later run costs nothing. A
// test that cannot have them is skipped, saying why, and so is every test
// under -short.
//
// pebble's HTTPS certificate and key and the root that signed it (minica's)
// are embedded from testdata/ and written to each test's temporary folder.
package pebbletest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// WaitLimit bounds every wait of this package, and of the tests that use it.
const WaitLimit = 60 * time.Second

//go:embed testdata/*.pem testdata/*.key
var testdata embed.FS

// CA is a running pebble.
type CA struct {
	Dir    string         // the ACME directory URL
	CARoot string         // the PEM file of the root of pebble's own HTTPS (ca_root)
	Roots  *x509.CertPool // the root that issues the certificates (pebble's /roots/0)
	pebble *Process
}

// Log returns what pebble logged so far.
func (ca *CA) Log() string { return ca.pebble.Output() }

// Stop kills pebble now (it is killed at the end of the test anyway);
// pebble-challtestsrv runs on until the end of the test.
func (ca *CA) Stop() { ca.pebble.Stop() }

// Start starts pebble-challtestsrv and pebble, which validates HTTP-01 on
// 127.0.0.1:httpPort and TLS-ALPN-01 on 127.0.0.1:tlsPort (for real: no
// PEBBLE_VA_ALWAYS_VALID) and never reuses an authorization, so that every
// order is validated again. It returns once pebble serves its directory and
// its root. Both processes are killed at the end of t.
func Start(t testing.TB, httpPort, tlsPort int) *CA {
	t.Helper()
	pebble, challtestsrv := binaries(t)
	files := writeTestdata(t)
	caRoot := files["pebble.minica.pem"]
	minica := x509.NewCertPool()
	if b, err := os.ReadFile(caRoot); err != nil || !minica.AppendCertsFromPEM(b) {
		t.Fatalf("%s: %v", caRoot, err)
	}

	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPUDPPort(t))
	StartProcess(t, "pebble-challtestsrv", exec.Command(challtestsrv,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", dnsAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", FreePort(t))))
	WaitFor(t, "pebble-challtestsrv's DNS", func() error {
		c, err := net.DialTimeout("tcp", dnsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})

	apiPort, mgmtPort := FreePort(t), FreePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    files["pebble-localhost.pem"],
		"privateKey":                     files["pebble-localhost.key"],
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
	ca := &CA{Dir: fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort), CARoot: caRoot, pebble: StartProcess(t, "pebble", cmd)}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: minica},
	}}
	defer client.CloseIdleConnections()
	httpGet := func(url string) ([]byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = errors.New(resp.Status)
		}
		return body, err
	}
	WaitFor(t, "pebble's directory", func() error { _, err := httpGet(ca.Dir); return err })
	var rootPEM []byte
	WaitFor(t, "pebble's root", func() (err error) {
		rootPEM, err = httpGet(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		return err
	})
	ca.Roots = x509.NewCertPool()
	if !ca.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's /roots/0 is not PEM: %q", rootPEM)
	}
	return ca
}

// writeTestdata writes the embedded testdata files to a temporary folder of
// t and returns their paths by name.
func writeTestdata(t testing.TB) map[string]string {
	t.Helper()
	entries, err := testdata.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{}
	for _, e := range entries {
		b, err := testdata.ReadFile("testdata/" + e.Name())
		if err == nil {
			files[e.Name()] = filepath.Join(dir, e.Name())
			err = os.WriteFile(files[e.Name()], b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// tools holds pebble and pebble-challtestsrv, built at most once per run.
var tools struct {
	once                 sync.Once
	pebble, challtestsrv string
	err                  error
}

// binaries returns the paths of pebble and pebble-challtestsrv, or skips t
// saying why they cannot be built.
func binaries(t testing.TB) (pebble, challtestsrv string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the ACME tests run pebble")
	}
	tools.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			tools.err = fmt.Errorf("no go command on PATH to build pebble: %w", err)
			return
		}
		mod, err := toolsModule()
		if err != nil {
			tools.err = fmt.Errorf("no tools module to build pebble from: %w", err)
			return
		}
		for _, p := range []struct {
			dst  *string
			tool string
		}{{&tools.pebble, "pebble"}, {&tools.challtestsrv, "pebble-challtestsrv"}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			cmd := exec.CommandContext(ctx, goBin, "tool", "-n", p.tool)
			cmd.Dir = mod
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			cancel()
			path := strings.TrimSpace(string(out))
			if err == nil {
				_, err = os.Stat(path)
			}
			if err != nil {
				tools.err = fmt.Errorf("cd %s && go tool -n %s: %v\n%s", mod, p.tool, err, stderr.String())
				return
			}
			*p.dst = path
		}
	})
	if tools.err != nil {
		t.Skipf("skipping: the ACME tests need pebble, which does not build here: %v", tools.err)
	}
	return tools.pebble, tools.challtestsrv
}

// toolsModule returns the folder of the tools module, tools/ of the wisp
// module: of the first folder with a go.mod at or above the working
// directory (a test runs in the folder of its package).
func toolsModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			mod := filepath.Join(dir, "tools")
			_, err := os.Stat(filepath.Join(mod, "go.mod"))
			return mod, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Process is a child process started by StartProcess.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  string        // the file of its output
	done chan struct{} // closed once it has exited
}

// StartProcess starts cmd, which is killed (and reaped) at the end of t at
// the latest; its output (stderr, and stdout unless cmd.Stdout is set) goes
// to a file of t's temporary folder, whose last 16 KiB are logged if t
// failed. cmd.SysProcAttr, if set, is kept, with Pdeathsig SIGKILL added.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the process has its copy once started
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.Stderr = f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{t: t, name: name, cmd: cmd, out: f.Name(), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			out := p.Output()
			if len(out) > 16<<10 {
				out = "...\n" + out[len(out)-16<<10:]
			}
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Process) Output() string {
	b, _ := os.ReadFile(p.out)
	return string(b)
}

// Stop kills the process now and waits (10 s at most) until it has exited.
func (p *Process) Stop() {
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// WaitFor calls try until it returns nil, for at most WaitLimit.
func WaitFor(t testing.TB, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", WaitLimit, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeTCPUDPPort returns a port of 127.0.0.1 free for both TCP and UDP (DNS).
func freeTCPUDPPort(t testing.TB) int {
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
