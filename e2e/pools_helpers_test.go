package e2e

// Helpers of the `wisp serve` (worker pools) tests in pools_test.go.

import (
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
	"testing"
	"time"
)

// poolServer is one `wisp serve -c FILE` process.
type poolServer struct {
	*wisp
	Dir    string   // the config file's folder (a temp dir)
	Config string   // the config file
	Socket string   // its control socket
	Ports  []string // the ports @PORT0@, @PORT1@ of the config
	Bin    string   // the wisp binary to run ("": the one built for the tests)
}

// pickPort returns a port that was free a moment ago on 127.0.0.1.
func pickPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// expandConfig replaces @PORT0@, @PORT1@, @APPS@ (testdata/apps), @DIR@ (the
// config folder) and @PY@ (the Python) in text.
func (s *poolServer) expandConfig(text string) string {
	return strings.NewReplacer("@PORT0@", s.Ports[0], "@PORT1@", s.Ports[1], "@APPS@", appsDir,
		"@DIR@", s.Dir, "@PY@", python).Replace(text)
}

// writeConfig (re)writes the config file from text (see expandConfig).
func (s *poolServer) writeConfig(t testing.TB, text string) {
	t.Helper()
	tmp := s.Config + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.expandConfig(text)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.Config); err != nil {
		t.Fatal(err)
	}
}

// newPoolServer prepares a config folder with two free ports; startServe
// runs it.
func newPoolServer(t testing.TB) *poolServer {
	t.Helper()
	dir := t.TempDir()
	s := &poolServer{Dir: dir, Config: filepath.Join(dir, "wisp.toml"), Socket: filepath.Join(dir, "wisp.sock")}
	p0 := pickPort(t)
	p1 := pickPort(t)
	for p1 == p0 {
		p1 = pickPort(t)
	}
	s.Ports = []string{p0, p1}
	if len(s.Socket) > 100 {
		t.Fatalf("control socket path too long for a unix socket: %s", s.Socket)
	}
	return s
}

// serve writes the config text and starts `wisp serve` on it, waiting for its
// msg=listening line.
func serve(t testing.TB, text string) *poolServer {
	t.Helper()
	s := newPoolServer(t)
	s.writeConfig(t, text)
	s.start(t)
	return s
}

// start runs `wisp serve -c CONFIG` and waits for its msg=listening line (all
// pools have a ready worker, or are stopped).
func (s *poolServer) start(t testing.TB) {
	t.Helper()
	s.launch(t)
	if err := s.waitListening(startTimeout); err != nil {
		s.kill()
		t.Fatalf("wisp serve -c %s: %v\nconfig:\n%s\nstderr:\n%s", s.Config, err, s.configText(), tail(s.Stderr(), 16<<10))
	}
	// Every binding has its own line; the URL is the first port's.
	s.URL = "http://127.0.0.1:" + s.Ports[0]
	s.Addr = "127.0.0.1:" + s.Ports[0]
	s.Port = s.Ports[0]
}

func (s *poolServer) configText() string {
	b, _ := os.ReadFile(s.Config)
	return string(b)
}

// launch starts the process and registers its cleanup (SIGTERM, bounded
// wait, then SIGKILL: wisp.stop).
func (s *poolServer) launch(t testing.TB) {
	t.Helper()
	args := []string{"serve", "-c", s.Config}
	bin := s.Bin
	if bin == "" {
		bin = wispBin
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = os.Environ()
	w := &wisp{t: t, cmd: cmd, stderr: &syncBuffer{}, stdout: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = w.stderr
	cmd.Stdout = w.stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", wispBin, err)
	}
	go func() {
		_ = cmd.Wait()
		w.state = cmd.ProcessState
		close(w.exited)
	}()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64, Proxy: nil}
	w.Client = &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	s.wisp = w
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		w.stop()
		if t.Failed() {
			t.Logf("wisp %s\n--- config ---\n%s\n--- stderr ---\n%s--- stdout ---\n%s", strings.Join(args, " "),
				s.configText(), tail(w.Stderr(), 24<<10), tail(w.Stdout(), 4<<10))
		}
	})
}

// url returns the URL of path on port index i of the config.
func (s *poolServer) url(i int, path string) string {
	return "http://127.0.0.1:" + s.Ports[i] + path
}

// ctl runs `wisp VERB --socket SOCKET ARGS...` and returns its exit code and output.
func (s *poolServer) ctl(t testing.TB, verb string, args ...string) (int, string, string) {
	t.Helper()
	full := append([]string{verb, "--socket", s.Socket}, args...)
	return runWisp(t, 30*time.Second, s.Dir, full...)
}

// wispStatus is `wisp status --json`.
type wispStatus struct {
	PID    int              `json:"pid"`
	Config string           `json:"config"`
	Pools  []wispPoolStatus `json:"pools"`
}

type wispPoolStatus struct {
	Name     string             `json:"name"`
	State    string             `json:"state"`
	Reason   string             `json:"reason"`
	Failures int                `json:"recent_failures"`
	Workers  []wispWorkerStatus `json:"workers"`
}

type wispWorkerStatus struct {
	ID       int     `json:"id"`
	PID      int     `json:"pid"`
	State    string  `json:"state"`
	RSSMB    float64 `json:"rss_mb"`
	Requests uint64  `json:"requests"`
	Conns    int64   `json:"connections"`
	Uptime   string  `json:"uptime"`
}

// status runs `wisp status --socket S --json`.
func (s *poolServer) status(t testing.TB) wispStatus {
	t.Helper()
	code, out, errOut := s.ctl(t, "status", "--json")
	if code != 0 {
		t.Fatalf("wisp status: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var st wispStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("wisp status --json: %v\n%s", err, out)
	}
	return st
}

// pool returns the named pool of a status (fails the test if missing).
func (st wispStatus) pool(t testing.TB, name string) wispPoolStatus {
	t.Helper()
	for _, p := range st.Pools {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("wisp status has no pool %q: %+v", name, st)
	return wispPoolStatus{}
}

// readyPIDs returns the pids of the pool's ready workers.
func (p wispPoolStatus) readyPIDs() []int {
	var out []int
	for _, w := range p.Workers {
		if w.State == "ready" {
			out = append(out, w.PID)
		}
	}
	return out
}

// waitPool polls `wisp status` until cond holds for the named pool.
func (s *poolServer) waitPool(t testing.TB, name string, d time.Duration, what string, cond func(p wispPoolStatus) bool) wispPoolStatus {
	t.Helper()
	var last wispPoolStatus
	deadline := time.Now().Add(d)
	for {
		last = s.status(t).pool(t, name)
		if cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool %s: not %s within %v; last status: %+v", name, what, d, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- the error log ---

// logLines returns the lines of log whose msg starts with prefix (slog's text
// handler quotes a msg with spaces: msg="worker ready").
func logLines(log, prefix string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="`+prefix) || strings.Contains(line, "msg="+prefix) {
			out = append(out, line)
		}
	}
	return out
}

// pidAttr is " pid=N ", to match with linesWith (which sees a space at the
// end of each line) without matching pid=N0.
func pidAttr(pid int) string { return " pid=" + strconv.Itoa(pid) + " " }

// linesWith keeps the lines containing every one of subs.
func linesWith(lines []string, subs ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, s := range subs {
			if !strings.Contains(l+" ", s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

var attrRE = regexp.MustCompile(`(?:^| )([A-Za-z_.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logAttr returns the value of attribute key in one slog text line.
func logAttr(line, key string) string {
	for _, m := range attrRE.FindAllStringSubmatch(line, -1) {
		if m[1] != key {
			continue
		}
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

// waitLog waits until at least n lines have a msg starting with prefix and
// containing every one of subs; it returns them (fewer on timeout).
func (s *poolServer) waitLog(prefix string, n int, d time.Duration, subs ...string) []string {
	deadline := time.Now().Add(d)
	for {
		got := linesWith(logLines(s.Stderr(), prefix), subs...)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- load ---

// loader runs a bounded load: N goroutines, each with its own http.Client
// (keep-alive), GETting a URL in a loop until stopped. Go's Transport retries
// an idempotent request on a reused connection the server closed before
// answering (as browsers and most clients do); such retries are invisible
// here and count once.
type loader struct {
	url      string
	classify func(resp *http.Response, body []byte) (ok bool, key string)
	stopc    chan struct{}
	wg       sync.WaitGroup
	fresh    bool // a new connection per request

	mu        sync.Mutex
	total     int
	ok        int
	byStatus  map[int]int
	transport int
	fails     []loadFailure
	keys      map[string]int
	lastKey   map[string]time.Time // when a response with that key last completed
	firstKey  map[string]time.Time
}

type loadFailure struct {
	at  time.Time
	why string
}

// startLoad starts n goroutines GETting url. classify decides whether a
// response is a success and gives it a key (counted; "" for none); nil
// classify: 200 is success.
func startLoad(t testing.TB, url string, n int, classify func(*http.Response, []byte) (bool, string)) *loader {
	t.Helper()
	return startLoadOpts(t, url, n, false, classify)
}

// startFreshLoad is startLoad with a new connection for every request (no
// keep-alive), so that no failure can be hidden by the Transport's retry of
// a request on a reused connection.
func startFreshLoad(t testing.TB, url string, n int, classify func(*http.Response, []byte) (bool, string)) *loader {
	t.Helper()
	return startLoadOpts(t, url, n, true, classify)
}

func startLoadOpts(t testing.TB, url string, n int, fresh bool, classify func(*http.Response, []byte) (bool, string)) *loader {
	t.Helper()
	l := &loader{url: url, classify: classify, stopc: make(chan struct{}), byStatus: map[int]int{}, fresh: fresh,
		keys: map[string]int{}, lastKey: map[string]time.Time{}, firstKey: map[string]time.Time{}}
	for range n {
		l.wg.Add(1)
		go l.run()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *loader) run() {
	defer l.wg.Done()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1, Proxy: nil, DisableKeepAlives: l.fresh}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for {
		select {
		case <-l.stopc:
			return
		default:
		}
		resp, err := c.Get(l.url)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		now := time.Now()
		l.mu.Lock()
		l.total++
		switch {
		case err != nil:
			l.transport++
			l.fails = append(l.fails, loadFailure{now, "transport: " + err.Error()})
		default:
			l.byStatus[resp.StatusCode]++
			ok, key := resp.StatusCode == 200, ""
			if l.classify != nil {
				ok, key = l.classify(resp, body)
			}
			if ok {
				l.ok++
			} else {
				l.fails = append(l.fails, loadFailure{now, fmt.Sprintf("status %d: %s", resp.StatusCode, trunc(body))})
			}
			if key != "" {
				l.keys[key]++
				l.lastKey[key] = now
				if _, seen := l.firstKey[key]; !seen {
					l.firstKey[key] = now
				}
			}
		}
		l.mu.Unlock()
		if err != nil {
			time.Sleep(10 * time.Millisecond) // no hot loop against a closed port
		}
	}
}

// stop stops the load and waits for the goroutines.
func (l *loader) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// failuresSince counts the failures that happened at or after t0.
func (l *loader) failuresSince(t0 time.Time) []loadFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loadFailure
	for _, f := range l.fails {
		if !f.at.Before(t0) {
			out = append(out, f)
		}
	}
	return out
}

// counts returns the number of requests and successes so far.
func (l *loader) counts() (total, ok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.ok
}

// summary describes the load for the test log.
func (l *loader) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	kind := "keep-alive"
	if l.fresh {
		kind = "a new connection each"
	}
	fmt.Fprintf(&b, "(%s) %d requests: %d ok, %d failed (%d transport errors); by status %v", kind, l.total, l.ok,
		len(l.fails), l.transport, l.byStatus)
	if len(l.keys) > 0 {
		fmt.Fprintf(&b, "; by key %v", l.keys)
	}
	for i, f := range l.fails {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... %d more", len(l.fails)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s %s", f.at.Format("15:04:05.000"), f.why)
	}
	return b.String()
}

// poolInfo is what testdata/apps/pool_app answers on /info and /work.
type poolInfo struct {
	PID          int     `json:"pid"`
	Value        string  `json:"value"`
	GODEBUG      *string `json:"godebug"`
	ScriptName   string  `json:"script_name"`
	PathInfo     string  `json:"path_info"`
	RemoteAddr   string  `json:"remote_addr"`
	ServerPort   string  `json:"server_port"`
	Multiprocess bool    `json:"multiprocess"`
	Multithread  bool    `json:"multithread"`
}

// getInfo GETs url (a pool_app /info or /work), requires 200 and decodes it.
func getInfo(t testing.TB, c *http.Client, url string) poolInfo {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, want 200; body %q", url, resp.StatusCode, trunc(body))
	}
	var info poolInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("GET %s: bad JSON %q: %v", url, trunc(body), err)
	}
	return info
}

// infoKey classifies pool_app JSON answers by their POOL_VALUE.
func infoKey(resp *http.Response, body []byte) (bool, string) {
	if resp.StatusCode != 200 {
		return false, ""
	}
	var info poolInfo
	if json.Unmarshal(body, &info) != nil {
		return false, ""
	}
	return true, info.Value
}

// envDuration reads a duration from the environment (tuning knobs of long tests).
func envDuration(t testing.TB, key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return d
}

// getStatus GETs url with a fresh connection and returns the status, headers and body.
func getOnce(t testing.TB, url string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// pidAlive reports whether a process exists (and is not a zombie).
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// jsonOK decodes b into v and reports success.
func jsonOK(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }

// readyWorkers waits until the pool has n ready workers (msg=listening needs
// only one per pool) and returns their pids.
func (s *poolServer) readyWorkers(t testing.TB, pool string, n int) []int {
	t.Helper()
	return s.waitPool(t, pool, 30*time.Second, fmt.Sprintf("%d ready workers", n), func(p wispPoolStatus) bool {
		return len(p.readyPIDs()) == n
	}).readyPIDs()
}
