package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// signalLoad runs requests against url from 4 goroutines until stop is
// closed (at most 60 s, 20000 requests) and counts the failures.
func signalLoad(t *testing.T, client *http.Client, url string, stop <-chan struct{}) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = &atomic.Int64{}, &atomic.Int64{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 5000 && time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					if failed.Add(1) <= 5 {
						t.Logf("load: %v", err)
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if failed.Add(1) <= 5 {
						t.Logf("load: status %d", resp.StatusCode)
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	return ok, failed, wg.Wait
}

// stillServing checks that the process is the one that started (it never
// exited) and that the load saw no failure.
func stillServing(t *testing.T, w *wisp, ok, failed *atomic.Int64) {
	t.Helper()
	select {
	case <-w.exited:
		t.Fatalf("wisp exited (%v)", w.state)
	default:
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("load: %d ok, %d failed; want none failed", ok.Load(), failed.Load())
	}
}

// checkRotation renames the access log, sends SIGUSR1 and checks that later
// requests land in a new file at the old path (logrotate's convention).
func checkRotation(t *testing.T, w *wisp, logPath string, get func()) {
	t.Helper()
	if !eventually(5*time.Second, func() bool { b, _ := os.ReadFile(logPath); return len(b) > 0 }) {
		t.Fatalf("nothing in the access log %s", logPath)
	}
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	w.signal(syscall.SIGUSR1)
	if !w.waitStderr("SIGUSR1", 5*time.Second) {
		t.Fatalf("no log line about SIGUSR1")
	}
	// The workers of a pool reopen on their own, a moment later.
	if !eventually(10*time.Second, func() bool {
		get()
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "GET /info?after-rotate")
	}) {
		t.Fatalf("after SIGUSR1, no request reached a new access log at %s", logPath)
	}
	if b, _ := os.ReadFile(rotated); !strings.Contains(string(b), "GET /") {
		t.Errorf("the rotated file lost its lines: %q", tail(string(b), 500))
	}
}

// In-process wisp run: SIGHUP, SIGUSR1 and SIGUSR2 under load end nothing; an
// in-flight request finishes; SIGUSR1 reopens the access log. Before, each of
// these signals killed the process at once (exit 129).
func TestRunSignalsKeepServing(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	w := start(t, "--threads", "4", "--access-log", logPath, app("pool_app/app.py"))
	slow := make(chan int, 1)
	go func() {
		resp, err := w.Client.Get(w.URL + "/sleep?s=2")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	stop := make(chan struct{})
	ok, failed, wait := signalLoad(t, w.Client, w.URL+"/work?ms=5", stop)
	time.Sleep(300 * time.Millisecond)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGHUP} {
		w.signal(sig)
		time.Sleep(200 * time.Millisecond)
	}
	checkRotation(t, w, logPath, func() {
		if resp, err := w.Client.Get(w.URL + "/info?after-rotate"); err == nil {
			resp.Body.Close()
		}
	})
	close(stop)
	wait()
	if code := <-slow; code != 200 {
		t.Errorf("the request in flight across the signals got %d, want 200", code)
	}
	stillServing(t, w, ok, failed)
	for _, want := range []string{"SIGHUP ignored", "SIGUSR2 ignored", "SIGUSR1: log files reopened"} {
		if !strings.Contains(w.Stderr(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	// SIGQUIT stops it gracefully, as SIGTERM does.
	w.signal(syscall.SIGQUIT)
	if code, done := w.wait(30 * time.Second); !done || code != 0 {
		t.Errorf("after SIGQUIT: exit %d (done %v), want a graceful exit 0", code, done)
	}
}

// A pool: SIGUSR1 makes every worker reopen its access log; SIGHUP with an
// unchanged file reloads and keeps the workers. No request fails and the
// supervisor stays the same process. (SIGUSR2 upgrades a pool's binary: see
// upgrade_test.go.)
func TestPoolSignalsKeepServing(t *testing.T) {
	s := newPoolServer(t)
	logPath := filepath.Join(s.Dir, "access.log")
	s.writeConfig(t, strings.Replace(onePoolConfig("processes = 2\nthreads = 2"), `access_log = "off"`, `access_log = "`+logPath+`"`, 1))
	s.start(t)
	before := s.waitPool(t, "default", 30*time.Second, "2 ready workers", func(p wispPoolStatus) bool {
		return len(p.readyPIDs()) == 2
	}).readyPIDs()
	stop := make(chan struct{})
	ok, failed, wait := signalLoad(t, s.Client, s.URL+"/work?ms=5", stop)
	time.Sleep(300 * time.Millisecond)
	s.signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	checkRotation(t, s.wisp, logPath, func() {
		// fresh connections, so that both workers get some
		req, _ := http.NewRequest("GET", s.URL+"/info?after-rotate", nil)
		req.Close = true
		if resp, err := s.Client.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	close(stop)
	wait()
	stillServing(t, s.wisp, ok, failed)
	after := s.status(t).pool(t, "default").readyPIDs()
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Errorf("workers changed across signals: %v -> %v", before, after)
	}
	if n := strings.Count(s.Stderr(), "SIGUSR1: log files reopened"); n < 2 {
		t.Errorf("%d workers logged reopening their logs, want 2", n)
	}
}

// TestClosedLogPipeKeepsServing: the pipe wisp logs to is closed by its
// reader (`wisp run | head`, a log shipper that restarts). Go ends a process
// that writes to a broken pipe on descriptor 1 or 2 unless SIGPIPE is caught;
// wisp must keep serving, in-process and in a pool, and stop cleanly.
func TestClosedLogPipeKeepsServing(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"in-process", "pool"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"run", "--bind", "127.0.0.1:0", "--python", python, "--access-log", "-"}
			if mode == "pool" {
				args = append(args, "--processes", "2", "--control-socket", filepath.Join(t.TempDir(), "ctl.sock"))
			}
			cmd := exec.Command(wispBin, append(args, app("pool_app/app.py"))...)
			cmd.Dir = t.TempDir()
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = pw, pw
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			done := make(chan struct{})
			var werr error
			go func() { werr = cmd.Wait(); close(done) }()
			defer func() {
				cmd.Process.Kill()
				<-done
			}()
			// read up to the listening line, then close the pipe's only reader
			pr.SetReadDeadline(time.Now().Add(startTimeout))
			var addr string
			sc := bufio.NewScanner(pr)
			for addr == "" && sc.Scan() {
				if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
					addr = m[1]
				}
			}
			if addr == "" {
				t.Fatalf("no listening line: %v", sc.Err())
			}
			pr.Close()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
			for i := 0; i < 40; i++ { // each request writes an access-log line into the closed pipe
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					t.Fatalf("request %d after the log pipe closed: %v", i, err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
			}
			select {
			case <-done:
				t.Fatalf("wisp exited after its log pipe closed: %v", werr)
			case <-time.After(300 * time.Millisecond):
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
				if werr != nil {
					t.Fatalf("stop after the log pipe closed: %v (want exit 0)", werr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("wisp did not stop within 30 s of SIGTERM")
			}
		})
	}
}

// TestRunSignalsDuringShutdown: in-process, a SIGHUP while the graceful stop
// waits for a request must not end the process: the request finishes and
// wisp exits 0. (A second SIGTERM or SIGINT ends it at once: see
// TestSecondSignalStopsAtOnce.)
func TestRunSignalsDuringShutdown(t *testing.T) {
	t.Parallel()
	for _, second := range []syscall.Signal{syscall.SIGHUP} {
		t.Run(second.String(), func(t *testing.T) {
			t.Parallel()
			w := start(t, app("slow/app.py"))
			type result struct {
				body string
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := w.Client.Get(w.URL + "/?2&inflight")
				if err != nil {
					got <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{string(b), err}
			}()
			if !w.waitStderr("e2e-slow-start inflight", 10*time.Second) {
				t.Fatal("the request did not reach the app")
			}
			w.signal(syscall.SIGTERM)
			time.Sleep(300 * time.Millisecond)
			w.signal(second)
			r := <-got
			if r.err != nil || r.body != "done inflight" {
				t.Fatalf("in-flight request after SIGTERM then %v: %q, %v", second, r.body, r.err)
			}
			if code, ok := w.wait(30 * time.Second); !ok || code != 0 {
				t.Fatalf("exit %d (exited %v), want 0", code, ok)
			}
		})
	}
}
