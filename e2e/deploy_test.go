package e2e

// Deploying wisp as Python and Linux people do (issue 12): gunicorn's
// command line, systemd socket activation and notify, the development
// reloader, unix socket bindings, pid files, --check-config, and the drain
// sequence Kubernetes performs.

import (
	"context"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// get fetches url with c and returns the status and body ("" and 0 on error).
func get(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The gunicorn habits of the issue: the target first, then -b, -w and a
// bare number of seconds for -t; -e sets the app's environment; a WISP_*
// variable sets a flag the command line leaves out.
func TestGunicornStyleCommandLine(t *testing.T) {
	port := pickPort(t)
	w := startOpts(t, runOpts{Env: []string{"WISP_MAX_REQUESTS=1000"}},
		app("pool_app/app.py"), "-b", "127.0.0.1:"+port, "-w", "2", "-t", "30", "-e", "POOL_VALUE=from-e")
	info := getInfo(t, w.Client, "http://127.0.0.1:"+port+"/info")
	if info.Value != "from-e" {
		t.Errorf("POOL_VALUE %q, want from-e (-e)", info.Value)
	}
	if !info.Multiprocess {
		t.Errorf("wsgi.multiprocess false: -w 2 should run two worker processes")
	}
}

// systemd-socket-activate listens, and starts wisp on the first connection
// with the socket passed as fd 3 (LISTEN_FDS): that first connection is
// served, in-process and by a pool.
func TestSocketActivation(t *testing.T) {
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		t.Skip("systemd-socket-activate is not installed (Debian's systemd package)")
	}
	for _, mode := range [][]string{nil, {"-w", "2"}} {
		t.Run(fmt.Sprintf("args%v", mode), func(t *testing.T) {
			port := pickPort(t)
			argv := append([]string{"systemd-socket-activate", "-l", "127.0.0.1:" + port, wispBin, "run", "--python", python,
				app("pool_app/app.py")}, mode...)
			w := launchRaw(t, runOpts{}, argv...)
			// The first connection that systemd-socket-activate accepts is the
			// request: it starts wisp, which must serve it. (Before it
			// listens, a dial is refused: nothing was accepted.)
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := w.Client.Get("http://127.0.0.1:" + port + "/info")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), `"pid"`) {
						t.Fatalf("first connection: %d %s", resp.StatusCode, body)
					}
					break
				}
				if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
					t.Fatalf("first connection: %v\n%s", err, w.Stderr())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(w.Stderr(), "socket activation: serving the socket systemd passed") {
				t.Errorf("no log line says the passed socket is served:\n%s", w.Stderr())
			}
		})
	}
}

// notifyListener is the service manager's end of NOTIFY_SOCKET.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifyListener {
	n := &notifyListener{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// wait waits for a message with the line; it returns the message's index.
func (n *notifyListener) wait(t *testing.T, line string, from int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			for _, l := range strings.Split(n.msgs[i], "\n") {
				if l == line {
					n.mu.Unlock()
					return i
				}
			}
		}
		n.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t.Fatalf("no %s within %v; messages: %q", line, d, n.msgs)
	return -1
}

// Type=notify: READY=1 comes only after the app imported (the app creates
// its marker file at the end of a one-second import), WATCHDOG=1 pings come
// when WATCHDOG_USEC is set, a pool's SIGHUP reload says RELOADING=1 then
// READY=1, and SIGTERM says STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	for _, pool := range []bool{false, true} {
		t.Run(fmt.Sprintf("pool=%v", pool), func(t *testing.T) {
			n := listenNotify(t)
			mark := filepath.Join(t.TempDir(), "imported")
			args := []string{app("slowimport/app.py")}
			if pool {
				args = append(args, "-w", "1")
			}
			w := launch(t, runOpts{Env: []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=400000", "SLOWIMPORT_MARK=" + mark}}, args...)
			i := n.wait(t, "READY=1", 0, startTimeout)
			if _, err := os.Stat(mark); err != nil {
				t.Fatalf("READY=1 before the app imported (no marker file): %v", err)
			}
			if err := w.waitListening(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if code, body := get(w.Client, w.URL+"/"); code != 200 || body != "imported\n" {
				t.Errorf("after READY=1: %d %q", code, body)
			}
			n.wait(t, "WATCHDOG=1", i, 2*time.Second)
			if pool {
				w.signal(syscall.SIGHUP)
				j := n.wait(t, "RELOADING=1", i, 10*time.Second)
				n.wait(t, "READY=1", j, 30*time.Second)
			}
			w.signal(syscall.SIGTERM)
			n.wait(t, "STOPPING=1", i, 10*time.Second)
			if _, ok := w.wait(30 * time.Second); !ok {
				t.Error("did not exit after SIGTERM")
			}
		})
	}
}

// --reload: an edit of the app, or of a module it imports, is served within
// 2 s; an import error is served as a readable 500 page until it is fixed,
// without the server exiting.
func TestDevReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appText := func(v string) string {
		return "import helper\n\ndef application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [('" + v + " ' + helper.WORD).encode()]\n"
	}
	write("helper.py", "WORD = 'one'\n")
	write("app.py", appText("v1"))
	w := startOpts(t, runOpts{Dir: dir}, "--reload", "app.py")
	pid := w.Pid()
	expect := func(what string, ok func(code int, body string) bool) {
		t.Helper()
		t0 := time.Now()
		var code int
		var body string
		for time.Since(t0) < 2*time.Second {
			if code, body = get(w.Client, w.URL+"/"); ok(code, body) {
				t.Logf("%s: served after %v", what, time.Since(t0).Round(time.Millisecond))
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("%s: not served within 2s; last answer %d %q", what, code, body)
	}
	expect("first", func(c int, b string) bool { return c == 200 && b == "v1 one" })
	write("app.py", appText("v2"))
	expect("an edit of app.py", func(c int, b string) bool { return c == 200 && b == "v2 one" })
	write("helper.py", "WORD = 'two'\n")
	expect("an edit of an imported module", func(c int, b string) bool { return c == 200 && b == "v2 two" })
	write("app.py", "import helper\ndef application(environ, start_response)\n    pass\n")
	expect("a syntax error", func(c int, b string) bool {
		return c == 500 && strings.Contains(b, "SyntaxError") && strings.Contains(b, "the app failed to import")
	})
	write("app.py", appText("v3"))
	expect("the fix", func(c int, b string) bool { return c == 200 && b == "v3 two" })
	if w.Pid() != pid {
		t.Error("the server process changed")
	}
	select {
	case <-w.exited:
		t.Fatal("the server exited")
	default:
	}
}

// unixClient talks HTTP to a unix socket.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
}

// --bind unix:PATH serves on a unix socket with the mode asked for, removes
// it at exit, and never trusts the X-Wisp-* headers wisp uses between its
// own processes (the socket is public).
func TestUnixSocketBinding(t *testing.T) {
	for _, pool := range []bool{false, true} {
		t.Run(fmt.Sprintf("pool=%v", pool), func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "app.sock")
			args := []string{app("pool_app/app.py"), "-b", "unix:" + sock, "--socket-mode", "0600"}
			if pool {
				args = append(args, "-w", "1")
			}
			w := start(t, args...)
			st, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
				t.Errorf("socket mode %v, want a socket with 0600", st.Mode())
			}
			req, _ := http.NewRequest("GET", "http://app.test:8080/info", nil)
			req.Header.Set("X-Wisp-Remote-Addr", "6.6.6.6:666")
			req.Header.Set("X-Wisp-Server-Port", "6666")
			resp, err := unixClient(sock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var info poolInfo
			json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.Contains(info.RemoteAddr, "6.6.6.6") || info.ServerPort != "8080" {
				t.Errorf("status %d, REMOTE_ADDR %q, SERVER_PORT %q: want 200, not the client's X-Wisp-Remote-Addr, the Host's port 8080",
					resp.StatusCode, info.RemoteAddr, info.ServerPort)
			}
			w.signal(syscall.SIGTERM)
			w.wait(30 * time.Second)
			if _, err := os.Stat(sock); !os.IsNotExist(err) {
				t.Errorf("the socket file is still there after exit: %v", err)
			}
		})
	}
}

// -p writes the pid and removes the file at exit; --check-config imports
// the app and says whether it works (exit 0 or 1 with the traceback), in a
// pool's own worker process too; --print-config prints a file that loads.
func TestPidCheckAndPrintConfig(t *testing.T) {
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "wisp.pid")
	w := start(t, app("pool_app/app.py"), "-p", pidPath)
	b, err := os.ReadFile(pidPath)
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(w.Pid()) {
		t.Errorf("pid file %q (%v), want %d", b, err, w.Pid())
	}
	w.signal(syscall.SIGTERM)
	w.wait(30 * time.Second)
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Errorf("pid file still there after exit: %v", err)
	}

	for _, extra := range [][]string{nil, {"-w", "2"}} {
		code, out, errOut := runWisp(t, time.Minute, "", append([]string{"run", "--check-config", "--python", python, app("pool_app/app.py")}, extra...)...)
		if code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("--check-config %v on a good app: exit %d\n%s%s", extra, code, out, errOut)
		}
		code, out, errOut = runWisp(t, time.Minute, "", append([]string{"run", "--check-config", "--python", python, app("importerror/app.py")}, extra...)...)
		if code != 1 || !strings.Contains(out+errOut, "e2e-import-time-failure") || !strings.Contains(out+errOut, "Traceback") {
			t.Errorf("--check-config %v on an app that cannot import: exit %d, want 1 and the traceback\n%s%s", extra, code, out, errOut)
		}
	}

	code, out, errOut := runWisp(t, time.Minute, "", "run", "--print-config", "--python", python, "-w", "3", app("pool_app/app.py"))
	if code != 0 {
		t.Fatalf("--print-config: exit %d: %s", code, errOut)
	}
	cfgPath := filepath.Join(dir, "printed.toml")
	os.WriteFile(cfgPath, []byte(out), 0o644)
	code, out, errOut = runWisp(t, time.Minute, "", "serve", "-c", cfgPath, "--check-config")
	if code != 0 || !strings.Contains(out, "configuration ok") {
		t.Errorf("the printed configuration does not check: exit %d\n%s%s", code, out, errOut)
	}
}

// The sequence Kubernetes performs when it stops a pod, under load: SIGTERM,
// /readyz turns 503 at once (while the drain delay keeps serving, as the
// Service's endpoints catch up), requests in flight finish, and the process
// exits within the grace period. The load is sent as kube-proxy would: only
// while the readiness probe (every 100 ms) last said ready. No request fails.
func TestKubernetesDrain(t *testing.T) {
	aport := pickPort(t)
	w := start(t, app("pool_app/app.py"), "-w", "2", "--admin", "127.0.0.1:"+aport, "--drain-delay", "1.5",
		"--graceful-timeout", "10")
	admin := "http://127.0.0.1:" + aport
	var ready atomic.Bool
	var readyBody atomic.Value
	probe := func() {
		code, body := get(w.Client, admin+"/readyz")
		ready.Store(code == 200)
		readyBody.Store(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for probe(); !ready.Load(); probe() {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never 200: %v", readyBody.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(w.Client, admin+"/healthz"); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Errorf("/healthz %d %s", code, body)
	}
	stop := make(chan struct{})
	var probes sync.WaitGroup
	probes.Add(1)
	go func() { // the readiness probe
		defer probes.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				probe()
			}
		}
	}()
	var sent, failed atomic.Int64
	var fails sync.Map
	var clients sync.WaitGroup
	loadEnd := time.Now().Add(20 * time.Second)
	for range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}
			for ready.Load() && time.Now().Before(loadEnd) {
				sent.Add(1)
				code, body := get(c, w.URL+"/work?ms=100")
				if code != 200 {
					failed.Add(1)
					fails.Store(body, code)
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	t0 := time.Now()
	w.signal(syscall.SIGTERM)
	for time.Since(t0) < 1200*time.Millisecond && ready.Load() {
		time.Sleep(20 * time.Millisecond)
	}
	if ready.Load() {
		t.Errorf("/readyz still 200 %v after SIGTERM", time.Since(t0))
	} else if b, _ := readyBody.Load().(string); !strings.Contains(b, "draining") {
		t.Errorf("/readyz during the drain: %s, want the reason draining", b)
	}
	clients.Wait()
	code, ok := w.wait(20 * time.Second)
	close(stop)
	probes.Wait()
	if !ok || code != 0 {
		t.Errorf("exit %d (ok %v) %v after SIGTERM; want 0 within the grace", code, ok, time.Since(t0))
	}
	if failed.Load() > 0 || sent.Load() < 20 {
		var why []string
		fails.Range(func(k, v any) bool { why = append(why, fmt.Sprintf("%v %v", v, k)); return true })
		t.Errorf("%d of %d requests failed: %v", failed.Load(), sent.Load(), why)
	}
	t.Logf("%d requests, exit %v after SIGTERM", sent.Load(), time.Since(t0).Round(time.Millisecond))
}

// -u/-g run the app as another identity once the sockets are open (wisp
// starts as root), in-process and in a pool's workers.
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // the app's user must reach it
	os.WriteFile(filepath.Join(dir, "who.py"), []byte("import os\n\ndef application(environ, start_response):\n"+
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n"+
		"    return [('%d %d' % (os.getuid(), os.getgid())).encode()]\n"), 0o644)
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := startOpts(t, runOpts{Dir: dir}, append([]string{"who.py", "-u", "nobody", "-g", "nogroup"}, extra...)...)
		code, body := get(w.Client, w.URL+"/")
		if code != 200 || body != "65534 65534" {
			t.Errorf("%v: the app runs as %q (%d), want nobody:nogroup (65534 65534)", extra, body, code)
		}
	}
}

// --error-logfile writes the error log to a file, and SIGUSR1 reopens it
// after logrotate moved it (in-process and in a pool, whose workers write
// to it too).
func TestErrorLogfileReopen(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		dir := t.TempDir()
		logPath := filepath.Join(dir, "error.log")
		w := launch(t, runOpts{}, append([]string{app("pool_app/app.py"), "--error-logfile", logPath, "--log-format", "logfmt"}, extra...)...)
		deadline := time.Now().Add(startTimeout)
		for {
			b, _ := os.ReadFile(logPath)
			if strings.Contains(string(b), "msg=listening") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: no listening line in %s:\n%s\nstderr:\n%s", extra, logPath, b, w.Stderr())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := os.Rename(logPath, logPath+".1"); err != nil {
			t.Fatal(err)
		}
		w.signal(syscall.SIGUSR1)
		deadline = time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(logPath)
			if strings.Contains(string(b), "SIGUSR1") {
				break
			}
			if time.Now().After(deadline) {
				old, _ := os.ReadFile(logPath + ".1")
				t.Fatalf("%v: nothing in the new %s after SIGUSR1 (%q); the old file:\n%s", extra, logPath, b, old)
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.signal(syscall.SIGTERM)
		w.wait(30 * time.Second)
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "msg=stopped") {
			t.Errorf("%v: the stop is not logged in the reopened file:\n%s", extra, b)
		}
	}
}

// --forwarded-allow-ips (gunicorn's name): from a trusted proxy only,
// X-Forwarded-For gives REMOTE_ADDR (the right-most untrusted address) and
// X-Forwarded-Proto the scheme; from anyone else they change nothing.
func TestForwardedAllowIPs(t *testing.T) {
	environOf := func(w *wisp) map[string]string {
		t.Helper()
		req, _ := http.NewRequest("GET", w.URL+"/", nil)
		req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := w.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Environ map[string]string }
		json.NewDecoder(resp.Body).Decode(&out)
		return out.Environ
	}
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := start(t, append([]string{app("environ/app.py"), "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8"}, extra...)...)
		env := environOf(w)
		if env["REMOTE_ADDR"] != "203.0.113.9" || env["wsgi.url_scheme"] != "https" || env["HTTPS"] != "on" {
			t.Errorf("%v trusted: REMOTE_ADDR %q, scheme %q, HTTPS %q; want 203.0.113.9, https, on", extra, env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTPS"])
		}
		w = start(t, append([]string{app("environ/app.py"), "--forwarded-allow-ips", "10.0.0.0/8"}, extra...)...)
		env = environOf(w)
		if env["REMOTE_ADDR"] != "127.0.0.1" || env["wsgi.url_scheme"] != "http" || env["HTTP_X_FORWARDED_FOR"] != "6.6.6.6, 203.0.113.9" {
			t.Errorf("%v untrusted peer: REMOTE_ADDR %q, scheme %q, X-Forwarded-For %q; want the peer, http, the header untouched",
				extra, env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTP_X_FORWARDED_FOR"])
		}
	}
}
