package server

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"wisp/internal/h1"
)

// Trusted proxies: a request whose peer is one of them (a load balancer or
// reverse proxy in front of wisp) has its client's address and scheme taken
// from one family of forwarding headers, the one the operator chose
// (ForwardedHeaders): X-Forwarded-For and X-Forwarded-Proto (the default:
// what nginx, HAProxy, Caddy, Traefik and cloud load balancers set), or
// Forwarded (RFC 7239) for= and proto=. The other family is never read: a
// proxy that sets one passes the client's own copy of the other through
// untouched, so reading it would let the client choose its address. The
// client is the right-most address that is not itself a trusted proxy: each
// proxy appends the peer it saw, so the addresses to its left are whatever
// the client claimed. From any other peer these headers reach the app
// untouched and change nothing.

// The families of forwarding headers (Config.ForwardedHeaders).
const (
	XForwarded = "x-forwarded" // X-Forwarded-For, X-Forwarded-Proto (the default)
	Forwarded  = "forwarded"   // RFC 7239 Forwarded: for= and proto=
)

// CheckForwardedHeaders reports an error for a ForwardedHeaders value that
// is neither family ("" is the default, x-forwarded).
func CheckForwardedHeaders(family string) error {
	switch family {
	case "", XForwarded, Forwarded:
		return nil
	}
	return fmt.Errorf("forwarded headers %q: want %q or %q", family, XForwarded, Forwarded)
}

// ParseProxies reads trusted proxy addresses: IPs or CIDR prefixes
// ("10.0.0.0/8", "::1"), or "*" for every address (gunicorn's
// --forwarded-allow-ips).
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case s == "*":
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			}
			out = append(out, p.Masked())
		default:
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}

// trusts reports whether addr (an IP, possibly with a port) is a trusted proxy.
func trusts(proxies []netip.Prefix, addr string) bool {
	a, ok := parseHostIP(addr)
	if !ok {
		return false
	}
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHostIP reads "ip", "ip:port", "[v6]" or "[v6]:port".
func parseHostIP(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), true
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(h); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// forwardedClient returns the client's address ("" if the headers name none
// that can be used) and scheme ("" if not given) of a request from a trusted
// proxy, read from the family of headers given (Forwarded, else XForwarded).
//
// The client is the right-most address that is not a trusted proxy. With
// Forwarded, the scheme is the proto of that same element, the one a trusted
// proxy appended when the client reached it: a proto in an element the
// client sent itself, or in another element, is never read (RFC 7239 makes
// proto optional, so a proxy that appends only for= would otherwise leave
// the scheme to the client). With X-Forwarded, the scheme is the last
// X-Forwarded-Proto value: proxies set that header rather than append to it.
func forwardedClient(proxies []netip.Prefix, family string, r *h1.Request) (client, scheme string) {
	var hops, protos []string
	if family == Forwarded {
		for _, elem := range headerValues(r, "Forwarded") {
			var hop, proto string
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				v = strings.Trim(strings.TrimSpace(v), `"`)
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					hop = v
				case "proto":
					proto = v
				}
			}
			hops, protos = append(hops, hop), append(protos, proto)
		}
	} else {
		hops = headerValues(r, "X-Forwarded-For")
		if p := headerValues(r, "X-Forwarded-Proto"); len(p) > 0 {
			protos = p[len(p)-1:]
		}
	}
	chosen := -1
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHostIP(hops[i])
		if !ok {
			break // "unknown", an obfuscated name, none or garbage: no client can be trusted past it
		}
		client, chosen = hops[i], i
		if !trusts(proxies, a.String()) {
			break
		}
	}
	proto := ""
	switch {
	case family == Forwarded && chosen >= 0:
		proto = protos[chosen]
	case family == Forwarded && len(protos) > 0:
		proto = protos[len(protos)-1] // no usable for=: the element the trusted peer appended
	case family != Forwarded && len(protos) > 0:
		proto = protos[0]
	}
	switch p := strings.ToLower(strings.TrimSpace(proto)); p {
	case "http", "https":
		scheme = p
	}
	return client, scheme
}

// headerValues splits every field of a comma-separated header into its
// trimmed, non-empty elements, in order.
func headerValues(r *h1.Request, name string) []string {
	var out []string
	for _, f := range r.Fields {
		if !strings.EqualFold(f.Name, name) {
			continue
		}
		for _, v := range strings.Split(f.Value, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
