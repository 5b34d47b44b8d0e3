package e2e

// A static folder's holes (issue 19): an open redirect, dot files, range
// floods, a file asked for as a folder.

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// staticTree writes name -> content under dir.
func staticTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// staticGet sends target as it is (no client cleans it) and reads the answer.
func staticGet(t *testing.T, addr, target string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	c := dialRaw(t, addr)
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	c.send(b.String())
	resp, body, err := c.response("GET")
	if err != nil {
		t.Fatalf("GET %.80s: body: %v", target, err)
	}
	return resp, body
}

// `wisp run --static /=DIR --static /static=DIR`: a folder's redirect stays
// on this host whatever the path holds (//evil.com/%2e%2e answered
// Location: //evil.com/../); dot files are 404 but .well-known/ is served;
// 10,000 one-byte ranges get the whole file (200), two ranges still 206
// multipart; file.txt/ is 404.
func TestStaticSecurity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "public")
	file := strings.Repeat("0123456789", 2000) // larger than the 10,000 bytes the ranges add up to
	staticTree(t, dir, map[string]string{
		"index.html":          "root",
		"file.txt":            file,
		"evil.com/index.html": "a folder named like a host",
		".env":                "SECRET=e2e-dotenv",
		".git/config":         "[core] e2e-git",
		"sub/.htpasswd":       "e2e-htpasswd",
		".well-known/x":       "known",
	})
	w := start(t, "--static", "/="+dir, "--static", "/static="+dir)

	for _, target := range []string{"//evil.com/%2e%2e", "//evil.com/..", "//evil.com", "///evil.com", "/%2f%2fevil.com",
		"/%2F%2Fevil.com", `/\evil.com`, "/%5cevil.com", "/static//evil.com", "/static//evil.com/%2e%2e", "/static/%2f%2fevil.com"} {
		resp, _ := staticGet(t, w.Addr, target)
		loc := resp.Header.Get("Location")
		if loc != "" && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, `\`) || strings.Contains(loc, "..")) {
			t.Errorf("GET %s: %d Location %q leaves the host or the cleaned path", target, resp.StatusCode, loc)
		}
	}
	for target, want := range map[string]string{"//evil.com": "/evil.com/", "/static//evil.com": "/static/evil.com/", "/static": "/static/"} {
		if resp, _ := staticGet(t, w.Addr, target); resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d Location %q, want 301 %s", target, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	for _, target := range []string{"/.env", "/%2eenv", "/.git/config", "/sub/.htpasswd", "/static/.env", "/static/.git/config", "/evil.com/../.env"} {
		if resp, body := staticGet(t, w.Addr, target); resp.StatusCode != 404 || bytes.Contains(body, []byte("e2e-")) {
			t.Errorf("GET %s: %d %q, want 404", target, resp.StatusCode, body)
		}
	}
	for _, target := range []string{"/.well-known/x", "/static/.well-known/x"} {
		if resp, body := staticGet(t, w.Addr, target); resp.StatusCode != 200 || string(body) != "known" {
			t.Errorf("GET %s: %d %q, want 200 known", target, resp.StatusCode, body)
		}
	}

	overlapping := "bytes=" + strings.Repeat("0-0,", 9999) + "0-0" // the 40 KB request
	if resp, body := staticGet(t, w.Addr, "/file.txt", "Range", overlapping); resp.StatusCode != 200 || string(body) != file {
		t.Errorf("10,000 one-byte ranges: %d, %d bytes; want 200 with the whole file (%d bytes)", resp.StatusCode, len(body), len(file))
	}
	if resp, body := staticGet(t, w.Addr, "/file.txt", "Range", "bytes=0-5,3-8"); resp.StatusCode != 200 || string(body) != file {
		t.Errorf("overlapping ranges: %d, %d bytes; want 200 with the whole file", resp.StatusCode, len(body))
	}
	var many []string
	for i := 0; i < 17; i++ {
		many = append(many, strconv.Itoa(10*i)+"-"+strconv.Itoa(10*i))
	}
	if resp, body := staticGet(t, w.Addr, "/file.txt", "Range", "bytes="+strings.Join(many, ",")); resp.StatusCode != 200 || string(body) != file {
		t.Errorf("17 ranges: %d, %d bytes; want 200 with the whole file", resp.StatusCode, len(body))
	}
	if resp, body := staticGet(t, w.Addr, "/file.txt", "Range", "bytes=0-1,5-6"); resp.StatusCode != 206 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") || !bytes.Contains(body, []byte("\r\n\r\n01\r\n")) {
		t.Errorf("two ranges: %d %q, want 206 multipart", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, body := staticGet(t, w.Addr, "/file.txt", "Range", "bytes=10-19"); resp.StatusCode != 206 || string(body) != "0123456789" {
		t.Errorf("one range: %d %q, want 206", resp.StatusCode, body)
	}

	for _, target := range []string{"/file.txt/", "/static/file.txt/", "/index.html/"} {
		if resp, _ := staticGet(t, w.Addr, target); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", target, resp.StatusCode)
		}
	}
	if resp, body := staticGet(t, w.Addr, "/file.txt"); resp.StatusCode != 200 || string(body) != file {
		t.Errorf("GET /file.txt: %d", resp.StatusCode)
	}
}

const dotfilesConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.default]
python = "@PY@"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  static = "@DIR@/public"
  dotfiles = "allow"

  [[sites.vdirs]]
  path = "/strict"
  static = "@DIR@/public"
`

// A static vdir of wisp.toml with dotfiles = "allow" serves .env; one
// without the key does not; a bad value is a file:line error.
func TestStaticDotfilesKey(t *testing.T) {
	s := newPoolServer(t)
	staticTree(t, filepath.Join(s.Dir, "public"), map[string]string{".env": "SECRET=e2e-dotenv", ".well-known/x": "known"})
	s.writeConfig(t, strings.Replace(dotfilesConfig, `dotfiles = "allow"`, `dotfiles = "yes"`, 1))
	code, _, errOut := runWisp(t, time.Minute, s.Dir, "serve", "-c", s.Config, "--check-config")
	if code == 0 || !strings.Contains(errOut, "wisp.toml:16:3: sites[0].vdirs[0].dotfiles: must be \"deny\" or \"allow\"") {
		t.Errorf("dotfiles = \"yes\": exit %d\n%s", code, errOut)
	}
	s.writeConfig(t, dotfilesConfig)
	s.start(t)
	c := &http.Client{Timeout: 10 * time.Second}
	for path, want := range map[string]int{"/.env": 200, "/strict/.env": 404, "/strict/.well-known/x": 200} {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200) != (strings.Contains(string(body), "e2e-dotenv") || string(body) == "known") {
			t.Errorf("GET %s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
}
