package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "root.txt")
	aFile := filepath.Join(dir, "file")
	for _, f := range []string{notPEM, aFile} {
		if err := os.WriteFile(f, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join("pebbletest", "testdata", "pebble.minica.pem")
	private := "https://ca.example/dir"
	ok := Options{Names: []string{"shop.example"}, CA: private, Storage: dir}
	with := func(f func(*Options)) Options {
		o := ok
		f(&o)
		return o
	}
	// Settings NewFollower ignores.
	managerOnly := map[string]bool{"no such group": true, "ca_root missing": true, "ca_root not PEM": true, "no challenge": true}
	for _, tc := range []struct {
		name string
		o    Options
		want []string // parts of the error; none: valid
	}{
		{"ok", ok, nil},
		{"defaults", Options{Names: []string{"shop.example.com", "www.shop.example.com"}, Storage: dir}, nil},
		{"case, trailing dot, IDN", with(func(o *Options) { o.Names = []string{"Shop.Example.", "bücher.example"} }), nil},
		{"private CA, local name", with(func(o *Options) { o.Names = []string{"intranet", "app.internal"} }), nil},
		{"ca_root", with(func(o *Options) { o.CARoot = root }), nil},
		{"email ok", with(func(o *Options) { o.Email = "ops@shop.example" }), nil},
		{"one challenge", with(func(o *Options) { o.DisableHTTP01 = true }), nil},
		{"group by number", with(func(o *Options) { o.Group = strconv.Itoa(os.Getgid()) }), nil},
		{"no such group", with(func(o *Options) { o.Group = "no-such-group-wisp" }), []string{`acme: group "no-such-group-wisp": no such group`}},

		{"no names", with(func(o *Options) { o.Names = nil }), []string{"acme: no host names to certify"}},
		{"empty name", with(func(o *Options) { o.Names = []string{" "} }), []string{"acme: an empty host name"}},
		{"wildcard", with(func(o *Options) { o.Names = []string{"*.shop.example"} }),
			[]string{`acme: "*.shop.example" is a wildcard: the HTTP-01 and TLS-ALPN-01 challenges cannot obtain wildcard certificates`}},
		{"IPv4", with(func(o *Options) { o.Names = []string{"192.0.2.7"} }), []string{`acme: "192.0.2.7" is an IP address`}},
		{"IPv6", with(func(o *Options) { o.Names = []string{"[2001:db8::1]"} }), []string{`acme: "[2001:db8::1]" is an IP address`}},
		{"port", with(func(o *Options) { o.Names = []string{"shop.example:443"} }), []string{`acme: "shop.example:443" is not a host name`}},
		{"URL", with(func(o *Options) { o.Names = []string{"https://shop.example/"} }), []string{`"https://shop.example/" is not a host name`}},
		{"bad label", with(func(o *Options) { o.Names = []string{"shop_.example"} }), []string{`acme: "shop_.example" is not a valid host name`}},
		{"public CA, local names", Options{Names: []string{"localhost", "intranet", "app.internal", "printer.local"}, Storage: dir},
			[]string{`"localhost" is a local name: a public CA cannot certify it`, `"intranet" is a local name`, `"app.internal" is a local name`, `"printer.local" is a local name`}},
		{"http CA", with(func(o *Options) { o.CA = "http://ca.example/dir" }), []string{`acme: ca "http://ca.example/dir": want the https URL of the CA's ACME directory`}},
		{"CA not a URL", with(func(o *Options) { o.CA = "https://ca example/%zz" }), []string{`acme: ca "https://ca example/%zz" is not a URL`}},
		{"ca_root missing", with(func(o *Options) { o.CARoot = filepath.Join(dir, "nope.pem") }), []string{"acme: ca_root: open ", "nope.pem: no such file"}},
		{"ca_root not PEM", with(func(o *Options) { o.CARoot = notPEM }), []string{"acme: ca_root " + notPEM + " holds no PEM certificate"}},
		{"bad email", with(func(o *Options) { o.Email = "ops at shop" }), []string{`acme: email "ops at shop" is not an email address`}},
		{"email with name", with(func(o *Options) { o.Email = "Ops <ops@shop.example>" }), []string{`is not an email address`}},
		{"storage a file", with(func(o *Options) { o.Storage = aFile }), []string{"acme: storage " + aFile + " is not a folder"}},
		{"no challenge", with(func(o *Options) { o.DisableHTTP01, o.DisableTLSALPN01 = true, true }), []string{"acme: both challenges are disabled"}},
		{"every problem", Options{Names: []string{"*.a.example", "10.0.0.1"}, CA: "ftp://x", Email: "x"},
			[]string{"wildcard", "IP address", "want the https URL", "not an email address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.o)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not say %q", err, w)
				}
			}
			if _, err := NewManager(tc.o); err == nil {
				t.Error("NewManager accepted it")
			}
			if _, err := NewFollower(tc.o); (err == nil) != managerOnly[tc.name] {
				t.Errorf("NewFollower: %v", err)
			}
		})
	}
}

func TestSettleNormalizes(t *testing.T) {
	t.Parallel()
	s, err := Options{Names: []string{"Shop.Example.", "shop.example", "Bücher.example"}, Storage: "rel"}.settle()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"shop.example", "xn--bcher-kva.example"}; !slices.Equal(s.names, want) {
		t.Errorf("names %q, want %q", s.names, want)
	}
	if s.ca != certmagic.LetsEncryptProductionCA || !filepath.IsAbs(s.storage) || s.log == nil {
		t.Errorf("defaults: ca %q, storage %q, log %v", s.ca, s.storage, s.log)
	}
}

func TestDefaultStorage(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		getenv func(string) string
		euid   int
		want   string
	}{
		{env("STATE_DIRECTORY", "/var/lib/shop", "HOME", "/home/u"), 1000, "/var/lib/shop/acme"},
		{env("STATE_DIRECTORY", "/var/lib/shop:/var/lib/other"), 0, "/var/lib/shop/acme"},
		{env("HOME", "/root"), 0, "/var/lib/wisp/acme"},
		{env("XDG_DATA_HOME", "/home/u/data", "HOME", "/home/u"), 1000, "/home/u/data/wisp/acme"},
		{env("XDG_DATA_HOME", "relative", "HOME", "/home/u"), 1000, "/home/u/.local/share/wisp/acme"},
		{env("HOME", "/home/u"), 1000, "/home/u/.local/share/wisp/acme"},
		{env(), 1000, ""},
	} {
		if got := defaultStorage(tc.getenv, tc.euid); got != tc.want {
			t.Errorf("euid %d: %q, want %q", tc.euid, got, tc.want)
		}
	}
}

func TestNextProtos(t *testing.T) {
	t.Parallel()
	in := []string{"h2", "http/1.1"}
	if got := NextProtos(in...); !slices.Equal(got, []string{"h2", "http/1.1", "acme-tls/1"}) {
		t.Errorf("NextProtos = %q", got)
	}
	if len(in) != 2 {
		t.Error("NextProtos changed its argument")
	}
	if got := NextProtos("acme-tls/1", "h2"); !slices.Equal(got, []string{"acme-tls/1", "h2"}) {
		t.Errorf("NextProtos = %q", got)
	}
}

// TestNoListenHost checks the trick that keeps certmagic from binding a
// port (see noListenHost): its robustTryListen must not take the
// file-descriptor path, and listening (and dialing) must fail at once with
// an error that says "address already in use".
func TestNoListenHost(t *testing.T) {
	t.Parallel()
	for _, port := range []int{80, 443, 5001} {
		addr := net.JoinHostPort(noListenHost, strconv.Itoa(port))
		if _, err := strconv.ParseUint(strings.Split(strings.TrimPrefix(addr, "fd/"), ":")[0], 0, strconv.IntSize); err == nil {
			t.Errorf("%s parses as a file descriptor", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			t.Fatalf("listened on %s", addr)
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("listen %s: %v: not what certmagic takes for a port in use", addr, err)
		}
		// A parse error: no socket, no DNS lookup.
		if ae := (*net.AddrError)(nil); !errors.As(err, &ae) {
			t.Errorf("listen %s: %T %v, want a *net.AddrError", addr, errors.Unwrap(err), err)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("dialed %s", addr)
		}
	}
}

func TestZapLogger(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	zl := newZapLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	zl.Named("obtain").Info("certificate obtained successfully", zap.String("identifier", "a.test"))
	zl.Named("obtain").Info("acquiring lock", zap.String("identifier", "a.test")) // routine: debug
	zl.Debug("http request")
	zl.With(zap.String("identifier", "b.test")).Warn("careful", zap.Int("attempt", 2))
	zl.Error("could not get certificate from issuer", zap.Error(errors.New("urn:ietf:params:acme:error:connection: refused")))
	got := buf.String()
	for _, want := range []string{
		`level=INFO msg="certificate obtained successfully" logger=obtain identifier=a.test`,
		`level=WARN msg=careful attempt=2 identifier=b.test`,
		`level=ERROR msg="could not get certificate from issuer" error="urn:ietf:params:acme:error:connection: refused"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
	for _, not := range []string{"acquiring lock", "http request"} {
		if strings.Contains(got, not) {
			t.Errorf("log has %q at info:\n%s", not, got)
		}
	}
}

// TestFollowerReloads plays the Manager's part by writing to storage as
// certmagic does (a new file renamed over the old, key first), and checks
// what the Follower serves.
func TestFollowerReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logger, logs := testLog(t)
	f, err := NewFollower(Options{Names: []string{"a.test"}, CA: "https://ca.test/dir", Storage: dir, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	defer f.Stop() // twice is fine
	store := &certmagic.FileStorage{Path: dir}
	ik := f.issuer.IssuerKey()
	put := func(key string, b []byte) {
		t.Helper()
		if err := store.Store(context.Background(), key, b); err != nil {
			t.Fatal(err)
		}
	}
	// serial returns the serial number served, the files having been looked
	// at again if recheck is 0 (the Recheck delay has passed), not if it is
	// an hour (it has not).
	serial := func(recheck time.Duration) int64 {
		t.Helper()
		f.recheck = recheck // no handshake runs concurrently here
		c, err := f.GetCertificate(hello(t, "a.test"))
		if err != nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		return c.Leaf.SerialNumber.Int64()
	}

	_, err = f.GetCertificate(hello(t, "a.test"))
	wantErr(t, err, `acme: no certificate for "a.test" yet: the ACME manager has not stored it in `+dir)
	_, err = f.GetCertificate(hello(t, "b.test"))
	wantErr(t, err, `"b.test": not one of the site's names`)
	_, err = f.GetCertificate(hello(t, "a.test", ALPNProtocol))
	wantErr(t, err, `acme: TLS-ALPN-01 challenge for "a.test"`)

	cert1, key1 := selfSigned(t, "a.test", 1)
	put(certmagic.StorageKeys.SitePrivateKey(ik, "a.test"), key1)
	put(certmagic.StorageKeys.SiteCert(ik, "a.test"), cert1)
	if s := serial(time.Hour); s != 1 { // a miss looks again at once
		t.Fatalf("serial %d, want 1", s)
	}

	// A renewal half written (the new key, the old certificate): the old
	// pair keeps serving.
	cert2, key2 := selfSigned(t, "a.test", 2)
	put(certmagic.StorageKeys.SitePrivateKey(ik, "a.test"), key2)
	if s := serial(0); s != 1 {
		t.Fatalf("serial %d during a half-written renewal, want 1", s)
	}
	if err := logHas(logs.String(), "level=WARN", "certificate files do not load"); err != nil {
		t.Error(err)
	}
	put(certmagic.StorageKeys.SiteCert(ik, "a.test"), cert2)
	if s := serial(time.Hour); s != 1 {
		t.Errorf("serial %d before the Recheck delay, want 1 still", s)
	}
	if s := serial(0); s != 2 {
		t.Fatalf("serial %d after the renewal, want 2", s)
	}
	if err := logHas(logs.String(), "level=INFO", `msg="ACME: serving the renewed certificate" name=a.test`); err != nil {
		t.Error(err)
	}

	// The files gone: what was loaded keeps serving.
	os.RemoveAll(filepath.Join(dir, "certificates"))
	if s := serial(0); s != 2 {
		t.Errorf("serial %d after the files went, want 2", s)
	}
}

// TestSharedStorage checks Options.Group: what Followers read is the
// group's, the account is not.
func TestSharedStorage(t *testing.T) {
	t.Parallel()
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 65534 // nogroup: another group than ours
	}
	dir := filepath.Join(t.TempDir(), "acme")
	old := filepath.Join(dir, "certificates", "ca", "old.test", "old.test.key")
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := newStorage(&settled{storage: dir, gid: gid})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		"certificates/ca/a.test/a.test.crt",
		"acme/ca/challenge_tokens/a.test.json",
		"acme/ca/users/ops@a.test/ops.key",
		"rw_test_123",
	} {
		if err := st.Store(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	check := func(rel string, mode os.FileMode, shared bool) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		g := int(fi.Sys().(*syscall.Stat_t).Gid)
		if fi.Mode().Perm() != mode || (g == gid) != shared {
			t.Errorf("%s: mode %v, gid %d; want %v, shared with %d: %v", rel, fi.Mode().Perm(), g, mode, gid, shared)
		}
	}
	check(".", 0o750, true)
	check("certificates", 0o750, true)
	check("certificates/ca/a.test", 0o750, true)
	check("certificates/ca/a.test/a.test.crt", 0o640, true)
	check("certificates/ca/old.test/old.test.key", 0o640, true)
	check("acme/ca/challenge_tokens", 0o750, true)
	check("acme/ca/challenge_tokens/a.test.json", 0o640, true)
	check("acme/ca/users", 0o700, gid == os.Getgid())
	check("acme/ca/users/ops@a.test/ops.key", 0o600, gid == os.Getgid())
	check("rw_test_123", 0o600, gid == os.Getgid())

	// Without a group, the folder stays private.
	private := filepath.Join(t.TempDir(), "acme")
	if _, err := newStorage(&settled{storage: private, gid: -1}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(private); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("storage without a group: %v, %v", fi.Mode(), err)
	}
}

// selfSigned returns a certificate for name and its key, PEM.
func selfSigned(t *testing.T, name string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
