package listen

import (
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"testing"
)

func TestSameAddr(t *testing.T) {
	for _, c := range []struct {
		addr, binding string
		want          bool
	}{
		{"127.0.0.1:8000", "127.0.0.1:8000", true},
		{"127.0.0.1:8000", "127.0.0.1:8001", false},
		{"[::]:8000", ":8000", true},
		{"[::]:8000", "0.0.0.0:8000", true},
		{"127.0.0.1:8000", ":8000", false},
		{"unix:/run/a.sock", "unix:/run/a.sock", true},
		{"unix:/run/a.sock", "unix:/run/b.sock", false},
		{"127.0.0.1:8000", "unix:/run/a.sock", false},
	} {
		if got := sameAddr(c.addr, c.binding); got != c.want {
			t.Errorf("sameAddr(%q, %q) = %v", c.addr, c.binding, got)
		}
	}
}

// Sockets are matched by name first, then by address; Extra lists those no
// binding matches, and Rest hands them out once.
func TestSetMatching(t *testing.T) {
	mk := func(name string) *Activated {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return &Activated{Name: name, Ln: ln}
	}
	a, b, c := mk("web"), mk(""), mk("")
	s := &Set{socks: []*Activated{a, b, c}}
	extra := s.Extra(map[string][]string{"web": {"0.0.0.0:80"}, "api": {b.Addr()}})
	if len(extra) != 1 || extra[0] != c.Addr() {
		t.Errorf("Extra = %v, want [%s]", extra, c.Addr())
	}
	if got, ok := s.Take("0.0.0.0:80", "web"); !ok || got != a {
		t.Errorf("by name: %v %v", got, ok)
	}
	if got, ok := s.Take(b.Addr(), "api"); !ok || got != b {
		t.Errorf("by address: %v %v", got, ok)
	}
	if _, ok := s.Take(b.Addr(), "api"); ok {
		t.Error("a socket taken twice")
	}
	if rest := s.Rest(); len(rest) != 1 || rest[0] != c {
		t.Errorf("Rest = %v", rest)
	}
	var none *Set
	if none.Len() != 0 || none.Rest() != nil {
		t.Error("a nil set is not empty")
	}
}

// A unix socket gets its mode, a stale file is replaced, a live one is an
// error, and Remove deletes it.
func TestOpenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	os.WriteFile(path, nil, 0o644) // stale: nobody listens
	ln, err := Open("unix:"+path, Unix{Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("mode %v", st.Mode())
	}
	if _, err := Open("unix:"+path, Unix{}); err == nil {
		t.Error("a second server on a live socket was allowed")
	}
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Error("closing the listener removed the file (workers share it)")
	}
	Remove("unix:" + path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("Remove left the file")
	}
	if err := Check("unix:"); err == nil {
		t.Error("unix: without a path accepted")
	}
	if _, err := ParseMode("0999"); err == nil {
		t.Error("mode 0999 accepted")
	}
}

func TestUserGroups(t *testing.T) {
	if got, err := UserGroups(nil, 7); err != nil || !slices.Equal(got, []uint32{7}) {
		t.Errorf("UserGroups(nil, 7) = %v, %v; want [7]", got, err)
	}
	root, err := user.LookupId("0")
	if err != nil {
		t.Skip(err)
	}
	got, err := UserGroups(root, 4242)
	if err != nil || got[0] != 4242 || !slices.Contains(got, 0) {
		t.Errorf("UserGroups(root, 4242) = %v, %v; want 4242 and root's groups (0 among them)", got, err)
	}
}
