package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
)

// rawEnviron sends one raw request to the environ app and decodes its report.
func rawEnviron(t *testing.T, w *wisp, request string) (envReply, *rawConn) {
	t.Helper()
	c := dialRaw(t, w.Addr)
	c.send(request)
	resp, body, err := c.response("GET")
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200; body %q", resp.StatusCode, trunc(body))
	}
	var r envReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("bad JSON %q: %v", trunc(body), err)
	}
	return r, c
}

func absentOrEmpty(t *testing.T, env map[string]string, key string) {
	t.Helper()
	if v, ok := env[key]; ok && v != "" {
		t.Errorf("%s = %q, want absent or empty", key, v)
	}
}

func wantEnv(t *testing.T, env map[string]string, key, want string) {
	t.Helper()
	got, ok := env[key]
	if !ok {
		t.Errorf("%s missing from environ, want %q", key, want)
	} else if got != want {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}

func TestEnvironBasics(t *testing.T) {
	t.Parallel()
	w := start(t, app("environ/app.py"))
	r, c := rawEnviron(t, w, "GET /some/path?x=%20y&a=b+c&z=%C3%A9 HTTP/1.1\r\nHost: "+w.Addr+"\r\nUser-Agent: e2e-agent\r\n\r\n")
	env := r.Environ
	_, localPort, _ := net.SplitHostPort(c.conn.LocalAddr().String())

	wantEnv(t, env, "REQUEST_METHOD", "GET")
	if v, ok := env["SCRIPT_NAME"]; ok && v != "" {
		t.Errorf("SCRIPT_NAME = %q, want '' for a root app", v)
	}
	wantEnv(t, env, "PATH_INFO", "/some/path")
	wantEnv(t, env, "QUERY_STRING", "x=%20y&a=b+c&z=%C3%A9") // raw, not decoded
	wantEnv(t, env, "SERVER_PROTOCOL", "HTTP/1.1")
	wantEnv(t, env, "SERVER_PORT", w.Port)
	if env["SERVER_NAME"] == "" {
		t.Errorf("SERVER_NAME missing or empty")
	}
	wantEnv(t, env, "REMOTE_ADDR", "127.0.0.1")
	wantEnv(t, env, "REMOTE_PORT", localPort)
	wantEnv(t, env, "HTTP_HOST", w.Addr)
	wantEnv(t, env, "HTTP_USER_AGENT", "e2e-agent")
	absentOrEmpty(t, env, "CONTENT_TYPE")
	absentOrEmpty(t, env, "CONTENT_LENGTH")
	for _, k := range []string{"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s present; PEP 3333 forbids it", k)
		}
	}
	wantEnv(t, env, "wsgi.version", "(1, 0)")
	wantEnv(t, env, "wsgi.url_scheme", "http")
	wantEnv(t, env, "wsgi.multithread", "True")
	wantEnv(t, env, "wsgi.multiprocess", "False")
	wantEnv(t, env, "wsgi.run_once", "False")
	for _, k := range []string{"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"} {
		if _, ok := env[k]; !ok {
			t.Errorf("%s missing from environ", k)
		}
	}
	for k, typ := range r.Types {
		if !strings.Contains(k, ".") && typ != "str" {
			t.Errorf("environ[%q] is a %s, want str (native string)", k, typ)
		}
	}
	if r.Types["wsgi.version"] != "tuple" {
		t.Errorf("wsgi.version is a %s, want tuple", r.Types["wsgi.version"])
	}
	for _, k := range []string{"wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"} {
		if r.Types[k] != "bool" {
			t.Errorf("%s is a %s, want bool", k, r.Types[k])
		}
	}
}

func TestEnvironPaths(t *testing.T) {
	t.Parallel()
	w := start(t, app("environ/app.py"))
	cases := []struct {
		name, target, path, query string
	}{
		{"root", "/", "/", ""},
		{"utf8 percent-encoded is latin-1 bytes in str", "/caf%C3%A9", "/caf\u00c3\u00a9", ""},
		{"space", "/a%20b/c", "/a b/c", ""},
		{"encoded question mark", "/x%3Fy?q=1", "/x?y", "q=1"},
		{"query kept raw", "/q?a=%26b&c=d%3De&e=%E2%82%AC+f", "/q", "a=%26b&c=d%3De&e=%E2%82%AC+f"},
		{"empty query after ?", "/e?", "/e", ""},
		{"high latin-1 bytes", "/%FF%80x", "/\u00ff\u0080x", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := rawEnviron(t, w, "GET "+tc.target+" HTTP/1.1\r\nHost: "+w.Addr+"\r\nConnection: close\r\n\r\n")
			wantEnv(t, r.Environ, "PATH_INFO", tc.path)
			if tc.query == "" {
				absentOrEmpty(t, r.Environ, "QUERY_STRING")
			} else {
				wantEnv(t, r.Environ, "QUERY_STRING", tc.query)
			}
		})
	}
}

func TestEnvironHeaders(t *testing.T) {
	t.Parallel()
	w := start(t, app("environ/app.py"))
	body := "hello"
	req := "POST /h HTTP/1.1\r\n" +
		"Host: example.test:8080\r\n" +
		"X-Multi: a\r\n" +
		"X-Multi: b\r\n" +
		"Cookie: a=1\r\n" +
		"Cookie: b=2\r\n" +
		"X-Evil: good\r\n" +
		"X_Evil: spoofed\r\n" +
		"X_Only_Underscore: spoofed\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: 5\r\n" +
		"\r\n" + body
	r, _ := rawEnviron(t, w, req)
	env := r.Environ
	wantEnv(t, env, "REQUEST_METHOD", "POST")
	wantEnv(t, env, "HTTP_HOST", "example.test:8080")
	if got := env["HTTP_X_MULTI"]; got != "a,b" && got != "a, b" {
		t.Errorf("HTTP_X_MULTI = %q, want the repeated header joined by ',' (\"a,b\")", got)
	}
	wantEnv(t, env, "HTTP_COOKIE", "a=1; b=2")
	wantEnv(t, env, "HTTP_X_EVIL", "good") // X_Evil must not be merged in or override it
	if v, ok := env["HTTP_X_ONLY_UNDERSCORE"]; ok {
		t.Errorf("HTTP_X_ONLY_UNDERSCORE = %q: a header name with '_' must not be passed (spoofing)", v)
	}
	wantEnv(t, env, "CONTENT_TYPE", "text/plain; charset=utf-8")
	wantEnv(t, env, "CONTENT_LENGTH", "5")
	for _, k := range []string{"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s present; PEP 3333 forbids it", k)
		}
	}
	sum := sha256.Sum256([]byte(body))
	if r.BodyLen != 5 || r.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("app read %d bytes (sha %s), want 5 (%x)", r.BodyLen, r.BodySHA256, sum)
	}
}

func TestEnvironHTTP10(t *testing.T) {
	t.Parallel()
	w := start(t, app("environ/app.py"))
	r, _ := rawEnviron(t, w, "GET /old?x=1 HTTP/1.0\r\n\r\n")
	wantEnv(t, r.Environ, "SERVER_PROTOCOL", "HTTP/1.0")
	wantEnv(t, r.Environ, "PATH_INFO", "/old")
	wantEnv(t, r.Environ, "QUERY_STRING", "x=1")
	wantEnv(t, r.Environ, "SERVER_PORT", w.Port)
	if r.Environ["SERVER_NAME"] == "" {
		t.Errorf("SERVER_NAME empty without a Host header; it must name the server")
	}
}

// TestEnvironChunkedBody: a chunked request body reaches the app with
// CONTENT_LENGTH set to its real length and wsgi.input_terminated True.
func TestEnvironChunkedBody(t *testing.T) {
	t.Parallel()
	w := start(t, app("environ/app.py"))
	for _, size := range []int{0, 1, 3000, 65536, 65537, 300_000, 3_000_000} { // in memory: the first 64 KiB, grown; spilled beyond --mem-body
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			var req strings.Builder
			req.WriteString("POST /chunked HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			for off := 0; off < len(data); off += 7000 {
				end := min(off+7000, len(data))
				fmt.Fprintf(&req, "%x\r\n%s\r\n", end-off, data[off:end])
			}
			req.WriteString("0\r\n\r\n")
			r, _ := rawEnviron(t, w, req.String())
			wantEnv(t, r.Environ, "CONTENT_LENGTH", fmt.Sprint(size))
			wantEnv(t, r.Environ, "wsgi.input_terminated", "True")
			sum := sha256.Sum256(data)
			if r.BodyLen != size || r.BodySHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("app read %d bytes (sha %s), want %d (%x)", r.BodyLen, r.BodySHA256, size, sum)
			}
		})
	}
}
