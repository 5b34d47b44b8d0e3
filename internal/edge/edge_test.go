package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"wisp/internal/h1"
)

func TestHostsLookup(t *testing.T) {
	var h Hosts[string]
	h.Add([]string{"shop.test", "*.shop.test"}, "shop")
	h.Add([]string{"*.a.shop.test"}, "deep")
	h.Add([]string{"Admin.Shop.Test."}, "admin")
	h.Add(nil, "default")
	h.Add(nil, "second default")         // the first default keeps the place
	h.Add([]string{"shop.test"}, "late") // the first value for a name keeps it
	for host, want := range map[string]string{
		"shop.test":       "shop",
		"SHOP.test:8443":  "shop",
		"shop.test.":      "shop",
		"www.shop.test":   "shop",
		"x.y.shop.test":   "shop",
		"b.a.shop.test":   "deep",
		"admin.shop.test": "admin", // exact beats wildcard
		"a.shop.test":     "shop",  // "*.a.shop.test" needs a label before a.shop.test
		"other.test":      "default",
		"":                "default",
		"[::1]:80":        "default",
		"xshop.test":      "default", // not a subdomain
		"127.0.0.1:8000":  "default",
	} {
		if got, ok := h.Lookup(host); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
	var nodef Hosts[string]
	nodef.Add([]string{"a.test"}, "a")
	if v, ok := nodef.Lookup("b.test"); ok {
		t.Errorf("no default: Lookup(b.test) = %q, true; want not found", v)
	}
}

func TestHostName(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM:80": "example.com", "example.com.": "example.com", "[::1]:8080": "::1", "[::1]": "::1",
		"10.0.0.1": "10.0.0.1", "": "",
	} {
		if got := HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
}

type fixedCert struct{ name string }

func (f fixedCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &tls.Certificate{OCSPStaple: []byte(f.name)}, nil
}

type challenges struct{}

func (challenges) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/.well-known/acme-challenge/tok" {
		return false
	}
	w.Write([]byte("tok.key"))
	return true
}

func TestBindingDecide(t *testing.T) {
	site := func(name string, hosts ...string) Site {
		return Site{Name: name, Hostnames: hosts, Certs: fixedCert{name}, Handler: h1.HandlerFunc(func(*h1.Response, *h1.Request) {})}
	}
	b, err := New(Binding{Addr: "x", TLS: true, Sites: []Site{site("a", "a.test"), site("b", "b.test", "*.b.test")}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host, sni string
		want      string // site name, or "421"
	}{
		{"a.test", "a.test", "a"},
		{"b.test:443", "b.test", "b"},
		{"x.b.test", "b.test", "b"}, // the same site as the SNI name: served
		{"a.test", "b.test", "421"}, // another site than the SNI's
		{"a.test", "", "a"},         // no SNI: the Host decides
		{"c.test", "c.test", "421"}, // unknown, no default
	}
	for _, c := range cases {
		s, v, why := b.decide(c.host, c.sni, true, "/")
		got := "421"
		if v != misdirect {
			got = s.Name
		} else if why == "" {
			t.Errorf("%+v: 421 without a reason", c)
		}
		if got != c.want {
			t.Errorf("host %q sni %q: %s, want %s (%s)", c.host, c.sni, got, c.want, why)
		}
	}
	// The certificate follows the SNI name; without one (or an unknown
	// one), the first site's, as there is no default site.
	for sni, want := range map[string]string{"a.test": "a", "y.b.test": "b", "": "a", "c.test": "a"} {
		c, _ := b.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if string(c.OCSPStaple) != want {
			t.Errorf("SNI %q: certificate of %s, want %s", sni, c.OCSPStaple, want)
		}
	}
	if p := strings.Join(b.TLSConfig().NextProtos, ","); p != "h2,http/1.1" {
		t.Errorf("ALPN %v: want h2 and http/1.1", p)
	}
	// a certificate source that answers challenges (ACME's) adds acme-tls/1
	type acmeCerts struct {
		fixedCert
		challenges
	}
	ab, _ := New(Binding{Addr: "a", TLS: true, Sites: []Site{{Name: "a", Certs: acmeCerts{fixedCert{"a"}, challenges{}}, Handler: h1.HandlerFunc(func(*h1.Response, *h1.Request) {})}}})
	if p := strings.Join(ab.TLSConfig().NextProtos, ","); p != "h2,http/1.1,acme-tls/1" {
		t.Errorf("ALPN with ACME %v: want h2, http/1.1 and acme-tls/1", p)
	}

	// A plain binding with a redirected site and ACME's challenges.
	red := site("a")
	red.Certs, red.Redirect, red.RedirectPort, red.Challenges = nil, true, "8443", challenges{}
	p, err := New(Binding{Addr: "y", Sites: []Site{red}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://a.test/.well-known/acme-challenge/tok", nil)
	if _, answered := p.Front(rec, req); !answered || rec.Body.String() != "tok.key" {
		t.Errorf("challenge: answered %v, body %q", answered, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "http://a.test/cart?id=1", nil)
	if _, answered := p.Front(rec, req); !answered || rec.Code != 308 || rec.Header().Get("Location") != "https://a.test:8443/cart?id=1" {
		t.Errorf("redirect: answered %v, %d %q", answered, rec.Code, rec.Header().Get("Location"))
	}
	if got := redirectURL("[::1]:80", "/x", "443"); got != "https://[::1]/x" {
		t.Errorf("redirectURL IPv6 = %q", got)
	}
	if _, err := New(Binding{Addr: "z", TLS: true, Sites: []Site{{Name: "nocert", Handler: red.Handler}}}); err == nil {
		t.Error("a TLS binding with a site without certificate: no error")
	}
}
