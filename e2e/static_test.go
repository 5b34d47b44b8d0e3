package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A static folder as a vdir (--static, and static = in wisp.toml): 200 with
// ETag and Cache-Control, 304 on If-None-Match, 206 for a range and for
// several, the precompressed sibling when the client takes gzip, index.html
// for a folder and no listing, and every escape refused: "..", encoded
// forms, a symlink out of the folder.
func TestStaticFolder(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "public")
	os.MkdirAll(filepath.Join(dir, "css"), 0o755)
	os.MkdirAll(filepath.Join(dir, "docs"), 0o755)
	body := bytes.Repeat([]byte("0123456789"), 100)
	os.WriteFile(filepath.Join(dir, "app.js"), body, 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "app.js.gz"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "css", "site.css"), []byte("body{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "docs", "index.html"), []byte("<h1>docs</h1>"), 0o644)
	os.WriteFile(filepath.Join(base, "secret.txt"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(dir, "out.txt"))
	os.Symlink(filepath.Join(dir, "css", "site.css"), filepath.Join(dir, "in.css"))

	for _, extra := range [][]string{nil, {"-w", "1"}} {
		// a static vdir imports nothing: the check passes
		if code, out, errOut := runWisp(t, time.Minute, "", append([]string{"run", "--check-config", "--python", python,
			app("pool_app/app.py"), "--static", "/static=" + dir}, extra...)...); code != 0 {
			t.Errorf("%v --check-config with a static vdir: exit %d\n%s%s", extra, code, out, errOut)
		}
		w := start(t, append([]string{app("pool_app/app.py"), "--static", "/static=" + dir}, extra...)...)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true, Proxy: nil}}
		do := func(path string, hdr ...string) (*http.Response, []byte) {
			t.Helper()
			req, _ := http.NewRequest("GET", w.URL+path, nil)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%v GET %s: %v", extra, path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, b
		}
		resp, b := do("/static/app.js")
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || !bytes.Equal(b, body) || etag == "" || resp.Header.Get("Last-Modified") == "" ||
			!strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
			t.Fatalf("%v app.js: %d %q etag %q", extra, resp.StatusCode, resp.Header, etag)
		}
		if resp, _ := do("/static/app.js", "If-None-Match", etag); resp.StatusCode != 304 {
			t.Errorf("%v If-None-Match: %d, want 304", extra, resp.StatusCode)
		}
		if resp, b := do("/static/app.js", "Range", "bytes=10-19"); resp.StatusCode != 206 || string(b) != "0123456789" {
			t.Errorf("%v Range: %d %q", extra, resp.StatusCode, b)
		}
		if resp, _ := do("/static/app.js", "Range", "bytes=0-1,5-6"); resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Errorf("%v multi-range: %d %q", extra, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp, b := do("/static/app.js", "Accept-Encoding", "gzip, br;q=0"); resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(b, gz.Bytes()) {
			t.Errorf("%v precompressed: %d %q (%d bytes)", extra, resp.StatusCode, resp.Header.Get("Content-Encoding"), len(b))
		}
		if resp, b := do("/static/docs/"); resp.StatusCode != 200 || string(b) != "<h1>docs</h1>" {
			t.Errorf("%v index.html: %d %q", extra, resp.StatusCode, b)
		}
		if resp, _ := do("/static/css/"); resp.StatusCode != 404 {
			t.Errorf("%v a folder without index.html: %d, want 404 (no listing)", extra, resp.StatusCode)
		}
		if resp, b := do("/static/in.css"); resp.StatusCode != 200 || string(b) != "body{}" {
			t.Errorf("%v a symlink inside the folder: %d %q", extra, resp.StatusCode, b)
		}
		if resp, _ := do("/static/out.txt"); resp.StatusCode != 404 {
			t.Errorf("%v a symlink out of the folder: %d, want 404", extra, resp.StatusCode)
		}
		// escapes, sent raw so that no client cleans them first
		for _, target := range []string{"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt",
			"/static/css/..%2f..%2fsecret.txt", "/static/..%5csecret.txt", "/static/%00"} {
			conn, err := net.Dial("tcp", w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
			raw, _ := io.ReadAll(conn)
			conn.Close()
			if bytes.Contains(raw, []byte("secret")) && !bytes.Contains(raw, []byte("404")) && !bytes.Contains(raw, []byte("400")) {
				t.Errorf("%v %s escaped the folder:\n%s", extra, target, raw)
			}
			if bytes.Contains(raw, []byte("\r\n\r\nsecret")) {
				t.Errorf("%v %s served the secret", extra, target)
			}
		}
		if code, _ := get(w.Client, w.URL+"/info"); code != 200 {
			t.Errorf("%v the app beside the static vdir: %d", extra, code)
		}
	}
}
