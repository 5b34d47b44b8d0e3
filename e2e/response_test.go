package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContentLengthHonoured: a body shorter than its declared Content-Length
// must never look complete; a longer one must be cut at the declared length
// without corrupting the connection.
func TestContentLengthHonoured(t *testing.T) {
	t.Parallel()
	w := start(t, app("response/app.py"))

	t.Run("declared 100, sent 10", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /short-body HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body, err := c.response("GET")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if resp.ContentLength != 100 && len(resp.TransferEncoding) == 0 {
			t.Errorf("Content-Length %d, want the declared 100", resp.ContentLength)
		}
		if err == nil {
			t.Errorf("client read a complete-looking response (%d bytes %q, Content-Length %d); want a truncated body and a closed connection", len(body), body, resp.ContentLength)
		}
		if string(body) != "0123456789" {
			t.Errorf("body %q, want the 10 bytes sent", body)
		}
		if closed, _ := c.closedWithin(5 * time.Second); !closed {
			t.Errorf("connection still open after the short body")
		}
	})

	t.Run("declared 5, sent 11", func(t *testing.T) {
		// Either the response is cut at the declared 5 bytes, or (nothing
		// having been sent yet) the app's error becomes a 500. Never silence,
		// never the surplus.
		c := dialRaw(t, w.Addr)
		c.send("GET /long-body HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("no response at all (%v): the connection was closed without a status line", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			if err != nil || string(body) != "hello" {
				t.Errorf("body %q (err %v), want the declared 5 bytes \"hello\"", body, err)
			}
		case 500:
		default:
			t.Errorf("status %d, want 200 cut at 5 bytes, or 500", resp.StatusCode)
		}
		// The surplus must not be sent: the next bytes on this connection are
		// either nothing (closed) or the next response.
		c.send("GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		rest, _ := c.readUntilClosed(5 * time.Second)
		if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 200 ")) {
			t.Errorf("bytes after the declared length leaked onto the connection: %q", trunc(rest))
		}
	})
}

func bigStreamBody() []byte {
	var b bytes.Buffer
	for i := 0; i < 50; i++ {
		b.Write(bytes.Repeat([]byte{byte('A' + i%26)}, 8192))
	}
	return b.Bytes()
}

func TestChunkedResponse(t *testing.T) {
	t.Parallel()
	w := start(t, app("response/app.py"))
	want := bigStreamBody()

	t.Run("HTTP/1.1 streamed body without length is chunked", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /big-stream HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body, err := c.response("GET")
		if err != nil {
			t.Fatalf("reading chunked body: %v", err)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
		}
		if resp.Header.Get("Content-Length") != "" {
			t.Errorf("Content-Length %q alongside chunked", resp.Header.Get("Content-Length"))
		}
		if !bytes.Equal(body, want) {
			t.Errorf("body: %d bytes, want %d (content differs)", len(body), len(want))
		}
		// The connection stays usable.
		c.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body, err = c.response("GET")
		if err != nil || resp.StatusCode != 200 || string(body) != "tiny" {
			t.Errorf("next request on the connection: %d %q %v", resp.StatusCode, body, err)
		}
	})

	t.Run("HTTP/1.0 gets no chunked encoding", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /big-stream HTTP/1.0\r\n\r\n")
		resp, body, err := c.response("GET")
		if err != nil {
			t.Fatalf("reading body: %v", err)
		}
		if len(resp.TransferEncoding) != 0 {
			t.Errorf("Transfer-Encoding %q in a response to HTTP/1.0", resp.TransferEncoding)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("body: %d bytes, want %d", len(body), len(want))
		}
	})

	t.Run("small body without length", func(t *testing.T) {
		resp, body, err := exchange(t, w.Addr, "GET", "/small")
		if err != nil || string(body) != "tiny" {
			t.Errorf("body %q (err %v), want tiny", body, err)
		}
		if resp.ContentLength != 4 && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
			t.Errorf("neither Content-Length 4 nor chunked: %v %v", resp.ContentLength, resp.TransferEncoding)
		}
	})

	t.Run("empty blocks are skipped", func(t *testing.T) {
		_, body, err := exchange(t, w.Addr, "GET", "/empty-blocks")
		if err != nil || string(body) != "abcdef" {
			t.Errorf("body %q (err %v), want abcdef", body, err)
		}
	})

	t.Run("empty body", func(t *testing.T) {
		resp, body, err := exchange(t, w.Addr, "GET", "/empty")
		if err != nil || len(body) != 0 || resp.ContentLength != 0 {
			t.Errorf("body %q, Content-Length %d (err %v), want empty, 0", body, resp.ContentLength, err)
		}
	})

	t.Run("blocks are not delayed", func(t *testing.T) {
		// PEP 3333: the server must not delay a block while the app produces
		// the next one. The app sleeps 3 s after its first block.
		c := dialRaw(t, w.Addr)
		begin := time.Now()
		c.send("GET /slow-first HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := readResponseHead(c)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len("first;"))
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatalf("reading the first block: %v", err)
		}
		if elapsed := time.Since(begin); elapsed > 2*time.Second {
			t.Errorf("first block arrived after %v; it was held back while the app slept", elapsed.Round(time.Millisecond))
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(first)+string(rest) != "first;second" {
			t.Errorf("body %q (err %v), want first;second", string(first)+string(rest), err)
		}
	})
}

func TestHead(t *testing.T) {
	t.Parallel()
	w := start(t, app("response/app.py"))
	for _, path := range []string{"/head-target", "/head-stream"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			getResp, getBody, err := c.response("GET")
			if err != nil || len(getBody) == 0 {
				t.Fatalf("GET: %d bytes, err %v", len(getBody), err)
			}
			c.send("HEAD " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			headResp, _, _ := c.response("HEAD")
			// A body after the HEAD response would be parsed as the next
			// response's status line.
			c.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
			next, nextBody, err := c.response("GET")
			if err != nil || next.StatusCode != 200 || string(nextBody) != "tiny" {
				t.Errorf("request after HEAD: %d %q %v (a HEAD body leaked?)", next.StatusCode, nextBody, err)
			}
			if headResp.StatusCode != getResp.StatusCode {
				t.Errorf("HEAD status %d, GET %d", headResp.StatusCode, getResp.StatusCode)
			}
			for _, h := range []string{"Content-Type", "X-Custom", "Content-Length"} {
				if g, hd := getResp.Header.Get(h), headResp.Header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q; want the same headers", h, g, hd)
				}
			}
		})
	}
}

func TestNoBodyStatuses(t *testing.T) {
	t.Parallel()
	w := start(t, app("response/app.py"))
	for _, code := range []int{204, 304} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			c := dialRaw(t, w.Addr)
			c.send(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", code))
			resp, _, _ := c.response("GET")
			if resp.StatusCode != code {
				t.Fatalf("status %d, want %d", resp.StatusCode, code)
			}
			if resp.Header.Get("X-Case") != fmt.Sprint(code) {
				t.Errorf("X-Case %q: the app's headers were lost", resp.Header.Get("X-Case"))
			}
			if len(resp.TransferEncoding) != 0 {
				t.Errorf("Transfer-Encoding %q on a %d", resp.TransferEncoding, code)
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != "0" && code == 204 {
				t.Errorf("Content-Length %q on a 204", cl)
			}
			c.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
			next, nextBody, err := c.response("GET")
			if err != nil || next.StatusCode != 200 || string(nextBody) != "tiny" {
				t.Errorf("request after the %d: %d %q %v (its body leaked onto the wire?)", code, next.StatusCode, nextBody, err)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	w := start(t, app("response/app.py"))
	t.Run("repeated headers kept in order", func(t *testing.T) {
		resp, _, err := exchange(t, w.Addr, "GET", "/multi-header")
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; Path=/" {
			t.Errorf("Set-Cookie %q, want two separate headers a=1 then b=2", got)
		}
		got := strings.Join(resp.Header.Values("X-Order"), ",")
		if strings.ReplaceAll(got, " ", "") != "one,two" {
			t.Errorf("X-Order %q, want one then two", got)
		}
	})
	t.Run("latin-1 header value sent as latin-1 bytes", func(t *testing.T) {
		c := dialRaw(t, w.Addr)
		c.send("GET /latin1-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		raw, _ := c.readUntilClosed(5 * time.Second)
		if !bytes.Contains(raw, []byte("X-Latin: caf\xe9\r\n")) {
			t.Errorf("want the header line X-Latin: caf\\xe9 (latin-1), got:\n%q", trunc(raw))
		}
	})
}

func TestFileWrapper(t *testing.T) {
	t.Parallel()
	w := start(t, app("filewrap/app.py"))
	content := make([]byte, 3<<20+12345)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blob.bin")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(((i%256)*7 + 3) % 256)
		}
		return b
	}
	qp := url.QueryEscape(path)
	cases := []struct {
		name, method, target string
		want                 []byte
		length               int64 // -1: any framing
		closeKey             string
	}{
		{"real file", "GET", "/file?key=f1&path=" + qp, content, int64(len(content)), "f1"},
		{"real file without length", "GET", "/file?nolength=1&path=" + qp, content, -1, ""},
		{"real file from an offset, length-limited", "GET", "/file?seek=1000&length=5000&path=" + qp, content[1000:6000], 5000, ""},
		{"real file HEAD", "HEAD", "/file?key=f2&path=" + qp, nil, int64(len(content)), "f2"},
		{"BytesIO", "GET", "/bytesio?key=b1&size=100000", pattern(100000), 100000, "b1"},
		{"BytesIO without length", "GET", "/bytesio?nolength=1&size=100000", pattern(100000), -1, ""},
		{"read()-only object", "GET", "/readonly?key=r1&size=50000", pattern(50000), 50000, "r1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := exchange(t, w.Addr, tc.method, tc.target)
			if err != nil {
				t.Fatalf("status %d, reading body: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200; body %q", resp.StatusCode, trunc(body))
			}
			if tc.length >= 0 && resp.ContentLength != tc.length {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
			}
			if !bytes.Equal(body, tc.want) {
				t.Errorf("body: %d bytes sha %x, want %d bytes sha %x", len(body), sha256.Sum256(body), len(tc.want), sha256.Sum256(tc.want))
			}
			if tc.closeKey != "" {
				var n int
				eventually(5*time.Second, func() bool {
					var r struct{ Count int }
					w.getJSON(t, "/closed?key="+tc.closeKey, &r)
					n = r.Count
					return n > 0
				})
				if n != 1 {
					t.Errorf("the wrapped object's close() ran %d times, want once", n)
				}
			}
		})
	}
}

func TestAppException(t *testing.T) {
	t.Parallel()
	w := start(t, app("crash/app.py"))
	for _, path := range []string{"/raise", "/raise-after-start", "/raise-in-iter"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			marker := fmt.Sprintf("x%d", time.Now().UnixNano())
			resp, body := w.get(t, path+"?"+marker)
			if resp.StatusCode != 500 {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if bytes.Contains(body, []byte("Traceback")) || bytes.Contains(body, []byte(marker)) {
				t.Errorf("the traceback leaked into the response: %q", trunc(body))
			}
			if !w.waitStderr("e2e-boom-"+marker, 5*time.Second) {
				t.Errorf("the exception (e2e-boom-%s) is not in the log", marker)
			} else {
				log := w.Stderr()
				i := strings.Index(log, "e2e-boom-"+marker)
				if !strings.Contains(log[max(0, i-4000):min(len(log), i+len(marker)+200)], "Traceback") {
					t.Errorf("no traceback logged with the exception")
				}
			}
			resp, body = w.get(t, "/ok")
			if resp.StatusCode != 200 || string(body) != "ok\n" {
				t.Errorf("next request: %d %q, want 200 ok", resp.StatusCode, body)
			}
		})
	}
	for _, path := range []string{"/sys-exit", "/keyboard-interrupt"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			resp, _ := w.get(t, path)
			if resp.StatusCode != 500 {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			resp, body := w.get(t, "/ok")
			if resp.StatusCode != 200 || string(body) != "ok\n" {
				t.Errorf("next request: %d %q, want 200 ok (the server must survive it)", resp.StatusCode, body)
			}
		})
	}
	for _, path := range []string{"/raise-midstream", "/raise-midstream-length"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			marker := fmt.Sprintf("x%d", time.Now().UnixNano())
			c := dialRaw(t, w.Addr)
			c.send("GET " + path + "?" + marker + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body, err := c.response("GET")
			if resp.StatusCode != 200 {
				t.Errorf("status %d, want the 200 already sent", resp.StatusCode)
			}
			if len(body) == 0 {
				t.Errorf("the first block was not delivered")
			}
			if err == nil {
				t.Errorf("response completed cleanly with %d bytes; want the connection aborted", len(body))
			}
			if closed, _ := c.closedWithin(5 * time.Second); !closed {
				t.Errorf("connection left open after the aborted response")
			}
			if !w.waitStderr("e2e-boom-"+marker, 5*time.Second) {
				t.Errorf("the exception is not in the log")
			}
			resp, b := w.get(t, "/ok")
			if resp.StatusCode != 200 || string(b) != "ok\n" {
				t.Errorf("next request: %d %q, want 200 ok", resp.StatusCode, b)
			}
		})
	}
}
