package admin

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeSource struct {
	unready []string
	posts   int // POSTs that reached the dashboard
}

func (f *fakeSource) Health() Report { return NewReport(nil) }
func (f *fakeSource) Ready() Report  { return NewReport(f.unready) }

func (f *fakeSource) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
}

func (f *fakeSource) Dashboard() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			f.posts++
		}
		io.WriteString(w, "dashboard "+r.URL.Path)
	})
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		addr, token, want string
	}{
		{"127.0.0.1:9100", "", ""},
		{"[::1]:9100", "", ""},
		{"localhost:9100", "", ""},
		{"0.0.0.0:9100", "", "not loopback"},
		{"10.1.2.3:9100", "", "not loopback"},
		{"0.0.0.0:9100", "s3cret", ""},
		{"9100", "", "want host:port"},
	} {
		err := Check(c.addr, c.token)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%q, %q) = %v, want %q", c.addr, c.token, err, c.want)
		}
	}
}

// /readyz is 503 with the reasons while not ready; a token is required when
// set.
func TestEndpoints(t *testing.T) {
	src := &fakeSource{}
	s, err := Listen(Options{Addr: "127.0.0.1:0", Token: "tok"}, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	do := func(path, token string) (int, Report) {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Report
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	if code, _ := do("/healthz", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := do("/healthz", "wrong"); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, r := do("/readyz", "tok"); code != 200 || !r.OK || r.Status != "ok" {
		t.Errorf("ready: %d %+v", code, r)
	}
	src.unready = []string{"draining: the server is shutting down"}
	if code, r := do("/readyz", "tok"); code != 503 || r.OK || len(r.Reasons) != 1 || r.Status != "unavailable" {
		t.Errorf("draining: %d %+v", code, r)
	}
	if code, _ := do("/healthz", "tok"); code != 200 {
		t.Errorf("healthz while draining: %d, want 200", code)
	}
}

func listen(t *testing.T, o Options, src Source) *Server {
	t.Helper()
	s, err := Listen(o, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// ask sends method path to s with the headers given as name, value pairs
// ("Host" sets the request's Host) and returns the status and body.
func ask(t *testing.T, s *Server, method, path string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, nil)
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The scheme of Authorization is case-insensitive (RFC 9110 11.1); the
// token is not.
func TestBearerScheme(t *testing.T) {
	s := listen(t, Options{Addr: "127.0.0.1:0", Token: "s3cret"}, &fakeSource{})
	for _, c := range []struct {
		auth string
		want int
	}{
		{"Bearer s3cret", 200},
		{"bearer s3cret", 200},
		{"BEARER s3cret", 200},
		{"Bearer  s3cret", 200},
		{"Bearer S3CRET", 401},
		{"Bearer s3cre", 401},
		{"Bearer s3cretX", 401},
		{"Basic s3cret", 401},
		{"s3cret", 401},
		{"Bearer", 401},
		{"", 401},
	} {
		if code, _ := ask(t, s, "GET", "/metrics", "Authorization", c.auth); code != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.auth, code, c.want)
		}
	}
}

// With a token, the dashboard's page itself is served without it (a
// browser keeps #token= to itself); its API, /metrics and the health
// endpoints still need it.
func TestPageWithoutToken(t *testing.T) {
	s := listen(t, Options{Addr: "127.0.0.1:0", Token: "tok"}, &fakeSource{})
	if code, body := ask(t, s, "GET", "/"); code != 200 || body != "dashboard /" {
		t.Errorf("GET / without the token: %d %q, want 200", code, body)
	}
	for _, p := range []string{"/api/status", "/api/trace", "/metrics", "/healthz", "/readyz", "/index.html"} {
		if code, _ := ask(t, s, "GET", p); code != 401 {
			t.Errorf("GET %s without the token: %d, want 401", p, code)
		}
		if code, _ := ask(t, s, "GET", p, "Authorization", "Bearer tok"); code == 401 {
			t.Errorf("GET %s with the token: 401", p)
		}
	}
	if code, _ := ask(t, s, "POST", "/"); code != 401 {
		t.Errorf("POST / without the token: %d, want 401", code)
	}
}

// A POST a browser marks as cross-site is refused before it reaches the
// dashboard; a same-origin one, or one from a client that is no browser,
// goes through.
func TestCrossSitePost(t *testing.T) {
	src := &fakeSource{}
	s := listen(t, Options{Addr: "127.0.0.1:0"}, src)
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "null"},
	} {
		code, body := ask(t, s, "POST", "/api/pools/default/stop", h...)
		if code != 403 || !strings.Contains(body, "cross-site") {
			t.Errorf("POST with %q: %d %q, want 403", h, code, body)
		}
	}
	if src.posts != 0 {
		t.Fatalf("%d cross-site POSTs reached the dashboard", src.posts)
	}
	for _, h := range [][]string{
		nil,
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Site", "none"},
		{"Origin", "http://" + s.Addr()},
	} {
		if code, _ := ask(t, s, "POST", "/api/pools/default/stop", h...); code != 200 {
			t.Errorf("POST with %q: %d, want 200", h, code)
		}
	}
	// a cross-site GET cannot read the answer, but /api/trace would open a
	// subscription for each: the API and the metrics refuse it too
	for _, path := range []string{"/api/status", "/api/trace", "/metrics"} {
		if code, _ := ask(t, s, "GET", path, "Sec-Fetch-Site", "cross-site"); code != 403 {
			t.Errorf("a cross-site GET %s: %d, want 403", path, code)
		}
	}
	if code, _ := ask(t, s, "GET", "/api/status", "Sec-Fetch-Site", "same-origin"); code != 200 {
		t.Errorf("the page's own GET /api/status: %d, want 200", code)
	}
	if code, _ := ask(t, s, "GET", "/", "Sec-Fetch-Site", "cross-site"); code != 200 {
		t.Errorf("a link to the page from another site: %d, want 200", code)
	}
}

// A Host that is not a loopback name, the listener's address or an admin
// host is refused with 421 and a body that names the key; the health
// endpoints answer whatever the Host.
func TestHostCheck(t *testing.T) {
	s := listen(t, Options{Addr: "127.0.0.1:0", Hosts: []string{"Admin.Example.com", "10.9.8.7"}}, &fakeSource{})
	_, port, _ := strings.Cut(s.Addr(), ":")
	for _, c := range []struct {
		host string
		want int
	}{
		{s.Addr(), 200},
		{"127.0.0.1", 200},
		{"127.1.2.3:" + port, 200},
		{"localhost:" + port, 200},
		{"LOCALHOST", 200},
		{"localhost.:" + port, 200},
		{"dash.localhost:" + port, 200},
		{"[::1]:" + port, 200},
		{"admin.example.com:" + port, 200},
		{"admin.example.com", 200},
		{"10.9.8.7:9100", 200},
		{"evil.example", 421},
		{"evil.example:" + port, 421},
		{"localhost.evil.example", 421},
		{"evilocalhost", 421},
		{"127.0.0.1.evil.example", 421},
		{"admin.example.com.evil.example", 421},
		{"10.9.8.6", 421},
	} {
		for _, p := range []string{"/api/status", "/metrics", "/api/trace", "/"} {
			code, body := ask(t, s, "GET", p, "Host", c.host)
			if code != c.want {
				t.Errorf("GET %s Host %q: %d, want %d", p, c.host, code, c.want)
			}
			if code == 421 && !strings.Contains(body, "admin_hosts") {
				t.Errorf("GET %s Host %q: the 421 does not name admin_hosts: %q", p, c.host, body)
			}
		}
	}
	// HTTP/1.0 without a Host: the server connected to.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/status HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.0 without a Host: %v %v, want 200", resp, err)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := ask(t, s, "GET", p, "Host", "evil.example"); code != 200 {
			t.Errorf("GET %s Host evil.example: %d, want 200", p, code)
		}
	}
	// POST: refused by the Host check even when same-origin for that Host.
	if code, _ := ask(t, s, "POST", "/api/pools/default/stop", "Host", "evil.example", "Origin", "http://evil.example"); code != 421 {
		t.Errorf("a rebinding POST: %d, want 421", code)
	}
}

// Bound to 0.0.0.0, the listener answers to the IP the request arrived on.
func TestHostCheckUnspecified(t *testing.T) {
	s := listen(t, Options{Addr: "0.0.0.0:0", Token: "tok"}, &fakeSource{})
	_, port, _ := strings.Cut(s.Addr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(s.Addr(), ":")
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer tok")
	// 127.0.0.2 is loopback and would pass as such; the literal IP of the
	// connection is what the rule adds, so ask it through a non-loopback
	// address when the machine has one.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		req.URL.Host = net.JoinHostPort(ipn.IP.String(), port)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Host %s (the address the request arrived on): %d, want 200", req.URL.Host, resp.StatusCode)
		}
		req2 := req.Clone(req.Context())
		req2.Host = "0.0.0.0:" + port
		resp, err = http.DefaultClient.Do(req2)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 421 {
			t.Errorf("Host 0.0.0.0 through %s: %d, want 421", req.URL.Host, resp.StatusCode)
		}
		return
	}
	t.Skip("no non-loopback IPv4 address on this machine")
}

func TestCheckHost(t *testing.T) {
	for _, c := range []struct {
		h  string
		ok bool
	}{
		{"admin.example.com", true},
		{"10.0.0.5", true},
		{"::1", true},
		{"[2001:db8::1]", true},
		{"my_host", true},
		{"", false},
		{"admin.example.com:9100", false},
		{"http://admin.example.com", false},
		{"*.example.com", false},
		{"a b", false},
	} {
		if err := CheckHost(c.h); (err == nil) != c.ok {
			t.Errorf("CheckHost(%q) = %v, want ok %v", c.h, err, c.ok)
		}
	}
}
