// Package httphdr is the one list of hop-by-hop header fields, which wisp
// needs in three directions: the request headers HTTP/2 forbids (package
// h2), the response headers a WSGI app may not send (PEP 3333: checked by
// start_response in package pyembed, dropped by package server) and those a
// forward to another pool does not relay. The named sets below are derived
// from it; keep no other copy.
package httphdr

import "strings"

// hopByHop lists the fields that describe one connection rather than the
// message (RFC 9110 7.6.1): wsgiref's list (PEP 3333), plus Trailer and
// Proxy-Connection. connection marks the connection-specific fields RFC
// 9113 8.2.2 forbids in HTTP/2 (TE is allowed there as "trailers").
var hopByHop = [...]struct {
	name       string
	connection bool
}{
	{"Connection", true},
	{"Keep-Alive", true},
	{"Proxy-Connection", true},
	{"Transfer-Encoding", true},
	{"Upgrade", true},
	{"TE", false},
	{"Trailer", false},
	{"Trailers", false},
	{"Proxy-Authenticate", false},
	{"Proxy-Authorization", false},
}

// HopByHop reports whether name (any case) is a hop-by-hop field: one a
// WSGI app must not send (PEP 3333 calls it a fatal error) and a proxy
// does not relay.
func HopByHop(name string) bool {
	for i := range hopByHop {
		if len(hopByHop[i].name) == len(name) && strings.EqualFold(hopByHop[i].name, name) {
			return true
		}
	}
	return false
}

// ConnectionSpecific reports whether name (any case) is one of the
// hop-by-hop fields HTTP/2 forbids (RFC 9113 8.2.2): Connection,
// Keep-Alive, Proxy-Connection, Transfer-Encoding and Upgrade.
func ConnectionSpecific(name string) bool {
	for i := range hopByHop {
		if hopByHop[i].connection && len(hopByHop[i].name) == len(name) && strings.EqualFold(hopByHop[i].name, name) {
			return true
		}
	}
	return false
}

// Names returns the hop-by-hop field names (a new slice; see HopByHop).
func Names() []string {
	out := make([]string, len(hopByHop))
	for i := range hopByHop {
		out[i] = hopByHop[i].name
	}
	return out
}
