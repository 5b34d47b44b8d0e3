package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	w := start(t, "--max-header-bytes", "8192", app("environ/app.py"))
	cases := []struct {
		name   string
		size   int
		status int
	}{
		{"well under the limit", 2000, 200},
		{"slightly over the limit", 9500, 431},
		{"far over the limit", 32 << 10, 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			req := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", tc.size) + "\r\n\r\n"
			go func() { _, _ = io.WriteString(c.conn, req) }() // the server may stop reading
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%d bytes of headers with --max-header-bytes 8192: status %d, want %d", tc.size, resp.StatusCode, tc.status)
			}
		})
	}
}

func TestMaxBody(t *testing.T) {
	t.Parallel()
	w := start(t, "--max-body", "1000", app("upload/app.py"))
	cases := []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"at the limit", 1000, false, 200},
		{"at the limit, chunked", 1000, true, 200},
		{"over the limit", 1001, false, 413},
		{"far over the limit", 200_000, false, 413},
		{"over the limit, chunked", 5000, true, 413},
	}
	t.Run("expect 100-continue", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n")
		line, err := c.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line %q (%v), want HTTP/1.1 100 Continue before the body is sent", line, err)
		}
		if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
			t.Fatalf("100 Continue not followed by an empty line: %q", blank)
		}
		c.send(strings.Repeat("e", 500))
		resp, body, err := c.response("POST")
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"len": 500`) {
			t.Errorf("after 100 Continue: %d %q %v", resp.StatusCode, trunc(body), err)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			body := strings.Repeat("b", tc.size)
			var req string
			if tc.chunked {
				req = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			} else {
				req = fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			}
			go func() { _, _ = io.WriteString(c.conn, req) }()
			resp, respBody, _ := c.response("POST")
			if resp.StatusCode != tc.status {
				t.Errorf("%d-byte body with --max-body 1000: status %d, want %d; body %q", tc.size, resp.StatusCode, tc.status, trunc(respBody))
			}
			if tc.status == 200 && !strings.Contains(string(respBody), fmt.Sprintf(`"len": %d`, tc.size)) {
				t.Errorf("app did not receive the whole body: %q", respBody)
			}
		})
	}
}

func TestSlowloris(t *testing.T) {
	t.Parallel()
	w := start(t, "--read-header-timeout", "1s", app("response/app.py"))

	t.Run("headers never finished", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, w.Addr)
		c.send("GET /small HTTP/1.1\r\nHost: x\r\n")
		begin := time.Now()
		if closed, _ := c.closedWithin(6 * time.Second); !closed {
			t.Errorf("connection with unfinished headers still open after 6s (--read-header-timeout 1s)")
		} else if d := time.Since(begin); d < 500*time.Millisecond {
			t.Errorf("closed after %v, before the header timeout", d)
		}
	})

	t.Run("headers trickled one line at a time", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, w.Addr)
		c.send("GET /small HTTP/1.1\r\nHost: x\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(c.conn, "X-Trickle-%d: y\r\n", i); err != nil {
					return
				}
			}
		}()
		if closed, _ := c.closedWithin(6 * time.Second); !closed {
			t.Errorf("trickling client still connected after 6s (--read-header-timeout 1s)")
		}
	})

	t.Run("others are served meanwhile", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < 5; i++ {
			dialRaw(t, w.Addr).send("GET / HTTP/1.1\r\n")
		}
		begin := time.Now()
		resp, body := w.get(t, "/small")
		if resp.StatusCode != 200 || string(body) != "tiny" || time.Since(begin) > 2*time.Second {
			t.Errorf("GET /small with stalled clients around: %d %q in %v", resp.StatusCode, body, time.Since(begin))
		}
	})
}

func TestSlowBodyTimeout(t *testing.T) {
	t.Parallel()
	w := start(t, "--read-timeout", "2s", app("upload/app.py"))
	c := dialRaw(t, w.Addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	if closed, got := c.closedWithin(10 * time.Second); !closed {
		t.Errorf("client stalled mid-body still connected after 10s (--read-timeout 2s)")
	} else if strings.HasPrefix(string(got), "HTTP/1.1 200") {
		t.Errorf("a 200 for an incomplete body: %q", got)
	}
}

// TestSlowClientDoesNotHoldPythonThread: with one Python thread, a client
// that stalls in the middle of its request body must not block others.
func TestSlowClientDoesNotHoldPythonThread(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "1", app("upload/app.py"))
	for i := 0; i < 2; i++ {
		c := dialRaw(t, w.Addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("s", 50000))
	}
	time.Sleep(300 * time.Millisecond)
	begin := time.Now()
	req := mustRequest(t, "POST", w.URL+"/", strings.NewReader("quick"))
	resp, body := w.do(t, req)
	if d := time.Since(begin); resp.StatusCode != 200 || d > 3*time.Second {
		t.Errorf("request behind two stalled uploads: status %d in %v (body %q); the only Python thread was held by a slow client", resp.StatusCode, d.Round(time.Millisecond), trunc(body))
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	w := start(t, "--idle-timeout", "1s", app("response/app.py"))
	c := dialRaw(t, w.Addr)
	c.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body, err := c.response("GET"); err != nil || string(body) != "tiny" {
		t.Fatalf("first request: %q %v", body, err)
	}
	if closed, _ := c.closedWithin(6 * time.Second); !closed {
		t.Errorf("idle keep-alive connection still open after 6s (--idle-timeout 1s)")
	}
}

func TestWriteTimeoutReleasesStalledResponse(t *testing.T) {
	t.Parallel()
	w := start(t, "--write-timeout", "2s", app("close/app.py"))
	c := dialRaw(t, w.Addr)
	c.send("GET /stream?stalled HTTP/1.1\r\nHost: x\r\n\r\n")
	// Never read: the server must give up on this client and close the iterable.
	waitClosed(t, w, "stalled", 20*time.Second)
}

// startSlowRequest starts GET /sleep?SECONDS&KEY and waits until the app runs it.
func startSlowRequest(t *testing.T, w *wisp, seconds float64, key string) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		resp, err := w.Client.Get(fmt.Sprintf("%s/sleep?%g&%s", w.URL, seconds, key))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- result{status: resp.StatusCode, body: string(b), err: err, header: resp.Header}
	}()
	if !w.waitStderr("e2e-slow-start "+key, 15*time.Second) {
		t.Fatalf("the slow request %s never reached the app", key)
	}
	return ch
}

type result struct {
	status  int
	body    string
	err     error
	header  http.Header
	elapsed time.Duration
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			w := start(t, app("slow/app.py"))
			// An idle keep-alive connection must not hold the shutdown up.
			idle := dialRaw(t, w.Addr)
			idle.send("GET /sleep?0&idle HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, _, err := idle.response("GET"); err != nil {
				t.Fatal(err)
			}
			ch := startSlowRequest(t, w, 2, "inflight")
			w.signal(sig)
			select {
			case r := <-ch:
				if r.err != nil || r.status != 200 || r.body != "done inflight" {
					t.Errorf("in-flight request across %v: %d %q %v; want 200 \"done inflight\"", sig, r.status, r.body, r.err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("in-flight request did not finish within 15s of %v", sig)
			}
			code, ok := w.wait(15 * time.Second)
			if !ok {
				t.Fatalf("still running 15s after %v", sig)
			}
			if code != 0 {
				t.Errorf("exit code %d after %v, want 0", code, sig)
			}
			if strings.Contains(w.Stderr(), "panic:") || strings.Contains(w.Stderr(), "goroutine ") {
				t.Errorf("crash dump on shutdown")
			}
		})
	}
}

func TestGracefulTimeoutBounded(t *testing.T) {
	t.Parallel()
	w := start(t, "--graceful-timeout", "1s", app("slow/app.py"))
	startSlowRequest(t, w, 60, "stuck")
	begin := time.Now()
	w.signal(syscall.SIGTERM)
	if _, ok := w.wait(12 * time.Second); !ok {
		t.Errorf("still running 12s after SIGTERM with --graceful-timeout 1s and a request stuck in the app")
	} else if d := time.Since(begin); d < 800*time.Millisecond {
		t.Errorf("exited after %v, before the 1s graceful timeout", d)
	}
}

// TestShutdownDespiteApp: apps that install signal handlers or leave
// non-daemon threads running must not stop wisp from shutting down.
func TestShutdownDespiteApp(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"signals", "threads"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := start(t, app(name+"/app.py"))
			resp, body := w.get(t, "/")
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok") {
				t.Fatalf("GET /: %d %q", resp.StatusCode, body)
			}
			t.Logf("app says: %q", body)
			w.Client.Transport.(*http.Transport).CloseIdleConnections()
			w.signal(syscall.SIGTERM)
			code, ok := w.wait(15 * time.Second)
			if !ok {
				t.Fatalf("still running 15s after SIGTERM")
			}
			if code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
		})
	}
}

var combinedRE = regexp.MustCompile(`^127\.0\.0\.1 - (-|\S+) \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "([A-Z]+) (\S+) (HTTP/\d\.\d)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)" rid=([A-Za-z0-9._:-]{1,64})$`)

func TestAccessLog(t *testing.T) {
	t.Parallel()
	type logged struct{ method, target, proto, status, bytes, referer, agent string }
	requests := func(t *testing.T, w *wisp) []logged {
		do := func(method, target, referer string) {
			req := mustRequest(t, method, w.URL+target, nil)
			req.Header.Set("User-Agent", "e2e-agent/1.0")
			if referer != "" {
				req.Header.Set("Referer", referer)
			}
			w.do(t, req)
		}
		do("GET", "/head-target?q=1&r=%20", "http://ref.example/page")
		do("GET", "/missing", "")
		do("HEAD", "/head-target", "")
		// refused by the HTTP layer before any app: logged too, as nginx does
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 400 {
			t.Fatalf("malformed header name: %v %v, want 400", resp, err)
		}
		return []logged{
			{"GET", "/head-target?q=1&r=%20", "HTTP/1.1", "200", "11", "http://ref.example/page", "e2e-agent/1.0"},
			{"GET", "/missing", "HTTP/1.1", "404", "13", "-", "e2e-agent/1.0"},
			{"HEAD", "/head-target", "HTTP/1.1", "200", "0|-", "-", "e2e-agent/1.0"},
			{"GET", "/bad", "HTTP/1.1", "400", "39", "-", "-"},
		}
	}
	check := func(t *testing.T, text string, want []logged) {
		t.Helper()
		var got []logged
		for _, line := range strings.Split(text, "\n") {
			if m := combinedRE.FindStringSubmatch(line); m != nil {
				got = append(got, logged{m[2], m[3], m[4], m[5], m[6], m[7], m[8]})
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d combined-format lines, want %d; log:\n%s", len(got), len(want), text)
		}
		for i, g := range got {
			wt := want[i]
			okBytes := false
			for _, b := range strings.Split(wt.bytes, "|") {
				okBytes = okBytes || g.bytes == b
			}
			if g.method != wt.method || g.target != wt.target || g.proto != wt.proto || g.status != wt.status || !okBytes || g.referer != wt.referer || g.agent != wt.agent {
				t.Errorf("line %d = %+v\nwant      %+v", i, g, wt)
			}
		}
	}

	t.Run("file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "access.log")
		w := start(t, "--access-log", path, app("response/app.py"))
		want := requests(t, w)
		var text string
		eventually(5*time.Second, func() bool {
			b, _ := os.ReadFile(path)
			text = string(b)
			return strings.Count(text, "\n") >= len(want)
		})
		check(t, text, want)
	})

	t.Run("stdout", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--access-log", "-", app("response/app.py"))
		want := requests(t, w)
		eventually(5*time.Second, func() bool { return strings.Count(w.Stdout(), "\n") >= len(want) })
		check(t, w.Stdout(), want)
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--access-log", "off", app("response/app.py"))
		requests(t, w)
		time.Sleep(500 * time.Millisecond)
		for _, out := range []string{w.Stdout(), w.Stderr()} {
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				if combinedRE.MatchString(sc.Text()) {
					t.Errorf("access log line with --access-log off: %q", sc.Text())
				}
			}
		}
	})
}

func TestBoundedQueue(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "1", "--queue", "1", app("slow/app.py"))
	const n = 6
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			begin := time.Now()
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get(fmt.Sprintf("%s/sleep?2&q%d", w.URL, i))
			r := result{err: err, elapsed: time.Since(begin)}
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r.status, r.body, r.header = resp.StatusCode, string(b), resp.Header
			}
			results[i] = r
		}(i)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	ok, busy := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request %d: %v after %v", i, r.err, r.elapsed)
		case r.status == 200:
			ok++
		case r.status == 503:
			busy++
			if r.header.Get("Retry-After") == "" {
				t.Errorf("request %d: 503 without Retry-After", i)
			}
			if r.elapsed > 1500*time.Millisecond {
				t.Errorf("request %d: 503 after %v; a full queue must answer at once", i, r.elapsed.Round(time.Millisecond))
			}
		default:
			t.Errorf("request %d: status %d %q", i, r.status, r.body)
		}
	}
	if ok < 1 || ok > 2 || busy != n-ok {
		t.Errorf("%d×200 and %d×503 for %d concurrent slow requests with --threads 1 --queue 1; want 1-2 served, the rest 503", ok, busy, n)
	}
	resp, body := w.get(t, "/sleep?0&after")
	if resp.StatusCode != 200 || body == nil {
		t.Errorf("after the burst: status %d, want 200", resp.StatusCode)
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		// The listening line is INFO: wait for the port instead.
		addr := freePort(t)
		w := launch(t, runOpts{}, "--log-level", "error", "--bind", addr, app("crash/app.py"))
		w.Addr, w.URL = addr, "http://"+addr
		if !eventually(startTimeout, func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		}) {
			t.Fatalf("not listening on %s; stderr:\n%s", addr, w.Stderr())
		}
		w.get(t, "/ok")
		resp, _ := w.get(t, "/raise?loglevel")
		if resp.StatusCode != 500 {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
		if !w.waitStderr("e2e-boom-loglevel", 5*time.Second) {
			t.Errorf("the app's exception is not logged at --log-level error")
		}
		for _, line := range strings.Split(w.Stderr(), "\n") {
			if strings.Contains(line, "level=INFO") || strings.Contains(line, "level=DEBUG") {
				t.Errorf("line below --log-level error: %s", line)
			}
		}
	})
	t.Run("debug", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--log-level", "debug", app("crash/app.py"))
		if resp, _ := w.get(t, "/ok"); resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}
