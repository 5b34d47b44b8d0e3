package e2e

// Issue 19, points 4 and 5: which forwarding headers a trusted proxy's
// client is read from, and a request forwarded to another pool arriving as
// it came.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// environFrom GETs target (a raw path and query, sent as they are) from the
// server at base with the headers given and returns the app's environ
// (testdata/apps/environ).
func environFrom(t *testing.T, c *http.Client, base, target string, hdr map[string]string) map[string]string {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(target, "?")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", target, resp.StatusCode)
	}
	var out struct{ Environ map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return out.Environ
}

// From a trusted proxy, only the family of forwarding headers the operator
// chose (--forwarded-headers, [server] forwarded_headers; x-forwarded by
// default) gives REMOTE_ADDR and wsgi.url_scheme. A proxy such as nginx
// appends to X-Forwarded-For and passes the client's own Forwarded
// through: that one must change nothing, and the other way round.
func TestForwardedHeadersFamily(t *testing.T) {
	t.Parallel()
	both := map[string]string{"Forwarded": "for=6.6.6.6;proto=https", "X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}
	onlyForwarded := map[string]string{"Forwarded": "for=6.6.6.6;proto=https"}
	onlyX := map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}
	forwardedNoProto := map[string]string{"Forwarded": "for=6.6.6.6", "X-Forwarded-Proto": "https"}
	for _, tc := range []struct {
		args []string
		hdr  map[string]string
		addr string
		sch  string
	}{
		{nil, both, "1.2.3.4", "https"},
		{nil, onlyForwarded, "127.0.0.1", "http"},
		{nil, onlyX, "1.2.3.4", "https"},
		{[]string{"--forwarded-headers", "x-forwarded"}, onlyForwarded, "127.0.0.1", "http"},
		{[]string{"--forwarded-headers", "forwarded"}, both, "6.6.6.6", "https"},
		{[]string{"--forwarded-headers", "forwarded"}, onlyX, "127.0.0.1", "http"},
		{[]string{"--forwarded-headers", "forwarded"}, forwardedNoProto, "6.6.6.6", "http"},
	} {
		for _, mode := range [][]string{nil, {"-w", "1"}} {
			args := append([]string{app("environ/app.py"), "--forwarded-allow-ips", "127.0.0.1"}, tc.args...)
			w := start(t, append(args, mode...)...)
			env := environFrom(t, w.Client, w.URL, "/", tc.hdr)
			w.stop()
			if env["REMOTE_ADDR"] != tc.addr || env["wsgi.url_scheme"] != tc.sch {
				t.Errorf("%v %v, headers %v: REMOTE_ADDR %q, wsgi.url_scheme %q; want %q, %q",
					tc.args, mode, tc.hdr, env["REMOTE_ADDR"], env["wsgi.url_scheme"], tc.addr, tc.sch)
			}
			// the headers themselves reach the app untouched
			for k, v := range tc.hdr {
				if got := env["HTTP_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))]; got != v {
					t.Errorf("%v %v: %s reached the app as %q, want %q", tc.args, mode, k, got, v)
				}
			}
		}
	}
	code, _, stderr := runWisp(t, 30*time.Second, t.TempDir(), "run", "--forwarded-headers", "x-forwarded-for", "--check-config", app("environ/app.py"))
	if code == 0 || !strings.Contains(stderr, `"x-forwarded" or "forwarded"`) {
		t.Errorf("--forwarded-headers x-forwarded-for: exit %d, stderr %q; want a usage error naming the accepted values", code, stderr)
	}
}

// A vdir in another pool sees the request the accepting pool's app would
// have seen: the raw query (not re-encoded: a=1;x=2&b=%zz survives), the
// client's address and scheme from the trusted proxy's headers, and the
// same headers, its X-Forwarded-* and Forwarded among them.
func TestForwardedAcrossPools(t *testing.T) {
	t.Parallel()
	for _, family := range []string{"x-forwarded", "forwarded"} {
		key := `forwarded_headers = "forwarded"`
		if family == "x-forwarded" {
			key = "" // the default
		}
		s := serve(t, twoPoolsConfig("trusted_proxies = [\"127.0.0.1\"]\n"+key, "environ/app.py"))
		s.readyWorkers(t, "front", 1)
		s.readyWorkers(t, "side", 1)
		hdr := map[string]string{
			"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.test",
			"Forwarded": "for=6.6.6.6;proto=https", "X-Custom": "a, b", "X-Wisp-Remote-Addr": "9.9.9.9",
		}
		const query = "a=1;x=2&b=%zz"
		direct := environFrom(t, s.Client, s.URL, "/y/?"+query, hdr)
		forwarded := environFrom(t, s.Client, s.URL, "/x/?"+query, hdr)
		if forwarded["SCRIPT_NAME"] != "/x" || direct["SCRIPT_NAME"] != "" {
			t.Fatalf("%s: SCRIPT_NAME %q (forwarded) and %q (direct): the routes are not what the test expects", family, forwarded["SCRIPT_NAME"], direct["SCRIPT_NAME"])
		}
		want := map[string]string{"QUERY_STRING": query, "REMOTE_ADDR": "1.2.3.4", "wsgi.url_scheme": "https", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
		if family == "forwarded" {
			want["REMOTE_ADDR"] = "6.6.6.6"
		}
		for k, v := range want {
			if direct[k] != v || forwarded[k] != v {
				t.Errorf("%s: %s is %q directly and %q forwarded; want %q", family, k, direct[k], forwarded[k], v)
			}
		}
		// everything else of CGI is the same, but for what the mount splits
		skip := map[string]bool{"SCRIPT_NAME": true, "PATH_INFO": true, "REQUEST_URI": true, "RAW_URI": true}
		keys := map[string]bool{}
		for k := range direct {
			keys[k] = true
		}
		for k := range forwarded {
			keys[k] = true
		}
		for k := range keys {
			if skip[k] || (strings.HasPrefix(k, "wsgi.") && k != "wsgi.url_scheme") {
				continue
			}
			dv, dok := direct[k]
			fv, fok := forwarded[k]
			if dv != fv || dok != fok {
				t.Errorf("%s: %s is %q (set %v) directly, %q (set %v) forwarded", family, k, dv, dok, fv, fok)
			}
		}
		if forwarded["REQUEST_URI"] != "/x/?"+query {
			t.Errorf("%s: REQUEST_URI %q forwarded, want /x/?%s", family, forwarded["REQUEST_URI"], query)
		}
		// the raw path goes as it came, even one that does not decode
		const path = "/a%2Fb%zz;p=1"
		d := environFrom(t, s.Client, s.URL, "/y"+path, nil)
		f := environFrom(t, s.Client, s.URL, "/x"+path, nil)
		if f["REQUEST_URI"] != "/x"+path || f["PATH_INFO"] != strings.TrimPrefix(d["PATH_INFO"], "/y") {
			t.Errorf("%s: GET /x%s forwarded: REQUEST_URI %q, PATH_INFO %q; want /x%s and %q (as directly, less /y)",
				family, path, f["REQUEST_URI"], f["PATH_INFO"], path, strings.TrimPrefix(d["PATH_INFO"], "/y"))
		}
		s.stop()
	}
}

// TestForwardedStatusLine: a vdir in another pool answers with its app's own
// status line, reason phrase included, as a vdir of the accepting pool does.
func TestForwardedStatusLine(t *testing.T) {
	t.Parallel()
	s := serve(t, twoPoolsConfig("", "status/app.py"))
	s.readyWorkers(t, "front", 1)
	s.readyWorkers(t, "side", 1)
	for _, q := range []string{"418", "599"} {
		for _, path := range []string{"/", "/x/"} {
			resp, err := s.Client.Get(s.URL + path + "?" + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]string{"418": "418 I'm a teapot", "599": "599 Custom Thing"}[q]
			if resp.Status != want {
				t.Errorf("%s?%s: status line %q, want %q", path, q, resp.Status, want)
			}
		}
	}
}

// twoPoolsConfig is a site whose / is served by pool front and /x by pool
// side, both running app (under testdata/apps); server holds more lines of
// the [server] table.
func twoPoolsConfig(server, app string) string {
	return `
[server]
access_log = "off"
` + server + `

[pools.front]
python = "@PY@"
processes = 1
threads = 2

[pools.side]
python = "@PY@"
processes = 1
threads = 2

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/` + app + `"
  pool = "front"

  [[sites.vdirs]]
  path = "/x"
  app = "@APPS@/` + app + `"
  pool = "side"
`
}
