package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A pool's socket is removed when its listener closes, and a pool removed
// and added again gets a socket of another name.
func TestPoolSocketNames(t *testing.T) {
	s := &Supervisor{rundir: t.TempDir(), listeners: map[string]*listener{}}
	seen := map[string]bool{}
	for i := range 3 {
		if err := s.openPoolSocket("a"); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		l := s.listeners["pool:a"]
		if seen[l.addr] {
			t.Errorf("open %d: socket %s again", i, l.addr)
		}
		seen[l.addr] = true
		if _, err := os.Stat(l.addr); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		l.close()
		delete(s.listeners, l.key)
		if _, err := os.Stat(l.addr); !os.IsNotExist(err) {
			t.Errorf("socket %s still there after close (%v)", l.addr, err)
		}
	}
}

// A pool socket is 0600 from the start, and is opened to exactly the
// users given: one owns it, more are named by an ACL.
func TestGrantSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := listenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	check := func(what string, owner int, acl []byte) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		n, err := syscall.Getxattr(path, aclXattr, buf)
		if err != nil {
			n = 0
		}
		if int(st.Uid) != owner || !bytes.Equal(buf[:n], acl) {
			t.Errorf("%s: owner %d mode %o ACL %x; want owner %d ACL %x", what, st.Uid, st.Mode&0o777, buf[:n], owner, acl)
		}
		if acl == nil && st.Mode&0o777 != 0o600 {
			t.Errorf("%s: mode %o, want 0600", what, st.Mode&0o777)
		}
	}
	check("new", os.Geteuid(), nil)
	if os.Geteuid() != 0 {
		t.Skip("giving a socket to other users needs root")
	}
	for _, tc := range []struct {
		uids  []uint32
		owner int
	}{{[]uint32{65534}, 0}, {[]uint32{1, 65534}, 0}, {nil, 0}, {[]uint32{1}, 0}} {
		if err := grantSocket(path, tc.uids); err != nil {
			if errors.Is(err, syscall.EOPNOTSUPP) {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		var acl []byte
		if len(tc.uids) > 0 { // one user too: an owner could chmod the socket open to all
			acl = userACL(tc.uids)
		}
		check(fmt.Sprint(tc.uids), tc.owner, acl)
	}
}

func TestUserACL(t *testing.T) {
	got := userACL([]uint32{7, 65534})
	want := []byte{2, 0, 0, 0, // version
		1, 0, 6, 0, 255, 255, 255, 255, // user::rw-
		2, 0, 6, 0, 7, 0, 0, 0, // user:7:rw-
		2, 0, 6, 0, 254, 255, 0, 0, // user:65534:rw-
		4, 0, 0, 0, 255, 255, 255, 255, // group::---
		16, 0, 6, 0, 255, 255, 255, 255, // mask::rw-
		32, 0, 0, 0, 255, 255, 255, 255} // other::---
	if !bytes.Equal(got, want) {
		t.Errorf("userACL = %v\nwant      %v", got, want)
	}
}
