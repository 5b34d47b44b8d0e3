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

// environFrom GETs target with the headers given and returns the app's
// environ (testdata/apps/environ).
func environFrom(t *testing.T, c *http.Client, target string, hdr map[string]string) map[string]string {
	t.Helper()
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
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
			env := environFrom(t, w.Client, w.URL+"/", tc.hdr)
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
