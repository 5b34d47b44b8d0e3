package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wisp/internal/config"
)

const mainFile = `[server]
control_socket = "wisp.sock"

[pools.default]

[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
`

func setup(t *testing.T) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "wisp.toml")
	if err := os.WriteFile(p, []byte(mainFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An install into a missing site and pool writes three drop-ins that load
// with the main file; installing again replaces only the vdir's; removing
// takes all three away; the main file is never touched.
func TestInstallRemove(t *testing.T) {
	cfg := setup(t)
	ch, err := Install(Request{Config: cfg, Site: "MySite", Vdir: "/wsgi-test", Pool: "isapi", App: "/srv/myapp.py",
		Description: "A test application", PoolKeys: map[string]any{"threads": int64(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Files) != 3 {
		t.Fatalf("files %v", ch.Files)
	}
	if err := ch.Apply(); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) != 2 || c.Sites[1].Name != "MySite" || c.Sites[1].Bindings[0] != DefaultBinding ||
		c.Sites[1].Vdirs[0].Path != "/wsgi-test" || c.Pools["isapi"].Threads != 2 {
		t.Fatalf("model %+v %+v", c.Sites[1], c.Pools["isapi"])
	}
	ch, err = Install(Request{Config: cfg, Site: "MySite", Vdir: "/wsgi-test", Pool: "isapi", App: "/srv/myapp2.py"})
	if err != nil || len(ch.Files) != 1 || !strings.Contains(strings.Join(ch.Notes, " "), "replaced") {
		t.Fatalf("reinstall: %v %v %v", err, ch.Files, ch.Notes)
	}
	ch.Apply()
	// a vdir a person wrote is not replaced
	if _, err := Install(Request{Config: cfg, Site: "main", Vdir: "/", Pool: "default", App: "x:app"}); err == nil || !strings.Contains(err.Error(), "wisp.toml") {
		t.Errorf("installing over the main file's vdir: %v", err)
	}
	ch, err = Remove(cfg, "MySite", "/wsgi-test")
	if err != nil || len(ch.Files) != 3 {
		t.Fatalf("remove: %v %v", err, ch)
	}
	ch.Apply()
	if names, _ := filepath.Glob(filepath.Join(config.DropinDir(cfg), "*")); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
	if b, _ := os.ReadFile(cfg); string(b) != mainFile {
		t.Error("the main file changed")
	}
	if _, err := Remove(cfg, "main", "/"); err == nil || !strings.Contains(err.Error(), "not from wisp install") {
		t.Errorf("removing the main file's vdir: %v", err)
	}
}

// Rollback puts back what Apply changed: new files go, replaced ones return.
func TestRollback(t *testing.T) {
	cfg := setup(t)
	ch, _ := Install(Request{Config: cfg, Site: "main", Vdir: "/a", Pool: "default", App: "a:app"})
	ch.Apply()
	vfile := VdirFile(cfg, "main", "/a")
	before, _ := os.ReadFile(vfile)
	ch2, _ := Install(Request{Config: cfg, Site: "main", Vdir: "/a", Pool: "default", App: "b:app"})
	ch2.Apply()
	ch2.Rollback()
	if after, _ := os.ReadFile(vfile); string(after) != string(before) {
		t.Errorf("rollback: %s", after)
	}
	ch.Rollback()
	if _, err := os.Stat(vfile); !os.IsNotExist(err) {
		t.Error("rollback left a new file")
	}
}

func TestShimDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := ShimDir("/usr/bin/wisp")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"isapi/__init__.py", "isapi/install.py", "win32traceutil.py", "sitecustomize.py", "wisp.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	again, _ := ShimDir("/usr/bin/wisp")
	if again != dir {
		t.Errorf("a second call made %s, not %s", again, dir)
	}
}
