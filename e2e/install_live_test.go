package e2e

// Issue 20, point 2: operating wisp live without losing a request. An
// install into pool P starts or recycles P only: the pools that forward to
// it get the new route live, keeping their workers.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const liveInstallConfig = `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.root]
python = "@PY@"
processes = 2

[[sites]]
name = "S"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
  pool = "root"
`

// installCount is how many live installs TestInstallKeepsOtherPools makes
// (WISP_E2E_INSTALLS, default 50).
func installCount(t *testing.T) int {
	n := 50
	if v := os.Getenv("WISP_E2E_INSTALLS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("WISP_E2E_INSTALLS=%q: want a number, 2 or more", v)
		}
	}
	return n
}

// TestInstallKeepsOtherPools: a site with / in pool root (2 processes);
// under a background loop of requests to / (a new connection each), 50
// apps are installed live at /a1.../a50 into pool apps. No request fails,
// root's workers are the same processes throughout (it only gets routes),
// each install starts exactly one worker, of apps, and the installs do not
// get slower as the site grows.
func TestInstallKeepsOtherPools(t *testing.T) {
	s := serve(t, liveInstallConfig)
	rootPIDs := s.readyWorkers(t, "root", 2)
	sort.Ints(rootPIDs)
	load := startFreshLoad(t, s.url(0, "/info"), 2, nil)
	n := installCount(t)
	var took []time.Duration
	var fwd *loader
	for i := 1; i <= n; i++ {
		vdir := fmt.Sprintf("/a%d", i)
		t0 := time.Now()
		code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", app("pool_app/app.py"), "--site", "S", "--vdir", vdir,
			"--pool", "apps", "--python", python, "-c", s.Config)
		took = append(took, time.Since(t0))
		if code != 0 {
			t.Fatalf("install %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
		if !strings.Contains(out, "answers 200") {
			t.Fatalf("install %d: its check of %s: %s", i, vdir, out)
		}
		var info poolInfo
		if resp, body := s.get(t, vdir+"/info"); resp.StatusCode != 200 || !jsonOK(body, &info) || info.ScriptName != vdir {
			t.Fatalf("GET %s/info after its install: %d %s", vdir, resp.StatusCode, trunc(body))
		}
		got := s.status(t).pool(t, "root").readyPIDs()
		sort.Ints(got)
		if !slices.Equal(got, rootPIDs) {
			t.Fatalf("install %d (pool apps) replaced pool root's workers: %v, were %v", i, got, rootPIDs)
		}
		if i == 1 { // and one to a vdir of pool apps, which recycles at each install
			fwd = startFreshLoad(t, s.url(0, "/a1/info"), 1, nil)
		}
		// every install started exactly one worker: of its own pool
		if apps := linesWith(logLines(s.Stderr(), "worker ready"), "pool=apps "); len(apps) != i {
			t.Fatalf("after install %d: %d workers of pool apps started, want %d", i, len(apps), i)
		}
	}
	fwd.stop()
	if total, ok := fwd.counts(); total < 10 || ok != total {
		t.Errorf("the loop on /a1 (forwarded to pool apps as it recycles): %s", fwd.summary())
	}
	// removes too: /a1 (pool apps recycles), then a pool of its own that
	// goes with its vdir (it drains once the routes no longer point at it)
	steps := [][]string{
		{"remove", "--site", "S", "--vdir", "/a1", "-c", s.Config},
		{"install", app("pool_app/app.py"), "--site", "S", "--vdir", "/solo", "--pool", "solo", "--python", python, "-c", s.Config},
		{"remove", "--site", "S", "--vdir", "/solo", "-c", s.Config},
	}
	var solo *loader
	for i, args := range steps {
		if i == 2 { // a loop on /solo while its pool goes: answered by solo, then by the root app
			solo = startFreshLoad(t, s.url(0, "/solo/info"), 1, nil)
			time.Sleep(200 * time.Millisecond)
		}
		if code, out, errOut := runWisp(t, 60*time.Second, s.Dir, args...); code != 0 {
			t.Fatalf("wisp %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
		}
		got := s.status(t).pool(t, "root").readyPIDs()
		sort.Ints(got)
		if !slices.Equal(got, rootPIDs) {
			t.Fatalf("wisp %s replaced pool root's workers: %v, were %v", strings.Join(args, " "), got, rootPIDs)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the pool's drain
	solo.stop()
	if total, ok := solo.counts(); total < 10 || ok != total {
		t.Errorf("the loop on /solo while its pool was removed: %s", solo.summary())
	}
	// it drains a moment later, once no route points at it
	if !eventually(10*time.Second, func() bool {
		return !slices.ContainsFunc(s.status(t).Pools, func(p wispPoolStatus) bool { return p.Name == "solo" })
	}) {
		t.Errorf("pool solo still runs 10s after its only vdir was removed: %+v", s.status(t).pool(t, "solo"))
	}
	if resp, body := s.get(t, "/solo/info"); resp.StatusCode != 200 || !strings.Contains(string(body), `"script_name": ""`) {
		t.Errorf("GET /solo/info after its removal: %d %s (want the root app's)", resp.StatusCode, trunc(body))
	}
	load.stop()
	total, ok := load.counts()
	t.Logf("%d installs, each: first %v, last %v; load on / %s; on /a1 %s", n, took[0].Round(time.Millisecond), took[n-1].Round(time.Millisecond), load.summary(), fwd.summary())
	if total < 10 || ok != total {
		t.Errorf("the background loop: %s", load.summary())
	}
	if started := linesWith(logLines(s.Stderr(), "worker ready"), "pool=root "); len(started) != 2 {
		t.Errorf("pool root started %d workers in all, want its first 2:\n%s", len(started), strings.Join(started, "\n"))
	}
	// install time does not grow with the site: the last few take at most
	// twice the first few (+ half a second for a busy machine)
	k := min(5, n/2)
	first, last := median(took[:k]), median(took[n-k:])
	if last > 2*first+500*time.Millisecond {
		t.Errorf("installs got slower: the first %d took %v (median), the last %d %v", k, first, k, last)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestInstallFailingVdirRollsBack: an app that imports but answers 500 at
// its vdir fails the install's own check of it: exit 1 with the reason,
// and the install is rolled back (no drop-in; the vdir is the root app's).
func TestInstallFailingVdirRollsBack(t *testing.T) {
	s := serve(t, liveInstallConfig)
	s.readyWorkers(t, "root", 2)
	code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", app("answers500/app.py"), "--site", "S", "--vdir", "/broken",
		"--pool", "apps", "--python", python, "-c", s.Config)
	if code == 0 {
		t.Fatalf("install of an app answering 500: exit 0\n%s\n%s", out, errOut)
	}
	if !strings.Contains(errOut, "answers 500") || !strings.Contains(errOut, "rolled back") {
		t.Errorf("its error does not say why: %s", errOut)
	}
	matches, _ := filepath.Glob(filepath.Join(s.Dir, "wisp.d", "*"))
	if len(matches) != 0 {
		t.Errorf("drop-ins left after the rollback: %v", matches)
	}
	var info poolInfo
	if resp, body := s.get(t, "/broken/info"); resp.StatusCode != 200 || !jsonOK(body, &info) || info.ScriptName != "" {
		t.Errorf("GET /broken/info after the rollback: %d %s (want the root app's)", resp.StatusCode, trunc(body))
	}
}

// TestInstallDefaultsToSitePool: without --pool, a new vdir of an existing
// site runs in the pool of the site's root vdir (as IIS gives a new virtual
// directory its site's application pool), with that pool's interpreter and
// paths: a Paste Deploy app the pool can import installs; no pool is made.
func TestInstallDefaultsToSitePool(t *testing.T) {
	s := serve(t, `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.site]
python = "@PY@"
pythonpath = ["@APPS@/pastedeploy"]

[[sites]]
name = "S"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
  pool = "site"
`)
	code, out, errOut := runWisp(t, 60*time.Second, s.Dir, "install", "config:"+app("pastedeploy/app.ini"), "--site", "S", "--vdir", "/paste", "-c", s.Config)
	if code != 0 {
		t.Fatalf("install: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "pool default created") {
		t.Errorf("the install made a pool of its own: %s", out)
	}
	if e := s.list(t)["S/paste"]; e.Pool != "site" {
		t.Errorf("S/paste runs in pool %q, want the site's pool, site", e.Pool)
	}
	if resp, body := s.get(t, "/paste/"); resp.StatusCode != 200 {
		t.Errorf("GET /paste/: %d %s", resp.StatusCode, trunc(body))
	}
}

// TestStaticVdirNeedsNoPython: a static vdir with no pool of its own is
// served by the workers of the pool that routes its site: no pool
// "default", no Python process for it; its files are served.
func TestStaticVdirNeedsNoPython(t *testing.T) {
	s := newPoolServer(t)
	files := filepath.Join(s.Dir, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "hello.txt"), []byte("static hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.root]
python = "@PY@"

[[sites]]
name = "S"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/pool_app/app.py"
  pool = "root"

  [[sites.vdirs]]
  path = "/static"
  static = "@DIR@/files"
`)
	s.start(t)
	st := s.status(t)
	var names []string
	workers := 0
	for _, p := range st.Pools {
		names = append(names, p.Name)
		workers += len(p.Workers)
	}
	if !slices.Equal(names, []string{"root"}) || workers != 1 {
		t.Errorf("pools %v with %d workers, want only root's 1: a static folder needs no Python", names, workers)
	}
	if resp, body := s.get(t, "/static/hello.txt"); resp.StatusCode != 200 || string(body) != "static hello\n" {
		t.Errorf("GET /static/hello.txt: %d %q", resp.StatusCode, body)
	}
	if lines := linesWith(logLines(s.Stderr(), "worker starting")); len(lines) != 1 {
		t.Errorf("%d workers started, want 1 (root's):\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// TestRerouteAcrossUsers: a pool of user nobody keeps its workers when a
// reload adds a vdir of another pool to its site, and may reach that
// pool's socket at once (the socket is opened to the users of the new
// routes before the routes reach the workers).
func TestRerouteAcrossUsers(t *testing.T) {
	needRoot(t)
	front := `
[server]
control_socket = "wisp.sock"
access_log = "off"

[pools.front]
python = "@PY@"
user = "nobody"
chdir = "@APPS@/identity"
env = { POOL_NAME = "front" }
@SIDE@
[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/identity/app.py"
  pool = "front"
@SIDEVDIR@`
	without := strings.NewReplacer("@SIDE@", "", "@SIDEVDIR@", "").Replace(front)
	with := strings.NewReplacer("@SIDE@", "\n[pools.side]\npython = \"@PY@\"\nenv = { POOL_NAME = \"side\" }\n",
		"@SIDEVDIR@", "\n  [[sites.vdirs]]\n  path = \"/side\"\n  app = \"@APPS@/identity/app.py\"\n  pool = \"side\"\n").Replace(front)
	s := serve(t, without)
	pids := s.readyWorkers(t, "front", 1)
	// a loop on /side/x across the reload: the root app's, then side's,
	// never a 502 (front's worker denied side's socket while side starts)
	load := startFreshLoad(t, s.URL+"/side/x", 2, nil)
	time.Sleep(200 * time.Millisecond)
	s.writeConfig(t, with)
	if code, out, errOut := s.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(200 * time.Millisecond)
	load.stop()
	if total, ok := load.counts(); total < 10 || ok != total {
		t.Errorf("the loop on /side/x across the reload: %s", load.summary())
	}
	if w := s.getWhoami(t, s.URL+"/side/x"); w.Pool != "side" {
		t.Errorf("/side/x after the reload: answered by pool %q, want side", w.Pool)
	}
	if got := s.status(t).pool(t, "front").readyPIDs(); !slices.Equal(got, pids) {
		t.Errorf("the reload replaced pool front's workers: %v, were %v", got, pids)
	}
}
