package server

import (
	"log/slog"
	"testing"
)

// TestSetMounts: a routing change swaps the table between requests,
// keeping the loaded apps and unchanged forwarders; a change of apps is
// refused and leaves the table as it was.
func TestSetMounts(t *testing.T) {
	app := Mount{Prefix: "/", Target: "app.py", Site: "S"}
	s := &Server{cfg: Config{Log: slog.New(slog.DiscardHandler)}, mounts: []mount{{src: app, prefix: "", app: 7}}}
	api := Mount{Prefix: "/api", Forward: "/run/wisp/pool-2.sock", Site: "S"}
	if err := s.SetMounts([]Mount{app, api}); err != nil {
		t.Fatalf("SetMounts with a new forwarded vdir: %v", err)
	}
	m, pi := s.route("/api/x")
	if m == nil || m.prefix != "/api" || m.proxy == nil || pi != "/x" {
		t.Fatalf("route(/api/x) = %+v, %q; want the forwarded /api", m, pi)
	}
	fwd := m.proxy
	if m, _ := s.route("/other"); m == nil || m.app != 7 || m.proxy != nil {
		t.Fatalf("route(/other) = %+v; want the app loaded at /", m)
	}
	// the same forwarder again: kept, with its connections
	if err := s.SetMounts([]Mount{api, app}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.route("/api"); m == nil || m.proxy != fwd {
		t.Errorf("an unchanged forwarded vdir got a new forwarder")
	}
	for name, ms := range map[string][]Mount{
		"the app goes":      {api},
		"the app changes":   {{Prefix: "/", Target: "other.py", Site: "S"}, api},
		"a new app":         {app, api, {Prefix: "/new", Target: "new.py", Site: "S"}},
		"a prefix twice":    {app, api, api},
		"a relative prefix": {app, {Prefix: "api", Forward: "/x.sock"}},
	} {
		if err := s.SetMounts(ms); err == nil {
			t.Errorf("%s: SetMounts accepted it", name)
		}
		if m, _ := s.route("/api/x"); m == nil || m.proxy != fwd {
			t.Errorf("%s: the refused table changed the routes", name)
		}
	}
	// the forwarded vdir goes: its prefix is the app's again
	if err := s.SetMounts([]Mount{app}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.route("/api/x"); m == nil || m.app != 7 || m.proxy != nil {
		t.Errorf("route(/api/x) after /api went = %+v; want the app at /", m)
	}
}
