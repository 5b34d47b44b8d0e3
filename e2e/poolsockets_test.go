package e2e

// The unix sockets the pools are forwarded to: their names across reloads,
// and who may reach them.

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A pool added, removed and added again by reloads gets its socket again:
// the names were pool-N, N the count of listeners, and never unlinked, so
// the third reload failed with "address already in use".
func TestPoolSocketReAdded(t *testing.T) {
	t.Parallel()
	const front = `
[server]
access_log = "off"

[pools.front]
python = "@PY@"
processes = 1
threads = 1
env = { POOL_NAME = "front" }

[[sites]]
name = "main"
bindings = ["127.0.0.1:@PORT0@"]

  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/identity/app.py"
  pool = "front"
`
	const side = `
[pools.side]
python = "@PY@"
processes = 1
threads = 1
env = { POOL_NAME = "side" }

  [[sites.vdirs]]
  path = "/side"
  app = "@APPS@/identity/app.py"
  pool = "side"
`
	// the vdir belongs to the site above: the pool's table goes before it
	withSide := strings.Replace(front, "[[sites]]", side[:strings.Index(side, "  [[sites.vdirs]]")]+"[[sites]]", 1) +
		side[strings.Index(side, "  [[sites.vdirs]]"):]
	s := serve(t, front)
	for i, step := range []struct {
		config, want string
	}{
		{withSide, "side"}, {front, "front"}, {withSide, "side"}, {front, "front"}, {withSide, "side"},
	} {
		s.writeConfig(t, step.config)
		if code, out, errOut := s.ctl(t, "reload"); code != 0 {
			t.Fatalf("reload %d: exit %d\n%s%s", i+1, code, out, errOut)
		}
		// (a replaced worker may take one more connection while it is told to drain)
		got := ""
		for try := 0; try < 50 && got != step.want; try++ {
			if try > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			got = s.getWhoami(t, s.URL+"/side/x").Pool
		}
		if got != step.want {
			t.Errorf("reload %d: /side/x answered by pool %q, want %q", i+1, got, step.want)
		}
	}
}

// Pools of other users forward to each other: from a pool that runs as
// nobody to one that runs as root and back, and from two users to one pool
// (an ACL then names them). The run folder was root's 0700, so a pool with
// `user =` could not reach the socket of the pool it forwards to. The
// sockets stay private: no other user may connect to them.
func TestPoolForwardAcrossUsers(t *testing.T) {
	needRoot(t)
	carol, _ := throwawayUser(t)
	port2 := pickPort(t)
	pool := func(name, user string) string {
		text := "\n[pools." + name + "]\npython = \"@PY@\"\nprocesses = 1\nthreads = 2\nchdir = \"@APPS@/identity\"\n" +
			"env = { POOL_NAME = \"" + name + "\" }\n"
		if user != "" {
			text += "user = \"" + user + "\"\n"
		}
		return text
	}
	site := func(name, port string, vdirs ...string) string {
		text := "\n[[sites]]\nname = \"" + name + "\"\nbindings = [\"127.0.0.1:" + port + "\"]\n"
		for i := 0; i+1 < len(vdirs); i += 2 {
			text += "\n  [[sites.vdirs]]\n  path = \"" + vdirs[i] + "\"\n  app = \"@APPS@/identity/app.py\"\n  pool = \"" + vdirs[i+1] + "\"\n"
		}
		return text
	}
	s := serve(t, "[server]\naccess_log = \"off\"\n"+pool("nobody", "nobody")+pool("root", "")+pool("carol", carol.Username)+
		site("a", "@PORT0@", "/", "nobody", "/x", "root")+ // nobody forwards to root
		site("b", "@PORT1@", "/", "root", "/y", "nobody")+ // root forwards to nobody
		site("c", port2, "/", "carol", "/x", "root", "/y", "nobody")) // carol too, to both
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{"nobody": nobody.Uid, "root": "0", "carol": carol.Uid}
	for _, tc := range []struct{ url, pool string }{
		{s.url(0, "/"), "nobody"}, {s.url(0, "/x/"), "root"},
		{s.url(1, "/"), "root"}, {s.url(1, "/y/"), "nobody"},
		{"http://127.0.0.1:" + port2 + "/", "carol"}, {"http://127.0.0.1:" + port2 + "/x/", "root"},
		{"http://127.0.0.1:" + port2 + "/y/", "nobody"},
	} {
		w := s.getWhoami(t, tc.url)
		if w.Pool != tc.pool || strconv.Itoa(w.UID) != uids[tc.pool] {
			t.Errorf("GET %s: pool %q uid %d, want pool %s uid %s", tc.url, w.Pool, w.UID, tc.pool, uids[tc.pool])
		}
	}

	// The pool sockets: none may be reached by a user whose workers do not
	// forward to it (daemon here), and the run folder cannot be listed.
	socks := poolSocketsOf(t, s.wisp.Pid())
	if len(socks) != 3 {
		t.Fatalf("the supervisor's pool sockets: %v, want 3", socks)
	}
	for _, sock := range socks {
		st, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s: mode %v, want nothing for others", sock, st.Mode())
		}
		// owned by the supervisor: a pool user that owned it could chmod it
		// open to every local user, who could then pass trusted X-Wisp-* headers
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != uint32(os.Geteuid()) {
			t.Errorf("%s: owned by uid %d, want the supervisor's (%d): its owner can open it to everyone", sock, uid, os.Geteuid())
		}
		if dir, _ := os.Stat(filepath.Dir(sock)); dir.Mode().Perm() != 0o711 {
			t.Errorf("run folder %s: mode %v, want 0711 (others pass, none lists)", filepath.Dir(sock), dir.Mode())
		}
		if _, err := exec.LookPath("setpriv"); err != nil {
			continue
		}
		out, err := exec.Command("setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", python, "-c",
			"import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('refused')\nelse:\n    print('connected')\n",
			sock).CombinedOutput()
		if strings.TrimSpace(string(out)) != "refused" {
			t.Errorf("user daemon connecting to %s: %q %v, want refused", sock, out, err)
		}
	}
}

// poolSocketsOf lists the pool sockets (pool-N.sock) process pid listens
// on: the unix sockets among its descriptors, by inode in /proc/net/unix.
func poolSocketsOf(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && inodes[f[6]] && strings.HasPrefix(filepath.Base(f[7]), "pool-") {
			out = append(out, f[7])
		}
	}
	return out
}
