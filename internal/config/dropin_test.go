package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const dropinMain = `[pools.web]
processes = 1

[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
  pool = "web"
`

func writeTree(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "wisp.toml")
}

// A drop-in adds a vdir to a site of the main file, and a pool and a site
// of its own; Sources names the file of each.
func TestDropinsMerge(t *testing.T) {
	path := writeTree(t, map[string]string{
		"wisp.toml": dropinMain,
		"wisp.d/main--api.toml": `[pools.api]
threads = 2

[[sites]]
name = "main"

  [[sites.vdirs]]
  path = "/api"
  app = "api:app"
  pool = "api"
  description = "the API"
`,
		"wisp.d/other--ROOT.toml": `[[sites]]
name = "other"
bindings = ["127.0.0.1:8081"]

  [[sites.vdirs]]
  path = "/"
  app = "other:app"
  pool = "web"
`,
		"wisp.d/notes.txt": "not a drop-in",
	})
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sites) != 2 || len(cfg.Sites[0].Vdirs) != 2 || cfg.Sites[0].Vdirs[1].Path != "/api" || cfg.Sites[0].Vdirs[1].Description != "the API" {
		t.Fatalf("sites %+v", cfg.Sites)
	}
	if cfg.Pools["api"] == nil || cfg.Pools["api"].Threads != 2 {
		t.Errorf("pool api %+v", cfg.Pools["api"])
	}
	dir := filepath.Dir(path)
	for key, want := range map[string]string{
		"sites[0]": path, "sites[0].vdirs[0]": path, "sites[0].vdirs[1]": filepath.Join(dir, "wisp.d/main--api.toml"),
		"sites[1]": filepath.Join(dir, "wisp.d/other--ROOT.toml"), "pools.api": filepath.Join(dir, "wisp.d/main--api.toml"), "pools.web": path,
	} {
		if cfg.Sources[key] != want {
			t.Errorf("Sources[%s] = %q, want %q", key, cfg.Sources[key], want)
		}
	}
}

// Errors in a drop-in name the drop-in's file and line, with the key path
// of the merged model; what a drop-in may not do is refused.
func TestDropinErrors(t *testing.T) {
	path := writeTree(t, map[string]string{
		"wisp.toml": dropinMain,
		"wisp.d/a.toml": `[pools.web]
threads = 3

[[sites]]
name = "main"
bindings = ["127.0.0.1:9999"]

  [[sites.vdirs]]
  path = "/x"
  app = "x:app"
  pool = "nosuchpool"
`,
		"wisp.d/b.toml": "[server]\naccess_log = \"off\"\n",
	})
	_, err := Load(path)
	if err == nil {
		t.Fatal("loaded")
	}
	a := filepath.Join(filepath.Dir(path), "wisp.d/a.toml")
	b := filepath.Join(filepath.Dir(path), "wisp.d/b.toml")
	for _, want := range []string{
		a + `:1:8: pools.web: pool "web" is already defined (` + path + ":1)",
		a + `:6:1: sites[0].bindings: site "main" is defined in ` + path + ":4: a drop-in may add vdirs to it, not set bindings",
		b + ":1:2: server: [server] belongs in the main file",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	// a validation error of the merged model points into the drop-in
	path = writeTree(t, map[string]string{
		"wisp.toml":     dropinMain,
		"wisp.d/c.toml": "[[sites]]\nname = \"main\"\n\n  [[sites.vdirs]]\n  path = \"/y\"\n  app = \"y:app\"\n  pool = \"nosuchpool\"\n",
	})
	_, err = Load(path)
	c := filepath.Join(filepath.Dir(path), "wisp.d/c.toml")
	if err == nil || !strings.Contains(err.Error(), c+`:7:3: sites[0].vdirs[1].pool: pool "nosuchpool" is not defined`) {
		t.Errorf("got %v", err)
	}
	path = writeTree(t, map[string]string{"wisp.toml": dropinMain, "wisp.d/d.toml": "[[sites]\n"})
	if _, err = Load(path); err == nil || !strings.Contains(err.Error(), "wisp.d/d.toml:1:") {
		t.Errorf("a syntax error in a drop-in: %v", err)
	}
}

func TestDropinName(t *testing.T) {
	for _, c := range [][3]string{{"MySite", "/wsgi-test", "MySite--wsgi-test.toml"}, {"MySite", "/", "MySite--ROOT.toml"},
		{"MySite", "/api/v1", "MySite--api_v1.toml"}, {"MySite", "/api_v1", "MySite--api%5Fv1.toml"},
		{"MySite", "/ROOT", "MySite--%52OOT.toml"}, {"a b", "/x/y", "a%20b--x_y.toml"}, {"my-site", "/a%b", "my-site--a%25b.toml"},
		{"a--b", "/c", "a%2D-b--c.toml"}, {"a-", "/-x", "a%2D---x.toml"}, {"a", "/--x", "a----x.toml"}, {"s", "/~u/é", "s--%7Eu_%C3%A9.toml"}, {"my_site", "/a_b/c", "my_site--a%5Fb_c.toml"}} {
		if got := DropinName(c[0], c[1]); got != c[2] {
			t.Errorf("DropinName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
		if site, vdir, ok := DecodeDropinName(c[2]); !ok || site != c[0] || vdir != c[1] {
			t.Errorf("DecodeDropinName(%q) = %q, %q, %v; want %q, %q", c[2], site, vdir, ok, c[0], c[1])
		}
	}
	for _, name := range []string{"MySite.site.toml", "x--a%5fb.toml", "x--a%zz.toml", "x--ROOT", "x--%52OOT-.toml", "ab.toml"} {
		if site, vdir, ok := DecodeDropinName(name); ok {
			t.Errorf("DecodeDropinName(%q) = %q, %q: want not a drop-in name", name, site, vdir)
		}
	}
	if got := LegacyDropinName("MySite", "/api_v1"); got != "MySite--api_v1.toml" {
		t.Errorf("LegacyDropinName: %q", got)
	}
}

// FuzzDropinName: two sites or vdirs never share a name, and a name reads
// back as what made it.
func FuzzDropinName(f *testing.F) {
	f.Add("MySite", "/api/v1")
	f.Add("MySite", "/api_v1")
	f.Add("a--b", "/-c")
	f.Add("a-", "/ROOT")
	f.Fuzz(func(t *testing.T, site, vdir string) {
		vdir = "/" + vdir
		name := DropinName(site, vdir)
		if strings.ContainsAny(name, "/\x00") {
			t.Fatalf("DropinName(%q, %q) = %q: not a plain file name", site, vdir, name)
		}
		s, v, ok := DecodeDropinName(name)
		if !ok || s != site || v != vdir {
			t.Fatalf("DecodeDropinName(DropinName(%q, %q) = %q) = %q, %q, %v", site, vdir, name, s, v, ok)
		}
	})
}

func TestVdirDropin(t *testing.T) {
	for _, c := range []struct {
		data, site, vdir string
		ok               bool
	}{
		{"# installed\n[[sites]]\nname = \"S\"\n[[sites.vdirs]]\npath = \"/api/\"\napp = \"a:app\"\n", "S", "/api", true},
		{"[[sites]]\nname = \"S\"\n[[sites.vdirs]]\npath = \"/a\"\n[[sites.vdirs]]\npath = \"/b\"\n", "", "", false},
		{"[[sites]]\nname = \"S\"\nbindings = [\"x:1\"]\n[[sites.vdirs]]\npath = \"/a\"\n", "", "", false},
		{"[pools.p]\n", "", "", false},
		{"[[sites]\n", "", "", false},
	} {
		site, vdir, ok := VdirDropin([]byte(c.data))
		if site != c.site || vdir != c.vdir || ok != c.ok {
			t.Errorf("VdirDropin(%q) = %q, %q, %v", c.data, site, vdir, ok)
		}
	}
}
