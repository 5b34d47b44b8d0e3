package cli

import (
	"os"
	"path/filepath"
	"testing"

	"wisp/internal/config"
)

// TestProjectRoot: the folder above the top package of an app file, as
// Django's layout and mod_wsgi's python-path imply; none for a file in no
// package or a module target.
func TestProjectRoot(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mysite/mysite/__init__.py", "mysite/mysite/wsgi.py", "deep/a/__init__.py", "deep/a/b/__init__.py",
		"deep/a/b/app.py", "plain/app.py"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for target, want := range map[string]string{
		filepath.Join(dir, "mysite/mysite/wsgi.py"):             filepath.Join(dir, "mysite"),
		filepath.Join(dir, "mysite/mysite/wsgi.py:application"): filepath.Join(dir, "mysite"),
		filepath.Join(dir, "deep/a/b/app.py"):                   filepath.Join(dir, "deep"),
		filepath.Join(dir, "plain/app.py"):                      "",
		"mysite.wsgi:application":                               "",
		"config:" + filepath.Join(dir, "app.ini"):               "",
	} {
		if got := projectRoot(target); got != want {
			t.Errorf("projectRoot(%s) = %q, want %q", target, got, want)
		}
	}
}

// TestSitePool: a new vdir of an existing site runs in the pool of the
// site's root vdir (else of its first app); a new site's in "default".
func TestSitePool(t *testing.T) {
	cfg := &config.Config{Sites: []*config.Site{
		{Name: "A", Vdirs: []*config.Vdir{{Path: "/api", App: "api.py", Pool: "api"}, {Path: "/", App: "app.py", Pool: "main"}}},
		{Name: "B", Vdirs: []*config.Vdir{{Path: "/static", Static: "/srv"}, {Path: "/x", App: "x.py", Pool: "xs"}}},
	}}
	for site, want := range map[string]string{"A": "main", "B": "xs", "C": "default"} {
		if got := sitePool(cfg, site); got != want {
			t.Errorf("sitePool(%s) = %q, want %q", site, got, want)
		}
	}
	if got := sitePool(nil, "A"); got != "default" {
		t.Errorf("sitePool with no configuration = %q, want default", got)
	}
}
