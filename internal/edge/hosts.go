package edge

import (
	"net"
	"sort"
	"strings"
)

// Hosts maps host names to values, as sites share a binding: an exact name
// beats a wildcard ("*.shop.test" matches "a.shop.test" and "a.b.shop.test",
// and the longest wildcard wins), and the value added without names is the
// default for any other host. Names compare without case or trailing dot.
type Hosts[T any] struct {
	exact  map[string]T
	wild   []wildcard[T] // longest suffix first
	def    T
	hasDef bool
}

type wildcard[T any] struct {
	suffix string // ".shop.test"
	v      T
}

// Add maps names to v; no names makes v the default. The first value added
// for a name keeps it.
func (h *Hosts[T]) Add(names []string, v T) {
	if len(names) == 0 {
		if !h.hasDef {
			h.def, h.hasDef = v, true
		}
		return
	}
	if h.exact == nil {
		h.exact = map[string]T{}
	}
	for _, n := range names {
		n = canon(n)
		if suffix, ok := strings.CutPrefix(n, "*"); ok {
			h.wild = append(h.wild, wildcard[T]{suffix, v})
			continue
		}
		if _, dup := h.exact[n]; !dup {
			h.exact[n] = v
		}
	}
	sort.SliceStable(h.wild, func(a, b int) bool { return len(h.wild[a].suffix) > len(h.wild[b].suffix) })
}

// Lookup finds the value for a host name (a Host header's value: a port, or
// the brackets of an IPv6 literal, are dropped). ok is false when no name
// matches and there is no default.
func (h *Hosts[T]) Lookup(host string) (v T, ok bool) {
	name := HostName(host)
	if v, ok := h.exact[name]; ok {
		return v, true
	}
	for _, w := range h.wild {
		if len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return w.v, true
		}
	}
	return h.def, h.hasDef
}

// HostName is the name part of a Host header's value, compared as DNS
// does: lower case, without port or trailing dot ("Shop.Test.:8443" is
// "shop.test", "[::1]:80" is "::1").
func HostName(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return canon(host)
}

func canon(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}
