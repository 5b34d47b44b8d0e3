package install

import (
	"os"
	"path/filepath"
	"sort"
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

// Two vdirs whose old drop-in names were the same (/api/v1 and /api_v1
// were both main--api_v1.toml) get a file each; removing one leaves the
// other.
func TestInstallNamesDoNotCollide(t *testing.T) {
	cfg := setup(t)
	for _, v := range []string{"/api/v1", "/api_v1", "/api-v1", "/api.v1"} {
		ch, err := Install(Request{Config: cfg, Site: "main", Vdir: v, Pool: "default", App: "a:app"})
		if err != nil {
			t.Fatalf("install %s: %v", v, err)
		}
		if err := ch.Apply(); err != nil {
			t.Fatal(err)
		}
	}
	vdirs := func() []string {
		t.Helper()
		c, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range c.Sites[0].Vdirs {
			out = append(out, v.Path)
		}
		sort.Strings(out)
		return out
	}
	if got := vdirs(); strings.Join(got, " ") != "/ /api-v1 /api.v1 /api/v1 /api_v1" {
		t.Fatalf("vdirs after four installs: %v", got)
	}
	ch, err := Remove(cfg, "main", "/api/v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Files) != 1 {
		t.Errorf("remove /api/v1 touches %v", ch.Files)
	}
	ch.Apply()
	if got := vdirs(); strings.Join(got, " ") != "/ /api-v1 /api.v1 /api_v1" {
		t.Errorf("after removing /api/v1: %v", got)
	}
}

// A drop-in by the name an install would write that holds something else
// is neither replaced nor removed; one written by the older naming is found
// by remove and replaced by install, after checking what it holds.
func TestInstallLegacyAndForeignNames(t *testing.T) {
	cfg := setup(t)
	dir := config.DropinDir(cfg)
	os.MkdirAll(dir, 0o755)
	old := filepath.Join(dir, "main--api_v1.toml") // what the old naming wrote for /api_v1
	legacy := "# installed by wisp install\n[[sites]]\nname = \"main\"\n\n  [[sites.vdirs]]\n  path = \"/api_v1\"\n  app = \"a:app\"\n  pool = \"default\"\n"
	os.WriteFile(old, []byte(legacy), 0o644)
	if _, err := Install(Request{Config: cfg, Site: "main", Vdir: "/api/v1", Pool: "default", App: "b:app"}); err == nil ||
		!strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), "vdir /api_v1") {
		t.Errorf("install /api/v1 over the older /api_v1 file: %v", err)
	}
	if _, err := Remove(cfg, "main", "/api/v1"); err == nil || !strings.Contains(err.Error(), old) {
		t.Errorf("remove /api/v1 with the older /api_v1 file: %v", err)
	}
	// reinstalling /api_v1 moves it to its new name
	ch, err := Install(Request{Config: cfg, Site: "main", Vdir: "/api_v1", Pool: "default", App: "c:app"})
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := ch.Files[old]; !ok || b != nil || ch.Files[VdirFile(cfg, "main", "/api_v1")] == nil {
		t.Errorf("reinstall of an older install: %v", ch.Files)
	}
	ch.Rollback() // not applied: nothing to put back
	// remove finds it by the older name
	ch, err = Remove(cfg, "main", "/api_v1")
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := ch.Files[old]; !ok || b != nil || len(ch.Files) != 1 {
		t.Errorf("remove of an older install: %v", ch.Files)
	}
	ch.Apply()
	if exists(old) {
		t.Error("the older drop-in is still there")
	}
	// a file a person wrote under an install's name, with two vdirs
	mine := VdirFile(cfg, "main", "/x")
	os.WriteFile(mine, []byte("[[sites]]\nname = \"main\"\n[[sites.vdirs]]\npath = \"/x\"\napp = \"a:app\"\n[[sites.vdirs]]\npath = \"/y\"\napp = \"a:app\"\n"), 0o644)
	if _, err := Install(Request{Config: cfg, Site: "main", Vdir: "/x", Pool: "default", App: "b:app"}); err == nil || !strings.Contains(err.Error(), mine) {
		t.Errorf("install over a file with two vdirs: %v", err)
	}
	if _, err := Remove(cfg, "main", "/x"); err == nil || !strings.Contains(err.Error(), mine) {
		t.Errorf("remove of a file with two vdirs: %v", err)
	}
	if !exists(mine) {
		t.Error("a person's file was removed")
	}
}

// A vdir whose drop-in name would pass 255 bytes is refused before
// anything is written.
func TestInstallNameTooLong(t *testing.T) {
	cfg := setup(t)
	if _, err := Install(Request{Config: cfg, Site: "main", Vdir: "/" + strings.Repeat("é", 60), Pool: "default", App: "a:app"}); err == nil ||
		!strings.Contains(err.Error(), "255") {
		t.Errorf("a vdir too long for a file name: %v", err)
	}
}

// TestInstallIntoSitelessMain: a main file with no site yet, but a pool,
// loads: an install into that pool uses it (no second definition of it in
// a drop-in, which would not load), and creates only the site.
func TestInstallIntoSitelessMain(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "wisp.toml")
	if err := os.WriteFile(cfg, []byte("[server]\ncontrol_socket = \"wisp.sock\"\n\n[pools.py]\nprocesses = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := Install(Request{Config: cfg, Site: "S", Vdir: "/", Pool: "py", App: "/srv/app.py"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.Files[PoolFile(cfg, "py")]; ok {
		t.Errorf("the install defines pool py again, in a drop-in: %v", ch.Notes)
	}
	if err := ch.Apply(); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatalf("the configuration after the install: %v", err)
	}
	if len(c.Sites) != 1 || c.Sites[0].Vdirs[0].Pool != "py" || c.Pools["py"].Processes != 2 {
		t.Errorf("model: sites %+v, pool %+v", c.Sites, c.Pools["py"])
	}
}

// A site or a pool named with "--" cannot take the drop-in of another
// site's vdir (found by review: site s--q's file was s--q.site.toml, the
// drop-in of site s, vdir /q.site), and a site or pool file that holds
// something else is neither overwritten nor removed.
func TestSiteAndPoolFilesDoNotCollide(t *testing.T) {
	cfg := setup(t)
	apply := func(ch *Change, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Apply(); err != nil {
			t.Fatal(err)
		}
	}
	apply(Install(Request{Config: cfg, Site: "main", Vdir: "/q.site", Pool: "default", App: "a:app"}))
	apply(Install(Request{Config: cfg, Site: "main", Vdir: "/q.pool", Pool: "default", App: "a:app"}))
	apply(Install(Request{Config: cfg, Site: "main--q", Vdir: "/x", Pool: "main--q", App: "a:app", Binding: "127.0.0.1:18999"}))
	has := func(site, vdir string) bool {
		t.Helper()
		c, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range c.Sites {
			for _, v := range st.Vdirs {
				if st.Name == site && v.Path == vdir {
					return true
				}
			}
		}
		return false
	}
	for _, sv := range [][2]string{{"main", "/q.site"}, {"main", "/q.pool"}, {"main--q", "/x"}} {
		if !has(sv[0], sv[1]) {
			t.Errorf("site %s vdir %s is gone after installing site and pool main--q", sv[0], sv[1])
		}
	}
	apply(Remove(cfg, "main--q", "/x"))
	if !has("main", "/q.site") || !has("main", "/q.pool") {
		t.Errorf("removing site main--q took another vdir's drop-in")
	}
	// a file by the site file's name that holds something else stays
	foreign := SiteFile(cfg, "other")
	os.WriteFile(foreign, []byte("[pools.mine]\nprocesses = 1\n"), 0o644)
	if _, err := Install(Request{Config: cfg, Site: "other", Vdir: "/", Pool: "default", App: "a:app", Binding: "127.0.0.1:18998"}); err == nil ||
		!strings.Contains(err.Error(), "does not overwrite") {
		t.Errorf("install over a foreign site file: %v, want a refusal", err)
	}
}
