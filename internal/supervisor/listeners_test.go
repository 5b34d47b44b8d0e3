package supervisor

import (
	"os"
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
