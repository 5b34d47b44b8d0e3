package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	wispBin  string // the binary under test
	repoRoot string // /work/main
	appsDir  string // repoRoot/testdata/apps
	python   = envOr("WISP_E2E_PYTHON", "/usr/bin/python3")
	python2  = envOr("WISP_E2E_PYTHON2", "/root/.pyenv/versions/3.11.7/bin/python3")
)

const (
	startTimeout = 60 * time.Second // import of Django/Flask on a busy 2-core box
	stopTimeout  = 20 * time.Second
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		return 1
	}
	repoRoot = root
	appsDir = filepath.Join(root, "testdata", "apps")
	if bin := os.Getenv("WISP_E2E_BIN"); bin != "" {
		wispBin = bin
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "wisp-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755) // workers started as another user (-u) exec it too
	wispBin = filepath.Join(tmp, "wisp")
	cmd := exec.Command("go", "build", "-o", wispBin, "./cmd/wisp") // as the Makefile builds it
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: cannot build the server: go build ./cmd/wisp in %s: %v\n%s\n", root, err, out)
		return 1
	}
	return m.Run()
}

// app returns the absolute path of testdata/apps/<rel>.
func app(rel string) string { return filepath.Join(appsDir, rel) }

// syncBuffer collects a child's output, line by line, safely.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wisp is one running server process.
type wisp struct {
	t      testing.TB
	cmd    *exec.Cmd
	Addr   string // 127.0.0.1:PORT
	URL    string // http://127.0.0.1:PORT
	Port   string
	stderr *syncBuffer
	stdout *syncBuffer
	exited chan struct{}
	state  *os.ProcessState
	Client *http.Client
}

// runOpts tunes how the process is started.
type runOpts struct {
	Dir string   // working directory of the process (default: the test's temp dir)
	Env []string // extra environment
}

var listeningRE = regexp.MustCompile(`addr="?(127\.0\.0\.1:\d+)"?`)

// start runs `wisp run --bind 127.0.0.1:0 [--python python] ARGS...` (the
// target last in ARGS), waits for the "msg=listening" line, and stops the
// process (SIGTERM, wait) when the test ends.
func start(t testing.TB, args ...string) *wisp {
	t.Helper()
	return startOpts(t, runOpts{}, args...)
}

func startOpts(t testing.TB, o runOpts, args ...string) *wisp {
	t.Helper()
	w := launch(t, o, args...)
	if err := w.waitListening(startTimeout); err != nil {
		w.kill()
		t.Fatalf("wisp %s: %v\nstderr:\n%s", strings.Join(args, " "), err, w.Stderr())
	}
	return w
}

// launch starts the process and registers its cleanup, without waiting for readiness.
func launch(t testing.TB, o runOpts, args ...string) *wisp {
	t.Helper()
	full := []string{"run", "--bind", "127.0.0.1:0"}
	if !hasFlag(args, "--python") {
		full = append(full, "--python", python)
	}
	full = append(full, args...)
	return launchRaw(t, o, append([]string{wispBin}, full...)...)
}

// launchRaw starts argv (wisp, or a program that runs it such as
// systemd-socket-activate) as launch does, without adding flags.
func launchRaw(t testing.TB, o runOpts, argv ...string) *wisp {
	t.Helper()
	full := argv[1:]
	cmd := exec.Command(argv[0], full...)
	cmd.Dir = o.Dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	cmd.Env = append(os.Environ(), o.Env...)
	w := &wisp{t: t, cmd: cmd, stderr: &syncBuffer{}, stdout: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = w.stderr
	cmd.Stdout = w.stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	go func() {
		_ = cmd.Wait()
		w.state = cmd.ProcessState
		close(w.exited)
	}()
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 200,
		// Proxies from the environment must not interfere.
		Proxy: nil,
	}
	w.Client = &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		w.stop()
		if t.Failed() {
			t.Logf("wisp %s\n--- stderr ---\n%s--- stdout ---\n%s", strings.Join(full, " "), tail(w.Stderr(), 16<<10), tail(w.Stdout(), 4<<10))
		}
	})
	return w
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

func (w *wisp) waitListening(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(w.Stderr(), "\n") {
			if !strings.Contains(line, "msg=listening") {
				continue
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				w.Addr = m[1]
				w.URL = "http://" + m[1]
				_, w.Port, _ = net.SplitHostPort(m[1])
				return nil
			}
		}
		select {
		case <-w.exited:
			return fmt.Errorf("exited (%v) before listening", w.state)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no msg=listening line with addr=127.0.0.1:PORT on stderr within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *wisp) Stderr() string { return w.stderr.String() }
func (w *wisp) Stdout() string { return w.stdout.String() }
func (w *wisp) Pid() int       { return w.cmd.Process.Pid }

// waitStderr waits until stderr contains s.
func (w *wisp) waitStderr(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(w.Stderr(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return strings.Contains(w.Stderr(), s)
}

func (w *wisp) signal(sig os.Signal) {
	w.t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Errorf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit; ok is false on timeout.
func (w *wisp) wait(timeout time.Duration) (code int, ok bool) {
	select {
	case <-w.exited:
		return w.state.ExitCode(), true
	case <-time.After(timeout):
		return -1, false
	}
}

func (w *wisp) stop() {
	select {
	case <-w.exited:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if _, ok := w.wait(stopTimeout); !ok {
		w.t.Errorf("wisp did not exit within %v of SIGTERM; killing it", stopTimeout)
		w.kill()
	}
}

func (w *wisp) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// get performs a GET and returns the response with its body read.
func (w *wisp) get(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	return w.do(t, mustRequest(t, "GET", w.URL+path, nil))
}

func (w *wisp) do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := w.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// getJSON GETs path, requires a 200 and decodes the JSON body into v.
func (w *wisp) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, body := w.get(t, path)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, want 200; body %q", path, resp.StatusCode, trunc(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: bad JSON %q: %v", path, trunc(body), err)
	}
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// envReply is what testdata/apps/environ answers.
type envReply struct {
	Environ    map[string]string `json:"environ"`
	Types      map[string]string `json:"types"`
	BodyLen    int               `json:"body_len"`
	BodySHA256 string            `json:"body_sha256"`
}

// rawConn is a client connection for wire-level checks.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response; method tells whether a body is expected (HEAD).
// The body is read fully; bodyErr is what reading it returned.
func (c *rawConn) response(method string) (resp *http.Response, body []byte, bodyErr error) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response to %s: %v", method, err)
	}
	body, bodyErr = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, bodyErr
}

// readUntilClosed reads everything until EOF or error and reports how it ended.
func (c *rawConn) readUntilClosed(timeout time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c.br)
	return b, err
}

// closedWithin reports whether the server closed the connection within d
// (a read returns EOF or reset), with whatever bytes came before.
func (c *rawConn) closedWithin(d time.Duration) (bool, []byte) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.br.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if asNetErr(err, &ne) && ne.Timeout() {
				return false, got
			}
			return true, got
		}
	}
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// vmKB reads a field (VmRSS, VmHWM) of /proc/PID/status in kB.
func vmKB(t testing.TB, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, err := strconv.Atoi(f[1])
				if err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// runWisp runs wisp to completion (for commands expected to fail) and
// returns its exit code and output; it fails the test if it runs past timeout.
func runWisp(t testing.TB, timeout time.Duration, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, wispBin, args...)
	if dir == "" {
		dir = t.TempDir()
	}
	cmd.Dir = dir
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("wisp %s: still running after %v (killed)\nstderr:\n%s", strings.Join(args, " "), timeout, se.String())
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), so.String(), se.String()
		}
		t.Fatalf("wisp %s: %v", strings.Join(args, " "), err)
	}
	return 0, so.String(), se.String()
}

// readResponseHead reads a response's status line and headers; the body is
// left to stream from resp.Body.
func readResponseHead(c *rawConn) (*http.Response, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		return nil, fmt.Errorf("reading response head: %w", err)
	}
	return resp, nil
}
