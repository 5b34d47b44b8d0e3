// Package edge is what a client meets on a binding before a site's handler:
// the PROXY protocol, TLS with a certificate chosen by the SNI name (files or
// ACME) and ALPN (h2, http/1.1, acme-tls/1), the site chosen by host name
// among those sharing the binding, the answers to ACME HTTP-01 challenges,
// and the redirect of plain HTTP to https.
//
// An unknown host on a binding without a default site (a site with no
// hostnames) gets 421 Misdirected Request, with a body that names the host:
// RFC 9110 15.5.20 defines 421 for a request "directed at a server that is
// not able to produce a response" for its target, which is this case, and
// unlike 404 it says nothing about the resource, is not cached by default,
// and makes a browser that reused an HTTP/2 connection for another name
// retry on a new one. The same answer goes to a TLS request whose Host names
// another site than its SNI name chose.
package edge

import (
	"bufio"
	"cmp"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"

	"wisp/internal/h1"
	"wisp/internal/tlsconf"
)

// Certs gives the certificate for a TLS handshake: a tlsconf.Store (files)
// or an ACME manager or follower, which also answer TLS-ALPN-01 challenges
// (a Certs that is also a Challenger: the binding then offers acme-tls/1).
type Certs interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Challenger answers ACME HTTP-01 challenges (/.well-known/acme-challenge/).
type Challenger interface {
	HTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}

// Site is one site on a binding.
type Site struct {
	Name      string
	Hostnames []string   // none: the binding's default site
	Handler   h1.Handler // the site's server
	Certs     Certs      // its certificate, on a TLS binding
	// Challenges, if set, answers HTTP-01 challenges on a plain binding.
	Challenges Challenger
	// Redirect, on a plain binding, answers every other request with a 308
	// to https, on RedirectPort ("443" or "": the default port).
	Redirect     bool
	RedirectPort string
}

// Binding is one listening socket and the sites that share it.
type Binding struct {
	Addr  string // for messages
	TLS   bool
	H2C   bool // a client may speak HTTP/2 without TLS (prior knowledge)
	Sites []Site
	// ProxyProtocol requires the PROXY protocol header (v1 or v2) first on
	// each connection; with Trusted set, only from those peers (others are
	// refused). HeaderTimeout bounds its arrival (0: 10s).
	ProxyProtocol bool
	Trusted       []netip.Prefix
	HeaderTimeout time.Duration

	hosts Hosts[*Site]
}

// New checks the binding and prepares its host table.
func New(b Binding) (*Binding, error) {
	if len(b.Sites) == 0 {
		return nil, errors.New("binding " + b.Addr + ": no site")
	}
	nb := &b
	for i := range nb.Sites {
		s := &nb.Sites[i]
		if b.TLS && s.Certs == nil {
			return nil, errors.New("binding " + b.Addr + ": site " + s.Name + " has no certificate")
		}
		nb.hosts.Add(s.Hostnames, s)
	}
	return nb, nil
}

// Listener wraps ln in the binding's PROXY protocol and TLS layers.
func (b *Binding) Listener(ln net.Listener) net.Listener {
	if b.ProxyProtocol {
		to := b.HeaderTimeout
		if to <= 0 {
			to = 10 * time.Second
		}
		pl := &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: to}
		if len(b.Trusted) > 0 {
			trusted := b.Trusted
			pl.ConnPolicy = func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				ip := addrIP(o.Upstream)
				if ip == nil {
					return proxyproto.REQUIRE, nil // a unix socket: a local peer
				}
				if a, ok := netip.AddrFromSlice(ip); ok && contains(trusted, a.Unmap()) {
					return proxyproto.REQUIRE, nil
				}
				// not a trusted proxy: the connection is closed at once
				return proxyproto.REJECT, proxyproto.ErrInvalidUpstream
			}
		} else {
			pl.ConnPolicy = func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }
		}
		ln = pl
	}
	if b.TLS {
		ln = tls.NewListener(ln, b.TLSConfig())
	}
	return ln
}

func addrIP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TLSConfig is the binding's TLS: 1.2 and 1.3 with Mozilla's intermediate
// profile (package tlsconf), the
// certificate of the site the SNI name chooses (the default site's, or the
// first site's, for a client that sends none or an unknown one), and ALPN
// h2 and http/1.1 (and acme-tls/1 when a site uses ACME).
func (b *Binding) TLSConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	for _, s := range b.Sites {
		if _, acme := s.Certs.(Challenger); acme {
			protos = append(protos, "acme-tls/1")
			break
		}
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     tlsconf.CipherSuites(),
		CurvePreferences: tlsconf.CurvePreferences(),
		NextProtos:       protos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return b.siteForSNI(hello.ServerName).Certs.GetCertificate(hello)
		},
	}
}

func (b *Binding) siteForSNI(name string) *Site {
	if s, ok := b.hosts.Lookup(name); ok && name != "" {
		return s
	}
	if s, ok := b.hosts.Lookup(""); ok {
		return s
	}
	return &b.Sites[0]
}

// Handler routes each request to its site by the Host header. A binding
// of one site with no host names, redirect or challenges is the site's own
// handler: nothing to choose, nothing added to the request path.
func (b *Binding) Handler() h1.Handler {
	if s := &b.Sites[0]; len(b.Sites) == 1 && len(s.Hostnames) == 0 && !s.Redirect && s.Challenges == nil {
		return s.Handler
	}
	return h1.HandlerFunc(b.serve)
}

func (b *Binding) serve(w *h1.Response, r *h1.Request) {
	s, v, why := b.decide(r.Host, r.ServerName, r.TLS, r.Path)
	switch v {
	case misdirect:
		misdirected(w, r, why)
	case challengeOrSite:
		if !challenge(w, r, s.Challenges) {
			s.Handler.ServeH1(w, r)
		}
	case challengeOrRedirect:
		if !challenge(w, r, s.Challenges) {
			redirect(w, r, s.RedirectPort)
		}
	case redirectHTTPS:
		redirect(w, r, s.RedirectPort)
	default:
		s.Handler.ServeH1(w, r)
	}
}

// verdict is what the front does with a request.
type verdict int

const (
	serveSite verdict = iota
	misdirect
	challengeOrSite     // an ACME HTTP-01 path: the challenge's, else the site's
	challengeOrRedirect // the same on a redirected binding
	redirectHTTPS
)

// decide finds the site of a request and what to do with it.
func (b *Binding) decide(host, sni string, isTLS bool, path string) (*Site, verdict, string) {
	s, ok := b.hosts.Lookup(host)
	if !ok {
		return nil, misdirect, "no site on this binding serves host " + strconv.Quote(HostName(host))
	}
	if isTLS && sni != "" && len(b.Sites) > 1 && b.siteForSNI(sni) != s {
		return nil, misdirect, "host " + strconv.Quote(HostName(host)) + " is not served on this TLS connection (its SNI name is " +
			strconv.Quote(sni) + "): open a new connection for it"
	}
	redirected := s.Redirect && !b.TLS
	if !b.TLS && s.Challenges != nil && strings.HasPrefix(path, "/.well-known/acme-challenge/") {
		if redirected {
			return s, challengeOrRedirect, ""
		}
		return s, challengeOrSite, ""
	}
	if redirected {
		return s, redirectHTTPS, ""
	}
	return s, serveSite, ""
}

// Front does for a net/http request (the supervisor's answers while a pool
// has no worker) what the binding's handler does before the site: it
// reports answered when it answered (421, a challenge, a redirect), else
// the request's site.
func (b *Binding) Front(w http.ResponseWriter, r *http.Request) (s *Site, answered bool) {
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	s, v, why := b.decide(r.Host, sni, r.TLS != nil, r.URL.Path)
	switch v {
	case misdirect:
		http.Error(w, "421 Misdirected Request: "+why, http.StatusMisdirectedRequest)
		return nil, true
	case challengeOrSite, challengeOrRedirect:
		if s.Challenges.HTTPChallenge(w, r) {
			return nil, true
		}
		if v == challengeOrSite {
			return s, false
		}
	case serveSite:
		return s, false
	}
	http.Redirect(w, r, redirectURL(r.Host, r.URL.RequestURI(), s.RedirectPort), http.StatusPermanentRedirect)
	return nil, true
}

// misdirected answers 421 (see the package comment).
func misdirected(w *h1.Response, r *h1.Request, why string) {
	body := "421 Misdirected Request: " + why + "\n"
	w.SetStatus(421, "")
	w.AddHeader("Content-Type", "text/plain; charset=utf-8")
	w.SetContentLength(int64(len(body)))
	if r.Method != "HEAD" {
		w.Write([]byte(body))
	}
}

// redirect answers 308 to the same target over https: 308 keeps the method
// and body, unlike 301.
func redirect(w *h1.Response, r *h1.Request, port string) {
	loc := redirectURL(r.Host, r.Target, port)
	body := "308 Permanent Redirect: " + loc + "\n"
	w.SetStatus(308, "")
	w.AddHeader("Location", loc)
	w.AddHeader("Content-Type", "text/plain; charset=utf-8")
	w.SetContentLength(int64(len(body)))
	if r.Method != "HEAD" {
		w.Write([]byte(body))
	}
}

// redirectURL is target's https URL on host, at port ("" or "443": the
// default).
func redirectURL(host, target, port string) string {
	h := HostName(host)
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if port != "" && port != "443" {
		h += ":" + port
	}
	if !strings.HasPrefix(target, "/") {
		target = "/"
	}
	return "https://" + h + target
}

// challenge lets c answer an HTTP-01 challenge request; false if it is not one.
func challenge(w *h1.Response, r *h1.Request, c Challenger) bool {
	u, err := url.ParseRequestURI(r.Target)
	if err != nil {
		return false
	}
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, RequestURI: r.Target, Proto: r.Proto,
		ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: http.NoBody, RemoteAddr: r.RemoteAddr}
	rec := &recorder{h: http.Header{}}
	if !c.HTTPChallenge(rec, req) {
		return false
	}
	w.SetStatus(cmp.Or(rec.code, 200), "")
	for k, vv := range rec.h {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			w.AddHeader(k, v)
		}
	}
	w.SetContentLength(int64(len(rec.body)))
	if r.Method != "HEAD" {
		w.Write(rec.body)
	}
	return true
}

// recorder holds a challenge's small response.
type recorder struct {
	h    http.Header
	code int
	body []byte
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if len(r.body)+len(p) > 64<<10 {
		return 0, bufio.ErrBufferFull
	}
	r.body = append(r.body, p...)
	return len(p), nil
}
