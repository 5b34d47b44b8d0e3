package e2e

// Faults a user can cause must not take a pool down (issue 8): SIGTERM under
// load, crashing requests, segfaults, failed reloads.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawOutcome is what one connection of rawLoad saw.
type rawOutcome int

const (
	rawOK       rawOutcome = iota // a whole 200 response
	rawRefused                    // the connect was refused: fine once the server stops
	rawReset                      // accepted, then reset or closed without a reply
	rawBadReply                   // a reply that is not a whole 200
)

// rawLoad makes one request per new TCP connection from n goroutines until
// stop is closed, and tallies the outcomes; resets and bad replies are kept
// with their error.
type rawLoad struct {
	mu     sync.Mutex
	counts [4]int
	errs   []string
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startRawLoad(addr, path string, n int) *rawLoad {
	l := &rawLoad{stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				o, err := rawGet(addr, path)
				l.mu.Lock()
				l.counts[o]++
				if o == rawReset || o == rawBadReply {
					l.errs = append(l.errs, fmt.Sprint(err))
				}
				l.mu.Unlock()
				if o == rawRefused {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *rawLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func rawGet(addr, path string) (rawOutcome, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return rawRefused, err
		}
		return rawBadReply, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); err != nil {
		return rawReset, fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return rawReset, fmt.Errorf("read the response: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return rawReset, fmt.Errorf("read the body: %w", err)
	}
	if resp.StatusCode != 200 {
		return rawBadReply, fmt.Errorf("status %d: %s", resp.StatusCode, trunc(body))
	}
	return rawOK, nil
}

// Point 2: after SIGTERM the pool's listening sockets close at once, so that
// a connection arriving while the workers drain is refused by the kernel, not
// accepted and then reset when the process exits. In-flight requests finish.
func TestPoolSIGTERMNoResets(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 2\nthreads = 4\ngraceful_timeout = \"20s\""))
	s.readyWorkers(t, "default", 2)
	// slow requests in flight keep the workers draining for ~2s
	type result struct {
		o   rawOutcome
		err error
	}
	slow := make(chan result, 2)
	for range 2 {
		go func() {
			o, err := rawGet(s.Addr, "/sleep?s=2.5")
			slow <- result{o, err}
		}()
	}
	load := startRawLoad(s.Addr, "/work?ms=5", 6)
	time.Sleep(700 * time.Millisecond)
	s.signal(syscall.SIGTERM)
	code, ok := s.wait(30 * time.Second)
	load.finish()
	if !ok {
		t.Fatalf("wisp serve did not exit within 30s of SIGTERM")
	}
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	for range 2 {
		r := <-slow
		if r.o != rawOK {
			t.Errorf("a /sleep request in flight at SIGTERM did not complete: %v", r.err)
		}
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("fresh-connection load across SIGTERM: %d ok, %d refused, %d reset, %d bad replies",
		load.counts[rawOK], load.counts[rawRefused], load.counts[rawReset], load.counts[rawBadReply])
	if load.counts[rawOK] == 0 {
		t.Errorf("no request succeeded before the SIGTERM: the load did not run")
	}
	// A connection the kernel completes in the microseconds between the last
	// accept and the last close of the listening socket is reset by TCP
	// itself (nginx has the same window): under this load that happened about
	// once or twice in 1000 connections, on a machine busy with other tests.
	// Keeping the sockets open through the drain (the bug) reset 6 of 565
	// here, and 12 of 328 when the issue was filed: 1 + 1 in 300 is allowed.
	total := load.counts[rawOK] + load.counts[rawRefused] + load.counts[rawReset] + load.counts[rawBadReply]
	if n := load.counts[rawReset] + load.counts[rawBadReply]; n > 1+total/300 {
		t.Errorf("%d of %d connections were accepted and then reset or badly answered (want at most %d, the close race; refused is fine): %s",
			n, total, 1+total/300, strings.Join(load.errs[:min(len(load.errs), 5)], "; "))
	}
}

// crashPoolConfig is onePoolConfig with testdata/apps/pool_crash.
func crashPoolConfig(poolLines string) string {
	return strings.Replace(onePoolConfig(poolLines), "/pool_app/app.py", "/pool_crash/app.py", 1)
}

// Point 3: requests that kill their worker (os._exit) do not stop the pool,
// however many: each worker is replaced, the other paths keep answering, and
// the log names the request that was in flight.
func TestPoolCrashingRequestsDoNotStopThePool(t *testing.T) {
	t.Parallel()
	s := serve(t, crashPoolConfig("processes = 2\nthreads = 4\nrapid_fail_max = 3\nrapid_fail_window = \"1m\""))
	s.readyWorkers(t, "default", 2)
	const exits = 6 // > rapid_fail_max
	for i := range exits {
		id := fmt.Sprintf("e2e-exit-%d", i)
		req, _ := http.NewRequest("GET", s.URL+"/exit?n="+fmt.Sprint(i), nil)
		req.Header.Set("X-Request-Id", id)
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
		if resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("GET /exit answered %d: the app did not exit", resp.StatusCode)
		}
		if len(s.waitLog("worker crashed", i+1, 20*time.Second)) < i+1 {
			t.Fatalf("no \"worker crashed\" line for /exit number %d", i+1)
		}
		for range 5 {
			resp, body, err := getOnce(t, s.URL+"/ok", 30*time.Second)
			if err != nil || resp.StatusCode != 200 || string(body) != "ok\n" {
				st := 0
				if resp != nil {
					st = resp.StatusCode
				}
				t.Fatalf("GET /ok after %d crashing requests: %v status %d %q; want 200 ok", i+1, err, st, body)
			}
		}
	}
	crashes := s.waitLog("worker crashed", exits, 5*time.Second)
	for i, c := range crashes {
		if how := logAttr(c, "how"); !strings.Contains(how, "exited with status 7") {
			t.Errorf("worker crashed how=%q, want exited with status 7: %s", how, c)
		}
		if r := logAttr(c, "requests"); !strings.Contains(r, "GET /exit?n=") || !strings.Contains(r, "request_id=e2e-exit-") {
			t.Errorf("crash %d: requests=%q, want the /exit request with its request id: %s", i, r, c)
		}
	}
	if stopped := logLines(s.Stderr(), "pool stopped"); len(stopped) > 0 {
		t.Errorf("the pool was stopped by requests that crash their worker: %s", stopped[0])
	}
	st := s.readyWorkers(t, "default", 2)
	p := s.status(t).pool(t, "default")
	if p.State != "running" || p.Failures != 0 {
		t.Errorf("pool status %+v after crashing requests: want running with 0 rapid-fail failures (ready %v)", p, st)
	}
}

// Point 3: a pool whose workers die soon after they start, with no request in
// flight, still gets stopped by rapid-fail protection and answers 503 with
// Retry-After.
func TestPoolCrashSoonAfterStartStopsThePool(t *testing.T) {
	t.Parallel()
	s := serve(t, crashPoolConfig("processes = 1\nthreads = 2\nrapid_fail_max = 3\nrapid_fail_window = \"1m\"\nenv = { CRASH_AFTER = \"0.3\" }"))
	if len(s.waitLog("pool stopped", 1, 30*time.Second)) == 0 {
		t.Fatalf("no \"pool stopped\" line within 30s: workers that die 0.3s after the import must trip rapid-fail protection")
	}
	resp, body, err := getOnce(t, s.URL+"/ok", 10*time.Second)
	if err != nil {
		t.Fatalf("GET /ok on a stopped pool: %v", err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /ok on a stopped pool: %d %q (Retry-After %q); want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// Point 8: `wisp reload` to a vdir app that does not exist waits for the new
// workers, fails with the reason, and the old worker keeps serving; `wisp
// status` says that the running pool differs from the file.
func TestPoolReloadToMissingModuleFails(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 1\nthreads = 2"))
	old := s.readyWorkers(t, "default", 1)
	s.writeConfig(t, strings.Replace(onePoolConfig("processes = 1\nthreads = 2"), "@APPS@/pool_app/app.py", "nope_e2e_missing:app", 1))
	code, out, errOut := s.ctl(t, "reload")
	if code == 0 || strings.Contains(out, "reload: ok") {
		t.Errorf("wisp reload to a missing module: exit %d, stdout %q; want a non-zero exit and no ok", code, out)
	}
	if !strings.Contains(errOut, "nope_e2e_missing") || !strings.Contains(errOut, "previous configuration") {
		t.Errorf("wisp reload stderr %q: want the reason (module nope_e2e_missing) and that the previous configuration runs", errOut)
	}
	if info := getInfo(t, s.Client, s.URL+"/info"); info.PID != old[0] {
		t.Errorf("after the failed reload /info came from pid %d, want the old worker %d", info.PID, old[0])
	}
	p := s.status(t).pool(t, "default")
	raw := statusField(t, s, "default", "config_note")
	if p.State != "running" || !strings.Contains(raw, "reload failed") || !strings.Contains(raw, "nope_e2e_missing") {
		t.Errorf("status after a failed reload: state %q, config_note %q; want running and a note naming the failure", p.State, raw)
	}
	if code, text, _ := s.ctl(t, "status"); code != 0 || !strings.Contains(text, "reload failed") {
		t.Errorf("wisp status (text): exit %d, no \"reload failed\" in:\n%s", code, text)
	}
	// The pool's restarts run the previous configuration: kill the old worker.
	syscall.Kill(old[0], syscall.SIGKILL)
	s.waitPool(t, "default", 30*time.Second, "a ready replacement of the killed worker", func(p wispPoolStatus) bool {
		pids := p.readyPIDs()
		return len(pids) == 1 && pids[0] != old[0]
	})
	getInfo(t, s.Client, s.URL+"/info")
	// Fixing the file and reloading clears the note.
	s.writeConfig(t, onePoolConfig("processes = 1\nthreads = 2"))
	if code, out, errOut := s.ctl(t, "reload"); code != 0 || !strings.Contains(out, "reload: ok") {
		t.Errorf("wisp reload of the fixed file: exit %d %q %q; want 0 and ok", code, out, errOut)
	}
	if raw := statusField(t, s, "default", "config_note"); raw != "" {
		t.Errorf("config_note %q after a successful reload; want none", raw)
	}
}

// statusField returns one string field of a pool in `wisp status --json`.
func statusField(t *testing.T, s *poolServer, pool, key string) string {
	t.Helper()
	_, out, _ := s.ctl(t, "status", "--json")
	var st struct {
		Pools []map[string]any `json:"pools"`
	}
	if !jsonOK([]byte(out), &st) {
		t.Fatalf("wisp status --json: %s", out)
	}
	for _, p := range st.Pools {
		if p["name"] == pool {
			v, _ := p[key].(string)
			return v
		}
	}
	t.Fatalf("no pool %s in %s", pool, out)
	return ""
}

// Point 8: `wisp recycle` when the app on disk no longer imports fails with
// the exception's line; the old worker keeps serving.
func TestPoolRecycleBrokenAppFails(t *testing.T) {
	t.Parallel()
	s := newPoolServer(t)
	appFile := filepath.Join(s.Dir, "app.py")
	src, err := os.ReadFile(app("pool_app/app.py"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(appFile, src, 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, strings.Replace(onePoolConfig("processes = 1\nthreads = 2"), "@APPS@/pool_app/app.py", "@DIR@/app.py", 1))
	s.start(t)
	old := s.readyWorkers(t, "default", 1)
	if err := os.WriteFile(appFile, []byte("raise RuntimeError('e2e-broken-on-disk')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := s.ctl(t, "recycle", "default")
	if code == 0 || strings.Contains(out, ": ok") {
		t.Errorf("wisp recycle of a broken app: exit %d, stdout %q; want a non-zero exit and no ok", code, out)
	}
	if !strings.Contains(errOut, "RuntimeError: e2e-broken-on-disk") {
		t.Errorf("wisp recycle stderr %q: want the exception line RuntimeError: e2e-broken-on-disk", errOut)
	}
	if info := getInfo(t, s.Client, s.URL+"/info"); info.PID != old[0] {
		t.Errorf("after the failed recycle /info came from pid %d, want the old worker %d", info.PID, old[0])
	}
	if raw := statusField(t, s, "default", "config_note"); !strings.Contains(raw, "recycle failed") {
		t.Errorf("config_note %q after a failed recycle; want \"recycle failed ...\"", raw)
	}
	if p := s.status(t).pool(t, "default"); p.State != "running" {
		t.Errorf("pool state %q after a failed recycle, want running", p.State)
	}
}

// Point 8: `wisp reload -c FILE` with a file that does not parse still
// reaches the server (found by a lenient read of control_socket) and prints
// the server's verdict, with exit 1.
func TestPoolReloadBrokenTOML(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 1\nthreads = 2"))
	s.readyWorkers(t, "default", 1)
	s.writeConfig(t, onePoolConfig("processes = 1\nthreads = 2")+"\n[pools.default\nthreads = \n")
	code, out, errOut := runWisp(t, 30*time.Second, s.Dir, "reload", "-c", s.Config)
	if code != 1 {
		t.Errorf("wisp reload -c broken.toml: exit %d, want 1; stdout %q stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "find the control socket") || strings.Contains(errOut, "cannot reach") {
		t.Errorf("wisp reload -c broken.toml did not reach the server: %s", errOut)
	}
	if !strings.Contains(errOut, "wisp.toml:") {
		t.Errorf("wisp reload -c broken.toml: stderr %q, want the server's verdict naming the file and line", errOut)
	}
	if !strings.Contains(s.Stderr(), "reload refused") {
		t.Errorf("the server did not log a refused reload")
	}
	getInfo(t, s.Client, s.URL+"/info")
}

// Point 4: a segfault in app code (ctypes.string_at(0)) in a pool worker is
// logged as the signal's name, the request being served and the Python stack
// of the crashing thread, as log lines, without Go's runtime dump; the pool
// keeps serving.
func TestPoolSegfaultLogged(t *testing.T) {
	t.Parallel()
	s := serve(t, crashPoolConfig("processes = 2\nthreads = 2"))
	s.readyWorkers(t, "default", 2)
	if resp, _, err := getOnce(t, s.URL+"/segv?e2e=1", 30*time.Second); err == nil {
		t.Fatalf("GET /segv answered %d: the app did not crash", resp.StatusCode)
	}
	crashed := s.waitLog("worker crashed", 1, 20*time.Second)
	if len(crashed) == 0 {
		t.Fatalf("no \"worker crashed\" line after a segfault")
	}
	c := crashed[0]
	if how := logAttr(c, "how"); how != "killed by signal SIGSEGV" {
		t.Errorf("how=%q, want \"killed by signal SIGSEGV\": %s", how, c)
	}
	if r := logAttr(c, "requests"); r != "GET /segv?e2e=1" {
		t.Errorf("requests=%q, want the request in flight GET /segv?e2e=1: %s", r, c)
	}
	if f := logAttr(c, "fatal"); !strings.Contains(f, "SIGSEGV") || !strings.Contains(f, "GET /segv?e2e=1") {
		t.Errorf("fatal=%q, want the signal and the request: %s", f, c)
	}
	stack := strings.Join(s.waitLog("crash stack", 4, 5*time.Second), "\n")
	for _, fn := range []string{"string_at", "segv_in_app_e2e", "handler_frame_e2e", "application"} {
		if !strings.Contains(stack, "in "+fn) {
			t.Errorf("the logged Python stack does not name %s:\n%s", fn, stack)
		}
	}
	if strings.Contains(s.Stderr(), "goroutine ") || strings.Contains(s.Stderr(), "SIGSEGV: segmentation violation") {
		t.Errorf("Go's runtime dump is in the log")
	}
	for range 5 {
		resp, body, err := getOnce(t, s.URL+"/ok", 30*time.Second)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /ok after the segfault: %v %v %q", err, resp, body)
		}
	}
	s.readyWorkers(t, "default", 2)
}

// Point 4: the same segfault under in-process `wisp run`: the process dies by
// SIGSEGV after one line naming the signal and the request, and the Python
// stack; no Go dump.
func TestRunSegfaultLogged(t *testing.T) {
	t.Parallel()
	w := start(t, app("pool_crash/app.py"))
	if resp, _, err := getOnce(t, w.URL+"/segv?e2e=2", 30*time.Second); err == nil {
		t.Fatalf("GET /segv answered %d: the app did not crash", resp.StatusCode)
	}
	if _, ok := w.wait(20 * time.Second); !ok {
		t.Fatalf("wisp run did not die after a segfault in the app")
	}
	if ws, ok := w.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		t.Errorf("wisp run ended with %v, want killed by SIGSEGV", w.state)
	}
	errOut := w.Stderr()
	if !strings.Contains(errOut, "fatal signal SIGSEGV") || !strings.Contains(errOut, "GET /segv?e2e=2") {
		t.Errorf("stderr does not name the signal and the request:\n%s", errOut)
	}
	for _, fn := range []string{"segv_in_app_e2e", "handler_frame_e2e", "application"} {
		if !strings.Contains(errOut, "in "+fn) {
			t.Errorf("stderr does not show the Python frame %s:\n%s", fn, errOut)
		}
	}
	if strings.Contains(errOut, "goroutine ") {
		t.Errorf("Go's runtime dump is in stderr:\n%s", tail(errOut, 2000))
	}
}

// ctlResult is what a `wisp VERB` run by ctlAsync did.
type ctlResult struct {
	code int
	out  string // stdout and stderr
	err  error  // it could not run, or ran past a minute
}

// ctlAsync runs `wisp VERB --socket SOCKET ARGS...` in the background (a
// reload or recycle answers only once its workers are ready); the channel
// gets its result.
func (s *poolServer) ctlAsync(verb string, args ...string) <-chan ctlResult {
	res := make(chan ctlResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, wispBin, append([]string{verb, "--socket", s.Socket}, args...)...)
		cmd.Dir = s.Dir
		out, err := cmd.CombinedOutput()
		r := ctlResult{out: string(out)}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.err = err
		}
		res <- r
	}()
	return res
}

// Workers start with Go's sysmon kept out of deep sleep (GODEBUG schedtrace,
// see internal/supervisor/godebug.go), and the app does not inherit it: a Go
// program it runs must see the user's GODEBUG.
func TestPoolWorkerGODEBUG(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 1\nthreads = 2"))
	s.readyWorkers(t, "default", 1)
	info := getInfo(t, s.Client, s.URL+"/info")
	initial, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", info.PID)) // the environment the worker was started with
	if err != nil {
		t.Fatal(err)
	}
	started := ""
	for _, kv := range strings.Split(string(initial), "\x00") {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			started = v // the first one: the one the runtime reads
			break
		}
	}
	if !slices.Contains(strings.Split(started, ","), "schedtrace=2147483647") {
		t.Errorf("the worker was started with GODEBUG=%q, without the sysmon setting", started)
	}
	own, set := os.LookupEnv("GODEBUG")
	switch {
	case !set && info.GODEBUG != nil:
		t.Errorf("the app sees GODEBUG=%q, want it unset as in the test's environment", *info.GODEBUG)
	case set && (info.GODEBUG == nil || *info.GODEBUG != own):
		t.Errorf("the app sees GODEBUG %v, want the test's %q", info.GODEBUG, own)
	}
}
