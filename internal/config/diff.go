package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
)

// Fingerprint identifies p's settings: two pools with equal settings have
// the same fingerprint, whatever their names. Paths are compared resolved,
// so the same relative path in a moved config file differs.
func (p *Pool) Fingerprint() string { return fingerprint(p) }

// Fingerprint identifies the [server] settings.
func (s *Server) Fingerprint() string { return fingerprint(s) }

func fingerprint(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // the model holds only marshalable types
		panic("config: fingerprint: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// mount is what a pool's workers load for one vdir.
type mount struct {
	Site           string   `json:"site"`
	Path           string   `json:"path"`
	App            string   `json:"app"`
	RequestTimeout Duration `json:"request_timeout"`
	// a static vdir's settings, which its workers hold too
	Static       string `json:"static,omitempty"`
	CacheControl string `json:"cache_control,omitempty"`
	Dotfiles     string `json:"dotfiles,omitempty"`
	// how the worker serves the app, decided when it imports it
	Interface string `json:"interface,omitempty"`
	Lifespan  string `json:"lifespan,omitempty"`
}

// mounts lists the vdirs of the pool named name, in file order.
func (c *Config) mounts(name string) []mount {
	var ms []mount
	for _, s := range c.Sites {
		for _, v := range s.Vdirs {
			if v.Pool == name {
				ms = append(ms, mount{s.Name, v.Path, v.App, v.RequestTimeout, v.Static, v.CacheControl, v.Dotfiles,
					v.Interface, v.Lifespan})
			}
		}
	}
	return ms
}

// Diff compares two configurations for a reload. changed names the pools
// present in both whose workers must be replaced: their settings differ
// (Fingerprint: loop and the WebSocket settings included) or so do the
// vdirs they serve (path, app, request timeout, static settings, interface
// or lifespan; workers load their pool's apps at start).
// added and removed name the other pools. routesChanged reports any
// difference in the sites: names, bindings, hostnames, or vdirs (including
// which pool serves one).
// A reload replaces no worker for routesChanged alone: the pools that only
// forward to a changed vdir get their new routes live (see the
// supervisor's reroute).
// Changes to [server] are not reported here: compare Server.Fingerprint.
// Names are sorted; a nil Config counts as empty.
func Diff(old, new *Config) (changed, added, removed []string, routesChanged bool) {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	for _, name := range slices.Sorted(maps.Keys(new.Pools)) {
		op, ok := old.Pools[name]
		switch {
		case !ok:
			added = append(added, name)
		case op.Fingerprint() != new.Pools[name].Fingerprint() ||
			fingerprint(old.mounts(name)) != fingerprint(new.mounts(name)):
			changed = append(changed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old.Pools)) {
		if _, ok := new.Pools[name]; !ok {
			removed = append(removed, name)
		}
	}
	routesChanged = fingerprint(old.Sites) != fingerprint(new.Sites)
	return changed, added, removed, routesChanged
}
