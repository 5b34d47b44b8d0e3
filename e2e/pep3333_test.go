package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartResponseExcInfoKeyword: PEP 3333 names start_response's third
// parameter exc_info; giving it by keyword works like giving it by position,
// and any other keyword is a TypeError the app can catch.
func TestStartResponseExcInfoKeyword(t *testing.T) {
	t.Parallel()
	w := start(t, app("pep3333/app.py"))
	resp, body := w.get(t, "/kw-replace")
	if resp.StatusCode != 503 || resp.Header.Get("X-Second") != "1" || string(body) != "replaced\n" {
		t.Errorf("/kw-replace: status %d, X-Second %q, body %q; want 503, 1, replaced", resp.StatusCode, resp.Header.Get("X-Second"), trunc(body))
	}
	resp, body = w.get(t, "/kw-none")
	if resp.StatusCode != 200 || string(body) != "kw-none\n" {
		t.Errorf("/kw-none: status %d, body %q", resp.StatusCode, trunc(body))
	}
	resp, body = w.get(t, "/kw-bad")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "TypeError:") {
		t.Errorf("/kw-bad: status %d, body %q; want a TypeError", resp.StatusCode, trunc(body))
	}
}

// TestHopByHopHeaderIsFatal: a hop-by-hop header from the app is a fatal
// error (PEP 3333): start_response raises (the app may catch it), and if the
// app does not, the client gets a 500 and the log names the header.
func TestHopByHopHeaderIsFatal(t *testing.T) {
	t.Parallel()
	w := start(t, app("pep3333/app.py"))
	names := []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
		"Trailer", "Trailers", "transfer-encoding", "Upgrade", "Proxy-Connection"}
	for _, name := range names {
		resp, body := w.get(t, "/hop?"+name)
		if resp.StatusCode != 500 {
			t.Errorf("hop-by-hop %s: status %d, body %q; want 500", name, resp.StatusCode, trunc(body))
		}
		if !w.waitStderr("hop-by-hop header '"+name+"'", 5*time.Second) {
			t.Errorf("hop-by-hop %s: no log line naming it:\n%s", name, tail(w.Stderr(), 10))
		}
	}
	resp, body := w.get(t, "/hop-caught?Keep-Alive")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "caught: ") || !strings.Contains(string(body), "Keep-Alive") {
		t.Errorf("/hop-caught: status %d, body %q; want the app to catch the error", resp.StatusCode, trunc(body))
	}
	if resp, body := w.get(t, "/hop?X-Keep-Alive-Not"); resp.StatusCode != 200 {
		t.Errorf("an ordinary header: status %d, body %q", resp.StatusCode, trunc(body))
	}
}

// TestBadContentLengthErrorHasOwnHeadersOnly: an invalid or repeated
// Content-Length from the app is a 500 that carries none of the app's other
// headers (its Set-Cookie, its two Content-Types).
func TestBadContentLengthErrorHasOwnHeadersOnly(t *testing.T) {
	t.Parallel()
	w := start(t, app("pep3333/app.py"))
	for _, path := range []string{"/bad-length?abc", "/bad-length?-1", "/two-lengths"} {
		c := dialRaw(t, w.Addr)
		c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body, _ := c.response("GET")
		if resp.StatusCode != 500 {
			t.Errorf("%s: status %d, want 500", path, resp.StatusCode)
		}
		if v := resp.Header.Values("Set-Cookie"); len(v) > 0 {
			t.Errorf("%s: the 500 carries the app's Set-Cookie %q", path, v)
		}
		if v := resp.Header.Values("Content-Type"); len(v) != 1 || !strings.HasPrefix(v[0], "text/plain") {
			t.Errorf("%s: the 500's Content-Type is %q, want its own text/plain only", path, v)
		}
		if strings.Contains(string(body), "body") {
			t.Errorf("%s: the 500 carries the app's body %q", path, trunc(body))
		}
	}
}

// TestFileWrapperCompressedFile: wsgi.file_wrapper over a gzip.GzipFile
// (bz2, lzma), which has a fileno() too, sends the decompressed bytes it
// reads, not the compressed file through sendfile.
func TestFileWrapperCompressedFile(t *testing.T) {
	t.Parallel()
	plainText := strings.Repeat("wisp sends what the file-like object reads\n", 2000)
	dir := t.TempDir()
	files := map[string]string{}
	for _, kind := range []string{"gzip", "bz2", "lzma"} {
		p := filepath.Join(dir, "data."+kind)
		script := "import sys, " + kind + "\nwith " + kind + ".open(sys.argv[1], 'wb') as f: f.write(sys.stdin.buffer.read())\n"
		cmd := exec.Command(python, "-c", script, p)
		cmd.Stdin = strings.NewReader(plainText)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", p, err, out)
		}
		files[kind] = p
	}
	w := start(t, app("pep3333/app.py"))
	for kind, p := range files {
		resp, body := w.get(t, "/"+kind+"?"+p)
		if resp.StatusCode != 200 || string(body) != plainText {
			t.Errorf("%s: status %d, %d bytes (%q...), want the %d decompressed bytes", kind, resp.StatusCode, len(body), trunc(body), len(plainText))
		}
	}
}
