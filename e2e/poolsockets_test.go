package e2e

// The unix sockets the pools are forwarded to: their names across reloads.

import (
	"strings"
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
