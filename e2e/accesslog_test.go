package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFile waits until the file at path holds n lines that pass keep.
func waitLines(t *testing.T, path string, n int, keep func(string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" && keep(l) {
				out = append(out, l)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --access-log-format json: each line a JSON object with the request id the
// client sent; SIGUSR1 reopens the file.
func TestAccessLogJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.json")
	w := start(t, app("pool_app/app.py"), "--access-log", path, "--access-log-format", "json")
	req, _ := http.NewRequest("GET", w.URL+"/info?x=1", nil)
	req.Header.Set("X-Request-Id", "json-1")
	req.Header.Set("User-Agent", "e2e-json")
	resp, err := w.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := waitLines(t, path, 1, func(string) bool { return true })
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &j); err != nil {
		t.Fatalf("not JSON: %v %q", err, lines[0])
	}
	for k, v := range map[string]any{"request_id": "json-1", "method": "GET", "uri": "/info?x=1", "status": float64(200),
		"remote_addr": "127.0.0.1", "user_agent": "e2e-json", "pid": float64(w.Pid()), "vdir": "/"} {
		if j[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, j[k], v, lines[0])
		}
	}
	os.Rename(path, path+".1")
	w.signal(syscall.SIGUSR1)
	time.Sleep(300 * time.Millisecond)
	get(w.Client, w.URL+"/info")
	if got := waitLines(t, path, 1, func(string) bool { return true }); len(got) != 1 {
		t.Errorf("after SIGUSR1 the new file has %q", got)
	}
}

// A site of a pool with its own W3C log: the #Fields header, then lines
// read back by the fields it names; the other site keeps the server's
// combined log.
func TestAccessLogW3CPerSite(t *testing.T) {
	s := newPoolServer(t)
	w3c := filepath.Join(s.Dir, "iis.log")
	s.writeConfig(t, `
[server]
control_socket = "wisp.sock"
access_log = "combined.log"

[pools.default]
python = "@PY@"

[[sites]]
name = "iis"
bindings = ["127.0.0.1:@PORT0@"]
access_log = "iis.log"
access_log_format = "w3c"

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"

[[sites]]
name = "plain"
bindings = ["127.0.0.1:@PORT1@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
`)
	s.start(t)
	req, _ := http.NewRequest("GET", s.url(0, "/info?q=a+b"), nil)
	req.Header.Set("User-Agent", "IIS tester")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get(s.Client, s.url(1, "/info"))
	var fields []string
	rows := waitLines(t, w3c, 1, func(l string) bool {
		if strings.HasPrefix(l, "#Fields: ") {
			fields = strings.Fields(strings.TrimPrefix(l, "#Fields: "))
		}
		return !strings.HasPrefix(l, "#")
	})
	if len(rows) != 1 || len(fields) == 0 {
		t.Fatalf("W3C log: fields %v rows %q", fields, rows)
	}
	vals := strings.Split(rows[0], " ")
	if len(vals) != len(fields) {
		t.Fatalf("%d values for %d fields: %q", len(vals), len(fields), rows[0])
	}
	row := map[string]string{}
	for i, f := range fields {
		row[f] = vals[i]
	}
	for k, v := range map[string]string{"s-sitename": "iis", "cs-method": "GET", "cs-uri-stem": "/info", "cs-uri-query": "q=a+b",
		"sc-status": "200", "c-ip": "127.0.0.1", "cs(User-Agent)": "IIS+tester", "s-port": s.Ports[0]} {
		if row[k] != v {
			t.Errorf("%s = %q, want %q", k, row[k], v)
		}
	}
	combined := waitLines(t, filepath.Join(s.Dir, "combined.log"), 1, func(string) bool { return true })
	if len(combined) != 1 || !combinedRE.MatchString(combined[0]) || !strings.Contains(combined[0], "GET /info HTTP/1.1") {
		t.Errorf("the other site's combined log: %q", combined)
	}
}
