package e2e

// The identity of a pool's workers (`user =`, `group =`) and what it may
// reach: the user's groups and HOME, and the sockets of the other pools.

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"testing"
	"time"
)

// whoami is what testdata/apps/identity answers.
type whoami struct {
	Pool       string `json:"pool"`
	UID        int    `json:"uid"`
	GID        int    `json:"gid"`
	Groups     []int  `json:"groups"`
	Home       string `json:"home"`
	User       string `json:"user"`
	ScriptName string `json:"script_name"`
}

// getWhoami GETs url from the identity app on a fresh connection (an idle
// keep-alive one may still be a replaced worker's), and fails the test
// unless it answers 200.
func (s *poolServer) getWhoami(t *testing.T, url string) whoami {
	t.Helper()
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	code, body := get(fresh, url)
	var w whoami
	if code != 200 || json.Unmarshal([]byte(body), &w) != nil {
		t.Fatalf("GET %s: %d %q, want 200 and the identity app's JSON", url, code, body)
	}
	return w
}

// needRoot skips the test unless it runs as root (CI does).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: pools run as another user")
	}
}

// throwawayUser creates a system group and a system user whose primary
// group is nogroup and who is a member of that group (home not created),
// and removes both when the test ends.
func throwawayUser(t *testing.T) (u *user.User, g *user.Group) {
	t.Helper()
	for _, tool := range []string{"useradd", "groupadd", "userdel", "groupdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	name := fmt.Sprintf("wisp%d%08x", os.Getpid(), h.Sum32()) // one per test and process
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("groupadd", "--system", name+"g")
	t.Cleanup(func() { exec.Command("groupdel", name+"g").Run() })
	run("useradd", "--system", "--no-create-home", "--no-user-group", "--gid", "nogroup", "--groups", name+"g",
		"--home-dir", "/nonexistent/"+name, "--shell", "/usr/sbin/nologin", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if g, err = user.LookupGroup(name + "g"); err != nil {
		t.Fatal(err)
	}
	return u, g
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A pool with `user =` runs with exactly the user's groups (its primary
// group and the groups it is a member of: as initgroups gives them, never
// the supervisor's) and the user's HOME and USER; with `group =` too, that
// group is the gid and among the groups.
func TestPoolUserGroups(t *testing.T) {
	needRoot(t)
	u, g := throwawayUser(t)
	nogroup, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup: %v", err)
	}
	s := serve(t, `
[server]
access_log = "off"

[pools.user]
python = "@PY@"
processes = 1
threads = 1
chdir = "@APPS@/identity"
user = "`+u.Username+`"

[pools.both]
python = "@PY@"
processes = 1
threads = 1
chdir = "@APPS@/identity"
user = "`+u.Username+`"
group = "daemon"

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/identity/app.py"
  pool = "user"

[[sites]]
name = "both"
bindings = ["127.0.0.1:@PORT1@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/identity/app.py"
  pool = "both"
`)
	daemon, err := user.LookupGroup("daemon")
	if err != nil {
		t.Fatal(err)
	}
	sorted := func(ids ...string) []int {
		var out []int
		for _, id := range ids {
			if n := atoi(t, id); !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		url    string
		gid    int
		groups []int
	}{
		{s.url(0, "/"), atoi(t, nogroup.Gid), sorted(nogroup.Gid, g.Gid)},
		{s.url(1, "/"), atoi(t, daemon.Gid), sorted(daemon.Gid, nogroup.Gid, g.Gid)},
	} {
		w := s.getWhoami(t, tc.url)
		if w.UID != atoi(t, u.Uid) || w.GID != tc.gid || !slices.Equal(w.Groups, tc.groups) {
			t.Errorf("GET %s: uid %d gid %d groups %v; want uid %s gid %d groups %v (the user's, as initgroups gives them)",
				tc.url, w.UID, w.GID, w.Groups, u.Uid, tc.gid, tc.groups)
		}
		if w.Home != u.HomeDir || w.User != u.Username {
			t.Errorf("GET %s: HOME %q USER %q; want the user's: %q %q", tc.url, w.Home, w.User, u.HomeDir, u.Username)
		}
	}
}

// `wisp run -u USER` in-process gives the app the same identity a pool's
// workers get: exactly the user's groups, and its HOME and USER.
func TestRunUserGroups(t *testing.T) {
	needRoot(t)
	u, g := throwawayUser(t)
	nogroup, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup: %v", err)
	}
	w := start(t, "-u", u.Username, "--chdir", appsDir+"/identity", "app.py")
	resp, body := w.get(t, "/")
	var who whoami
	if resp.StatusCode != 200 || json.Unmarshal(body, &who) != nil {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
	want := []int{atoi(t, nogroup.Gid), atoi(t, g.Gid)}
	slices.Sort(want)
	if who.UID != atoi(t, u.Uid) || who.GID != atoi(t, nogroup.Gid) || !slices.Equal(who.Groups, want) {
		t.Errorf("wisp run -u %s: uid %d gid %d groups %v; want uid %s gid %s groups %v (the user's, as initgroups gives them)",
			u.Username, who.UID, who.GID, who.Groups, u.Uid, nogroup.Gid, want)
	}
	if who.Home != u.HomeDir || who.User != u.Username {
		t.Errorf("wisp run -u: HOME %q USER %q; want %q %q", who.Home, who.User, u.HomeDir, u.Username)
	}
}
