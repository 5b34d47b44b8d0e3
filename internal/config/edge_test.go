package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The keys of issue 10: tls (files or ACME), redirect_http, scheme-prefixed
// bindings, proxy_protocol on shared bindings, per-vdir limits, and
// http2_max_streams; each problem is an error that names its key.
func TestParse_edgeKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, []byte("not a certificate"), 0o644)
	site := func(name, bindings, extra string) string {
		return "[[sites]]\nname = \"" + name + "\"\nbindings = [" + bindings + "]\n" + extra +
			"vdirs = [{ path = \"/\", app = \"a:app\" }]\n"
	}
	for _, tc := range []struct {
		name, src, want string // want: "" for no error, else a part of it
	}{
		{"acme", site("a", `"https://:443", "http://:80"`, "hostnames = [\"a.test\"]\ntls = { acme = true, email = \"o@a.test\" }\nredirect_http = true\n"), ""},
		{"acme without hostnames", site("a", `":443"`, "tls = { acme = true }\n"), "needs the site's hostnames"},
		{"acme wildcard", site("a", `":443"`, "hostnames = [\"*.a.test\"]\ntls = { acme = true }\n"), "DNS-01"},
		{"acme IP", site("a", `":443"`, "hostnames = [\"10.0.0.1\"]\ntls = { acme = true }\n"), "not IP addresses"},
		{"acme and files", site("a", `":443"`, "hostnames = [\"a.test\"]\ntls = { acme = true, cert = \"c\", key = \"k\" }\n"), "not both"},
		{"acme http CA", site("a", `":443"`, "hostnames = [\"a.test\"]\ntls = { acme = true, ca = \"http://ca/dir\" }\n"), "sites[0].tls.ca"},
		{"acme bad root", site("a", `":443"`, "hostnames = [\"a.test\"]\ntls = { acme = true, ca_root = \""+root+"\" }\n"), "holds no PEM certificate"},
		{"acme keys without acme", site("a", `":443"`, "tls = { cert = \"c\", key = \"k\", email = \"o@a\" }\n"), "ACME settings"},
		{"one file", site("a", `":443"`, "tls = { cert = \"c\" }\n"), "want both files"},
		{"redirect without tls", site("a", `":80"`, "redirect_http = true\n"), "the site has no tls"},
		{"redirect without plain binding", site("a", `":443"`, "hostnames = [\"a.test\"]\ntls = { acme = true }\nredirect_http = true\n"), "it has none"},
		{"https without tls", site("a", `"https://:443"`, ""), "the site has no tls"},
		{"bad scheme address", site("a", `"https://nope"`, ""), "invalid binding"},
		{"tls and plain share", site("a", `":8443"`, "hostnames = [\"a.test\"]\ntls = { acme = true }\n") + site("b", `":8443"`, "hostnames = [\"b.test\"]\n"), "all serve it over TLS or all without"},
		{"proxy_protocol disagrees", site("a", `":80"`, "hostnames = [\"a.test\"]\nproxy_protocol = true\n") + site("b", `":80"`, "hostnames = [\"b.test\"]\n"), "proxy_protocol"},
		{"shared plain with scheme", site("a", `"http://:80"`, "hostnames = [\"a.test\"]\n") + site("b", `":80"`, "hostnames = [\"b.test\"]\nh2c = true\n"), ""},
		{"vdir limits", "[[sites]]\nname = \"a\"\nbindings = [\":80\"]\nvdirs = [{ path = \"/\", app = \"a:app\", max_body = \"1MiB\", max_concurrent = 4 }]\n", ""},
		{"negative max_concurrent", "[[sites]]\nname = \"a\"\nbindings = [\":80\"]\nvdirs = [{ path = \"/\", app = \"a:app\", max_concurrent = -1 }]\n", "max_concurrent"},
		{"limits on static", "[[sites]]\nname = \"a\"\nbindings = [\":80\"]\nvdirs = [{ path = \"/\", static = \"" + dir + "\", max_body = 10 }]\n", "not to a static folder"},
		{"http2_max_streams", "[server]\nhttp2_max_streams = 0\n" + minimal, "http2_max_streams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(filepath.Join(dir, "w.toml"), []byte(tc.src))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	c := mustParse(t, filepath.Join(dir, "w.toml"), site("a", `"https://127.0.0.1:8443", "http://127.0.0.1:8080", "127.0.0.1:9443"`,
		"hostnames = [\"a.test\"]\ntls = { acme = true, storage = \"certs\" }\nredirect_http = true\n"))
	s := c.Sites[0]
	for b, want := range map[string]bool{"https://127.0.0.1:8443": true, "http://127.0.0.1:8080": false, "127.0.0.1:9443": true} {
		if got := s.BindingTLS(b); got != want {
			t.Errorf("BindingTLS(%q) = %v, want %v", b, got, want)
		}
	}
	if s.TLS.Storage != filepath.Join(dir, "certs") {
		t.Errorf("storage %q: want it absolute, beside the file", s.TLS.Storage)
	}
}
