package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// minimal is the smallest valid configuration.
const minimal = `
[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
`

func mustParse(t *testing.T, name, src string) *Config {
	t.Helper()
	c, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParse_defaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/srv/site/wisp.toml", minimal)
	if c.File != "/srv/site/wisp.toml" || c.Dir != "/srv/site" {
		t.Errorf("File, Dir = %q, %q", c.File, c.Dir)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings = %q", c.Warnings)
	}
	wantServer := &Server{
		ControlSocket:     "/srv/site/wisp.sock",
		AccessLog:         "-",
		AccessLogFormat:   "combined",
		LogLevel:          "info",
		ReadHeaderTimeout: Duration(10 * time.Second),
		ReadTimeout:       Duration(120 * time.Second),
		WriteTimeout:      Duration(60 * time.Second),
		IdleTimeout:       Duration(60 * time.Second),
		GracefulTimeout:   Duration(30 * time.Second),
		HTTP2MaxStreams:   100,
		ForwardedHeaders:  "x-forwarded",
	}
	if !reflect.DeepEqual(c.Server, wantServer) {
		t.Errorf("Server = %+v\nwant %+v", c.Server, wantServer)
	}
	// The vdir names no pool: it gets "default", defined implicitly.
	if got := c.Sites[0].Vdirs[0].Pool; got != "default" {
		t.Errorf("vdir pool = %q", got)
	}
	p := c.Pools["default"]
	if p == nil || len(c.Pools) != 1 {
		t.Fatalf("Pools = %v", c.Pools)
	}
	want := DefaultPool()
	want.Name = "default"
	want.Chdir = "/srv/site"
	if !reflect.DeepEqual(p, want) {
		t.Errorf("default pool = %+v\nwant %+v", p, want)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"processes", p.Processes, 1},
		{"threads", p.Threads, 4},
		{"handler", p.Handler, "threadpool"},
		{"python", p.Python, ""},
		{"max_requests", p.MaxRequests, 0},
		{"request_timeout", time.Duration(p.RequestTimeout), time.Duration(0)},
		{"start_timeout", time.Duration(p.StartTimeout), 60 * time.Second},
		{"graceful_timeout", time.Duration(p.GracefulTimeout), 30 * time.Second},
		{"rapid_fail", p.RapidFail, true},
		{"cpu_affinity", p.CPUAffinity, false},
		{"sched_policy", p.SchedPolicy, "batch"},
		{"rapid_fail_max", p.RapidFailMax, 5},
		{"rapid_fail_window", time.Duration(p.RapidFailWindow), 5 * time.Minute},
		{"queue", p.Queue, 1024},
		{"max_body", p.MaxBody, Size(1 << 30)},
		{"max_header_bytes", p.MaxHeaderBytes, Size(64 << 10)},
		{"websocket_compression", p.WebSocketCompression, true},
		{"websocket_max_message", p.WebSocketMaxMessage, Size(16 << 20)},
		{"websocket_ping_interval", time.Duration(p.WebSocketPingInterval), 20 * time.Second},
		{"websocket_ping_timeout", time.Duration(p.WebSocketPingTimeout), 20 * time.Second},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestLoad_full(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	s := c.Server
	if s.ControlSocket != dir+"/run/wisp.sock" || s.AccessLog != dir+"/logs/access.log" || s.LogLevel != "debug" {
		t.Errorf("server paths/log = %q %q %q", s.ControlSocket, s.AccessLog, s.LogLevel)
	}
	if time.Duration(s.WriteTimeout) != 90*time.Second || time.Duration(s.GracefulTimeout) != 45*time.Second {
		t.Errorf("server timeouts = %v %v", s.WriteTimeout, s.GracefulTimeout)
	}
	if s.ForwardedHeaders != "forwarded" {
		t.Errorf("forwarded_headers = %q, want forwarded", s.ForwardedHeaders)
	}

	p := c.Pools["default"]
	if p.Processes != 4 || p.Threads != 16 || p.Handler != "threadpool" {
		t.Errorf("default pool processes/threads/handler = %d %d %q", p.Processes, p.Threads, p.Handler)
	}
	if p.Python != dir+"/venv" || p.Chdir != dir+"/app" {
		t.Errorf("python, chdir = %q, %q", p.Python, p.Chdir)
	}
	if want := []string{dir + "/lib", "/opt/shared/lib"}; !slices.Equal(p.PythonPath, want) {
		t.Errorf("pythonpath = %q, want %q", p.PythonPath, want)
	}
	if want := map[string]string{"APP_MODE": "prod", "DOTTED.NAME": "x"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %v", p.Env)
	}
	if p.MaxRequests != 10000 || p.MaxRequestsJitter != 500 || p.MaxRSSMB != 512 || p.MaxRSSHardMB != 1024 {
		t.Errorf("recycling = %d %d %d %d", p.MaxRequests, p.MaxRequestsJitter, p.MaxRSSMB, p.MaxRSSHardMB)
	}
	if time.Duration(p.MaxUptime) != 24*time.Hour || time.Duration(p.IdleTimeout) != 30*time.Minute ||
		time.Duration(p.RequestTimeout) != 30*time.Second || time.Duration(p.StartTimeout) != 2*time.Minute {
		t.Errorf("durations = %v %v %v %v", p.MaxUptime, p.IdleTimeout, p.RequestTimeout, p.StartTimeout)
	}
	if p.RapidFail || p.RapidFailMax != 10 || time.Duration(p.RapidFailWindow) != time.Minute {
		t.Errorf("rapid fail = %v %d %v", p.RapidFail, p.RapidFailMax, p.RapidFailWindow)
	}
	if p.User != "www-data" || p.Group != "33" || p.Queue != 100 || p.MaxBody != 10<<20 || p.MaxHeaderBytes != 32<<10 {
		t.Errorf("identity/limits = %q %q %d %d %d", p.User, p.Group, p.Queue, p.MaxBody, p.MaxHeaderBytes)
	}

	legacy := c.Pools["legacy"]
	if legacy.Handler != "simple" || legacy.Threads != 1 || legacy.Python != "python3.11" || legacy.Chdir != dir {
		t.Errorf("legacy = %+v", legacy)
	}
	wantWarn := []string{
		"testdata/full.toml:42:1: pools.legacy.threads: the simple handler runs one Python thread; threads = 8 has no effect",
		`testdata/full.toml:45:8: pools.unused: pool "unused" is not used by any vdir`,
	}
	if !slices.Equal(c.Warnings, wantWarn) {
		t.Errorf("Warnings = %q\nwant %q", c.Warnings, wantWarn)
	}

	v := c.Sites[0].Vdirs
	if v[1].Path != "/legacy" || v[1].App != dir+"/legacy/run.py:make_app('prod')" ||
		time.Duration(v[1].RequestTimeout) != 5*time.Minute {
		t.Errorf("vdir 1 = %+v", v[1])
	}
	if v[2].App != "config:"+dir+"/conf/app.ini#main" {
		t.Errorf("vdir 2 app = %q", v[2].App)
	}
	if c.Sites[1].Vdirs[0].App != "other:app" {
		t.Errorf("module target changed: %q", c.Sites[1].Vdirs[0].App)
	}
}

// TestParse_errors checks single problems: the whole message, and that the
// *Error inside carries the position.
func TestParse_errors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      string
		line, col int
	}{
		{"processes zero", "[pools.api]\nprocesses = 0\n" + minimal + "  pool = \"api\"\n",
			"w.toml:2:1: pools.api.processes: must be between 1 and 256, got 0", 2, 1},
		{"unknown nested", minimal + "  colour = 1\n",
			"w.toml:9:3: sites[0].vdirs[0].colour: unknown key", 9, 3},
		{"unknown with suggestion", "[pools.default]\nthread = 2\n" + minimal,
			`w.toml:2:1: pools.default.thread: unknown key (did you mean "threads"?)`, 2, 1},
		{"quoted pool name", "[pools.\"a b\"]\n" + minimal,
			`w.toml:1:8: pools."a b": invalid pool name "a b": use letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 bytes`, 1, 8},
		{"size string", "[pools.default]\nmax_body = \"12 parsecs\"\n" + minimal,
			`w.toml:2:1: pools.default.max_body: invalid size "12 parsecs": want an integer number of bytes or a string like "512KiB", "64MiB", "1GiB" or "10MB"`, 2, 1},
		{"inline vdir array", "[[sites]]\nname = \"m\"\nbindings = [\":80\"]\nvdirs = [\n  { path = \"/\", app = \"a:app\" },\n  { path = \"/\", app = \"b:app\" },\n]\n",
			`w.toml:6:5: sites[0].vdirs[1].path: path "/" is already used by sites[0].vdirs[0]`, 6, 5},
		{"negative vdir timeout", minimal + "  request_timeout = \"-1s\"\n",
			"w.toml:9:3: sites[0].vdirs[0].request_timeout: must not be negative, got -1s", 9, 3},
		{"sched policy", "[pools.default]\nsched_policy = \"fifo\"\n" + minimal,
			`w.toml:2:1: pools.default.sched_policy: must be "batch" or "normal", got "fifo"`, 2, 1},
		{"jitter without max", "[pools.default]\nmax_requests_jitter = -1\n" + minimal,
			"w.toml:2:1: pools.default.max_requests_jitter: must be at least 0, got -1", 2, 1},
		{"env name", "[pools.default]\nenv = { \"A=B\" = \"x\" }\n" + minimal,
			`w.toml:2:9: pools.default.env."A=B": invalid environment variable name "A=B": must be non-empty, without '=' or NUL`, 2, 9},
		{"max spill zero", "[pools.default]\nmax_spill = 0\n" + minimal,
			"w.toml:2:1: pools.default.max_spill: must be positive, got 0", 2, 1},
		{"negative write rate", "[pools.default]\nmin_write_rate = -5\n" + minimal,
			"w.toml:2:1: pools.default.min_write_rate: must be 0 (none) or more bytes per second, got -5", 2, 1},
		{"websocket max message zero", "[pools.default]\nwebsocket_max_message = \"0MiB\"\n" + minimal,
			`w.toml:2:1: pools.default.websocket_max_message: must be a positive size, like "16MiB", got 0`, 2, 1},
		{"websocket ping interval negative", "[pools.default]\nwebsocket_ping_interval = \"-5s\"\n" + minimal,
			`w.toml:2:1: pools.default.websocket_ping_interval: must not be negative ("0s" sends no pings), got -5s`, 2, 1},
		{"websocket ping timeout zero", "[pools.default]\nwebsocket_ping_timeout = \"0s\"\n" + minimal,
			"w.toml:2:1: pools.default.websocket_ping_timeout: must be a positive duration, got 0s", 2, 1},
		{"websocket compression not a bool", "[pools.default]\nwebsocket_compression = 0\n" + minimal,
			"w.toml:2:1: pools.default.websocket_compression: must be true or false, got integer 0", 2, 1},
		{"sites not array", "sites = 3\n",
			"w.toml:1:1: sites: must be an array of tables, got integer 3", 1, 1},
		{"pools not table", "pools = [1]\n" + minimal,
			"w.toml:1:1: pools: must be a table of tables, got an array", 1, 1},
		{"empty control socket", "[server]\ncontrol_socket = \"\"\n" + minimal,
			"w.toml:2:1: server.control_socket: must be a socket path", 2, 1},
		{"admin not loopback", "[server]\nadmin = \"0.0.0.0:9100\"\n" + minimal,
			`w.toml:2:1: server.admin: address "0.0.0.0:9100" is not loopback: set admin_token, so that only those who know it reach the admin listener`, 2, 1},
		{"admin host with a port", "[server]\nadmin_hosts = [\"ok.example\", \"admin.example:9100\"]\n" + minimal,
			`w.toml:2:30: server.admin_hosts[1]: admin host "admin.example:9100": want a host name or an IP address, such as admin.example.com (no scheme, port, path or wildcard)`, 2, 30},
		{"date", "[server]\nlog_level = 2024-01-01\n" + minimal,
			"w.toml:2:1: server.log_level: must be a string, got a date/time", 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("w.toml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Error("config returned with an error")
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("no *Error in %T", err)
			}
			if e.Line != tc.line || e.Column != tc.col || e.File != "w.toml" {
				t.Errorf("position = %s:%d:%d, want w.toml:%d:%d", e.File, e.Line, e.Column, tc.line, tc.col)
			}
		})
	}
}

// TestParse_allErrors checks that several problems come back together, in
// file order, each an *Error.
func TestParse_allErrors(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/many_errors.toml")
	if err == nil {
		t.Fatal("no error")
	}
	u, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not join errors", err)
	}
	errs := u.Unwrap()
	if len(errs) < 20 {
		t.Errorf("got %d errors, want every problem of the file", len(errs))
	}
	last := 0
	for _, e := range errs {
		ce, ok := e.(*Error)
		if !ok {
			t.Fatalf("%T is not *Error", e)
		}
		if ce.Line < last {
			t.Errorf("errors out of order: line %d after %d", ce.Line, last)
		}
		last = ce.Line
	}
}

func TestParse_sharedBindings(t *testing.T) {
	t.Parallel()
	site := func(name, binding, hosts string) string {
		s := "[[sites]]\nname = \"" + name + "\"\nbindings = [\"" + binding + "\"]\n"
		if hosts != "" {
			s += "hostnames = [" + hosts + "]\n"
		}
		return s + "vdirs = [{ path = \"/\", app = \"a:app\" }]\n"
	}
	for _, tc := range []struct {
		name string
		src  string
		ok   bool
	}{
		{"distinct hostnames", site("a", "127.0.0.1:80", `"a.com"`) + site("b", "127.0.0.1:80", `"b.com"`), true},
		{"one catch-all", site("a", "127.0.0.1:80", "") + site("b", "127.0.0.1:80", `"b.com"`), true},
		{"two catch-alls", site("a", "127.0.0.1:80", "") + site("b", "127.0.0.1:80", ""), false},
		{"same hostname", site("a", "127.0.0.1:80", `"a.com"`) + site("b", "127.0.0.1:80", `"A.com"`), false},
		{"wildcard overlaps", site("a", ":80", "") + site("b", "127.0.0.1:80", ""), false},
		{"ipv6 wildcard overlaps", site("a", "[::]:80", "") + site("b", "0.0.0.0:80", ""), false},
		{"other port", site("a", ":80", "") + site("b", "127.0.0.1:81", ""), true},
		{"port 0 never conflicts", site("a", "127.0.0.1:0", "") + site("b", "127.0.0.1:0", ""), true},
		{"mapped v4 is v4", site("a", "[::ffff:127.0.0.1]:80", "") + site("b", "127.0.0.1:80", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("w.toml", []byte(tc.src))
			if (err == nil) != tc.ok {
				t.Errorf("ok = %v, want %v (error: %v)", err == nil, tc.ok, err)
			}
		})
	}
}

func TestParse_emptyName(t *testing.T) {
	t.Parallel()
	_, err := Parse("", []byte("x = 1\n"+minimal))
	if err == nil || !strings.HasPrefix(err.Error(), "<input>:1:1: x: unknown key") {
		t.Errorf("err = %v", err)
	}
}

func TestResolveApp(t *testing.T) {
	t.Parallel()
	l := &loader{dir: "/cfg"}
	for in, want := range map[string]string{
		"app:app":                 "app:app",
		"pkg.mod:create_app()":    "pkg.mod:create_app()",
		"app.py":                  "/cfg/app.py",
		"sub/app.py:make(1)":      "/cfg/sub/app.py:make(1)",
		"/abs/app.py":             "/abs/app.py",
		"config:app.ini":          "config:/cfg/app.ini",
		"config:conf/app.ini#api": "config:/cfg/conf/app.ini#api",
		"config:/etc/app.ini#x":   "config:/etc/app.ini#x",
		"  app.py ":               "/cfg/app.py",
	} {
		if got := l.resolveApp(in); got != want {
			t.Errorf("resolveApp(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanVdirPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"/": "/", "/api/": "/api", "/a/b": "/a/b", "/a-b.c~": "/a-b.c~"} {
		if got, err := cleanVdirPath(in); err != nil || got != want {
			t.Errorf("cleanVdirPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "api", "//", "/a//b", "/a/./b", "/a/..", "/a b", "/a?b", "/a#b", "/a%20"} {
		if got, err := cleanVdirPath(in); err == nil {
			t.Errorf("cleanVdirPath(%q) = %q, want an error", in, got)
		}
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Size{
		"0": 0, "1024": 1024, "512KiB": 512 << 10, "64 MiB": 64 << 20, "1GiB": 1 << 30, "1g": 1 << 30,
		"10MB": 10e6, "500kB": 500e3, "2T": 2 << 40, "7b": 7,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "1 parsec", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for s, want := range map[Size]string{0: "0", 1000: "1000", 64 << 10: "64KiB", 1 << 30: "1GiB", 3 << 20: "3MiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
	var s Size
	if err := json.Unmarshal([]byte(`"2MiB"`), &s); err != nil || s != 2<<20 {
		t.Errorf("json string: %d, %v", s, err)
	}
	if err := json.Unmarshal([]byte(`4096`), &s); err != nil || s != 4096 {
		t.Errorf("json number: %d, %v", s, err)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		20 * time.Second: "20s", 10 * time.Minute: "10m", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(Duration(d).String())); err != nil || time.Duration(back) != d {
			t.Errorf("round trip of %v: %v, %v", d, time.Duration(back), err)
		}
	}
}

func TestPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, parent string }{
		{"pools", ""},
		{"pools.api.threads", "pools.api"},
		{"sites[0].vdirs[1].pool", "sites[0].vdirs[1]"},
		{"sites[0].vdirs[1]", "sites[0].vdirs"},
		{`pools."a.b[0]".env`, `pools."a.b[0]"`},
		{`pools."a.b[0]"`, "pools"},
		{`pools."q\"x.y"`, "pools"},
	} {
		if got := parentPath(tc.path); got != tc.parent {
			t.Errorf("parentPath(%q) = %q, want %q", tc.path, got, tc.parent)
		}
	}
	if got := formatKey([]string{"pools", "a.b", "env", "X"}); got != `pools."a.b".env.X` {
		t.Errorf("formatKey = %q", got)
	}
}

// TestJSON_sameKeysAsTOML turns the JSON form back into TOML and loads it:
// the same configuration must come out, so every JSON key is a TOML key.
func TestJSON_sameKeysAsTOML(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.UseNumber()
	var m any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	tm, err := toml.Marshal(numbersToInts(m))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(filepath.Join(c.Dir, "again.toml"), tm)
	if err != nil {
		t.Fatalf("JSON form as TOML: %v\n%s", err, tm)
	}
	changed, added, removed, routes := Diff(c, c2)
	if len(changed)+len(added)+len(removed) > 0 || routes || c.Server.Fingerprint() != c2.Server.Fingerprint() {
		t.Errorf("round trip differs: changed %v added %v removed %v routes %v", changed, added, removed, routes)
	}

	// And JSON decodes back into the model.
	var c3 Config
	if err := json.Unmarshal(js, &c3); err != nil {
		t.Fatal(err)
	}
	for name, p := range c.Pools {
		if c3.Pools[name].Fingerprint() != p.Fingerprint() {
			t.Errorf("pool %s differs after a JSON round trip", name)
		}
	}
}

func numbersToInts(v any) any {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		return n
	case []any:
		for i := range x {
			x[i] = numbersToInts(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToInts(x[k])
		}
	}
	return v
}

// A unix:PATH binding is accepted, made absolute against the file's folder,
// and listed twice is an error like a TCP one.
func TestUnixBinding(t *testing.T) {
	dir := t.TempDir()
	src := "[[sites]]\nname = \"a\"\nbindings = [\"unix:run/app.sock\", \"127.0.0.1:8080\"]\n[[sites.vdirs]]\npath = \"/\"\napp = \"app:app\"\n"
	cfg, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Sites[0].Bindings[0], "unix:"+filepath.Join(dir, "run/app.sock"); got != want {
		t.Errorf("binding %q, want %q", got, want)
	}
	src = "[[sites]]\nname = \"a\"\nbindings = [\"unix:/tmp/a.sock\", \"unix:/tmp/a.sock\"]\n[[sites.vdirs]]\npath = \"/\"\napp = \"app:app\"\n"
	if _, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src)); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("a unix binding listed twice: %v", err)
	}
	src = "[[sites]]\nname = \"a\"\nbindings = [\"unix:\"]\n[[sites.vdirs]]\npath = \"/\"\napp = \"app:app\"\n"
	if _, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src)); err == nil || !strings.Contains(err.Error(), "want unix:PATH") {
		t.Errorf("unix: without a path: %v", err)
	}
}

// A site's tls needs both files, and files that load.
func TestSiteTLS(t *testing.T) {
	dir := t.TempDir()
	src := "[[sites]]\nname = \"a\"\nbindings = [\"127.0.0.1:8443\"]\ntls = { cert = \"site.crt\" }\n[[sites.vdirs]]\npath = \"/\"\napp = \"app:app\"\n"
	if _, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src)); err == nil || !strings.Contains(err.Error(), "sites[0].tls: want both files") {
		t.Errorf("tls without key: %v", err)
	}
	src = strings.Replace(src, `tls = { cert = "site.crt" }`, `tls = { cert = "site.crt", key = "site.key" }`, 1)
	_, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "site.crt")) {
		t.Errorf("missing files: %v", err)
	}
}

// A static vdir names an existing folder (made absolute), and not an app too.
func TestStaticVdir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "public"), 0o755)
	src := "[[sites]]\nname = \"a\"\nbindings = [\"127.0.0.1:8080\"]\n[[sites.vdirs]]\npath = \"/static\"\nstatic = \"public\"\ncache_control = \"max-age=60\"\n"
	cfg, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Sites[0].Vdirs[0]; v.Static != filepath.Join(dir, "public") || v.CacheControl != "max-age=60" {
		t.Errorf("%+v", v)
	}
	for _, c := range []struct{ src, want string }{
		{strings.Replace(src, "static = \"public\"", "static = \"public\"\napp = \"x:app\"", 1), "an app or a static folder, not both"},
		{strings.Replace(src, "public", "nope", 1), "not found or not a folder"},
	} {
		if _, err := Parse(filepath.Join(dir, "wisp.toml"), []byte(c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// [server] admin_hosts: names and IPs, kept as written, and a JSON round
// trip keeps them; loopback admin addresses need no token.
func TestAdminHosts(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "w.toml", "[server]\nadmin = \"0.0.0.0:9100\"\nadmin_token = \"t\"\nadmin_hosts = [\"wisp-admin.internal\", \"10.0.0.5\", \"::1\"]\n"+minimal)
	if want := []string{"wisp-admin.internal", "10.0.0.5", "::1"}; !slices.Equal(c.Server.AdminHosts, want) {
		t.Errorf("AdminHosts = %q, want %q", c.Server.AdminHosts, want)
	}
	for _, addr := range []string{"127.0.0.1:9100", "[::1]:9100", "localhost:9100", "127.8.9.10:1"} {
		mustParse(t, "w.toml", "[server]\nadmin = \""+addr+"\"\n"+minimal)
	}
}

// The WebSocket keys of a pool, set away from their defaults, survive the
// TOML that print-config writes (compression false and pings off are
// values, not absences), and 0s maps to the server's "no pings".
func TestWebSocketKeys(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/srv/wisp.toml", "[pools.default]\nwebsocket_compression = false\nwebsocket_max_message = \"1KiB\"\n"+
		"websocket_ping_interval = \"0s\"\nwebsocket_ping_timeout = \"3s\"\n"+minimal)
	p := c.Pools["default"]
	if p.WebSocketCompression || p.WebSocketMaxMessage != 1024 || p.WebSocketPingInterval != 0 ||
		time.Duration(p.WebSocketPingTimeout) != 3*time.Second {
		t.Fatalf("pool = %+v", p)
	}
	text, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, "/srv/wisp.toml", string(text))
	if got := again.Pools["default"]; got.Fingerprint() != p.Fingerprint() {
		t.Errorf("after print-config's TOML: %+v\nwant %+v\n%s", got, p, text)
	}
	for _, tc := range []struct{ in, want time.Duration }{{0, -1}, {time.Second, time.Second}, {20 * time.Second, 20 * time.Second}} {
		if got := PingInterval(tc.in); got != tc.want {
			t.Errorf("PingInterval(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
