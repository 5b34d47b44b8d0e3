package config

import (
	"slices"
	"strings"
	"testing"
)

const diffBase = `
[pools.default]
threads = 4

[pools.api]
processes = 2

[pools.batch]
max_requests = 100

[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"

  [[sites.vdirs]]
  path = "/api"
  app = "api:app"
  pool = "api"

  [[sites.vdirs]]
  path = "/batch"
  app = "batch:app"
  pool = "batch"
`

func TestDiff(t *testing.T) {
	t.Parallel()
	base := mustParse(t, "/srv/wisp.toml", diffBase)
	for _, tc := range []struct {
		name                    string
		edit                    func(string) string
		changed, added, removed []string
		routes                  bool
	}{
		{"identical", func(s string) string { return s }, nil, nil, nil, false},
		{"comments and order do not matter", func(s string) string {
			return "# comment\n" + strings.Replace(s, "[pools.batch]\nmax_requests = 100\n", "", 1) +
				"\n[pools.batch]\nmax_requests = 100 # same\n"
		}, nil, nil, nil, false},
		{"threads of one pool", func(s string) string {
			return strings.Replace(s, "[pools.api]\nprocesses = 2", "[pools.api]\nprocesses = 2\nthreads = 8", 1)
		}, []string{"api"}, nil, nil, false},
		{"a default written out is no change", func(s string) string {
			return strings.Replace(s, "threads = 4", "threads = 4\nqueue = 1024", 1)
		}, nil, nil, nil, false},
		{"a vdir's app", func(s string) string { return strings.Replace(s, `"api:app"`, `"api2:app"`, 1) },
			[]string{"api"}, nil, nil, true},
		{"a vdir moves to another pool", func(s string) string {
			return strings.Replace(s, "app = \"batch:app\"\n  pool = \"batch\"", "app = \"batch:app\"\n  pool = \"api\"", 1)
		}, []string{"api", "batch"}, nil, nil, true},
		// workers read a vdir's interface and lifespan, and their pool's
		// loop and WebSocket settings, when they start: new workers
		{"a vdir's lifespan", func(s string) string {
			return strings.Replace(s, "app = \"api:app\"\n", "app = \"api:app\"\n  lifespan = \"off\"\n", 1)
		}, []string{"api"}, nil, nil, true},
		{"a vdir's interface", func(s string) string {
			return strings.Replace(s, "app = \"batch:app\"\n", "app = \"batch:app\"\n  interface = \"asgi\"\n", 1)
		}, []string{"batch"}, nil, nil, true},
		{"a pool's loop", func(s string) string {
			return strings.Replace(s, "[pools.api]\n", "[pools.api]\nloop = \"asyncio\"\n", 1)
		}, []string{"api"}, nil, nil, false},
		{"a pool's websocket keys", func(s string) string {
			return strings.Replace(s, "[pools.batch]\n", "[pools.batch]\nwebsocket_compression = false\nwebsocket_ping_interval = \"0s\"\n", 1)
		}, []string{"batch"}, nil, nil, false},
		{"a binding", func(s string) string { return strings.Replace(s, "8080", "8081", 1) },
			nil, nil, nil, true},
		{"a pool added", func(s string) string { return s + "\n[pools.extra]\n" }, nil, []string{"extra"}, nil, false},
		{"a pool removed with its vdir", func(s string) string {
			s = strings.Replace(s, "[pools.batch]\nmax_requests = 100\n", "", 1)
			return strings.Replace(s, "  [[sites.vdirs]]\n  path = \"/batch\"\n  app = \"batch:app\"\n  pool = \"batch\"\n", "", 1)
		}, nil, nil, []string{"batch"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := mustParse(t, "/srv/wisp.toml", tc.edit(diffBase))
			changed, added, removed, routes := Diff(base, next)
			if !slices.Equal(changed, tc.changed) || !slices.Equal(added, tc.added) ||
				!slices.Equal(removed, tc.removed) || routes != tc.routes {
				t.Errorf("Diff = changed %q added %q removed %q routes %v; want %q %q %q %v",
					changed, added, removed, routes, tc.changed, tc.added, tc.removed, tc.routes)
			}
		})
	}
}

func TestDiff_nil(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/srv/wisp.toml", diffBase)
	_, added, _, routes := Diff(nil, c)
	if !slices.Equal(added, []string{"api", "batch", "default"}) || !routes {
		t.Errorf("Diff(nil, c): added %q routes %v", added, routes)
	}
	_, _, removed, _ := Diff(c, nil)
	if len(removed) != 3 {
		t.Errorf("Diff(c, nil): removed %q", removed)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a, b := DefaultPool(), DefaultPool()
	b.Name = "other"
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("the name changed the fingerprint")
	}
	b.Env = map[string]string{"A": "1"}
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("env did not change the fingerprint")
	}
	// Moving the config file moves resolved paths.
	x := mustParse(t, "/srv/one/wisp.toml", minimal)
	y := mustParse(t, "/srv/two/wisp.toml", minimal)
	if x.Pools["default"].Fingerprint() == y.Pools["default"].Fingerprint() {
		t.Error("chdir did not change the fingerprint")
	}
}

// A static vdir's settings live in its pool's workers: a change of
// dotfiles or cache_control replaces them.
func TestDiffStatic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := "[pools.files]\n[[sites]]\nname = \"main\"\nbindings = [\"127.0.0.1:8080\"]\n[[sites.vdirs]]\npath = \"/\"\nstatic = \"" + dir + "\"\npool = \"files\"\n"
	base := mustParse(t, "/srv/wisp.toml", src)
	for _, extra := range []string{"dotfiles = \"allow\"\n", "cache_control = \"max-age=60\"\n"} {
		changed, _, _, _ := Diff(base, mustParse(t, "/srv/wisp.toml", src+extra))
		if !slices.Equal(changed, []string{"files"}) {
			t.Errorf("%s: changed %v, want [files]", strings.TrimSpace(extra), changed)
		}
	}
	if changed, _, _, _ := Diff(base, mustParse(t, "/srv/wisp.toml", src+"dotfiles = \"deny\"\n")); changed != nil {
		t.Errorf("the default written out: changed %v", changed)
	}
}
