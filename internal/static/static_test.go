package static

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// folder makes a static folder: a file, a sub-folder with and without
// index.html, a folder named like a host, dot files and .well-known.
func folder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"file.txt":             strings.Repeat("0123456789", 2000),
		"index.html":           "root",
		"docs/index.html":      "docs",
		"evil.com/index.html":  "evil",
		".env":                 "SECRET=1",
		".git/config":          "[core]",
		"sub/.htpasswd":        "x",
		".well-known/x":        "known",
		".well-known/.hidden":  "hidden",
		"a b/index.html":       "spaced",
		"sub/.well-known/keep": "nested",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func serve(t *testing.T, h http.Handler, rawPath string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "http://x"+rawPath, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A folder asked for without its '/' is redirected to the cleaned path on
// this host, whatever the request's path holds.
func TestRedirectStaysOnHost(t *testing.T) {
	dir := folder(t)
	for _, prefix := range []string{"", "/static"} {
		h, err := Handler(dir, prefix, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ path, want string }{
			{"/docs", "/docs/"},
			{"//evil.com", "/evil.com/"},
			{"///evil.com", "/evil.com/"},
			{"//evil.com/%2e%2e", ""}, // names the root as a folder: served
			{"//evil.com/..", ""},
			{"/%2f%2fevil.com", "/evil.com/"},
			{"/a%20b", "/a%20b/"},
			{"/docs?q=1", "/docs/?q=1"},
			{"/x/../docs", "/docs/"},
		} {
			w := serve(t, h, prefix+c.path)
			loc := w.Header().Get("Location")
			if c.want == "" {
				if loc != "" || w.Code == http.StatusMovedPermanently {
					t.Errorf("%q%s: %d Location %q, want no redirect", prefix, c.path, w.Code, loc)
				}
				continue
			}
			if w.Code != http.StatusMovedPermanently || loc != prefix+c.want {
				t.Errorf("%q%s: %d Location %q, want 301 %q", prefix, c.path, w.Code, loc, prefix+c.want)
			}
			if strings.HasPrefix(loc, "//") || strings.Contains(loc, `\`) {
				t.Errorf("%q%s: Location %q leaves the host", prefix, c.path, loc)
			}
		}
		if w := serve(t, h, prefix); prefix != "" && (w.Code != 301 || w.Header().Get("Location") != prefix+"/") {
			t.Errorf("%q: %d %q, want 301 to %s/", prefix, w.Code, w.Header().Get("Location"), prefix)
		}
		if w := serve(t, h, prefix+`/\evil.com`); w.Code != 400 {
			t.Errorf(`%q/\evil.com: %d, want 400`, prefix, w.Code)
		}
	}
}

// Dot files are 404 by default, .well-known/ at the root excepted;
// AllowDotfiles serves them.
func TestDotfiles(t *testing.T) {
	dir := folder(t)
	deny, _ := Handler(dir, "", Options{})
	allow, _ := Handler(dir, "", Options{AllowDotfiles: true})
	for _, c := range []struct {
		path        string
		deny, allow int
	}{
		{"/.env", 404, 200},
		{"/%2eenv", 404, 200},
		{"/.git/config", 404, 200},
		{"/.git", 404, 301},
		{"/sub/.htpasswd", 404, 200},
		{"/docs/../.env", 404, 200},
		{"/.nothere", 404, 404},
		{"/.well-known/x", 200, 200},
		{"/.well-known/.hidden", 404, 200},
		{"/sub/.well-known/keep", 404, 200},
		{"/file.txt", 200, 200},
	} {
		if w := serve(t, deny, c.path); w.Code != c.deny {
			t.Errorf("deny %s: %d, want %d", c.path, w.Code, c.deny)
		}
		if w := serve(t, allow, c.path); w.Code != c.allow {
			t.Errorf("allow %s: %d, want %d", c.path, w.Code, c.allow)
		}
	}
}

// A file asked for as a folder is not served.
func TestFileAsFolder(t *testing.T) {
	h, _ := Handler(folder(t), "/static", Options{})
	for _, p := range []string{"/static/file.txt/", "/static/file.txt/.", "/static/index.html/"} {
		if w := serve(t, h, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	for _, p := range []string{"/static/", "/static/docs/", "/static/file.txt"} {
		if w := serve(t, h, p); w.Code != 200 {
			t.Errorf("%s: %d, want 200", p, w.Code)
		}
	}
}

// Too many, overlapping or oversized ranges get the whole file (200); sane
// ones still get 206.
func TestRanges(t *testing.T) {
	h, _ := Handler(folder(t), "", Options{})
	size := 20000
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("%d-%d", 2*i, 2*i)
	}
	for _, c := range []struct {
		rng  string
		code int
	}{
		{"bytes=0-0", 206},
		{"bytes=0-1,5-6", 206},
		{"bytes=0-1, 2-3", 206},
		{"bytes=-100", 206},
		{"bytes=19990-", 206},
		{"bytes=" + strings.Join(many[:MaxRanges], ","), 206},
		{"bytes=" + strings.Join(many[:MaxRanges+1], ","), 200},
		{"bytes=" + strings.Join(many, ","), 200},
		{"bytes=" + strings.Repeat("0-0,", 20) + "0-0", 200},
		{"bytes=0-5,3-8", 200},
		{"bytes=10-19,0-10", 200},
		{"bytes=0-,-1", 200},
		{"bytes=100-200,0-50", 206},
	} {
		w := serve(t, h, "/file.txt", "Range", c.rng)
		if w.Code != c.code {
			t.Errorf("Range %.60s: %d, want %d", c.rng, w.Code, c.code)
		}
		if c.code == 200 && w.Body.Len() != size {
			t.Errorf("Range %.60s: %d bytes, want the whole file (%d)", c.rng, w.Body.Len(), size)
		}
	}
}

// FuzzLocation: whatever the decoded path, a redirect's Location is a path
// of this host: one leading '/', no '\', no ".." segment.
func FuzzLocation(f *testing.F) {
	dir := fuzzFolder(f)
	for _, p := range []string{"//evil.com/..", "//evil.com", "/\\evil.com", "///evil.com", "/static//evil.com/..", "/docs", "/a b"} {
		f.Add(p)
	}
	hs := map[string]http.Handler{}
	for _, prefix := range []string{"", "/static"} {
		h, err := Handler(dir, prefix, Options{})
		if err != nil {
			f.Fatal(err)
		}
		hs[prefix] = h
	}
	f.Fuzz(func(t *testing.T, p string) {
		for prefix, h := range hs {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.Path = prefix + p
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			loc := w.Header().Get("Location")
			if loc == "" {
				continue
			}
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\r\n") ||
				strings.Contains(loc+"/", "/../") || strings.Contains(loc, "/./") {
				t.Fatalf("%q%q: Location %q", prefix, p, loc)
			}
		}
	})
}

// fuzzFolder is a folder of sub-folders for a fuzz target.
func fuzzFolder(f *testing.F) string {
	dir := f.TempDir()
	for _, d := range []string{"evil.com", "docs", "a b", "x/y"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

// FuzzSane: any Range header is judged without a panic, and more than
// MaxRanges ranges are never sane.
func FuzzSane(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-1,5-6", "bytes=-5", "bytes=5-", "bytes=0-5,3-8", "bytes=a-b", "bytes=,,", "bytes=9-1"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
		}
		ok := sane(header, size)
		if spec, isBytes := strings.CutPrefix(header, "bytes="); isBytes && len(strings.Split(spec, ",")) > MaxRanges && ok {
			t.Fatalf("sane(%q) with more than %d ranges", header, MaxRanges)
		}
	})
}
