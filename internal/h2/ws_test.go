package h2

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"wisp/internal/h1"
)

// TestMain runs the tests in a process with XConnect in its GODEBUG, which
// net/http reads at init, as wisp's server processes have it.
func TestMain(m *testing.M) {
	if v := os.Getenv("GODEBUG"); !strings.Contains(v, XConnect) {
		exe, err := os.Executable()
		if err == nil {
			env := append(os.Environ(), "GODEBUG="+strings.TrimPrefix(v+","+XConnect, ","))
			err = syscall.Exec(exe, os.Args, env)
		}
		fmt.Fprintf(os.Stderr, "h2 tests: re-exec with GODEBUG=%s: %v\n", XConnect, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// wsTimeout bounds every wait of these tests.
const wsTimeout = 10 * time.Second

// startH2 serves h2c on a loopback port: streams go to the real h1.Server
// with handler, or to serve (a stand-in for h1 that reads and writes the
// stream as a net.Conn) when it is set. It returns the address and the
// Server (for Shutdown).
func startH2(t *testing.T, ws bool, handler h1.HandlerFunc, serve func(nc net.Conn)) (string, *Server) {
	t.Helper()
	if handler == nil {
		handler = func(w *h1.Response, r *h1.Request) { w.SetStatus(204, "") }
	}
	h1s := &h1.Server{Handler: handler}
	s := New(h1s, Config{WebSockets: func() bool { return ws }})
	if serve != nil {
		s.serve = func(nc net.Conn, _ h1.Handler) {
			defer nc.Close()
			serve(nc)
		}
	}
	h1s.H2 = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		h1s.ServeWith(ln, handler, true)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
		defer cancel()
		h1s.Shutdown(ctx)
		<-served
	})
	return ln.Addr().String(), s
}

// h2client is a bare HTTP/2 client (framer and HPACK), which can send what
// Go's client cannot: :protocol, a reset at a chosen moment.
type h2client struct {
	t        *testing.T
	nc       net.Conn
	fr       *http2.Framer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	settings map[http2.SettingID]uint32
	goaway   bool
}

// dialH2 connects, exchanges the prefaces, and notes the server's SETTINGS.
func dialH2(t *testing.T, addr string) *h2client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wsTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &h2client{t: t, nc: nc, fr: http2.NewFramer(nc, nc), settings: map[http2.SettingID]uint32{}}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	nc.SetDeadline(time.Now().Add(wsTimeout))
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			sf.ForeachSetting(func(s http2.Setting) error {
				c.settings[s.ID] = s.Val
				return nil
			})
			break
		}
	}
	if err := c.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return c
}

// connect opens stream id with an extended CONNECT of protocol to path.
func (c *h2client) connect(id uint32, protocol, path string, fields ...string) {
	c.t.Helper()
	c.hbuf.Reset()
	hf := []string{":method", "CONNECT", ":protocol", protocol, ":scheme", "http", ":authority", "chat.test", ":path", path}
	hf = append(hf, fields...)
	for i := 0; i < len(hf); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: hf[i], Value: hf[i+1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// next reads the next frame of stream id (the connection's own are noted
// or skipped).
func (c *h2client) next(id uint32) http2.Frame {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wsTimeout))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("stream %d: read a frame: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			c.goaway = true
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
		}
		if _, ok := f.(*http2.WindowUpdateFrame); !ok && f.Header().StreamID == id {
			return f
		}
	}
}

// response reads stream id's response HEADERS: its :status and fields.
func (c *h2client) response(id uint32) (string, map[string]string, bool) {
	c.t.Helper()
	f := c.next(id)
	mh, ok := f.(*http2.MetaHeadersFrame)
	if !ok {
		c.t.Fatalf("stream %d: %v, want the response's HEADERS", id, f)
	}
	fields := map[string]string{}
	for _, hf := range mh.RegularFields() {
		fields[hf.Name] = hf.Value
	}
	return mh.PseudoValue("status"), fields, mh.StreamEnded()
}

// data reads stream id's DATA until it has n bytes, or its end.
func (c *h2client) data(id uint32, n int) (got []byte, ended bool) {
	c.t.Helper()
	for len(got) < n || n < 0 {
		switch f := c.next(id).(type) {
		case *http2.DataFrame:
			got = append(got, f.Data()...)
			if len(f.Data()) > 0 {
				c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
				c.fr.WriteWindowUpdate(id, uint32(len(f.Data())))
			}
			if f.StreamEnded() {
				return got, true
			}
		case *http2.MetaHeadersFrame: // trailers
			if f.StreamEnded() {
				return got, true
			}
		case *http2.RSTStreamFrame:
			c.t.Fatalf("stream %d reset (%v) after %q", id, f.ErrCode, got)
		default:
			c.t.Fatalf("stream %d: %v", id, f)
		}
	}
	return got, false
}

func (c *h2client) send(id uint32, p string, end bool) {
	c.t.Helper()
	if err := c.fr.WriteData(id, end, []byte(p)); err != nil {
		c.t.Fatal(err)
	}
}

// h1Echo stands in for h1 and the WebSocket code on a stream: it reads the
// upgrade request's head, answers 101 (with a Sec-WebSocket-Accept, which
// must not go out), then echoes bytes until a read fails.
type h1Echo struct {
	head chan string // the request head
	end  chan error  // the read error that ended the echo
	// after, if set, runs on the stream after the 101 (instead of the echo)
	after func(nc net.Conn, br *bufio.Reader) error
}

func newH1Echo() *h1Echo { return &h1Echo{head: make(chan string, 1), end: make(chan error, 1)} }

func (e *h1Echo) serve(nc net.Conn) {
	br := bufio.NewReader(nc)
	var head strings.Builder
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			e.end <- err
			return
		}
		head.WriteString(l)
		if l == "\r\n" {
			break
		}
	}
	e.head <- head.String()
	if _, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"); err != nil {
		e.end <- err
		return
	}
	if e.after != nil {
		e.end <- e.after(nc, br)
		return
	}
	buf := make([]byte, 1024)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := nc.Write(buf[:n]); werr != nil {
				e.end <- werr
				return
			}
		}
		if err != nil {
			e.end <- err
			return
		}
	}
}

func waitEnd(t *testing.T, e *h1Echo) error {
	t.Helper()
	select {
	case err := <-e.end:
		return err
	case <-time.After(wsTimeout):
		t.Fatal("the stream's handler did not end")
		return nil
	}
}

// Issue 21: a WebSocket over HTTP/2 (RFC 8441). The connection offers
// extended CONNECT; the CONNECT reaches h1 as the HTTP/1.1 upgrade request
// it stands for; h1's 101 goes out as a 200 without Sec-WebSocket-Accept;
// bytes echo both ways as DATA; the client's END_STREAM is h1's EOF, and
// h1's end is the client's END_STREAM.
func TestWebSocketStream(t *testing.T) {
	e := newH1Echo()
	addr, _ := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	if v, ok := c.settings[http2.SettingEnableConnectProtocol]; !ok || v != 1 {
		t.Fatalf("SETTINGS %v: no ENABLE_CONNECT_PROTOCOL=1", c.settings)
	}
	c.connect(1, "websocket", "/chat?room=1", "sec-websocket-version", "13", "sec-websocket-protocol", "chat, superchat",
		"sec-websocket-extensions", "permessage-deflate", "origin", "http://chat.test", "cookie", "a=1",
		"sec-websocket-key", "from-the-client")
	var head string
	select {
	case head = <-e.head:
	case err := <-e.end:
		t.Fatalf("the head did not arrive: %v", err)
	case <-time.After(wsTimeout):
		t.Fatal("the head did not arrive")
	}
	for _, want := range []string{"GET /chat?room=1 HTTP/1.1\r\nHost: chat.test\r\n", "\r\nUpgrade: websocket\r\n", "\r\nConnection: Upgrade\r\n",
		"\r\nSec-Websocket-Version: 13\r\n", "\r\nSec-Websocket-Protocol: chat, superchat\r\n", "\r\nSec-Websocket-Extensions: permessage-deflate\r\n",
		"\r\nOrigin: http://chat.test\r\n", "\r\nCookie: a=1\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("head %q lacks %q", head, want)
		}
	}
	for _, bad := range []string{":protocol", "Content-Length", "Transfer-Encoding", "from-the-client"} {
		if strings.Contains(head, bad) {
			t.Errorf("head %q has %s", head, bad)
		}
	}
	if _, key, _ := strings.Cut(head, "\r\nSec-WebSocket-Key: "); true {
		key, _, _ = strings.Cut(key, "\r\n")
		if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
			t.Errorf("Sec-WebSocket-Key %q: not 16 bytes in base64", key)
		}
	}
	status, fields, ended := c.response(1)
	if status != "200" || ended {
		t.Fatalf("response %s (ended %v), want 200, open", status, ended)
	}
	for _, bad := range []string{"sec-websocket-accept", "upgrade", "connection", "content-length"} {
		if v, ok := fields[bad]; ok {
			t.Errorf("the 200 carries %s: %q", bad, v)
		}
	}
	if fields["sec-websocket-protocol"] != "chat" {
		t.Errorf("the 200's fields %v lack the app's sec-websocket-protocol", fields)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 20000)} {
		c.send(1, msg, false)
		if got, _ := c.data(1, len(msg)); string(got) != msg {
			t.Fatalf("echo: %d bytes, want %d", len(got), len(msg))
		}
	}
	c.send(1, "bye", true)
	got, ended := c.data(1, -1)
	if string(got) != "bye" || !ended {
		t.Errorf("after the client's END_STREAM: %q, ended %v; want the echo, then END_STREAM", got, ended)
	}
	if err := waitEnd(t, e); err != io.EOF {
		t.Errorf("h1's read at the client's END_STREAM: %v, want io.EOF", err)
	}
}

// The read deadline works on a switched stream and can be moved again
// after it passed (h1 stops its watch with one in the past); a write
// deadline cuts a write the client does not take, but not an idle stream.
func TestWebSocketStreamDeadlines(t *testing.T) {
	e := newH1Echo()
	steps := make(chan string, 10)
	e.after = func(nc net.Conn, br *bufio.Reader) error {
		buf := make([]byte, 64)
		nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		start := time.Now()
		if _, err := br.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
			return fmt.Errorf("read at the deadline: %v after %v", err, time.Since(start))
		}
		nc.SetReadDeadline(time.Unix(1, 0))
		if _, err := nc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read with a deadline passed: %v", err)
		}
		nc.SetReadDeadline(time.Time{})
		steps <- "read deadlines ok"
		n, err := nc.Read(buf)
		if err != nil || string(buf[:n]) != "ping" {
			return fmt.Errorf("read after the deadlines: %q, %v", buf[:n], err)
		}
		// a write deadline set, a write, then the stream idle past it: still open
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := nc.Write([]byte("pong")); err != nil {
			return fmt.Errorf("write within its deadline: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := nc.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("write past the deadline: %v", err)
		}
		nc.SetWriteDeadline(time.Time{})
		if _, err := nc.Write([]byte("again")); err != nil {
			return fmt.Errorf("write after the idle time: %v", err)
		}
		// more than the client's window, which it does not open: cut off
		nc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		start = time.Now()
		_, err = nc.Write(make([]byte, 1<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
			return fmt.Errorf("a write the client does not take: %v after %v", err, time.Since(start))
		}
		return nil
	}
	addr, _ := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "200" {
		t.Fatalf("status %s", status)
	}
	select {
	case s := <-steps:
		t.Log(s)
	case err := <-e.end:
		t.Fatal(err)
	case <-time.After(wsTimeout):
		t.Fatal("no read deadline")
	}
	c.send(1, "ping", false)
	// read "pong" and "again" without giving window back: the 1 MiB write
	// must then block on flow control
	var got []byte
	for len(got) < len("pongagain") {
		f, ok := c.next(1).(*http2.DataFrame)
		if !ok {
			t.Fatalf("got %q, then not DATA", got)
		}
		got = append(got, f.Data()...)
	}
	if string(got) != "pongagain" {
		t.Fatalf("got %q, want pong and again (not late)", got)
	}
	if err := waitEnd(t, e); err != nil {
		t.Fatal(err)
	}
	for {
		f := c.next(1)
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			t.Logf("the cut stream reset: %v", rst.ErrCode)
			break
		}
		if f.Header().Flags.Has(http2.FlagDataEndStream) {
			t.Fatal("the cut stream ended as if whole")
		}
	}
}

// A client's RST_STREAM fails h1's blocked read at once, and its writes
// after it.
func TestWebSocketStreamReset(t *testing.T) {
	e := newH1Echo()
	reading := make(chan struct{})
	e.after = func(nc net.Conn, br *bufio.Reader) error {
		close(reading)
		start := time.Now()
		_, err := br.Read(make([]byte, 64))
		if err == nil || err == io.EOF || time.Since(start) > 5*time.Second {
			return fmt.Errorf("read at the reset: %v after %v", err, time.Since(start))
		}
		if _, err := nc.Write([]byte("after the reset")); err == nil {
			return errors.New("a write after the reset did not fail")
		}
		return nil
	}
	addr, _ := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "200" {
		t.Fatalf("status %s", status)
	}
	<-reading
	time.Sleep(50 * time.Millisecond) // h1 waits in its read
	c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if err := waitEnd(t, e); err != nil {
		t.Fatal(err)
	}
}

// A connection of a server that does not serve WebSockets now does not
// offer extended CONNECT (net/http would: the process has XConnect), and
// refuses one sent anyway; a protocol other than websocket is refused too.
func TestExtendedConnectRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ws       bool
		protocol string
		status   string
	}{
		{"not offered", false, "websocket", "400"},
		{"another protocol", true, "connect-udp", "501"},
		{"not an absolute path", true, "websocket", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newH1Echo()
			addr, _ := startH2(t, tc.ws, nil, e.serve)
			c := dialH2(t, addr)
			if v, ok := c.settings[http2.SettingEnableConnectProtocol]; ok != tc.ws || ok && v != 1 {
				t.Errorf("SETTINGS %v: ENABLE_CONNECT_PROTOCOL offered %v, want %v", c.settings, ok, tc.ws)
			}
			if _, ok := c.settings[http2.SettingMaxConcurrentStreams]; !ok {
				t.Errorf("SETTINGS %v lost its other entries", c.settings)
			}
			path := "/chat"
			if tc.name == "not an absolute path" {
				path = "chat.test:443"
			}
			c.connect(1, tc.protocol, path, "sec-websocket-version", "13")
			status, _, _ := c.response(1)
			if status != tc.status {
				t.Errorf("status %s, want %s", status, tc.status)
			}
			select {
			case h := <-e.head:
				t.Errorf("h1 got the request %q", h)
			default:
			}
			// the connection serves on
			c.connect(3, "websocket", "/", "sec-websocket-version", "13")
			if status, _, _ := c.response(3); status != map[bool]string{true: "200", false: "400"}[tc.ws] {
				t.Errorf("the next stream: %s", status)
			}
		})
	}
}

// The real h1 takes the upgrade request made of an extended CONNECT, and
// an answer other than 101 goes out as a plain response (a denial).
func TestWebSocketStreamDenied(t *testing.T) {
	seen := make(chan string, 1)
	handler := func(w *h1.Response, r *h1.Request) {
		seen <- fmt.Sprintf("%s %s %s upgrade=%s connection=%s key=%d proto=%s", r.Method, r.Target, r.Host,
			r.Header("Upgrade"), r.Header("Connection"), len(r.Header("Sec-WebSocket-Key")), r.Proto)
		w.SetStatus(403, "")
		w.SetContentLength(6)
		w.Write([]byte("denied"))
	}
	addr, _ := startH2(t, true, handler, nil)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/chat", "sec-websocket-version", "13")
	status, _, ended := c.response(1)
	if status != "403" || ended {
		t.Fatalf("status %s, ended %v", status, ended)
	}
	if body, ended := c.data(1, -1); string(body) != "denied" || !ended {
		t.Errorf("body %q, ended %v", body, ended)
	}
	if got, want := <-seen, "GET /chat chat.test upgrade=websocket connection=Upgrade key=24 proto=HTTP/2.0"; got != want {
		t.Errorf("h1 saw %q, want %q", got, want)
	}
}

// A 2xx other than the accept (h1's 101) never answers an extended
// CONNECT: the client would take it for an open WebSocket; it goes out as
// 502, its body with it.
func TestWebSocketStreamNo2xxDenial(t *testing.T) {
	handler := func(w *h1.Response, r *h1.Request) {
		w.SetStatus(200, "")
		w.SetContentLength(2)
		w.Write([]byte("ok"))
	}
	addr, _ := startH2(t, true, handler, nil)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/chat", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "502" {
		t.Fatalf("status %s, want 502", status)
	}
}

// Shutdown's GOAWAY leaves an open WebSocket stream be: it echoes on, and
// ends when its handler ends it.
func TestWebSocketStreamShutdown(t *testing.T) {
	e := newH1Echo()
	addr, s := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "200" {
		t.Fatalf("status %s", status)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	deadline := time.Now().Add(wsTimeout)
	for !c.goaway && time.Now().Before(deadline) {
		c.send(1, "x", false)
		if got, _ := c.data(1, 1); string(got) != "x" {
			t.Fatalf("echo %q", got)
		}
	}
	if !c.goaway {
		t.Fatal("no GOAWAY")
	}
	time.Sleep(100 * time.Millisecond)
	c.send(1, "still", false)
	if got, _ := c.data(1, 5); string(got) != "still" {
		t.Fatalf("after GOAWAY: %q", got)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a WebSocket open", err)
	default:
	}
	c.send(1, "", true)
	if _, ended := c.data(1, -1); !ended {
		t.Error("no END_STREAM")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(wsTimeout):
		t.Error("Shutdown did not return after the stream ended")
	}
}

// The first SETTINGS frame loses ENABLE_CONNECT_PROTOCOL and keeps the
// rest, whether it comes in one write with the next frame or split
// across writes at any byte.
func TestSettingsWithoutConnectProtocol(t *testing.T) {
	var in bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
		http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteSettings(http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1}) // not the first: as is
	all := in.Bytes()
	for step := 1; step <= len(all); step++ {
		var out bytes.Buffer
		hc := &handedConn{Conn: &writeConn{w: &out}}
		for i := 0; i < len(all); i += step {
			p := all[i:min(i+step, len(all))]
			if n, err := hc.Write(p); n != len(p) || err != nil {
				t.Fatalf("step %d: Write = %d, %v", step, n, err)
			}
		}
		rd := http2.NewFramer(nil, &out)
		var got []string
		for {
			f, err := rd.ReadFrame()
			if err != nil {
				break
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				var s []string
				f.ForeachSetting(func(st http2.Setting) error { s = append(s, st.String()); return nil })
				got = append(got, "SETTINGS "+strings.Join(s, " "))
			default:
				got = append(got, f.Header().Type.String())
			}
		}
		want := "SETTINGS [MAX_CONCURRENT_STREAMS = 100] [INITIAL_WINDOW_SIZE = 1048576]|WINDOW_UPDATE|SETTINGS [ENABLE_CONNECT_PROTOCOL = 1]"
		if strings.Join(got, "|") != want {
			t.Fatalf("step %d: %q, want %q", step, strings.Join(got, "|"), want)
		}
	}
}

// writeConn is a net.Conn that only writes, to w.
type writeConn struct {
	net.Conn
	w io.Writer
}

func (c *writeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// h1's end of a WebSocket (Close, then the exchange returns) is the
// client's END_STREAM, while the client's side is still open; a Read
// blocked on another goroutine fails at the Close at once.
func TestWebSocketStreamServerEnds(t *testing.T) {
	e := newH1Echo()
	e.after = func(nc net.Conn, br *bufio.Reader) error {
		blocked := make(chan error, 1)
		go func() {
			_, err := br.Read(make([]byte, 64))
			blocked <- err
		}()
		if _, err := nc.Write([]byte("bye")); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
		nc.Close()
		select {
		case err := <-blocked:
			if !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("a read blocked at the Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			return errors.New("a read blocked at the Close did not return")
		}
		if _, err := nc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("a write after the Close: %v", err)
		}
		return nil
	}
	addr, _ := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "200" {
		t.Fatalf("status %s", status)
	}
	if got, ended := c.data(1, -1); string(got) != "bye" || !ended {
		t.Errorf("got %q, ended %v; want bye, then END_STREAM", got, ended)
	}
	if err := waitEnd(t, e); err != nil {
		t.Error(err)
	}
}

// withoutConnectProtocol never panics, and what it returns is b with only
// ENABLE_CONNECT_PROTOCOL entries of a first SETTINGS frame taken out.
func FuzzWithoutConnectProtocol(f *testing.F) {
	var in bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
	fr.WritePing(false, [8]byte{1})
	f.Add(in.Bytes())
	f.Add([]byte{0, 0, 6, 4, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 7, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, ok := withoutConnectProtocol(b)
		if !ok {
			if len(b) >= 9 && len(b) >= 9+(int(b[0])<<16|int(b[1])<<8|int(b[2])) {
				t.Fatalf("%x: whole, but not ok", b)
			}
			return
		}
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		m := int(out[0])<<16 | int(out[1])<<8 | int(out[2])
		if !bytes.Equal(out[9+m:], b[9+n:]) || !bytes.Equal(out[3:9], b[3:9]) || m > n || (n-m)%6 != 0 {
			t.Fatalf("%x -> %x", b, out)
		}
		if m == n && !bytes.Equal(out, b) {
			t.Fatalf("%x -> %x: changed, nothing taken out", b, out)
		}
		if b[3] == 4 && b[4]&1 == 0 && n%6 == 0 {
			for e := out[9 : 9+m]; len(e) >= 6; e = e[6:] {
				if e[0] == 0 && e[1] == 8 {
					t.Fatalf("%x -> %x: the setting is still there", b, out)
				}
			}
		}
	})
}

// Close unblocks a write the client does not take (as a net.Conn's does):
// it fails at once, and the stream is reset rather than ended as whole.
func TestWebSocketStreamCloseCutsWrite(t *testing.T) {
	e := newH1Echo()
	e.after = func(nc net.Conn, br *bufio.Reader) error {
		wrote := make(chan error, 1)
		go func() {
			_, err := nc.Write(make([]byte, 1<<20)) // past the client's window
			wrote <- err
		}()
		time.Sleep(200 * time.Millisecond)
		select {
		case err := <-wrote:
			return fmt.Errorf("the write did not block: %v", err)
		default:
		}
		start := time.Now()
		nc.Close()
		select {
		case err := <-wrote:
			if err == nil {
				return errors.New("the cut write did not fail")
			}
		case <-time.After(5 * time.Second):
			return errors.New("the write was not unblocked by Close")
		}
		if d := time.Since(start); d > 2*time.Second {
			return fmt.Errorf("the write was unblocked %v after Close", d)
		}
		return nil
	}
	addr, _ := startH2(t, true, nil, e.serve)
	c := dialH2(t, addr)
	c.connect(1, "websocket", "/", "sec-websocket-version", "13")
	if status, _, _ := c.response(1); status != "200" {
		t.Fatalf("status %s", status)
	}
	if err := waitEnd(t, e); err != nil {
		t.Fatal(err)
	}
	for {
		f := c.next(1)
		if _, ok := f.(*http2.RSTStreamFrame); ok {
			break
		}
		if f.Header().Flags.Has(http2.FlagDataEndStream) {
			t.Fatal("the cut stream ended as if whole")
		}
	}
}
