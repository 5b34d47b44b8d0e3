package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2ws is a bare HTTP/2 client for RFC 8441: net/http's cannot send an
// extended CONNECT without its own GODEBUG, nor show the server's SETTINGS.
type h2ws struct {
	t        *testing.T
	nc       net.Conn
	fr       *http2.Framer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	settings map[http2.SettingID]uint32
}

func dialH2WS(t *testing.T, addr string) *h2ws {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return h2wsOn(t, nc)
}

// h2wsOn is dialH2WS on a connection made already (TLS with ALPN h2, say).
func h2wsOn(t *testing.T, nc net.Conn) *h2ws {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	c := &h2ws{t: t, nc: nc, fr: http2.NewFramer(nc, nc), settings: map[http2.SettingID]uint32{}}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, http2.ClientPreface)
	c.fr.WriteSettings()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			sf.ForeachSetting(func(s http2.Setting) error { c.settings[s.ID] = s.Val; return nil })
			break
		}
	}
	c.fr.WriteSettingsAck()
	return c
}

func (c *h2ws) connect(id uint32, path string, fields ...string) {
	c.hbuf.Reset()
	hf := append([]string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "wisp.test", ":path", path,
		"sec-websocket-version", "13"}, fields...)
	for i := 0; i < len(hf); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: hf[i], Value: hf[i+1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// frame reads stream id's next frame, answering pings and flow control.
func (c *h2ws) frame(id uint32) http2.Frame {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("stream %d: %v", id, err)
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			c.fr.WritePing(true, p.Data)
		}
		if d, ok := f.(*http2.DataFrame); ok && len(d.Data()) > 0 {
			c.fr.WriteWindowUpdate(0, uint32(len(d.Data())))
			c.fr.WriteWindowUpdate(d.StreamID, uint32(len(d.Data())))
		}
		if f.Header().StreamID == id {
			if _, ok := f.(*http2.WindowUpdateFrame); !ok {
				return f
			}
		}
	}
}

// wsFrame is a masked client frame.
func wsFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	}
	var m [4]byte
	rand.Read(m[:])
	b = append(b, m[:]...)
	for i, x := range p {
		b = append(b, x^m[i%4])
	}
	return b
}

// WebSockets over HTTP/2 (RFC 8441): a server with an ASGI app offers
// SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT reaches the app as
// a websocket scope of http_version 2 (without the fields h1 needed), is
// accepted with a 200, and carries frames both ways; the app's close ends
// the stream. A WSGI path of the same server refuses one (501), and a
// server with no ASGI app does not offer the setting at all.
func TestWebSocketOverHTTP2(t *testing.T) {
	w := start(t, "--h2c", "--mount", "/ws="+wsApp(), "--mount", "/="+app("environ/app.py"))
	c := dialH2WS(t, w.Addr)
	if c.settings[http2.SettingEnableConnectProtocol] != 1 {
		t.Fatalf("SETTINGS %v: no ENABLE_CONNECT_PROTOCOL=1 with an ASGI app mounted", c.settings)
	}
	c.connect(1, "/ws/echo", "sec-websocket-protocol", "chat")
	mh, ok := c.frame(1).(*http2.MetaHeadersFrame)
	if !ok || mh.PseudoValue("status") != "200" || mh.StreamEnded() {
		t.Fatalf("the response to the extended CONNECT: %v", mh)
	}
	hdr := map[string]string{}
	for _, f := range mh.RegularFields() {
		hdr[f.Name] = f.Value
	}
	if hdr["sec-websocket-protocol"] != "chat" || hdr["sec-websocket-accept"] != "" || hdr["upgrade"] != "" {
		t.Errorf("response fields %v", hdr)
	}
	read := func() (byte, []byte) {
		t.Helper()
		var buf []byte
		for {
			if len(buf) >= 2 {
				n, off := int(buf[1]&0x7f), 2
				if n == 126 && len(buf) >= 4 {
					n, off = int(binary.BigEndian.Uint16(buf[2:4])), 4
				}
				if n != 126 && len(buf) >= off+n {
					return buf[0] & 0x0f, buf[off : off+n]
				}
			}
			d, ok := c.frame(1).(*http2.DataFrame)
			if !ok {
				t.Fatalf("not DATA")
			}
			buf = append(buf, d.Data()...)
		}
	}
	c.fr.WriteData(1, false, wsFrame(wsText, []byte("scope")))
	op, p := read()
	if op != wsText || !bytes.Contains(p, []byte(`"http_version": "2"`)) || bytes.Contains(p, []byte(`"sec-websocket-key"`)) ||
		bytes.Contains(p, []byte(`"upgrade"`)) {
		t.Errorf("scope over HTTP/2: %s", p)
	}
	c.fr.WriteData(1, false, wsFrame(wsText, []byte("over h2")))
	if op, p := read(); op != wsText || string(p) != "over h2" {
		t.Errorf("echo: %d %q", op, p)
	}
	c.fr.WriteData(1, false, wsFrame(wsText, []byte("close:4002:h2 bye")))
	if op, p := read(); op != wsClose || binary.BigEndian.Uint16(p) != 4002 {
		t.Errorf("close: %d %q", op, p)
	}
	c.fr.WriteData(1, true, wsFrame(wsClose, []byte{0x0f, 0xa2}))
	// the stream ends
	for i := 0; i < 10; i++ {
		f := c.frame(1)
		if f.Header().Flags.Has(http2.FlagDataEndStream) || f.Header().Type == http2.FrameRSTStream {
			break
		}
	}
	// the access log has what the client got: 200, not HTTP/1.1's 101
	logged := regexp.MustCompile(`"[A-Z]+ /ws/echo HTTP/2.0" (\d+) `)
	if !eventually(5*time.Second, func() bool { return logged.MatchString(w.Stdout()) }) {
		t.Errorf("no access log line for the WebSocket over HTTP/2:\n%s", w.Stdout())
	} else if m := logged.FindStringSubmatch(w.Stdout()); m[1] != "200" {
		t.Errorf("the WebSocket over HTTP/2 is logged with %s, want 200", m[1])
	}
	// a WSGI path refuses
	c.connect(3, "/other")
	if mh, ok := c.frame(3).(*http2.MetaHeadersFrame); !ok || mh.PseudoValue("status") != "501" {
		t.Errorf("an extended CONNECT to a WSGI app: %v", mh)
	}
	// no ASGI app: not offered
	w2 := start(t, "--h2c", app("environ/app.py"))
	if c2 := dialH2WS(t, w2.Addr); c2.settings[http2.SettingEnableConnectProtocol] != 0 {
		t.Errorf("a WSGI-only server offers ENABLE_CONNECT_PROTOCOL: %v", c2.settings)
	}
}

// An ASGI app's trailers reach an HTTP/2 client as the stream's trailing
// HEADERS.
func TestASGITrailersHTTP2(t *testing.T) {
	w := start(t, "--h2c", asgiApp())
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: 10 * time.Second}
	resp, err := c.Get(w.URL + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "part one, part two" {
		t.Fatalf("%s %q", resp.Proto, body)
	}
	if resp.Trailer.Get("X-Checksum") != "abc123" || resp.Trailer.Get("X-Count") != "2" {
		t.Errorf("trailers over HTTP/2: %v", resp.Trailer)
	}
}

// WebSockets over TLS: over HTTP/1.1 (ALPN http/1.1) the scope's scheme is
// wss; over HTTP/2 (ALPN h2, as a browser on an https page connects) the
// connection offers extended CONNECT and a WebSocket works on a stream.
func TestWebSocketOverTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	roots := writeCert(t, certPath, keyPath, "ws")
	w := start(t, "--certfile", certPath, "--keyfile", keyPath, wsApp())
	dial := func(proto string) net.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", w.Addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{proto}})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().NegotiatedProtocol; got != proto {
			t.Fatalf("ALPN %q, want %q", got, proto)
		}
		return c
	}
	c, err := wsHandshake(dial("http/1.1"), "localhost", "/echo")
	if err != nil || c.Resp.StatusCode != 101 {
		t.Fatalf("wss handshake: %v", err)
	}
	c.text("scope")
	if _, p, err := c.read(5 * time.Second); err != nil || !bytes.Contains(p, []byte(`"scheme": "wss"`)) {
		t.Errorf("scope over TLS: %s %v", p, err)
	}
	c.closeWith(1000, "")
	c.Close()

	h := h2wsOn(t, dial("h2"))
	if h.settings[http2.SettingEnableConnectProtocol] != 1 {
		t.Fatalf("SETTINGS over TLS %v: no ENABLE_CONNECT_PROTOCOL", h.settings)
	}
	h.connect(1, "/echo")
	if mh, ok := h.frame(1).(*http2.MetaHeadersFrame); !ok || mh.PseudoValue("status") != "200" {
		t.Fatalf("extended CONNECT over TLS: %v", mh)
	}
	h.fr.WriteData(1, false, wsFrame(wsText, []byte("over h2 and tls")))
	d, ok := h.frame(1).(*http2.DataFrame)
	if !ok || !bytes.HasSuffix(d.Data(), []byte("over h2 and tls")) {
		t.Errorf("echo over h2 and TLS: %v", d)
	}
}
