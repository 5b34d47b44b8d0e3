package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// inputBody has CRLF, a byte above 0x7f and no final newline.
const inputBody = "alpha\nbeta\r\ngamma\n\xffdelta"

func latin1(s string) string {
	// The app returns each part decoded as latin-1; map bytes to runes alike.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func TestInput(t *testing.T) {
	t.Parallel()
	w := start(t, app("input/app.py"))
	all := []string{"alpha\n", "beta\r\n", "gamma\n", "\xffdelta"}
	cases := []struct {
		path string
		want []string
	}{
		{"/read-n", []string{"alp", "ha\nb", "eta\r\ngamma\n\xffdelta", ""}},
		{"/read-all", []string{inputBody, ""}},
		{"/read-minus-one", []string{inputBody, ""}},
		{"/readline", []string{"alpha\n", "be", "ta\r\n", "gamma\n", "\xffdelta", ""}},
		{"/readlines", all},
		{"/iter", all},
		{"/mixed", []string{"alpha\n", "be", "ta\r\n", "gamma\n", "\xffdelta"}},
	}
	for _, framing := range []string{"content-length", "chunked"} {
		for _, tc := range cases {
			t.Run(framing+tc.path, func(t *testing.T) {
				req := mustRequest(t, "POST", w.URL+tc.path, strings.NewReader(inputBody))
				if framing == "chunked" {
					req.ContentLength = -1
					req.TransferEncoding = []string{"chunked"}
				}
				resp, body := w.do(t, req)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d, want 200; body %q", resp.StatusCode, trunc(body))
				}
				var got struct {
					Parts []string `json:"parts"`
					Types []string `json:"types"`
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("bad JSON %q: %v", trunc(body), err)
				}
				want := make([]string, len(tc.want))
				for i, s := range tc.want {
					want[i] = latin1(s)
				}
				if !reflect.DeepEqual(got.Parts, want) {
					t.Errorf("parts = %q\nwant    %q", got.Parts, want)
				}
				for i, typ := range got.Types {
					if typ != "bytes" {
						t.Errorf("part %d is a %s, want bytes", i, typ)
					}
				}
			})
		}
	}
}

// TestInputLarge iterates a 4 MB body line by line, sent with a length and chunked.
func TestInputLarge(t *testing.T) {
	t.Parallel()
	w := start(t, app("input/app.py"))
	var data bytes.Buffer
	lines := 0
	for data.Len() < 4<<20 {
		fmt.Fprintf(&data, "line %d %s\n", lines, strings.Repeat("z", lines%300))
		lines++
	}
	sum := sha256.Sum256(data.Bytes())
	for _, framing := range []string{"content-length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			req := mustRequest(t, "POST", w.URL+"/count", bytes.NewReader(data.Bytes()))
			if framing == "chunked" {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			resp, body := w.do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; body %q", resp.StatusCode, trunc(body))
			}
			var got struct {
				Lines  int    `json:"lines"`
				Len    int    `json:"len"`
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("bad JSON %q: %v", trunc(body), err)
			}
			if got.Lines != lines || got.Len != data.Len() || got.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("app saw %d lines, %d bytes, sha %s; want %d, %d, %x", got.Lines, got.Len, got.SHA256, lines, data.Len(), sum)
			}
		})
	}
}

func TestWsgiErrors(t *testing.T) {
	t.Parallel()
	w := start(t, app("errors/app.py"))
	marker := fmt.Sprintf("m%d", time.Now().UnixNano())
	resp, body := w.get(t, "/?"+marker)
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("status %d body %q, want 200 ok", resp.StatusCode, body)
	}
	for _, want := range []string{
		"e2e-errors-write " + marker,
		"e2e-errors-writelines-1 " + marker,
		"e2e-errors-writelines-2 " + marker,
	} {
		if !w.waitStderr(want, 5*time.Second) {
			t.Errorf("wsgi.errors output %q not in the server's error log", want)
		}
	}
	if strings.Contains(string(body), marker) {
		t.Errorf("wsgi.errors output leaked into the response")
	}
}

func TestStartResponseValidation(t *testing.T) {
	t.Parallel()
	w := start(t, app("badresponse/app.py"))
	cases := []string{
		"/status-abc",
		"/status-99",
		"/status-1000",
		"/status-bytes",
		"/status-int",
		"/status-crlf",
		"/header-value-int",
		"/header-name-bytes",
		"/header-value-bytes",
		"/header-non-latin1",
		"/header-crlf-value",
		"/header-lf-value",
		"/header-cr-value",
		"/header-crlf-name",
		"/header-colon-name",
		"/body-str",
		"/no-start-response",
		"/returns-none",
	}
	for _, path := range cases {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			// Raw, so that an injected header line cannot hide in a parser.
			c := dialRaw(t, w.Addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			raw, _ := c.readUntilClosed(15 * time.Second)
			head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 500 ") {
				first, _, _ := strings.Cut(head, "\r\n")
				t.Errorf("status line %q, want HTTP/1.1 500", first)
			}
			if strings.Contains(strings.ToLower(head), "x-injected") {
				t.Errorf("header injection reached the wire:\n%s", head)
			}
			if strings.Contains(string(raw), "the app believes this is fine") {
				t.Errorf("the invalid response's body was sent")
			}
		})
	}
	resp, body := w.get(t, "/ok")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("after the bad responses: GET /ok = %d %q, want 200 ok", resp.StatusCode, body)
	}
}

// exchange does one request on a fresh connection and reads the response,
// reporting how reading the body ended.
func exchange(t *testing.T, addr, method, target string) (*http.Response, []byte, error) {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
	return c.response(method)
}

func TestExcInfo(t *testing.T) {
	t.Parallel()
	w := start(t, app("excinfo/app.py"))
	state := func(t *testing.T, key string) string {
		var s struct {
			State *string `json:"state"`
		}
		w.getJSON(t, "/state?"+key, &s)
		if s.State == nil {
			return "<not reached>"
		}
		return *s.State
	}

	t.Run("second call without exc_info is an error", func(t *testing.T) {
		resp, body := w.get(t, "/double?double")
		if resp.StatusCode != 500 {
			t.Errorf("status %d body %q, want 500", resp.StatusCode, trunc(body))
		}
		if s := state(t, "double"); s != "raised" {
			t.Errorf("second start_response without exc_info: %s, want it to raise", s)
		}
	})

	t.Run("exc_info before the body replaces status and headers", func(t *testing.T) {
		resp, body := w.get(t, "/replace")
		if resp.StatusCode != 503 || string(body) != "replaced\n" {
			t.Errorf("got %d %q, want 503 \"replaced\\n\"", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Second") != "1" {
			t.Errorf("X-Second missing: the second call's headers must be used")
		}
		if resp.Header.Get("X-First") != "" {
			t.Errorf("X-First present: the first call's headers must be discarded")
		}
	})

	for _, tc := range []struct{ name, path string }{
		{"exc_info after a yielded block re-raises and aborts", "/after-headers"},
		{"exc_info after write re-raises and aborts", "/after-write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.TrimPrefix(tc.path, "/")
			resp, body, err := exchange(t, w.Addr, "GET", tc.path+"?"+key)
			if resp.StatusCode != 200 {
				t.Errorf("status %d, want the 200 that was already sent", resp.StatusCode)
			}
			if !strings.HasPrefix(string(body), "first-block\n") {
				t.Errorf("body %q, want it to start with the first block", trunc(body))
			}
			if err == nil {
				t.Errorf("response completed cleanly (body %q); want the connection aborted (truncated body)", trunc(body))
			}
			if strings.Contains(string(body), "after start_response") {
				t.Errorf("data produced after the failed start_response was sent")
			}
			if s := state(t, key); s != "reraised" {
				t.Errorf("start_response(exc_info) after headers were sent: %s, want it to re-raise", s)
			}
		})
	}
}

func TestWriteCallable(t *testing.T) {
	t.Parallel()
	w := start(t, app("write/app.py"))
	var big bytes.Buffer
	for i := 0; i < 100; i++ {
		big.Write(bytes.Repeat([]byte{byte('a' + i%26)}, 10000))
	}
	cases := []struct {
		path, want string
		length     int64 // expected Content-Length, -1: any
	}{
		{"/basic", "hello world!", -1},
		{"/with-length", "hello world!", 12},
		{"/big", big.String(), -1},
		{"/then-iter", "abc", -1},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			resp, body, err := exchange(t, w.Addr, "GET", tc.path)
			if err != nil {
				t.Fatalf("reading body: %v", err)
			}
			if resp.StatusCode != 200 || string(body) != tc.want {
				t.Errorf("got %d, %d bytes %q, want 200, %d bytes", resp.StatusCode, len(body), trunc(body), len(tc.want))
			}
			if tc.length >= 0 && resp.ContentLength != tc.length {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
			}
		})
	}
}

// closeCount asks the close app how many times close() ran for key.
func closeCount(t *testing.T, w *wisp, key string) (count, served int) {
	t.Helper()
	var r struct {
		Count  int `json:"count"`
		Served int `json:"served"`
	}
	w.getJSON(t, "/closed?"+key, &r)
	return r.Count, r.Served
}

// waitClosed waits until close() ran for key, then checks it ran exactly once.
func waitClosed(t *testing.T, w *wisp, key string, d time.Duration) {
	t.Helper()
	var n int
	eventually(d, func() bool { n, _ = closeCount(t, w, key); return n > 0 })
	if n == 0 {
		t.Errorf("close() was not called on the response iterable (waited %v)", d)
		return
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ = closeCount(t, w, key); n != 1 {
		t.Errorf("close() called %d times, want exactly once", n)
	}
}

func TestCloseAlwaysCalled(t *testing.T) {
	t.Parallel()
	w := start(t, app("close/app.py"))
	cases := []struct {
		name, method, path string
		status             int  // 0: any (framing is tested elsewhere)
		bodyOK             bool // the body must be read without error
	}{
		{"normal", "GET", "/normal", 200, true},
		{"head", "HEAD", "/normal", 200, true},
		{"no length", "GET", "/nolength", 200, true},
		{"iterator raises mid-stream", "GET", "/raise-midstream", 0, false},
		{"iterator raises at once", "GET", "/raise-first", 500, true},
		{"204 with a body", "GET", "/no-content", 204, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("case%d", i)
			resp, body, err := exchange(t, w.Addr, tc.method, tc.path+"?"+key)
			if tc.status != 0 && resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.bodyOK && err != nil {
				t.Errorf("reading body: %v", err)
			}
			_ = body
			waitClosed(t, w, key, 5*time.Second)
		})
	}

	t.Run("client disconnects mid-stream", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /stream?gone HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 200_000)
		if _, err := io.ReadAtLeast(c.br, buf, len(buf)); err != nil {
			t.Fatalf("reading the start of the stream: %v", err)
		}
		c.conn.Close()
		waitClosed(t, w, "gone", 10*time.Second)
		_, served := closeCount(t, w, "gone")
		if served >= 1024 {
			t.Errorf("the server iterated all %d blocks for a client that had gone", served)
		}
	})

	t.Run("client gone before the app returns", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /late?late HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(200 * time.Millisecond)
		c.conn.Close()
		waitClosed(t, w, "late", 10*time.Second)
	})
}
