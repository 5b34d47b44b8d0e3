package e2e

// Issue 10: virtual hosts with SNI, HTTP/2 (TLS and h2c), redirect_http,
// the PROXY protocol and per-vdir limits, against the real binary.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// writeHostCert writes a self-signed certificate for names (DNS names, and
// 127.0.0.1) with common name cn, and returns it as a pool of roots.
func writeHostCert(t *testing.T, certPath, keyPath, cn string, names ...string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: names,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyPath+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certPath+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.Rename(keyPath+".tmp", keyPath)
	os.Rename(certPath+".tmp", certPath)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// nameApp is a WSGI app that answers its name, the protocol, the scheme
// and the Host.
const nameApp = `
def application(environ, start_response):
    body = ("%%s %%s %%s %%s" %% (%q, environ["SERVER_PROTOCOL"], environ["wsgi.url_scheme"], environ.get("HTTP_HOST", ""))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// hostClient dials addr for any host name (as DNS would point the names at
// wisp), trusting roots, with HTTP/2 when h2.
func hostClient(addr string, roots *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func getBody(t *testing.T, c *http.Client, url string, hdr ...string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s %v: %v", url, hdr, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp
}

// Two sites share a TLS binding and a plain one: the SNI name chooses the
// certificate, the Host the site (exact names before wildcards), an
// unknown host and a Host of another site than the SNI's get 421, HTTP/2
// and HTTP/1.1 both work, the plain binding redirects one site to https
// (308) and serves the other, and `wisp reload` picks up a new certificate.
func TestVirtualHostsSNI(t *testing.T) {
	s := newPoolServer(t)
	shopRoots := writeHostCert(t, filepath.Join(s.Dir, "shop.crt"), filepath.Join(s.Dir, "shop.key"), "shop", "shop.test", "*.shop.test")
	blogRoots := writeHostCert(t, filepath.Join(s.Dir, "blog.crt"), filepath.Join(s.Dir, "blog.key"), "blog", "blog.test", "admin.shop.test")
	os.WriteFile(filepath.Join(s.Dir, "shop.py"), []byte(fmt.Sprintf(nameApp, "shop")), 0o644)
	os.WriteFile(filepath.Join(s.Dir, "blog.py"), []byte(fmt.Sprintf(nameApp, "blog")), 0o644)
	os.WriteFile(filepath.Join(s.Dir, "admin.py"), []byte(fmt.Sprintf(nameApp, "admin")), 0o644)
	s.writeConfig(t, `
[server]
control_socket = "wisp.sock"
[pools.shop]
python = "@PY@"
[pools.blog]
python = "@PY@"
[[sites]]
name = "shop"
bindings = ["127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"]
hostnames = ["shop.test", "*.shop.test"]
tls = { cert = "shop.crt", key = "shop.key" }
redirect_http = true
  [[sites.vdirs]]
  path = "/"
  app = "shop.py"
  pool = "shop"
[[sites]]
name = "blog"
bindings = ["127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"]
hostnames = ["blog.test", "admin.shop.test"]
tls = { cert = "blog.crt", key = "blog.key" }
  [[sites.vdirs]]
  path = "/"
  app = "blog.py"
  pool = "blog"
  [[sites.vdirs]]
  path = "/admin"
  app = "admin.py"
  pool = "shop"
`)
	s.start(t)
	tlsAddr := "127.0.0.1:" + s.Ports[0]
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(s.Dir, "shop.crt"))))
	roots.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(s.Dir, "blog.crt"))))

	// the certificate by SNI name (no name: the first site's)
	for sni, want := range map[string]string{"shop.test": "shop", "www.shop.test": "shop", "blog.test": "blog", "": "shop", "nobody.test": "shop"} {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != want {
			t.Errorf("SNI %q: certificate %q, want %q", sni, cn, want)
		}
		c.Close()
	}
	_ = shopRoots
	_ = blogRoots
	for _, h2 := range []bool{true, false} {
		c := hostClient(tlsAddr, roots, h2)
		proto := "HTTP/1.1"
		if h2 {
			proto = "HTTP/2.0"
		}
		for host, want := range map[string]string{
			"shop.test": "shop", "x.shop.test": "shop", "blog.test": "blog",
			"admin.shop.test": "blog", // an exact name of another site beats shop's wildcard
		} {
			code, body, resp := getBody(t, c, "https://"+host+":"+s.Ports[0]+"/")
			if code != 200 || body != want+" "+proto+" https "+host+":"+s.Ports[0] || resp.Proto != proto {
				t.Errorf("%s %s: %d %q (%s), want %s %s", proto, host, code, body, resp.Proto, want, proto)
			}
		}
		// a vdir of the blog site served by the shop pool: forwarded, and the
		// app still sees the client's protocol
		if code, body, _ := getBody(t, c, "https://blog.test:"+s.Ports[0]+"/admin/x"); code != 200 || body != "admin "+proto+" https blog.test:"+s.Ports[0] {
			t.Errorf("%s blog.test/admin: %d %q", proto, code, body)
		}
		// Host of another site than the SNI name: 421
		code, body, _ := getBody(t, c, "https://shop.test:"+s.Ports[0]+"/", "Host", "blog.test")
		if code != 421 || !strings.Contains(body, "SNI") {
			t.Errorf("%s SNI shop.test, Host blog.test: %d %q, want 421", proto, code, body)
		}
	}
	// an unknown host (no site has no hostnames): 421 naming it
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "nobody.test"}}}
	code, body, _ := getBody(t, insecure, "https://"+tlsAddr+"/", "Host", "nobody.test")
	if code != 421 || !strings.Contains(body, `"nobody.test"`) {
		t.Errorf("unknown host: %d %q, want 421 naming it", code, body)
	}
	// the plain binding: shop redirects, blog serves
	plain := hostClient("127.0.0.1:"+s.Ports[1], nil, false)
	code, _, resp := getBody(t, plain, "http://shop.test:"+s.Ports[1]+"/cart?id=7")
	if loc := resp.Header.Get("Location"); code != 308 || loc != "https://shop.test:"+s.Ports[0]+"/cart?id=7" {
		t.Errorf("plain shop.test: %d Location %q, want 308 to https on port %s", code, loc, s.Ports[0])
	}
	if code, body, _ := getBody(t, plain, "http://blog.test:"+s.Ports[1]+"/"); code != 200 || body != "blog HTTP/1.1 http blog.test:"+s.Ports[1] {
		t.Errorf("plain blog.test: %d %q", code, body)
	}
	// a broken certificate file: the reload is refused, the old one serves
	good := must(os.ReadFile(filepath.Join(s.Dir, "blog.crt")))
	os.WriteFile(filepath.Join(s.Dir, "blog.crt"), []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644)
	if code, out, errOut := s.ctl(t, "reload"); code == 0 || !strings.Contains(out+errOut, "blog.crt") {
		t.Errorf("wisp reload with a broken certificate: exit %d, %s %s", code, out, errOut)
	}
	if c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "blog.test", RootCAs: roots}); err != nil {
		t.Errorf("after a refused reload: %v", err)
	} else {
		c.Close()
	}
	os.WriteFile(filepath.Join(s.Dir, "blog.crt"), good, 0o644)
	// a new certificate for blog at the same paths, and `wisp reload`
	writeHostCert(t, filepath.Join(s.Dir, "blog.crt"), filepath.Join(s.Dir, "blog.key"), "blog-2", "blog.test")
	if code, out, errOut := s.ctl(t, "reload"); code != 0 {
		t.Fatalf("wisp reload: %d %s %s", code, out, errOut)
	}
	if !eventually(5*time.Second, func() bool {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "blog.test", InsecureSkipVerify: true})
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName == "blog-2"
	}) {
		t.Error("the new blog certificate is not served after wisp reload")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// h2Client is a Go HTTP/2 client over TLS that trusts roots and counts its
// connections.
func h2Client(roots *x509.CertPool, conns *atomic.Int32) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if conns != nil {
				conns.Add(1)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// HTTP/2 over TLS, in-process and in a pool: 100 concurrent streams on one
// connection, a 50 MB upload and a 50 MB download with bounded memory, the
// WSGI environ says HTTP/2.0, and rapid reset (CVE-2023-44487) neither runs
// the app for reset streams nor stops the server.
func TestHTTP2(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
		roots := writeCert(t, certPath, keyPath, "h2")
		w := start(t, append([]string{"--certfile", certPath, "--keyfile", keyPath, "--threads", "8", "--max-body", "62914560",
			"--timeout", "4s", "--mount", "/env=" + app("environ/app.py"), "--mount", "/download=" + app("download/app.py"),
			"--mount", "/slow=" + app("slow/app.py")}, extra...)...)
		base := "https://" + w.Addr
		var conns atomic.Int32
		c := h2Client(roots, &conns)

		// the environ
		resp, err := c.Get(base + "/env/x?q=1")
		if err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		var out struct{ Environ map[string]string }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || out.Environ["SERVER_PROTOCOL"] != "HTTP/2.0" || out.Environ["wsgi.url_scheme"] != "https" ||
			out.Environ["PATH_INFO"] != "/x" || out.Environ["QUERY_STRING"] != "q=1" {
			t.Errorf("%v: proto %s, environ %v", extra, resp.Proto, out.Environ)
		}

		// the limits and timeouts of HTTP/1.1 hold: a body over --max-body
		// gets 413, a request over --timeout 504
		resp, err = c.Post(base+"/env/big", "application/octet-stream", io.LimitReader(zeros{}, 64_000_000))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 {
				t.Errorf("%v: a body over --max-body over h2: %d, want 413", extra, resp.StatusCode)
			}
		}
		if resp, err := c.Get(base + "/slow/sleep?6&late"); err != nil || resp.StatusCode != 504 {
			t.Errorf("%v: a request over --timeout over h2: %v %v, want 504", extra, resp, err)
		} else {
			resp.Body.Close()
		}

		// 100 streams at once on one connection
		var wg sync.WaitGroup
		var ok atomic.Int32
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get(fmt.Sprintf("%s/slow/sleep?0.2&%d", base, i))
				if err != nil {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && resp.ProtoMajor == 2 && string(b) == fmt.Sprintf("done %d", i) {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 100 || conns.Load() != 1 {
			t.Errorf("%v: %d of 100 concurrent streams answered, on %d connections (want 1)", extra, ok.Load(), conns.Load())
		}

		// 50 MB up and down, memory bounded
		const size = 50 << 20
		pid := w.Pid()
		before := vmKB(t, pid, "VmRSS")
		body := io.LimitReader(zeros{}, size)
		resp, err = c.Post(base+"/env/up", "application/octet-stream", body)
		if err != nil {
			t.Fatalf("%v: upload: %v", extra, err)
		}
		out.Environ = nil
		var up struct {
			Body struct{ Length int64 } `json:"body"`
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		json.Unmarshal(raw, &up)
		if resp.StatusCode != 200 || !bytes.Contains(raw, []byte(fmt.Sprintf("%d", size))) {
			t.Errorf("%v: 50 MB upload: %d %s", extra, resp.StatusCode, trunc(raw))
		}
		resp, err = c.Get(fmt.Sprintf("%s/download/?%d", base, size))
		if err != nil {
			t.Fatalf("%v: download: %v", extra, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			t.Errorf("%v: 50 MB download: %d bytes, %v", extra, n, err)
		}
		if hwm := vmKB(t, pid, "VmHWM"); hwm-before > 100<<10 {
			t.Errorf("%v: memory grew from %d KiB to a peak of %d KiB moving 50 MB each way", extra, before, hwm)
		}

		// rapid reset: 1000 streams opened and reset at once
		rapidReset(t, w.Addr, roots, 1000)
		runs := strings.Count(w.Stderr(), "e2e-slow-start rr")
		t.Logf("%v: the app ran %d times for 1000 reset streams", extra, runs)
		if runs > 150 {
			t.Errorf("%v: the app ran %d times for 1000 reset streams", extra, runs)
		}
		// the server still serves
		c2 := h2Client(roots, nil)
		if resp, err := c2.Get(base + "/slow/sleep?0&after"); err != nil || resp.StatusCode != 200 {
			t.Errorf("%v: after the rapid reset: %v", extra, err)
		} else {
			resp.Body.Close()
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// rapidReset opens n streams on one HTTP/2 connection, each reset right
// after its HEADERS (the CVE-2023-44487 pattern), and reports what the
// server did.
func rapidReset(t *testing.T, addr string, roots *x509.CertPool, n int) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("rapid reset: dial: %v", err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("rapid reset: ALPN %q, want h2", p)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	sent := 0
	for i := 0; i < n; i++ {
		id := uint32(2*i + 1)
		hbuf.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", addr}, {":path", fmt.Sprintf("/slow/sleep?1&rr%d", i)}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			break
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	// read until the server ends the connection or goes quiet
	goaway := false
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			goaway = true
		}
	}
	t.Logf("rapid reset: %d streams sent and reset; GOAWAY %v", sent, goaway)
}

// --h2c serves HTTP/2 without TLS to a client with prior knowledge; without
// it, such a client is refused and HTTP/1.1 works either way.
func TestH2C(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := start(t, append([]string{"--h2c", app("environ/app.py")}, extra...)...)
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protos}}
		resp, err := c.Get(w.URL + "/")
		if err != nil {
			t.Fatalf("%v: h2c: %v", extra, err)
		}
		var out struct{ Environ map[string]string }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || out.Environ["SERVER_PROTOCOL"] != "HTTP/2.0" || out.Environ["wsgi.url_scheme"] != "http" {
			t.Errorf("%v: h2c: %s, environ protocol %q", extra, resp.Proto, out.Environ["SERVER_PROTOCOL"])
		}
		if resp, _ := w.get(t, "/"); resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Errorf("%v: HTTP/1.1 next to h2c: %d %s", extra, resp.StatusCode, resp.Proto)
		}
		// a body of unknown length: h2 frames it for h1 as chunked, which the
		// app must not see as a header the client sent (HTTP/2 has none)
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte("hello ")); pw.Write([]byte("world")); pw.Close() }()
		req, _ := http.NewRequest("POST", w.URL+"/", pr)
		req.ContentLength = -1
		resp, err = c.Do(req)
		if err != nil {
			t.Fatalf("%v: h2c POST: %v", extra, err)
		}
		out.Environ = nil
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if te, ok := out.Environ["HTTP_TRANSFER_ENCODING"]; ok || out.Environ["CONTENT_LENGTH"] != "11" {
			t.Errorf("%v: h2c POST: HTTP_TRANSFER_ENCODING %q (present %v), CONTENT_LENGTH %q; want none and 11",
				extra, te, ok, out.Environ["CONTENT_LENGTH"])
		}
	}
	// a response without Content-Type gets none over HTTP/2 either
	// (net/http would sniff "text/html" from the body)
	notype := filepath.Join(t.TempDir(), "notype.py")
	os.WriteFile(notype, []byte("def application(environ, start_response):\n"+
		"    start_response('200 OK', [])\n    return [b'<html><body>x</body></html>']\n"), 0o644)
	w := start(t, "--h2c", notype)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protos}}
	resp, err := c.Get(w.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, ok := resp.Header["Content-Type"]; resp.ProtoMajor != 2 || ok {
		t.Errorf("h2c response without Content-Type from the app: %s, Content-Type %q", resp.Proto, ct)
	}
	w = start(t, app("environ/app.py"))
	if resp, err := c.Get(w.URL + "/"); err == nil {
		resp.Body.Close()
		if resp.ProtoMajor == 2 {
			t.Error("without --h2c, an h2c client was served HTTP/2")
		}
	}
}

// --proxy-protocol: the client address of a v1 or v2 header is REMOTE_ADDR;
// a connection without the header, or from a peer that is not a trusted
// proxy, is closed unanswered.
func TestProxyProtocol(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := start(t, append([]string{"--proxy-protocol", "--forwarded-allow-ips", "127.0.0.1", app("environ/app.py")}, extra...)...)
		_, port, _ := net.SplitHostPort(w.Addr)
		v2 := func(src string, sport uint16) []byte {
			b := []byte("\r\n\r\n\x00\r\nQUIT\n")
			b = append(b, 0x21, 0x11, 0, 12) // v2 PROXY, TCP over IPv4, 12 address bytes
			b = append(b, net.ParseIP(src).To4()...)
			b = append(b, 127, 0, 0, 1)
			b = append(b, byte(sport>>8), byte(sport), 0, 80)
			return b
		}
		for name, header := range map[string][]byte{
			"v1": []byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 " + port + "\r\n"),
			"v2": v2("198.51.100.9", 4444),
		} {
			c := dialRaw(t, w.Addr)
			c.conn.Write(header)
			c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, body, err := c.response("GET")
			if err != nil {
				t.Fatalf("%v %s: %v", extra, name, err)
			}
			var out struct{ Environ map[string]string }
			json.Unmarshal(body, &out)
			want := map[string]string{"v1": "203.0.113.7", "v2": "198.51.100.9"}[name]
			if resp.StatusCode != 200 || out.Environ["REMOTE_ADDR"] != want {
				t.Errorf("%v %s: %d REMOTE_ADDR %q, want %s", extra, name, resp.StatusCode, out.Environ["REMOTE_ADDR"], want)
			}
		}
		// no header: closed without an answer
		c := dialRaw(t, w.Addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if closed, got := c.closedWithin(15 * time.Second); !closed || bytes.Contains(got, []byte("200 OK")) {
			t.Errorf("%v: no PROXY header: closed %v, got %q", extra, closed, got)
		}
		// from 127.0.0.2, not a trusted proxy: closed
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		if nc, err := d.Dial("tcp", w.Addr); err == nil {
			nc.SetDeadline(time.Now().Add(15 * time.Second))
			nc.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 " + port + "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			got, _ := io.ReadAll(nc)
			nc.Close()
			if bytes.Contains(got, []byte("200 OK")) {
				t.Errorf("%v: an untrusted peer's PROXY header was served: %q", extra, got)
			}
		}
	}
}

// max_body and max_concurrent on a vdir: a larger body gets 413 there (and
// not on the pool's other vdir), one request more than the bound gets 503.
func TestVdirLimits(t *testing.T) {
	s := serve(t, `
[server]
control_socket = "wisp.sock"
[pools.default]
python = "@PY@"
threads = 4
[[sites]]
name = "s"
bindings = ["127.0.0.1:@PORT0@"]
  [[sites.vdirs]]
  path = "/"
  app = "@APPS@/environ/app.py"
  [[sites.vdirs]]
  path = "/small"
  app = "@APPS@/environ/app.py"
  max_body = "1KiB"
  [[sites.vdirs]]
  path = "/one"
  app = "@APPS@/slow/app.py"
  max_concurrent = 1
`)
	post := func(path string, n int) int {
		resp, err := s.Client.Post(s.URL+path, "application/octet-stream", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/small/x", 1024); c != 200 {
		t.Errorf("1 KiB to /small: %d, want 200", c)
	}
	if c := post("/small/x", 2048); c != 413 {
		t.Errorf("2 KiB to /small: %d, want 413", c)
	}
	if c := post("/x", 2048); c != 200 {
		t.Errorf("2 KiB to /: %d, want 200", c)
	}
	done := make(chan int)
	go func() {
		resp, err := s.Client.Get(s.URL + "/one/sleep?1.5&first")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if !s.waitStderr("e2e-slow-start first", 10*time.Second) {
		t.Fatal("the first slow request did not start")
	}
	resp, body := s.get(t, "/one/sleep?0&second")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "1 requests at once") {
		t.Errorf("a second request at once: %d %q, want 503 with Retry-After", resp.StatusCode, body)
	}
	if c := <-done; c != 200 {
		t.Errorf("the first request: %d", c)
	}
	if resp, _ := s.get(t, "/one/sleep?0&third"); resp.StatusCode != 200 {
		t.Errorf("after the first finished: %d", resp.StatusCode)
	}
}

// Django's collectstatic output served as a static vdir: the URL Django
// makes for an asset is served by Go, with ETag and 304, next to the app.
func TestDjangoCollectstatic(t *testing.T) {
	root := filepath.Join(t.TempDir(), "static")
	cmd := exec.Command(python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import app\n"+
		"from django.core.management import call_command\ncall_command('collectstatic', '--noinput')", app("django"))
	cmd.Env = append(os.Environ(), "DJANGO_STATIC_ROOT="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("collectstatic: %v\n%s", err, out)
	}
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := start(t, append([]string{"--static", "/static=" + root, app("django/app.py")}, extra...)...)
		var asset struct{ URL string }
		w.getJSON(t, "/asset/", &asset)
		if asset.URL != "/static/css/site.css" {
			t.Fatalf("%v: Django's URL for the asset: %q", extra, asset.URL)
		}
		resp, body := w.get(t, asset.URL)
		etag := resp.Header.Get("Etag")
		if resp.StatusCode != 200 || string(body) != "body { color: #123; }\n" || etag == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
			t.Errorf("%v: GET %s: %d %q ETag %q type %q", extra, asset.URL, resp.StatusCode, body, etag, resp.Header.Get("Content-Type"))
		}
		req := mustRequest(t, "GET", w.URL+asset.URL, nil)
		req.Header.Set("If-None-Match", etag)
		if resp, _ := w.do(t, req); resp.StatusCode != 304 {
			t.Errorf("%v: If-None-Match: %d, want 304", extra, resp.StatusCode)
		}
		checkBody(t, w, "/?name=static", "<h1>Hello, static!</h1><ul><li>0</li><li>1</li><li>2</li></ul>")
	}
}

// wsgi.file_wrapper and a static file over HTTP/2, and curl's own HTTP/2
// client (another implementation than Go's) against wisp.
func TestHTTP2FileWrapperCurl(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	roots := writeCert(t, certPath, keyPath, "h2")
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	w := start(t, "--certfile", certPath, "--keyfile", keyPath, "--static", "/files="+dir,
		"--mount", "/fw="+app("filewrap/app.py"), app("environ/app.py"))
	c := h2Client(roots, nil)
	resp, err := c.Get("https://" + w.Addr + "/files/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !bytes.Equal(got, big) {
		t.Errorf("static over h2: %s, %d bytes", resp.Proto, len(got))
	}
	resp, err = c.Get("https://" + w.Addr + "/fw/file?path=" + filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !bytes.Equal(got, big) {
		t.Errorf("wsgi.file_wrapper over h2: %s %d, %d bytes", resp.Proto, resp.StatusCode, len(got))
	}
	req, _ := http.NewRequest("GET", "https://"+w.Addr+"/files/big.bin", nil)
	req.Header.Set("Range", "bytes=10-19")
	if resp, err := c.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || string(b) != "abcdef0123" {
			t.Errorf("range over h2: %d %q", resp.StatusCode, b)
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	out, err := exec.Command("curl", "-sS", "--http2", "--cacert", certPath, "-o", "-", "-w", "\n%{http_version} %{http_code}",
		"https://"+w.Addr+"/env/x").CombinedOutput()
	if err != nil || !bytes.HasSuffix(out, []byte("\n2 200")) || !bytes.Contains(out, []byte(`HTTP/2.0`)) {
		t.Errorf("curl --http2: %v\n%s", err, trunc(out))
	}
}

// SIGTERM with HTTP/2 requests in flight: they finish (GOAWAY lets the
// client know no new stream will be taken), then wisp exits 0.
func TestHTTP2GracefulStop(t *testing.T) {
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
		roots := writeCert(t, certPath, keyPath, "h2")
		w := start(t, append([]string{"--certfile", certPath, "--keyfile", keyPath, app("slow/app.py")}, extra...)...)
		c := h2Client(roots, nil)
		type result struct {
			code int
			body string
			err  error
		}
		done := make(chan result, 3)
		for i := 0; i < 3; i++ {
			go func() {
				resp, err := c.Get(fmt.Sprintf("https://%s/sleep?1.5&g%d", w.Addr, i))
				if err != nil {
					done <- result{err: err}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- result{code: resp.StatusCode, body: string(b)}
			}()
		}
		if !eventually(10*time.Second, func() bool { return strings.Count(w.Stderr(), "e2e-slow-start g") == 3 }) {
			t.Fatalf("%v: the requests did not start", extra)
		}
		w.signal(os.Interrupt)
		for i := 0; i < 3; i++ {
			if r := <-done; r.err != nil || r.code != 200 || !strings.HasPrefix(r.body, "done g") {
				t.Errorf("%v: in-flight HTTP/2 request at SIGTERM: %d %q %v", extra, r.code, r.body, r.err)
			}
		}
		if code, ok := w.wait(20 * time.Second); !ok || code != 0 {
			t.Errorf("%v: exit %d (exited %v)", extra, code, ok)
		}
	}
}

// A pool scaled to zero (idle_timeout) on a TLS binding shared by two
// sites: the supervisor answers in its place over TLS and HTTP/2, with the
// certificate of the SNI name, and routes by Host: the request starts the
// pool and is served; the plain binding still redirects.
func TestStandbyTLS(t *testing.T) {
	s := newPoolServer(t)
	writeHostCert(t, filepath.Join(s.Dir, "a.crt"), filepath.Join(s.Dir, "a.key"), "a", "a.test")
	writeHostCert(t, filepath.Join(s.Dir, "b.crt"), filepath.Join(s.Dir, "b.key"), "b", "b.test")
	os.WriteFile(filepath.Join(s.Dir, "a.py"), []byte(fmt.Sprintf(nameApp, "a")), 0o644)
	os.WriteFile(filepath.Join(s.Dir, "b.py"), []byte(fmt.Sprintf(nameApp, "b")), 0o644)
	s.writeConfig(t, `
[server]
control_socket = "wisp.sock"
[pools.a]
python = "@PY@"
idle_timeout = "1s"
[pools.b]
python = "@PY@"
[[sites]]
name = "a"
bindings = ["127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"]
hostnames = ["a.test"]
tls = { cert = "a.crt", key = "a.key" }
redirect_http = true
vdirs = [{ path = "/", app = "a.py", pool = "a" }]
[[sites]]
name = "b"
bindings = ["127.0.0.1:@PORT0@", "http://127.0.0.1:@PORT1@"]
hostnames = ["b.test"]
tls = { cert = "b.crt", key = "b.key" }
vdirs = [{ path = "/", app = "b.py", pool = "b" }]
`)
	s.start(t)
	s.waitPool(t, "a", 15*time.Second, "idle", func(p wispPoolStatus) bool { return p.State == "idle" })
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(s.Dir, "a.crt"))))
	roots.AppendCertsFromPEM(must(os.ReadFile(filepath.Join(s.Dir, "b.crt"))))
	c := hostClient("127.0.0.1:"+s.Ports[0], roots, true)
	for host, want := range map[string]string{"a.test": "a", "b.test": "b"} {
		code, body, _ := getBody(t, c, "https://"+host+":"+s.Ports[0]+"/")
		if code != 200 || body != want+" HTTP/2.0 https "+host+":"+s.Ports[0] {
			t.Errorf("%s while pool a was idle: %d %q", host, code, body)
		}
	}
	code, _, resp := getBody(t, hostClient("127.0.0.1:"+s.Ports[1], nil, false), "http://a.test:"+s.Ports[1]+"/x")
	if code != 308 || resp.Header.Get("Location") != "https://a.test:"+s.Ports[0]+"/x" {
		t.Errorf("plain a.test: %d %q", code, resp.Header.Get("Location"))
	}
}
