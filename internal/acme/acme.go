// Package acme gives wisp's sites certificates obtained and renewed
// automatically from an ACME CA (Let's Encrypt by default), through
// github.com/caddyserver/certmagic: a site's tls = { acme = true, ... }.
//
// Two roles, because in a pool the processes that accept TLS connections
// are not the one that may talk to the CA:
//
//   - a Manager obtains and renews the certificates. There is exactly one
//     per process that talks to the CA: wisp's in-process server, or a
//     pool's supervisor (which never accepts site connections).
//   - a Follower serves what a Manager of another process put in the same
//     storage folder, and never contacts the CA: a pool's worker. It picks
//     up a renewed certificate within a few seconds, without a restart.
//
// The CA validates a name through the HTTP-01 challenge (a GET of
// http://NAME/.well-known/acme-challenge/TOKEN on port 80) or TLS-ALPN-01
// (a TLS handshake with NAME on port 443 offering only the ALPN protocol
// "acme-tls/1"). wisp's own listeners answer them: a TLS listener must use
// GetCertificate and offer ALPNProtocol in its tls.Config.NextProtos (see
// NextProtos), and a plain HTTP listener must let HTTPChallenge look at
// every request first. The Manager writes each challenge's data to the
// storage folder before asking the CA to validate, so that whichever
// process accepts the CA's connection (a Follower) can answer it. Nothing
// in this package binds a port.
//
// # Storage
//
// The storage folder (Options.Storage; DefaultStorage when empty) holds
// everything to back up; certmagic's file layout, created with modes 0700
// (folders) and 0600 (files):
//
//	certificates/ISSUER/NAME/NAME.crt    the certificate chain (PEM), leaf first
//	certificates/ISSUER/NAME/NAME.key    its private key (PEM)
//	certificates/ISSUER/NAME/NAME.json   metadata (ACME order, renewal info)
//	acme/ISSUER/users/EMAIL/*.key, .json the ACME account: its key and registration
//	acme/ISSUER/challenge_tokens/        challenges in progress (transient)
//	locks/                               locks while obtaining (transient)
//	ocsp/                                OCSP staples, when the CA offers OCSP
//
// ISSUER is the CA's directory URL made a folder name, for example
// "acme-v02.api.letsencrypt.org-directory"; NAME the host name (lower
// case). Back up certificates/ (to serve at once after a restore, without
// asking the CA again) and acme/*/users/ (the account; without it a new one
// is registered, which is harmless). Several sites, and several wisp
// instances, may share a folder: certmagic locks each name while obtaining.
// With Options.Group, certificates/ and challenge_tokens/ are readable by
// that group (pool workers running as another user); the rest stays
// private.
//
// Give the Followers the Manager's Storage(): a worker running as another
// user computes another DefaultStorage.
package acme

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/certmagic"
	"golang.org/x/net/idna"
)

// ALPNProtocol is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
// A tls.Config whose GetCertificate is a Manager's or a Follower's must list
// it in NextProtos, or the CA's validation handshake fails.
const ALPNProtocol = "acme-tls/1"

// NextProtos returns protos (for example "h2", "http/1.1") followed by
// ALPNProtocol, for tls.Config.NextProtos. A client offering only
// ALPNProtocol is the CA validating a challenge: GetCertificate answers it
// with the challenge certificate and the connection carries no request.
func NextProtos(protos ...string) []string {
	out := slices.Clone(protos)
	if !slices.Contains(out, ALPNProtocol) {
		out = append(out, ALPNProtocol)
	}
	return out
}

// Options are one site's ACME settings, or several sites' that share the
// email, CA, CA root and storage folder.
type Options struct {
	// Names are the host names to certify: each gets a certificate of its
	// own. No wildcards (HTTP-01 and TLS-ALPN-01 cannot obtain them) and no
	// IP addresses. Case and a trailing dot do not matter; international
	// names are converted to their xn-- form.
	Names []string

	// Email is the ACME account's contact, where the CA may write about
	// the certificates. Default "": an account without contact.
	Email string

	// CA is the URL of the ACME CA's directory (https). Default "": Let's
	// Encrypt, certmagic.LetsEncryptProductionCA.
	CA string

	// CARoot is a PEM file of the root certificate(s) to trust when talking
	// to the CA over HTTPS, for a private CA. Default "": the system's roots.
	CARoot string

	// Storage is the folder of certificates and account keys (see the
	// package documentation). Default "": DefaultStorage().
	Storage string

	// Group, when set (a group name or number), lets that group read the
	// certificates, their keys and the challenges the Manager writes
	// (folders 0750, files 0640, owned by the group), so that pool workers
	// running as another user (--user, --group) can serve them. The ACME
	// account key stays private. Default "": only the Manager's user can
	// read the folder. Only the Manager's setting matters.
	Group string

	// DisableHTTP01 and DisableTLSALPN01 keep the CA from validating through
	// that challenge: HTTP-01 needs wisp to serve plain HTTP on port 80 of
	// the names, TLS-ALPN-01 TLS on port 443. Default false: both may be
	// used. Only the Manager's settings matter.
	DisableHTTP01    bool
	DisableTLSALPN01 bool

	// Log receives what happens (certmagic's messages included). Default
	// nil: slog.Default().
	Log *slog.Logger
}

// DefaultStorage is the storage folder used when Options.Storage is empty:
// $STATE_DIRECTORY/acme under systemd (StateDirectory=), else
// /var/lib/wisp/acme when running as root, else $XDG_DATA_HOME/wisp/acme
// or ~/.local/share/wisp/acme. It is "" when none of these can be known
// (no HOME).
func DefaultStorage() string {
	return defaultStorage(os.Getenv, os.Geteuid())
}

func defaultStorage(getenv func(string) string, euid int) string {
	if sd := getenv("STATE_DIRECTORY"); sd != "" {
		// systemd joins several StateDirectory= folders with ':'.
		if first, _, _ := strings.Cut(sd, ":"); first != "" {
			return filepath.Join(first, "acme")
		}
	}
	if euid == 0 {
		return "/var/lib/wisp/acme"
	}
	if x := getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "wisp", "acme")
	}
	if home := getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "share", "wisp", "acme")
	}
	return ""
}

// settled is Options checked, with defaults applied.
type settled struct {
	names   []string // normalized, deduplicated, in the given order
	email   string
	ca      string
	roots   *x509.CertPool // nil: system roots
	storage string         // absolute
	log     *slog.Logger
	gid     int // -1: no Group
	noHTTP  bool
	noALPN  bool
}

// Validate reports what is wrong with o, every problem on a line of its
// own, each naming the value at fault. It reads CARoot.
func (o Options) Validate() error {
	_, err := o.settle()
	return err
}

func (o Options) settle() (*settled, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("acme: "+format, args...))
	}
	s := &settled{email: strings.TrimSpace(o.Email), ca: strings.TrimSpace(o.CA), log: o.Log,
		gid: -1, noHTTP: o.DisableHTTP01, noALPN: o.DisableTLSALPN01}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.ca == "" {
		s.ca = certmagic.LetsEncryptProductionCA
	}
	if u, err := url.Parse(s.ca); err != nil {
		bad("ca %q is not a URL: %v", o.CA, err)
	} else if u.Scheme != "https" || u.Host == "" {
		bad("ca %q: want the https URL of the CA's ACME directory, such as %s", o.CA, certmagic.LetsEncryptProductionCA)
	}
	public := isPublicCA(s.ca)

	if len(o.Names) == 0 {
		bad("no host names to certify: list the site's hostnames")
	}
	seen := map[string]bool{}
	for _, n := range o.Names {
		name, err := normalizeName(n, public)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[name] {
			seen[name] = true
			s.names = append(s.names, name)
		}
	}

	if s.email != "" {
		if a, err := mail.ParseAddress(s.email); err != nil || a.Address != s.email || a.Name != "" {
			bad("email %q is not an email address (want name@domain)", o.Email)
		}
	}

	if o.CARoot != "" {
		pem, err := os.ReadFile(o.CARoot)
		if err != nil {
			bad("ca_root: %v", err)
		} else {
			s.roots = x509.NewCertPool()
			if !s.roots.AppendCertsFromPEM(pem) {
				bad("ca_root %s holds no PEM certificate", o.CARoot)
			}
		}
	}

	s.storage = o.Storage
	if s.storage == "" {
		s.storage = DefaultStorage()
		if s.storage == "" {
			bad("storage: no default folder (HOME is not set): set storage")
		}
	}
	if s.storage != "" {
		abs, err := filepath.Abs(s.storage)
		if err != nil {
			bad("storage %q: %v", s.storage, err)
		}
		s.storage = abs
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			bad("storage %s is not a folder", abs)
		}
	}

	if o.Group != "" {
		g, err := user.LookupGroup(o.Group)
		if err != nil {
			g, err = user.LookupGroupId(o.Group)
		}
		if err != nil {
			bad("group %q: no such group", o.Group)
		} else if s.gid, err = strconv.Atoi(g.Gid); err != nil {
			bad("group %q: gid %q: %v", o.Group, g.Gid, err)
		}
	}

	if o.DisableHTTP01 && o.DisableTLSALPN01 {
		bad("both challenges are disabled (DisableHTTP01, DisableTLSALPN01): the CA could validate nothing")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// normalizeName returns n lower case, without a trailing dot, in its ASCII
// (xn--) form; or an error saying why it cannot be certified.
func normalizeName(n string, publicCA bool) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
	switch {
	case name == "":
		return "", errors.New("acme: an empty host name")
	case strings.Contains(name, "*"):
		return "", fmt.Errorf("acme: %q is a wildcard: the HTTP-01 and TLS-ALPN-01 challenges cannot obtain wildcard certificates; list each name", n)
	case net.ParseIP(strings.Trim(name, "[]")) != nil:
		return "", fmt.Errorf("acme: %q is an IP address: ACME certificates are for host names here (use tls = { cert, key } for an address)", n)
	case strings.ContainsAny(name, ":/@ "):
		return "", fmt.Errorf("acme: %q is not a host name (no scheme, port, path or space)", n)
	}
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("acme: %q is not a valid host name: %v", n, err)
	}
	if publicCA {
		if !strings.Contains(ascii, ".") || !certmagic.SubjectQualifiesForPublicCert(ascii) {
			return "", fmt.Errorf("acme: %q is a local name: a public CA cannot certify it (set ca to a private CA, or use tls = { cert, key })", n)
		}
	}
	return ascii, nil
}

// isPublicCA tells whether ca is a public CA's, which certifies only names
// of the public DNS.
func isPublicCA(ca string) bool {
	u, err := url.Parse(ca)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, d := range []string{"api.letsencrypt.org", "acme.zerossl.com", "api.pki.goog", "api.buypass.com", "acme.ssl.com"} {
		if strings.HasSuffix(h, d) {
			return true
		}
	}
	return false
}

// serverName returns the normalized SNI name of hello, "" if none.
func serverName(hello *tls.ClientHelloInfo) string {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(hello.ServerName)), ".")
	if a, err := idna.Lookup.ToASCII(n); err == nil {
		return a
	}
	return n
}

// isChallengeHello tells whether hello is the CA validating a TLS-ALPN-01
// challenge: a server name and the single ALPN protocol acme-tls/1.
func isChallengeHello(hello *tls.ClientHelloInfo) bool {
	return hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProtocol
}

// hostOf returns the host of an HTTP request's Host, lower case, without
// port or trailing dot.
func hostOf(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// noListenHost is the ACMEIssuer.ListenHost of every issuer here. certmagic's
// HTTP-01 and TLS-ALPN-01 solvers first try to listen on ListenHost:80 and
// ListenHost:443 (or the Alt ports) to serve the challenge themselves, and
// assume an existing server answers when that fails with "address already
// in use". wisp's own listeners answer, in this process or a Follower's, so
// nothing may be bound: this host makes every listen (and the probing dial)
// fail at once, before any socket or DNS lookup, with an error that
// contains those words (the address cannot be parsed: a ']' follows the
// bracketed host). certmagic then logs one warning through the standard
// "log" package per challenge, and proceeds. TestNoListenHost guards it.
const noListenHost = "[wisp answers challenges on its own listeners: address already in use]"
