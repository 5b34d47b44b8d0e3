package supervisor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"wisp/internal/config"
)

// A pool's WebSocket settings reach its workers' spec as server.Config
// takes them: the defaults written out, and a ping interval of 0s (no
// pings) as a negative one (the server's 0 is its default).
func TestPoolSpecWebSocket(t *testing.T) {
	const sites = `
[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
`
	for name, c := range map[string]struct {
		pool        string
		compression bool
		max         int64
		every, wait time.Duration
	}{
		"defaults": {"", true, 16 << 20, 20 * time.Second, 20 * time.Second},
		"set": {`websocket_compression = false
websocket_max_message = "1KiB"
websocket_ping_interval = "0s"
websocket_ping_timeout = "3s"`, false, 1024, -1, 3 * time.Second},
	} {
		cfg, err := config.Parse("/srv/wisp.toml", []byte("[pools.default]\n"+c.pool+"\n"+sites))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := &Supervisor{rundir: t.TempDir()}
		p, err := s.newPool(cfg, "default")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sp := p.spec
		if !sp.NoWebSocketCompression != c.compression || sp.WebSocketMaxMessage != c.max ||
			sp.WebSocketPingInterval != c.every || sp.WebSocketPingTimeout != c.wait {
			t.Errorf("%s: spec compression %v, max message %d, ping every %v, timeout %v; want %v %d %v %v", name,
				!sp.NoWebSocketCompression, sp.WebSocketMaxMessage, sp.WebSocketPingInterval, sp.WebSocketPingTimeout,
				c.compression, c.max, c.every, c.wait)
		}
	}
}

// A reload that changes what a pool's workers read at start (a vdir's
// interface or lifespan, the pool's loop or WebSocket settings) replaces
// its workers: the specs differ in more than the routes, so the pool is
// not rerouted live.
func TestReloadReplacesWorkersForASGISettings(t *testing.T) {
	const base = `
[pools.default]
@POOL@

[[sites]]
name = "main"
bindings = ["127.0.0.1:8080"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
  @VDIR@
`
	spec := func(pool, vdir string) WorkerSpec {
		text := strings.NewReplacer("@POOL@", pool, "@VDIR@", vdir).Replace(base)
		cfg, err := config.Parse("/srv/wisp.toml", []byte(text))
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		p, err := (&Supervisor{rundir: "/run/wisp"}).newPool(cfg, "default")
		if err != nil {
			t.Fatal(err)
		}
		return p.spec
	}
	old := spec("", "")
	for _, c := range []struct{ pool, vdir string }{
		{"", `lifespan = "off"`},
		{"", `interface = "asgi"`},
		{`loop = "asyncio"`, ""},
		{"websocket_compression = false", ""},
		{`websocket_max_message = "1MiB"`, ""},
		{`websocket_ping_interval = "0s"`, ""},
		{`websocket_ping_timeout = "1s"`, ""},
	} {
		if routesOnly(old, spec(c.pool, c.vdir)) {
			t.Errorf("%s%s: taken for a change of routes only, applied live to the old workers", c.pool, c.vdir)
		}
	}
	if !routesOnly(old, spec("", "")) {
		t.Error("the same configuration is more than a change of routes")
	}
}

// A spec written by a supervisor that predates the WebSocket settings
// (a worker of a newer binary, recycled under an old supervisor) reads as
// the defaults: compression on, the server's own limits.
func TestSpecWithoutWebSocketSettings(t *testing.T) {
	var sp WorkerSpec
	if err := json.Unmarshal([]byte(`{"pool":"default","threads":4}`), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.NoWebSocketCompression || sp.WebSocketMaxMessage != 0 || sp.WebSocketPingInterval != 0 || sp.WebSocketPingTimeout != 0 {
		t.Errorf("spec %+v: want the zero values, the server's defaults", sp)
	}
}
