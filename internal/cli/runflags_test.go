package cli

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"wisp/internal/config"
	"wisp/internal/server"
)

// Flag values that cannot work are refused before anything starts, with the
// flag's name and the accepted form (exit code 2: a usage error).
func TestRunRefusesBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--threads", "0", "app:app"}, "--threads 0: want a number of Python threads, 1 or more"},
		{[]string{"--threads", "-3", "app:app"}, "--threads -3"},
		{[]string{"--processes", "-1", "app:app"}, "--processes -1: want a number of worker processes"},
		{[]string{"--queue", "0", "app:app"}, "--queue 0"},
		{[]string{"--max-body", "-1", "app:app"}, "--max-body -1"},
		{[]string{"--max-header-bytes", "100", "app:app"}, "--max-header-bytes 100: want a size in bytes, 1024 or more"},
		{[]string{"--read-timeout", "-1s", "app:app"}, "--read-timeout -1s: want a duration above 0"},
		{[]string{"--idle-timeout", "0s", "app:app"}, "--idle-timeout 0s"},
		{[]string{"--timeout", "-5s", "app:app"}, "--timeout -5s"},
		{[]string{"--max-rss", "512", "app:app"}, "--max-rss applies to a pool of worker processes: add --processes N"},
		{[]string{"--max-requests", "100", "app:app"}, "--max-requests applies to a pool"},
		{[]string{"--max-uptime", "1h", "app:app"}, "--max-uptime applies to a pool"},
		{[]string{"--rapid-fail=false", "app:app"}, "--rapid-fail applies to a pool"},
		{[]string{"--processes", "2", "--rapid-fail-max", "0", "app:app"}, "--rapid-fail-max 0"},
		{[]string{"--processes", "2", "--max-requests", "-1", "app:app"}, "--max-requests -1"},
		{[]string{"--bind", "unix:", "app:app"}, `invalid binding "unix:": want unix:PATH`},
		{[]string{"--bind", "127.0.0.1", "app:app"}, `--bind: invalid binding "127.0.0.1": want host:port`},
		{[]string{"--threads", "many", "app:app"}, "--threads many: want a number of Python threads, 1 or more"},
		{[]string{"-t", "soon", "app:app"}, "--timeout soon: want a duration, 0 (none) or more, such as 30s or 30 (seconds)"},
		{[]string{"--no-such-flag", "app:app"}, "unknown flag: --no-such-flag (see 'wisp run --help' for the flags)"},
		{[]string{"-Z", "app:app"}, "unknown shorthand flag: 'Z'"},
		{[]string{"-e", "NOEQUALS", "app:app"}, `--env "NOEQUALS": want KEY=VALUE`},
		{[]string{"--socket-mode", "999", "app:app"}, "--socket-mode: socket mode \"999\": want octal"},
		{[]string{"app:app", "other:app"}, "run takes one TARGET, got 2"},
		{[]string{"-c", "wisp.toml", "-w", "0"}, "--processes 0 with --config"},
		{[]string{"--bind", "127.0.0.1:http", "app:app"}, "want host:port"},
		{[]string{"--admin", "127.0.0.1:9100", "--admin-host", "admin.example:9100", "app:app"}, `--admin-host: admin host "admin.example:9100": want a host name or an IP address`},
	}
	for _, c := range cases {
		err := runCmd(c.args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("wisp run %s: %v, want a usage error", strings.Join(c.args, " "), err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("wisp run %s:\n got %v\nwant %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	// all the problems at once
	err := runCmd([]string{"--threads", "0", "--queue", "0", "--max-rss", "9", "app:app"}, io.Discard, io.Discard)
	if err == nil || strings.Count(err.Error(), "--") < 3 {
		t.Errorf("want three problems in one error, got %v", err)
	}
}

// Several --bind flags are all served (the last no longer wins), and the
// rapid-fail, min-write-rate and max-spill flags reach the pool's settings.
func TestPoolTOMLBindsAndRapidFail(t *testing.T) {
	text, err := poolTOML(runPool{
		binds: []string{"127.0.0.1:8001", "127.0.0.1:8002"}, mounts: []server.Mount{{Target: "app:app"}},
		processes: 2, threads: 4, queue: 10, maxHeader: 8192, maxBody: 1 << 20, start: time.Minute,
		grace: time.Second, rht: time.Second, rt: time.Second, wt: time.Second, it: time.Second,
		access: "off", level: "info", socket: "/tmp/x.sock",
		rapidFail: false, rapidFailMax: 7, rapidFailWindow: time.Minute, minWriteRate: 0, maxSpill: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("flags", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if got := cfg.Sites[0].Bindings; len(got) != 2 || got[0] != "127.0.0.1:8001" || got[1] != "127.0.0.1:8002" {
		t.Errorf("bindings %v", got)
	}
	p := cfg.Pools["default"]
	if p.RapidFail || p.RapidFailMax != 7 || time.Duration(p.RapidFailWindow) != time.Minute {
		t.Errorf("rapid fail: %v %d %v", p.RapidFail, p.RapidFailMax, p.RapidFailWindow)
	}
	if p.MinWriteRate != 0 || p.MaxSpill != 5<<20 {
		t.Errorf("min_write_rate %d, max_spill %d; want 0 and 5MiB from the flags", p.MinWriteRate, p.MaxSpill)
	}
}

// --admin-host reaches a pool's [server] admin_hosts.
func TestPoolTOMLAdminHosts(t *testing.T) {
	text, err := poolTOML(runPool{
		binds: []string{"127.0.0.1:8001"}, mounts: []server.Mount{{Target: "app:app"}},
		processes: 1, threads: 4, queue: 10, maxHeader: 8192, maxBody: 1 << 20, start: time.Minute,
		grace: time.Second, rht: time.Second, rt: time.Second, wt: time.Second, it: time.Second,
		access: "off", level: "info", socket: "/tmp/x.sock", maxSpill: 5 << 20, rapidFailMax: 5, rapidFailWindow: time.Minute,
		admin: "127.0.0.1:9100", adminHosts: []string{"a.example", "10.0.0.5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("flags", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if got := cfg.Server.AdminHosts; len(got) != 2 || got[0] != "a.example" || got[1] != "10.0.0.5" {
		t.Errorf("admin_hosts %q, want [a.example 10.0.0.5]", got)
	}
}
