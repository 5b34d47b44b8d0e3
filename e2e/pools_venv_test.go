package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoolVenvPerPool: two pools of one server, each with its own
// virtualenv, import a module that exists only in their own venv, and
// sys.prefix is that venv (issue 3: a Python/venv per pool).
func TestPoolVenvPerPool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		venv := filepath.Join(dir, "venv-"+name)
		if out, err := exec.Command(python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
			t.Skipf("cannot create a venv (python3-venv missing?): %v\n%s", err, out)
		}
		sp, err := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
		if err != nil || len(sp) != 1 {
			t.Fatalf("site-packages of %s: %v %v", venv, sp, err)
		}
		if err := os.WriteFile(filepath.Join(sp[0], "venv_marker.py"), []byte("NAME = 'venv-"+name+"'\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := serve(t, `
[server]
access_log = "off"

[pools.a]
python = "`+filepath.Join(dir, "venv-a")+`"
threads = 2

[pools.b]
python = "`+filepath.Join(dir, "venv-b")+`"
threads = 2

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_venv/app.py"
  pool = "a"

  [[sites.vdirs]]
  path = "/b"
  app = "@APPS@/pool_venv/app.py"
  pool = "b"
`)
	for path, want := range map[string]string{"/": "venv-a", "/b/": "venv-b"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.Fields(string(body))
		if resp.StatusCode != 200 || len(got) != 2 || got[0] != want || got[1] != filepath.Join(dir, want) {
			t.Errorf("GET %s: %d %q; want %q served from sys.prefix %s", path, resp.StatusCode, body, want, filepath.Join(dir, want))
		}
	}
}
