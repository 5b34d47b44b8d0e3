package e2e

// The admin listener refuses what a web page in the operator's browser
// could make of it (issue 19): a cross-site POST, a foreign Host (DNS
// rebinding); with a token, the dashboard's page opens and sends it.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// adminAsk sends method url with the headers given as name, value pairs
// ("Host" sets the request's Host) and returns the status and at most
// 4 KiB of the body (the trace streams without end: the body is cut off
// after 2s).
func adminAsk(t *testing.T, method, url string, headers ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := (&http.Transport{Proxy: nil, DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b)
}

// adminPoolState is the state of pool name in the admin's /api/status.
func adminPoolState(t *testing.T, admin, name string) string {
	t.Helper()
	code, body := adminAsk(t, "GET", "http://"+admin+"/api/status")
	var st struct {
		Pools []struct{ Name, State string }
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("/api/status: %d %q", code, body)
	}
	for _, p := range st.Pools {
		if p.Name == name {
			return p.State
		}
	}
	t.Fatalf("no pool %q in /api/status: %s", name, body)
	return ""
}

// A POST to the stop endpoint that a browser marks as cross-site (Origin
// of another site, or Sec-Fetch-Site: cross-site) is refused and the pool
// keeps serving; a same-origin POST stops it.
func TestAdminRefusesCrossSitePost(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, app("pool_app/app.py"), "-w", "1", "--admin", admin)
	stop := "http://" + admin + "/api/pools/default/stop"
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"},
	} {
		if code, body := adminAsk(t, "POST", stop, h...); code != http.StatusForbidden {
			t.Errorf("cross-site POST %q: %d %q, want 403", h, code, body)
		}
	}
	time.Sleep(300 * time.Millisecond) // a stop, had one got through, has begun
	if st := adminPoolState(t, admin, "default"); st == "stopped" {
		t.Fatalf("the pool is %s after the cross-site POSTs", st)
	}
	if code, body := get(w.Client, w.URL+"/info"); code != 200 {
		t.Fatalf("the app after the cross-site POSTs: %d %q", code, body)
	}
	code, body := adminAsk(t, "POST", stop, "Origin", "http://"+admin, "Sec-Fetch-Site", "same-origin")
	if code != 200 {
		t.Fatalf("same-origin POST: %d %q, want 200", code, body)
	}
	if !eventually(10*time.Second, func() bool { return adminPoolState(t, admin, "default") == "stopped" }) {
		t.Errorf("the pool is %s after a same-origin stop, want stopped", adminPoolState(t, admin, "default"))
	}
}

// A Host that is no loopback name and not the listener's address is
// refused on what a rebinding page would read; named with --admin-host
// (in-process) or admin_hosts (a pool server's config) it is served.
func TestAdminRefusesForeignHost(t *testing.T) {
	paths := []string{"/api/status", "/metrics", "/api/trace", "/"}
	refused := func(t *testing.T, admin, host string) {
		t.Helper()
		for _, p := range paths {
			code, body := adminAsk(t, "GET", "http://"+admin+p, "Host", host)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "admin_hosts") {
				t.Errorf("GET %s Host %s: %d %q, want 421 naming admin_hosts", p, host, code, trunc([]byte(body)))
			}
		}
		// a rebinding page's POST is same-origin for its own Host
		if code, _ := adminAsk(t, "POST", "http://"+admin+"/api/pools/default/stop", "Host", host, "Origin", "http://"+host); code != http.StatusMisdirectedRequest {
			t.Errorf("POST stop Host %s: %d, want 421", host, code)
		}
	}
	served := func(t *testing.T, admin string, hosts ...string) {
		t.Helper()
		for _, host := range hosts {
			for _, p := range paths {
				if code, body := adminAsk(t, "GET", "http://"+admin+p, "Host", host); code != 200 {
					t.Errorf("GET %s Host %s: %d %q, want 200", p, host, code, trunc([]byte(body)))
				}
			}
		}
	}
	t.Run("in-process", func(t *testing.T) {
		aport := pickPort(t)
		admin := "127.0.0.1:" + aport
		start(t, app("pool_app/app.py"), "--admin", admin)
		refused(t, admin, "evil.example")
		refused(t, admin, "evil.example:"+aport)
		served(t, admin, admin, "localhost:"+aport, "127.0.0.2:"+aport)
		for _, p := range []string{"/healthz", "/readyz"} { // load balancers' probes send any Host
			if code, _ := adminAsk(t, "GET", "http://"+admin+p, "Host", "evil.example"); code != 200 {
				t.Errorf("GET %s Host evil.example: %d, want 200", p, code)
			}
		}
	})
	t.Run("in-process named", func(t *testing.T) {
		aport := pickPort(t)
		admin := "127.0.0.1:" + aport
		start(t, app("pool_app/app.py"), "--admin", admin, "--admin-host", "dash.example.net")
		refused(t, admin, "evil.example")
		served(t, admin, admin, "dash.example.net", "dash.example.net:"+aport)
	})
	t.Run("pool", func(t *testing.T) {
		s := newPoolServer(t)
		admin := "127.0.0.1:" + pickPort(t)
		s.writeConfig(t, `
[server]
access_log = "off"
control_socket = "@DIR@/wisp.sock"
admin = "`+admin+`"
admin_hosts = ["wisp-admin.internal"]

[pools.default]
python = "@PY@"
processes = 1

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]
[[sites.vdirs]]
path = "/"
app = "@APPS@/pool_app/app.py"
pool = "default"
`)
		s.start(t)
		refused(t, admin, "evil.example")
		served(t, admin, admin, "wisp-admin.internal", "WISP-ADMIN.internal:9100")
		if st := adminPoolState(t, admin, "default"); st == "stopped" {
			t.Errorf("pool %s after the refused POSTs", st)
		}
	})
}

// With a token, the dashboard's page opens without it (a browser keeps
// #token= to itself); the API and /metrics answer 401 without the token
// and 200 with it, its scheme in any case (RFC 9110).
func TestAdminTokenDashboard(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	start(t, app("pool_app/app.py"), "--admin", admin, "--admin-token", "s3cret")
	base := "http://" + admin
	code, body := adminAsk(t, "GET", base+"/")
	if code != 200 || !strings.Contains(body, "<title>wisp</title>") {
		t.Errorf("GET / without the token: %d %q, want the page", code, trunc([]byte(body)))
	}
	for _, p := range []string{"/api/status", "/api/trace", "/metrics"} {
		if code, _ := adminAsk(t, "GET", base+p); code != 401 {
			t.Errorf("GET %s without the token: %d, want 401", p, code)
		}
		if code, _ := adminAsk(t, "GET", base+p, "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, code)
		}
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			if code, _ := adminAsk(t, "GET", base+p, "Authorization", scheme+" s3cret"); code != 200 {
				t.Errorf("GET %s with %q: %d, want 200", p, scheme+" s3cret", code)
			}
		}
	}
	if code, _ := adminAsk(t, "POST", base+"/api/pools/default/stop"); code != 401 {
		t.Errorf("POST stop without the token: %d, want 401", code)
	}
}

// The dashboard's own script, run by Node against the real listener with
// the page's URL ending in #token=: it loads the page without the token and
// sends the token from the fragment as a Bearer header on its API calls,
// which are answered 200.
func TestAdminDashboardSendsToken(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	admin := "127.0.0.1:" + pickPort(t)
	start(t, app("pool_app/app.py"), "--admin", admin, "--admin-token", "s3cret")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(repoRoot, "e2e", "dashboard_token.js"), "http://"+admin, "s3cret").CombinedOutput()
	if err != nil {
		t.Fatalf("dashboard_token.js: %v\n%s", err, out)
	}
	var res struct {
		Page  int
		Calls []struct {
			Path, Auth string
			Status     int
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("dashboard_token.js: %v\n%s", err, out)
	}
	if res.Page != 200 {
		t.Fatalf("the page: %d", res.Page)
	}
	seen := map[string]bool{}
	for _, c := range res.Calls {
		p, _, _ := strings.Cut(c.Path, "?")
		seen[p] = true
		if c.Auth != "Bearer s3cret" || c.Status != 200 {
			t.Errorf("the page's call %s: Authorization %q, status %d; want \"Bearer s3cret\", 200", c.Path, c.Auth, c.Status)
		}
	}
	if !seen["/api/status"] || !seen["/api/trace"] {
		t.Errorf("the page called %v, want /api/status and /api/trace", res.Calls)
	}
}
