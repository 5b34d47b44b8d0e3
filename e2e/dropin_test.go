package e2e

// wisp install's drop-in names (issue 19): /api/v1 and /api_v1 both became
// SITE--api_v1.toml, so installing one replaced the other.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dropinConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.default]
python = "@PY@"

[[sites]]
name = "MySite"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/other"
  app = "@APPS@/environ/app.py"
`

// /api/v1 and /api_v1 installed into one site both survive, each in its
// own drop-in, and both answer; removing one, live, leaves the other.
func TestInstallDropinNames(t *testing.T) {
	s := newPoolServer(t)
	s.writeConfig(t, dropinConfig)
	for _, v := range []string{"/api/v1", "/api_v1"} {
		if code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "install", app("environ/app.py"), "--site", "MySite", "--vdir", v); code != 0 {
			t.Fatalf("install %s: exit %d\n%s%s", v, code, out, errOut)
		}
	}
	l := s.list(t)
	a, b := l["MySite/api/v1"], l["MySite/api_v1"]
	if a.File == "" || b.File == "" || a.File == b.File || filepath.Dir(a.File) != "wisp.d" || filepath.Dir(b.File) != "wisp.d" {
		t.Fatalf("after installing /api/v1 and /api_v1: %+v", l)
	}
	s.start(t)
	scriptName := func(path string) (int, string) {
		t.Helper()
		resp, err := s.Client.Get(s.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var r envReply
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.StatusCode, r.Environ["SCRIPT_NAME"]
	}
	for _, v := range []string{"/api/v1", "/api_v1"} {
		if code, sn := scriptName(v + "/x"); code != 200 || sn != v {
			t.Errorf("GET %s/x: %d SCRIPT_NAME %q", v, code, sn)
		}
	}
	code, out, errOut := runWisp(t, 2*time.Minute, s.Dir, "remove", "--site", "MySite", "--vdir", "/api/v1")
	if code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("remove /api/v1: exit %d\n%s%s", code, out, errOut)
	}
	l = s.list(t)
	if _, ok := l["MySite/api/v1"]; ok || l["MySite/api_v1"].File != b.File {
		t.Errorf("after removing /api/v1: %+v", l)
	}
	if code, sn := scriptName("/api_v1/x"); code != 200 || sn != "/api_v1" {
		t.Errorf("GET /api_v1/x after removing /api/v1: %d SCRIPT_NAME %q", code, sn)
	}
	if code, _ := scriptName("/api/v1/x"); code != 404 {
		t.Errorf("GET /api/v1/x after removing it: %d, want 404", code)
	}
}

// A drop-in an older wisp wrote for /api_v1 (MySite--api_v1.toml, the name
// /api/v1 now has) is not removed by `wisp remove --vdir /api/v1`, which
// names it, and is found by `wisp remove --vdir /api_v1`.
func TestRemoveOlderDropinName(t *testing.T) {
	s := newPoolServer(t)
	s.writeConfig(t, dropinConfig)
	old := filepath.Join(s.Dir, "wisp.d", "MySite--api_v1.toml")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	text := s.expandConfig("# installed by wisp install\n[[sites]]\nname = \"MySite\"\n\n  [[sites.vdirs]]\n  path = \"/api_v1\"\n  app = \"@APPS@/environ/app.py\"\n  pool = \"default\"\n")
	if err := os.WriteFile(old, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runWisp(t, time.Minute, s.Dir, "remove", "--site", "MySite", "--vdir", "/api/v1")
	if code == 0 || !strings.Contains(errOut, old) {
		t.Errorf("remove /api/v1 with an older /api_v1 drop-in: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("the /api_v1 drop-in is gone: %v", err)
	}
	if code, out, errOut := runWisp(t, time.Minute, s.Dir, "remove", "--site", "MySite", "--vdir", "/api_v1"); code != 0 {
		t.Errorf("remove /api_v1 by its older name: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the /api_v1 drop-in is still there: %v", err)
	}
}
