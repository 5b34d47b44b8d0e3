package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParallelRequests fires 100 concurrent requests per handler, each with
// its own query and body, and checks that every answer is its own.
func TestParallelRequests(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{"threadpool", "simple"} {
		t.Run(handler, func(t *testing.T) {
			w := start(t, "--handler", handler, app("environ/app.py"))
			fanOut(t, 100, func(i int) error {
				body := bytes.Repeat([]byte(fmt.Sprintf("req-%03d;", i)), 100+i*37)
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/p/%d?id=%d", w.URL, i, i), bytes.NewReader(body))
				req.Header.Set("X-Request-Id", fmt.Sprint(i))
				resp, err := w.Client.Do(req)
				if err != nil {
					return fmt.Errorf("request %d: %v", i, err)
				}
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 {
					return fmt.Errorf("request %d: status %d, %v", i, resp.StatusCode, err)
				}
				var r envReply
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("request %d: bad JSON: %v", i, err)
				}
				sum := sha256.Sum256(body)
				e := r.Environ
				if e["PATH_INFO"] != fmt.Sprintf("/p/%d", i) || e["QUERY_STRING"] != fmt.Sprintf("id=%d", i) ||
					e["HTTP_X_REQUEST_ID"] != fmt.Sprint(i) || e["CONTENT_LENGTH"] != fmt.Sprint(len(body)) ||
					r.BodySHA256 != hex.EncodeToString(sum[:]) {
					return fmt.Errorf("request %d got another request's data: PATH_INFO %q QUERY_STRING %q X-Request-Id %q CONTENT_LENGTH %q body ok %v",
						i, e["PATH_INFO"], e["QUERY_STRING"], e["HTTP_X_REQUEST_ID"], e["CONTENT_LENGTH"], r.BodySHA256 == hex.EncodeToString(sum[:]))
				}
				return nil
			})
		})
	}
}

// patternReader yields the download app's byte stream: block i (64 KiB) is
// base[i%251 : i%251+65536], base = 0..250 repeated.
type patternReader struct {
	base      []byte
	remaining int64
	block     int
	off       int // offset within the current block
}

func newPatternReader(size int64) *patternReader {
	base := make([]byte, 251*263)
	for i := range base {
		base[i] = byte(i % 251)
	}
	return &patternReader{base: base, remaining: size}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.remaining == 0 {
		return 0, io.EOF
	}
	start := p.block%251 + p.off
	n := min(len(b), 65536-p.off)
	if int64(n) > p.remaining {
		n = int(p.remaining)
	}
	copy(b, p.base[start:start+n])
	p.off += n
	p.remaining -= int64(n)
	if p.off == 65536 {
		p.off = 0
		p.block++
	}
	return n, nil
}

func hashOf(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

const (
	bigSize  = 50 << 20
	rssLimit = 150 << 10 // kB
)

func checkPeakRSS(t *testing.T, w *wisp, what string) {
	t.Helper()
	hwm := vmKB(t, w.Pid(), "VmHWM")
	rss := vmKB(t, w.Pid(), "VmRSS")
	t.Logf("%s: VmHWM %d MB, VmRSS %d MB", what, hwm>>10, rss>>10)
	if hwm > rssLimit {
		t.Errorf("%s: peak RSS (VmHWM) %d MB, want < %d MB: the body is held in memory", what, hwm>>10, rssLimit>>10)
	}
}

func TestBigUpload(t *testing.T) {
	for _, framing := range []string{"content-length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			w := start(t, app("upload/app.py"))
			want, _ := hashOf(newPatternReader(bigSize))
			req := mustRequest(t, "POST", w.URL+"/", newPatternReader(bigSize))
			if framing == "chunked" {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			} else {
				req.ContentLength = bigSize
			}
			w.Client.Timeout = 120 * time.Second
			begin := time.Now()
			resp, body := w.do(t, req)
			t.Logf("50 MB upload (%s) in %v", framing, time.Since(begin).Round(time.Millisecond))
			var r struct {
				Len             int64  `json:"len"`
				SHA256          string `json:"sha256"`
				ContentLength   string `json:"content_length"`
				InputTerminated string `json:"input_terminated"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil {
				t.Fatalf("status %d body %q", resp.StatusCode, trunc(body))
			}
			if r.Len != bigSize || r.SHA256 != want {
				t.Errorf("app read %d bytes sha %s, want %d sha %s", r.Len, r.SHA256, bigSize, want)
			}
			if r.ContentLength != fmt.Sprint(bigSize) {
				t.Errorf("CONTENT_LENGTH %q, want %d", r.ContentLength, bigSize)
			}
			checkPeakRSS(t, w, "50 MB upload ("+framing+")")
		})
	}
}

func TestBigDownload(t *testing.T) {
	for _, variant := range []string{"chunked", "cl"} {
		t.Run(variant, func(t *testing.T) {
			w := start(t, app("download/app.py"))
			want, _ := hashOf(newPatternReader(bigSize))
			target := fmt.Sprintf("%s/?%d", w.URL, bigSize)
			if variant == "cl" {
				target += "&cl"
			}
			w.Client.Timeout = 120 * time.Second
			resp, err := w.Client.Get(target)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if variant == "cl" && resp.ContentLength != bigSize {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, bigSize)
			}
			h := sha256.New()
			// Read the first MB, then stall for a second: a server without a
			// bounded response buffer would pull the whole stream into memory.
			if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			midRSS := vmKB(t, w.Pid(), "VmRSS")
			rest, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v", rest+1<<20, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); rest+1<<20 != bigSize || got != want {
				t.Errorf("got %d bytes sha %s, want %d sha %s", rest+1<<20, got, bigSize, want)
			}
			t.Logf("VmRSS while the client stalled: %d MB", midRSS>>10)
			checkPeakRSS(t, w, "50 MB download ("+variant+")")
		})
	}
}

// TestValidator runs the other test apps behind wsgiref.validate.validator:
// any PEP 3333 violation by the server raises AssertionError (a 500) or is
// printed on stderr.
func TestValidator(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{"threadpool", "simple"} {
		t.Run(handler, func(t *testing.T) {
			t.Parallel()
			dir := app("validated")
			args := []string{"--handler", handler, "--pythonpath", dir}
			for _, name := range []string{"environ", "input", "write", "close", "filewrap", "upload", "errors", "excinfo"} {
				args = append(args, "--mount", "/"+name+"=wrapped:"+name+"_app")
			}
			w := start(t, append(args, "wrapped:application")...)
			type req struct {
				method, target, body string
				chunked              bool
				status               int
			}
			reqs := []req{
				{"GET", "/", "", false, 200},
				{"GET", "/environ/caf%C3%A9?x=1", "", false, 200},
				{"POST", "/environ/post", "some body", false, 200},
				{"POST", "/environ/chunked", "chunked body", true, 200},
				{"HEAD", "/environ/", "", false, 200},
				{"POST", "/input/read-n", inputBody, false, 200},
				{"POST", "/input/readline", inputBody, false, 200},
				{"POST", "/input/readlines", inputBody, false, 200},
				{"POST", "/input/iter", inputBody, true, 200},
				{"POST", "/input/count", strings.Repeat("line\n", 10000), true, 200},
				{"GET", "/write/basic", "", false, 200},
				{"GET", "/write/with-length", "", false, 200},
				{"GET", "/write/then-iter", "", false, 200},
				{"GET", "/close/normal?v1", "", false, 200},
				{"GET", "/close/nolength?v2", "", false, 200},
				{"HEAD", "/close/normal?v3", "", false, 200},
				{"GET", "/filewrap/bytesio?size=70000", "", false, 200},
				{"GET", "/filewrap/readonly?size=70000&nolength=1", "", false, 200},
				{"GET", "/filewrap/file?path=" + dir + "/wrapped.py", "", false, 200},
				{"POST", "/upload/", strings.Repeat("u", 300_000), false, 200},
				{"POST", "/upload/", strings.Repeat("u", 300_000), true, 200},
				{"GET", "/errors/?validated", "", false, 200},
				{"GET", "/excinfo/replace", "", false, 503},
			}
			for _, rq := range reqs {
				var body io.Reader
				if rq.body != "" {
					body = strings.NewReader(rq.body)
				}
				r := mustRequest(t, rq.method, w.URL+rq.target, body)
				if rq.chunked {
					r.ContentLength = -1
					r.TransferEncoding = []string{"chunked"}
				}
				resp, b := w.do(t, r)
				if resp.StatusCode != rq.status {
					t.Errorf("%s %s: status %d, want %d; body %q", rq.method, rq.target, resp.StatusCode, rq.status, trunc(b))
				}
			}
			time.Sleep(300 * time.Millisecond)
			log := w.Stderr()
			if !strings.Contains(log, "e2e-validated-stderr-canary") {
				t.Errorf("the app's sys.stderr does not reach the server's log: validator complaints would be invisible")
			}
			for _, bad := range []string{"AssertionError", "WSGIWarning", "garbage collected without being closed"} {
				if strings.Contains(log, bad) {
					i := strings.Index(log, bad)
					t.Errorf("validator complaint in the log: %q", log[max(0, i-600):min(len(log), i+300)])
				}
			}
		})
	}
}

// TestBlockedThreadsServeTogether: requests that block in I/O (sleep, with the
// GIL released) must run on every Python thread at once. The pool runs one
// thread while it computes and wakes the others only when it blocks, so this
// fails if that wake-up is lost: 8 requests of 1 s on 4 threads take 2 s, on
// one thread 8 s.
func TestBlockedThreadsServeTogether(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "4", app("slow/app.py"))
	began := time.Now()
	fanOut(t, 8, func(i int) error {
		resp, err := w.Client.Get(fmt.Sprintf("%s/sleep?1&b%d", w.URL, i))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("done b%d", i) {
			return fmt.Errorf("request %d: %d %q", i, resp.StatusCode, b)
		}
		return nil
	})
	took := time.Since(began)
	if took < 1900*time.Millisecond {
		t.Errorf("8 sleeps of 1 s on 4 threads took %v: more than 4 ran at once", took)
	}
	if took > 5*time.Second {
		t.Errorf("8 sleeps of 1 s on 4 threads took %v, want about 2 s: the threads did not serve together", took)
	}
}

// TestConcurrentInMemoryUploads: many concurrent bodies that stay in memory
// (up to --mem-body), each checked by its sha256. Their buffers are pinned
// for the Python thread and freed soon after, so the garbage collector runs
// constantly among them: a stale Go pointer in a C structure crashed the
// server here ("found bad pointer in Go heap").
func TestConcurrentInMemoryUploads(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "4", app("upload/app.py"))
	fanOut(t, 32, func(c int) error {
		for i := 0; i < 12; i++ {
			body := bytes.Repeat([]byte{byte(c), byte(i), 7}, (256<<10+c*4099+i*997)/3)
			if err := uploadAndCheck(w, body); err != nil {
				return fmt.Errorf("client %d request %d: %v", c, i, err)
			}
		}
		return nil
	})
	if strings.Contains(w.Stderr(), "fatal error") {
		t.Errorf("the server crashed:\n%s", w.Stderr())
	}
}

// fanOut runs f(0) ... f(n-1) at once and reports every error they return.
func fanOut(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTricklingBodiesDoNotStallOthers: bodies take room from a memory budget
// (2 x threads x --mem-body) before they are read. Clients that hold room
// while trickling their bodies must not stall the others: a body that finds
// no room within a second goes to a temp file instead of waiting for them.
func TestTricklingBodiesDoNotStallOthers(t *testing.T) {
	t.Parallel()
	// budget: 2 x 1 thread x 64 KiB = 128 KiB; two trickling bodies of 60000 hold 120000
	w := start(t, "--threads", "1", "--mem-body", "65536", app("upload/app.py"))
	for i := 0; i < 2; i++ {
		c := dialRaw(t, w.Addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + strings.Repeat("t", 100))
	}
	time.Sleep(200 * time.Millisecond) // let the server take their room
	body := bytes.Repeat([]byte("abcdefghij"), 6000)
	began := time.Now()
	if err := uploadAndCheck(w, body); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if took > 5*time.Second {
		t.Errorf("the upload took %v behind two trickling clients; want about 1 s (then a temp file)", took)
	}
	if took < 900*time.Millisecond {
		t.Errorf("the upload took %v: it did not wait for room behind two trickling clients (budget not applied?)", took)
	}
}

// uploadAndCheck posts body to the upload app and checks the length and
// sha256 it read.
func uploadAndCheck(w *wisp, body []byte) error {
	resp, err := w.Client.Post(w.URL+"/", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var r struct {
		Len    int    `json:"len"`
		SHA256 string `json:"sha256"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if err != nil || resp.StatusCode != 200 || r.Len != len(body) || r.SHA256 != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("status %d, len %d of %d, sha ok %v, %v",
			resp.StatusCode, r.Len, len(body), r.SHA256 == hex.EncodeToString(sum[:]), err)
	}
	return nil
}
