package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// osEnv is what testdata/apps/osenv reports.
type osEnv struct {
	Environ    map[string]string `json:"environ"`
	Subprocess map[string]string `json:"subprocess"`
	Proc       map[string]string `json:"proc"` // /proc/self/environ
}

// checkAppEnv fails the test if the app (or a process it starts) sees a
// WISP_* variable other than WISP_APP_SETTING, or misses that one (-e / env =).
func checkAppEnv(t *testing.T, got osEnv) {
	t.Helper()
	for name, env := range map[string]map[string]string{"os.environ": got.Environ, "a subprocess": got.Subprocess} {
		if len(env) == 0 {
			t.Errorf("%s: empty", name)
		}
		for k := range env {
			if strings.HasPrefix(k, "WISP_") && k != "WISP_APP_SETTING" {
				t.Errorf("%s holds wisp's own %s", name, k)
			}
		}
		if v := env["WISP_APP_SETTING"]; v != "given" {
			t.Errorf("%s: WISP_APP_SETTING=%q, want the app's own \"given\"", name, v)
		}
		if v := env["OSENV_PLAIN"]; v != "kept" {
			t.Errorf("%s: OSENV_PLAIN=%q, want wisp's environment otherwise kept", name, v)
		}
	}
	// The environment the process was started with, which the kernel shows
	// in /proc/self/environ whatever was unset since: no flag, no token. A
	// worker's spec and log format, and the descriptor wisp read its own
	// variables back from, are no secret.
	if len(got.Proc) == 0 {
		t.Errorf("/proc/self/environ: empty")
	}
	for k, v := range got.Proc {
		switch {
		case k == "WISP_WORKER" || k == "WISP_LOG_FORMAT" || k == "WISP_ENV_FD" || k == "WISP_APP_SETTING":
		case strings.HasPrefix(k, "WISP_") || strings.Contains(v, "s3cret"):
			t.Errorf("/proc/self/environ holds %s=%q: an app that can read a file reads it", k, v)
		}
	}
}

// Issue 19, 11: wisp's own variables (the admin token of a Kubernetes
// manifest, its flags, a worker's spec) reached the app's os.environ, where
// debug pages print them. In-process: only -e's WISP_* reaches the app and
// its subprocesses. (t.Setenv: not parallel.)
func TestRunAppEnvHasNoWispVars(t *testing.T) {
	t.Setenv("OSENV_PLAIN", "kept")
	w := startOpts(t, runOpts{Env: []string{"WISP_ADMIN_TOKEN=s3cret", "WISP_THREADS=3"}},
		"-e", "WISP_APP_SETTING=given", app("osenv/app.py"))
	var got osEnv
	w.getJSON(t, "/", &got)
	checkAppEnv(t, got)
}

// The same in a pool's worker (`wisp serve`): the supervisor's environment,
// the worker's spec (WISP_WORKER) and its log format stay out; the pool's
// `env =` comes in, WISP_* included.
func TestServeAppEnvHasNoWispVars(t *testing.T) {
	t.Setenv("WISP_ADMIN_TOKEN", "s3cret")
	t.Setenv("WISP_LOG_FORMAT", "text")
	t.Setenv("OSENV_PLAIN", "kept")
	s := serve(t, `
[server]
access_log = "off"

[pools.default]
python = "@PY@"
processes = 1
threads = 2
env = { WISP_APP_SETTING = "given" }

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/osenv/app.py"
`)
	var got osEnv
	s.getJSON(t, "/", &got)
	checkAppEnv(t, got)
}

// Issue 19, 14: three concurrent 150 MiB uploads against --max-spill 300MiB
// all failed with 503 and none completed: each held part of the space and
// none could get the rest. A body of known length is admitted whole (its
// Content-Length) or refused at once; of chunked bodies, the youngest gives
// up when the space is full and gives its room back at once, and the older
// ones wait for it. Either way two complete, whole, and the third is a 503
// with Retry-After (or a 200 too, when it came after one ended).
func TestSpillAdmitsWholeBodies(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "3", "--max-body", "1GiB", "--max-spill", "300MiB", "--timeout", "60s", app("upload/app.py"))
	const size = 150 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, chunked := range []bool{false, true} {
		name := map[bool]string{false: "content-length", true: "chunked"}[chunked]
		t.Run(name, func(t *testing.T) {
			type result struct {
				code  int
				retry string
				n     int64
				err   error
			}
			results := make(chan result, 3)
			for i := 0; i < 3; i++ {
				go func() {
					var body io.Reader = bytes.NewReader(payload)
					if chunked {
						body = io.MultiReader(body) // no length: chunked
					}
					req, _ := http.NewRequest("POST", w.URL+"/", body)
					c := *w.Client
					c.Timeout = 60 * time.Second
					resp, err := c.Do(req)
					if err != nil {
						results <- result{err: err}
						return
					}
					defer resp.Body.Close()
					var got struct {
						Len int64 `json:"len"`
					}
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode == 200 {
						if err := json.Unmarshal(b, &got); err != nil {
							results <- result{code: resp.StatusCode, err: fmt.Errorf("%w: %q", err, b)}
							return
						}
					}
					results <- result{code: resp.StatusCode, retry: resp.Header.Get("Retry-After"), n: got.Len}
				}()
			}
			ok := 0
			for i := 0; i < 3; i++ {
				r := <-results
				t.Logf("upload %d: %d %v", i, r.code, r.err)
				switch {
				case r.err != nil && r.code == 0:
					// the client may see its write fail when the server refuses early and closes
				case r.err != nil:
					t.Errorf("upload %d: %d, %v", i, r.code, r.err)
				case r.code == 200:
					if r.n != size {
						t.Errorf("upload %d: the app read %d bytes, want %d", i, r.n, size)
					}
					ok++
				case r.code == 503:
					if r.retry == "" {
						t.Errorf("upload %d: 503 without Retry-After", i)
					}
				default:
					t.Errorf("upload %d: %d", i, r.code)
				}
			}
			if ok < 2 {
				t.Errorf("%d of 3 uploads of 150 MiB completed within a 300 MiB spill space, want at least 2", ok)
			}
		})
	}
}

// pythonThreads counts the pool's Python threads of process pid (they are
// named wisp-python while they serve).
func pythonThreads(t *testing.T, pid int) int {
	n := 0
	for _, b := range threadFiles(t, pid, "comm") {
		if strings.TrimSpace(string(b)) == "wisp-python" {
			n++
		}
	}
	return n
}

// Issue 19, 13: with --threads 2 --timeout 1s, two requests stuck in C code
// (time.sleep, where the TimeoutError cannot land) made every request 504
// for about 5 s, until their threads were written off. Now each is replaced
// at its timeout: a fast request right after gets 200; while they are stuck
// the process has 2 + 2 Python threads, and once they come back, 2 again.
func TestRunStuckThreadsReplacedAtTimeout(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "2", "--timeout", "1s", "--max-stuck-threads", "2", app("pool_app/app.py"))
	if !eventually(5*time.Second, func() bool { return pythonThreads(t, w.Pid()) == 2 }) {
		t.Fatalf("%d Python threads at the start, want 2 (--threads)", pythonThreads(t, w.Pid()))
	}
	began := time.Now()
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- getStatus(w, "/sleep?s=4", 20*time.Second) }()
	}
	for i := 0; i < 2; i++ {
		if code := <-done; code != 504 {
			t.Fatalf("a stuck request got %d, want 504", code)
		}
	}
	timedOut := time.Now()
	if code := getStatus(w, "/info", 1500*time.Millisecond); code != 200 {
		t.Fatalf("a fast request right after two stuck ones timed out: %d in %v, want 200 within 1.5s",
			code, time.Since(timedOut).Round(time.Millisecond))
	}
	for i := 0; i < 5; i++ {
		if code := getStatus(w, "/info", 1500*time.Millisecond); code != 200 {
			t.Errorf("fast request %d while two threads are stuck: %d, want 200", i, code)
		}
	}
	if time.Since(began) < 3500*time.Millisecond { // the stuck ones are still in time.sleep(4)
		if n := pythonThreads(t, w.Pid()); n != 4 {
			t.Errorf("%d Python threads while two are stuck, want 4 (2 stuck, 2 replacements)", n)
		}
	}
	if !eventually(15*time.Second, func() bool { return pythonThreads(t, w.Pid()) == 2 }) {
		t.Errorf("%d Python threads after the stuck requests came back, want 2 (--threads)", pythonThreads(t, w.Pid()))
	}
	if !w.waitStderr("the timed-out request has ended", 10*time.Second) {
		t.Errorf("no line for the stuck requests' end")
	}
	if code := getStatus(w, "/info", 3*time.Second); code != 200 {
		t.Errorf("a request after the stuck ones came back: %d, want 200", code)
	}
}
