package supervisor

import "testing"

// TestRoutesOnly: a spec that differs only in the vdirs forwarded to other
// pools is a routing change (the workers keep running); any other
// difference replaces them.
func TestRoutesOnly(t *testing.T) {
	base := func() WorkerSpec {
		return WorkerSpec{Pool: "root", Threads: 4,
			Listeners: []ListenerSpec{{Addr: "127.0.0.1:80", Sites: []string{"S"}}, {Addr: "pool:root"}},
			Sites: []SiteSpec{{Name: "S", Mounts: []MountSpec{
				{Prefix: "/", Target: "/srv/app.py"}, {Prefix: "/a1", Forward: "/run/pool-2.sock"}}}}}
	}
	for name, c := range map[string]struct {
		change func(*WorkerSpec)
		want   bool
	}{
		"the same": {func(*WorkerSpec) {}, true},
		"a forwarded vdir is new": {func(w *WorkerSpec) {
			w.Sites[0].Mounts = append(w.Sites[0].Mounts, MountSpec{Prefix: "/a2", Forward: "/run/pool-2.sock"})
		}, true},
		"a forwarded vdir goes":     {func(w *WorkerSpec) { w.Sites[0].Mounts = w.Sites[0].Mounts[:1] }, true},
		"a forwarded vdir moves":    {func(w *WorkerSpec) { w.Sites[0].Mounts[1].Forward = "/run/pool-3.sock" }, true},
		"its app changes":           {func(w *WorkerSpec) { w.Sites[0].Mounts[0].Target = "/srv/other.py" }, false},
		"a vdir becomes its own":    {func(w *WorkerSpec) { w.Sites[0].Mounts[1] = MountSpec{Prefix: "/a1", Target: "/srv/a1.py"} }, false},
		"its settings change":       {func(w *WorkerSpec) { w.Threads = 8 }, false},
		"its listeners change":      {func(w *WorkerSpec) { w.Listeners[0].Addr = "127.0.0.1:81" }, false},
		"a site's hostnames change": {func(w *WorkerSpec) { w.Sites[0].Hostnames = []string{"example.org"} }, false},
	} {
		a, b := base(), base()
		c.change(&b)
		if got := routesOnly(a, b); got != c.want {
			t.Errorf("%s: routesOnly = %v, want %v", name, got, c.want)
		}
	}
}
