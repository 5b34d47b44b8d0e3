package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoAsyncExcPerRequest: requests that were not interrupted never call
// PyThreadState_SetAsyncExc, which (even with NULL, to clear) leaves CPython's
// eval breaker set on 3.9-3.12 and slows all Python code afterwards. After a
// request timeout the thread absorbs the late TimeoutError without another
// call, and keeps serving.
func TestNoAsyncExcPerRequest(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "1", "--timeout", "1s", app("embed/app.py"))
	count := func() int {
		t.Helper()
		resp, body := w.get(t, "/asyncexc")
		n, err := strconv.Atoi(string(body))
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("/asyncexc: status %d, body %q", resp.StatusCode, trunc(body))
		}
		return n
	}
	for i := 0; i < 20; i++ {
		w.get(t, "/")
	}
	if n := count(); n != 0 {
		t.Fatalf("after 21 plain requests wisp raised %d asynchronous exceptions, want 0", n)
	}
	resp, _ := w.get(t, "/spin")
	if resp.StatusCode != 504 {
		t.Fatalf("/spin: status %d, want 504", resp.StatusCode)
	}
	var n int
	if !eventually(10*time.Second, func() bool { n = count(); return n == 1 }) {
		t.Fatalf("after one timeout wisp raised %d asynchronous exceptions, want 1", n)
	}
	for i := 0; i < 20; i++ {
		if resp, body := w.get(t, "/"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("after the timeout: status %d, body %q", resp.StatusCode, trunc(body))
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("requests after the timeout raised asynchronous exceptions: %d in all, want 1", n)
	}
	if strings.Contains(w.Stderr(), "panic") {
		t.Fatalf("panic in the log:\n%s", tail(w.Stderr(), 30))
	}
}

// TestFreeThreadedInterpreterRefused: a free-threaded build (3.13t,
// Py_GIL_DISABLED) is refused with a clear line before its libpython is
// loaded: wisp's PyObject layout is the default build's and would crash. The
// fake interpreter is Debian's python3 claiming Py_GIL_DISABLED=1.
func TestFreeThreadedInterpreterRefused(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(t.TempDir(), "python3.13t")
	script := "#!/bin/sh\n" +
		"/usr/bin/python3 \"$@\" | sed 's/}$/, \"gil_disabled\": 1}/'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	stderr := startupFailure(t, false, "", "free-threaded", "--python", fake, app("embed/app.py"))
	if !strings.Contains(stderr, "Py_GIL_DISABLED") {
		t.Errorf("the refusal does not say why (Py_GIL_DISABLED):\n%s", stderr)
	}
}

// TestPartialLinesFlushedAtShutdown: a last line written without a newline,
// to wsgi.errors or with print(), reaches the log when wisp stops (SIGTERM).
func TestPartialLinesFlushedAtShutdown(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "2", app("embed/app.py"))
	for _, path := range []string{"/partial", "/print"} {
		if resp, body := w.get(t, path); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, body %q", path, resp.StatusCode, trunc(body))
		}
	}
	w.signal(syscall.SIGTERM)
	if code, ok := w.wait(20 * time.Second); !ok || code != 0 {
		t.Fatalf("after SIGTERM: exit %d (exited %v), want 0", code, ok)
	}
	if !strings.Contains(w.Stderr(), "e2e-partial-line") {
		t.Errorf("the partial wsgi.errors line is not in the log:\n%s", tail(w.Stderr(), 20))
	}
	if !strings.Contains(w.Stdout()+w.Stderr(), "e2e-print-partial") {
		t.Errorf("print() without a newline is lost:\nstdout: %s\nstderr: %s", tail(w.Stdout(), 10), tail(w.Stderr(), 20))
	}
}

// TestOSExitLogged: os._exit() in app code ends in-process wisp as asked
// (its exit status), but first one log line says what was called, with
// which code, and which request was being served.
func TestOSExitLogged(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "2", app("embed/app.py"))
	if _, err := http.Get(w.URL + "/exit?3"); err == nil {
		t.Errorf("GET /exit?3 got a response; want the connection dropped")
	}
	code, ok := w.wait(20 * time.Second)
	if !ok || code != 3 {
		t.Fatalf("after os._exit(3): exit %d (exited %v), want 3", code, ok)
	}
	var line string
	for _, l := range strings.Split(w.Stderr(), "\n") {
		if strings.Contains(l, "os._exit(3)") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, "GET /exit?3") {
		t.Fatalf("no log line naming os._exit(3) and the request GET /exit?3:\n%s", tail(w.Stderr(), 20))
	}
}

// TestSyntaxErrorShowsCaret: an app that does not compile stops wisp run
// with its message, the source line and the caret, in the exit message and
// in the error log.
func TestSyntaxErrorShowsCaret(t *testing.T) {
	t.Parallel()
	code, _, stderr := runWisp(t, 60*time.Second, "", "run", "--bind", "127.0.0.1:0", "--python", python, app("syntaxerror/app.py"))
	if code == 0 {
		t.Fatalf("exit 0 for an app with a syntax error")
	}
	if !strings.Contains(stderr, "SyntaxError: ") {
		t.Fatalf("no SyntaxError in the output:\n%s", stderr)
	}
	var source, caret bool
	for _, l := range strings.Split(stderr, "\n") {
		source = source || strings.TrimSpace(l) == `body = (b"never closed"`
		caret = caret || (source && strings.TrimSpace(l) == "^")
	}
	if !source || !caret {
		t.Errorf("the exit message lacks the source line and caret:\n%s", stderr)
	}
	// the log line (however the logger quotes it) has the source line too
	if strings.Count(stderr, "body = (b") < 2 || !strings.Contains(stderr, "failed to load") {
		t.Errorf("the error log lacks the source line and caret:\n%s", stderr)
	}
}
