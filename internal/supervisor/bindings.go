package supervisor

import (
	"slices"
	"strings"

	"wisp/internal/config"
	"wisp/internal/listen"
)

// bindingKey is the listener a binding of site st is served on: its
// address, without the scheme ("https://:443" and ":443" are one socket);
// port 0 (any free port) is a socket of its own for each site.
func bindingKey(st *config.Site, b string) string {
	_, addr := listen.Scheme(b)
	if strings.HasSuffix(addr, ":0") {
		return addr + "@" + st.Name
	}
	return addr
}

// siteBindings groups the sites' bindings by listener, each with the sites
// that share it in the file's order, default site (no hostnames) first; keys
// are in the order bindings first appear.
func siteBindings(cfg *config.Config) (keys []string, sites map[string][]*config.Site) {
	sites = map[string][]*config.Site{}
	for _, st := range cfg.Sites {
		for _, b := range st.Bindings {
			k := bindingKey(st, b)
			if _, ok := sites[k]; !ok {
				keys = append(keys, k)
			}
			if !slices.Contains(sites[k], st) {
				sites[k] = append(sites[k], st)
			}
		}
	}
	for _, k := range keys {
		slices.SortStableFunc(sites[k], func(a, b *config.Site) int {
			return boolInt(len(a.Hostnames) > 0) - boolInt(len(b.Hostnames) > 0)
		})
	}
	return keys, sites
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bindingPool is the pool whose workers accept on a binding: the primary
// pool of its first site (the default one, if any). Requests for the other
// sites' vdirs are forwarded by its workers to the pools that serve them.
func bindingPool(sites []*config.Site) string {
	if len(sites) == 0 {
		return ""
	}
	return primaryPool(sites[0])
}

// bindingOf is how site st writes the binding served on key.
func bindingOf(st *config.Site, key string) string {
	for _, b := range st.Bindings {
		if bindingKey(st, b) == key {
			return b
		}
	}
	return key
}

// primaryPool is the pool that accepts on a site's bindings: the one serving
// its shortest (usually root) vdir. Requests for other pools' vdirs are
// forwarded by its workers, the exception rather than the rule.
func primaryPool(st *config.Site) string {
	best := ""
	bestLen := -1
	for _, v := range st.Vdirs {
		if v.Pool == "" {
			continue // a static folder served by this pool's workers
		}
		if bestLen < 0 || len(v.Path) < bestLen {
			best, bestLen = v.Pool, len(v.Path)
		}
	}
	return best
}
