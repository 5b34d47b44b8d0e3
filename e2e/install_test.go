package e2e

// Operating wisp live as the seed's users did IIS (issue 9): wisp install,
// remove, list, check, trace and the control API, against a running server
// under load.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// traceLine is a line of `wisp trace --json`.
type traceLine struct {
	Time    time.Time `json:"time"`
	Pool    string    `json:"pool"`
	PID     int       `json:"pid"`
	Site    string    `json:"site"`
	Vdir    string    `json:"vdir"`
	Request string    `json:"request_id"`
	Stream  string    `json:"stream"`
	Text    string    `json:"text"`
}

// tracer is a running `wisp trace --json`.
type tracer struct {
	mu    sync.Mutex
	lines []traceLine
	cmd   *exec.Cmd
}

func startTrace(t *testing.T, socket string, args ...string) *tracer {
	t.Helper()
	tr := &tracer{}
	tr.cmd = exec.Command(wispBin, append([]string{"trace", "--socket", socket, "--json"}, args...)...)
	out, err := tr.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l traceLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				tr.mu.Lock()
				tr.lines = append(tr.lines, l)
				tr.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { tr.cmd.Process.Kill(); tr.cmd.Wait() })
	return tr
}

// wait waits until a line matches; it returns it.
func (tr *tracer) wait(t *testing.T, d time.Duration, what string, match func(traceLine) bool) traceLine {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tr.mu.Lock()
		for _, l := range tr.lines {
			if match(l) {
				tr.mu.Unlock()
				return l
			}
		}
		n := len(tr.lines)
		tr.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no trace line with %s within %v (%d lines)", what, d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listEntry is an entry of `wisp list --json`.
type listEntry struct {
	Site, Vdir, App, Pool, Description, File string
}

func (s *poolServer) list(t *testing.T) map[string]listEntry {
	t.Helper()
	code, out, errOut := runWisp(t, 30*time.Second, s.Dir, "list", "--json")
	if code != 0 {
		t.Fatalf("wisp list: exit %d %s", code, errOut)
	}
	var es []listEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("wisp list --json: %v\n%s", err, out)
	}
	m := map[string]listEntry{}
	for _, e := range es {
		m[e.Site+e.Vdir] = e
	}
	return m
}

const installConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.default]
python = "@PY@"
pythonpath = ["@APPS@/pastedeploy"]

[[sites]]
name = "MySite"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/printer/app.py"
`

// The end-to-end test: under a continuous load, the seed's script
// (exactly as the seed prints it, with a Paste Deploy ini at its Windows
// path) and a Flask app are installed into a running server; the script's
// print and Paste Deploy logging show in `wisp trace` within a second,
// tagged with the worker pid and request id; the script is installed again
// with `python3 myapp.py install --server=MySite` (the shim on PYTHONPATH),
// the Flask app removed, `wisp list` checked after each step; no request
// fails and the server process stays the same.
func TestInstallLive(t *testing.T) {
	s := newPoolServer(t)
	s.writeConfig(t, installConfig)
	if err := os.MkdirAll(filepath.Join(s.Dir, "C:", "MyApp"), 0o755); err != nil {
		t.Fatal(err)
	}
	ini, _ := os.ReadFile(app("isapi_paste/MyApp.ini"))
	os.WriteFile(filepath.Join(s.Dir, "C:", "MyApp", "MyApp.ini"), ini, 0o644)
	s.start(t)
	pid := s.wisp.Pid()
	root := startLoad(t, s.URL+"/", 3, nil)
	tr := startTrace(t, s.Socket)
	time.Sleep(300 * time.Millisecond) // the trace attached

	seed := app("seed/myapp.py")
	code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "install", seed, "--server=MySite")
	if code != 0 || !strings.Contains(out, "MySite/wsgi-test installed") || !strings.Contains(out, "/wsgi-test/ answers 200") {
		t.Fatalf("wisp install %s --server=MySite: exit %d\n%s%s", seed, code, out, errOut)
	}
	l := s.list(t)
	if e, ok := l["MySite/wsgi-test"]; !ok || e.App != seed || e.Description != "A test application" || !strings.HasSuffix(e.File, "wisp.d/MySite--wsgi-test.toml") {
		t.Fatalf("wisp list after the install: %+v", l)
	}
	seedLoad := startLoad(t, s.URL+"/wsgi-test/", 2, func(resp *http.Response, body []byte) (bool, string) {
		return resp.StatusCode == 200 && strings.HasPrefix(string(body), "Howdy, "), ""
	})

	// the script's app prints and logs through Paste Deploy's logging: both in the trace within 1 s
	req, _ := http.NewRequest("GET", s.URL+"/wsgi-test/?name=tracer", nil)
	req.Header.Set("X-Request-Id", "e2e-seed-1")
	t0 := time.Now()
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Howdy, tracer!" {
		t.Fatalf("GET /wsgi-test/: %d %q", resp.StatusCode, body)
	}
	printed := tr.wait(t, time.Second, "the print", func(l traceLine) bool {
		return l.Request == "e2e-seed-1" && l.Stream == "stdout" && strings.Contains(l.Text, "webob_app print: hello tracer")
	})
	logged := tr.wait(t, time.Second, "the Paste Deploy logging", func(l traceLine) bool {
		return l.Request == "e2e-seed-1" && l.Stream == "stderr" && strings.Contains(l.Text, "webob_app logging: greeted tracer")
	})
	tr.wait(t, time.Second, "the request line", func(l traceLine) bool {
		return l.Request == "e2e-seed-1" && l.Stream == "request" && strings.HasPrefix(l.Text, "GET /wsgi-test/?name=tracer 200")
	})
	t.Logf("the print was in the trace %v after the request began", time.Since(t0).Round(time.Millisecond))
	st := s.status(t)
	if pids := st.pool(t, "default").readyPIDs(); !contains(pids, printed.PID) || printed.Pool != "default" || printed.Site != "MySite" || printed.Vdir != "/wsgi-test" || logged.PID != printed.PID {
		t.Errorf("trace line %+v: want a ready worker of pool default (%v), site MySite, vdir /wsgi-test", printed, pids)
	}

	// a Flask app in its own pool
	code, out, errOut = runWisp(t, 2*time.Minute, s.Dir, "install", app("flask/app.py"), "--site", "MySite", "--vdir", "/flask",
		"--pool", "flask", "--python", python, "--description", "the Flask app")
	if code != 0 || !strings.Contains(out, "pool flask created") {
		t.Fatalf("wisp install flask: exit %d\n%s%s", code, out, errOut)
	}
	// (a fresh connection: an idle keep-alive one may still be a replaced
	// worker's, which answers one last request as before, overlapped)
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	if code, body := get(fresh, s.URL+"/flask/hello?name=wisp"); code != 200 || body != "Hello, wisp!" {
		t.Errorf("GET /flask/hello: %d %q", code, body)
	}
	// a request the front pool forwards to pool flask: traced once, by flask
	req, _ = http.NewRequest("GET", s.URL+"/flask/hello?name=once", nil)
	req.Header.Set("X-Request-Id", "e2e-flask-1")
	if resp, err := fresh.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	line := tr.wait(t, 2*time.Second, "the forwarded request's line", func(l traceLine) bool {
		return l.Request == "e2e-flask-1" && l.Stream == "request"
	})
	time.Sleep(500 * time.Millisecond)
	tr.mu.Lock()
	n := 0
	for _, l := range tr.lines {
		if l.Request == "e2e-flask-1" && l.Stream == "request" {
			n++
		}
	}
	tr.mu.Unlock()
	if n != 1 || line.Pool != "flask" {
		t.Errorf("the forwarded request has %d request lines (want 1), from pool %q (want flask)", n, line.Pool)
	}
	if e := s.list(t)["MySite/flask"]; e.Pool != "flask" || e.Description != "the Flask app" {
		t.Errorf("wisp list: the flask vdir %+v", e)
	}

	// install the seed's script again, the IIS way: python3 myapp.py install --server=MySite
	_, shim, _ := runWisp(t, 30*time.Second, s.Dir, "pythonpath")
	shim = strings.TrimSpace(shim)
	py := exec.Command(python, seed, "install", "--server=MySite")
	py.Dir = s.Dir
	py.Env = append(os.Environ(), "PYTHONPATH="+shim, "WISP_BIN="+wispBin)
	pyOut, err := py.CombinedOutput()
	if err != nil || !strings.Contains(string(pyOut), "MySite/wsgi-test replaced") {
		t.Fatalf("python3 myapp.py install --server=MySite (PYTHONPATH=%s): %v\n%s", shim, err, pyOut)
	}

	// remove the Flask app
	code, out, errOut = runWisp(t, 2*time.Minute, s.Dir, "remove", "--site", "MySite", "--vdir", "/flask")
	if code != 0 || !strings.Contains(out, "pool flask removed") {
		t.Fatalf("wisp remove: exit %d\n%s%s", code, out, errOut)
	}
	if _, ok := s.list(t)["MySite/flask"]; ok {
		t.Error("wisp list still shows /flask")
	}
	if code, body := get(fresh, s.URL+"/flask/hello"); code != 200 || body != "printed\n" {
		t.Errorf("/flask after the remove: %d %q, want the root app's answer", code, body)
	}
	if code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "reload"); code != 0 {
		t.Errorf("wisp reload: exit %d %s%s", code, out, errOut)
	}
	time.Sleep(200 * time.Millisecond)
	root.stop()
	seedLoad.stop()
	for name, ld := range map[string]*loader{"/": root, "/wsgi-test/": seedLoad} {
		total, ok := ld.counts()
		if total < 20 || ok != total {
			t.Errorf("load on %s: %s", name, ld.summary())
		}
	}
	if s.wisp.Pid() != pid {
		t.Error("the server process changed")
	}
	select {
	case <-s.wisp.exited:
		t.Fatal("the server exited")
	default:
	}

	// and the script removes itself, the IIS way too
	py = exec.Command(python, seed, "remove", "--server=MySite")
	py.Dir = s.Dir
	py.Env = append(os.Environ(), "PYTHONPATH="+shim, "WISP_BIN="+wispBin)
	if pyOut, err := py.CombinedOutput(); err != nil || !strings.Contains(string(pyOut), "MySite/wsgi-test removed") {
		t.Errorf("python3 myapp.py remove: %v\n%s", err, pyOut)
	}
	if l := s.list(t); len(l) != 1 {
		t.Errorf("wisp list after removing everything installed: %+v", l)
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// wisp install refuses an app that cannot import, writing nothing; wisp
// check reports the traceback and configuration errors by file, line and
// key, and exits non-zero.
func TestInstallBrokenAndCheck(t *testing.T) {
	s := newPoolServer(t)
	s.writeConfig(t, installConfig)
	code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "install", app("importerror/app.py"), "--site", "MySite", "--vdir", "/broken")
	if code == 0 || !strings.Contains(errOut, "e2e-import-time-failure") || !strings.Contains(errOut, "nothing was installed") {
		t.Errorf("install of an app that cannot import: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "wisp.d")); !os.IsNotExist(err) {
		t.Errorf("wisp.d exists after a refused install: %v", err)
	}
	if code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "check"); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Errorf("wisp check on a good configuration: exit %d\n%s%s", code, out, errOut)
	}
	// a drop-in a person wrote with an app that cannot import
	os.MkdirAll(filepath.Join(s.Dir, "wisp.d"), 0o755)
	os.WriteFile(filepath.Join(s.Dir, "wisp.d", "broken.toml"), []byte(s.expandConfig(
		"[[sites]]\nname = \"MySite\"\n\n  [[sites.vdirs]]\n  path = \"/broken\"\n  app = \"@APPS@/importerror/app.py\"\n")), 0o644)
	code, out, errOut = runWisp(t, 2*time.Minute, s.Dir, "check")
	if code == 0 || !strings.Contains(errOut, "Traceback") || !strings.Contains(errOut, "e2e-import-time-failure") {
		t.Errorf("wisp check with an app that cannot import: exit %d\n%s%s", code, out, errOut)
	}
	// and a configuration error in the drop-in: file:line:key
	os.WriteFile(filepath.Join(s.Dir, "wisp.d", "broken.toml"), []byte("[[sites]]\nname = \"MySite\"\n\n  [[sites.vdirs]]\n  path = \"/broken\"\n  app = \"x:app\"\n  pool = \"nope\"\n"), 0o644)
	code, _, errOut = runWisp(t, 2*time.Minute, s.Dir, "check")
	if code == 0 || !strings.Contains(errOut, "wisp.d/broken.toml:7:3: sites[0].vdirs[1].pool: pool \"nope\" is not defined") {
		t.Errorf("wisp check with a bad drop-in: exit %d\n%s", code, errOut)
	}
}

// The first install in an empty folder makes the main file and the site
// and pool drop-ins; with no server running it takes effect at the next
// start, which serves it.
func TestInstallFirstThenServe(t *testing.T) {
	s := newPoolServer(t)
	code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "install", app("printer/app.py"), "--python", python,
		"--binding", "127.0.0.1:"+s.Ports[0])
	if code != 0 || !strings.Contains(out, "wisp.toml created") || !strings.Contains(out, "takes effect at the next start") {
		t.Fatalf("first install: exit %d\n%s%s", code, out, errOut)
	}
	s.start(t)
	if code, body := get(s.Client, s.URL+"/x"); code != 200 || body != "printed\n" {
		t.Errorf("GET /x: %d %q", code, body)
	}
	if code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "check"); code != 0 {
		t.Errorf("wisp check: exit %d %s%s", code, out, errOut)
	}
}

// An in-process wisp run serves the trace on --control-socket: the app's
// print, stderr, logging and wsgi.errors lines, and the request's line,
// all with the request id.
func TestTraceInProcess(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	w := start(t, app("printer/app.py"), "--control-socket", sock)
	if !strings.Contains(w.Stderr(), "control="+sock) {
		t.Errorf("the startup line does not name the control socket:\n%s", w.Stderr())
	}
	tr := startTrace(t, sock, "--since", "1m")
	time.Sleep(300 * time.Millisecond)
	req, _ := http.NewRequest("GET", w.URL+"/p", nil)
	req.Header.Set("X-Request-Id", "inproc-7")
	resp, err := w.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.wait(t, 5*time.Second, "the import-time print", func(l traceLine) bool { return l.Text == "printer imported" && l.Stream == "stdout" })
	for _, want := range []struct{ stream, text string }{{"stdout", "print: /p"}, {"stderr", "stderr: /p"},
		{"stderr", "INFO printer: logging: /p"}, {"wsgi.errors", "wsgi.errors: /p"}, {"request", "GET /p 200 8B"}} {
		l := tr.wait(t, time.Second, want.stream+" "+want.text, func(l traceLine) bool {
			return l.Stream == want.stream && strings.HasPrefix(l.Text, want.text)
		})
		if l.Request != "inproc-7" || l.PID != w.Pid() {
			t.Errorf("%+v: want request inproc-7 and pid %d", l, w.Pid())
		}
	}
}
