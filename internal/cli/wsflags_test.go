package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wisp/internal/config"
)

// The WebSocket flags of `wisp run` stand for the pool keys of the same
// names: defaults, values (compression off and pings off included), the
// environment, and over a -c file.
func TestRunWebSocketFlags(t *testing.T) {
	check := func(what string, p *config.Pool, compression bool, max int64, every, wait time.Duration) {
		t.Helper()
		if p.WebSocketCompression != compression || int64(p.WebSocketMaxMessage) != max ||
			time.Duration(p.WebSocketPingInterval) != every || time.Duration(p.WebSocketPingTimeout) != wait {
			t.Errorf("%s: websocket_compression %v, websocket_max_message %d, websocket_ping_interval %s, websocket_ping_timeout %s; want %v %d %s %s",
				what, p.WebSocketCompression, p.WebSocketMaxMessage, p.WebSocketPingInterval, p.WebSocketPingTimeout, compression, max, every, wait)
		}
	}
	check("defaults", printed(t, "app:app").Pools["default"], true, 16<<20, 20*time.Second, 20*time.Second)
	check("flags", printed(t, "app:app", "--websocket-compression=false", "--websocket-max-message", "1KiB",
		"--websocket-ping-interval", "0", "--websocket-ping-timeout", "5s").Pools["default"], false, 1024, 0, 5*time.Second)

	dir := t.TempDir()
	path := filepath.Join(dir, "wisp.toml")
	os.WriteFile(path, []byte(`
[pools.web]
websocket_compression = false
websocket_max_message = "2MiB"
websocket_ping_interval = "7s"

[[sites]]
name = "main"
bindings = ["127.0.0.1:9100"]

  [[sites.vdirs]]
  path = "/"
  app = "app:app"
  pool = "web"
`), 0o644)
	check("the file", printed(t, "-c", path).Pools["web"], false, 2<<20, 7*time.Second, 20*time.Second)
	withEnv(t, map[string]string{"WISP_WEBSOCKET_PING_TIMEOUT": "9s"})
	check("the file, the environment and flags", printed(t, "-c", path, "--websocket-compression", "--websocket-ping-interval", "0s").Pools["web"],
		true, 2<<20, 0, 9*time.Second)
	check("the file and a size flag", printed(t, "-c", path, "--websocket-max-message", "3KiB").Pools["web"],
		false, 3<<10, 7*time.Second, 9*time.Second)
}

// Bad WebSocket flag values are usage errors naming the flag and the form.
func TestRunRefusesBadWebSocketFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--websocket-max-message", "0", "app:app"}, "--websocket-max-message 0: want a size, 1 byte or more"},
		{[]string{"--websocket-max-message", "huge", "app:app"}, "--websocket-max-message huge: want a size"},
		{[]string{"--websocket-ping-interval", "-1s", "app:app"}, "--websocket-ping-interval -1s: want a duration, 0 (no pings) or more"},
		{[]string{"--websocket-ping-timeout", "0s", "app:app"}, "--websocket-ping-timeout 0s: want a duration above 0"},
		{[]string{"--websocket-compression=maybe", "app:app"}, "--websocket-compression maybe: want true or false"},
	} {
		err := runCmd(c.args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("wisp run %s:\n got %v\nwant a usage error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
