package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The HTTP/1.1 path: the handshake read with a bufio.Reader that also holds
// the client's first frame (sent in the same write as its request), the 101
// written on the raw connection, then a Conn over the connection and that
// reader; after the close handshake the server closes the TCP connection.
func TestHijackedTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			done <- err
			return
		}
		fields := func(yield func(string, string) bool) {
			for name, vs := range req.Header {
				for _, v := range vs {
					if !yield(name, v) {
						return
					}
				}
			}
		}
		hs, err := CheckHandshake(req.Method, fields)
		if err != nil {
			done <- err
			return
		}
		d := NegotiateDeflate(hs.Extensions, DeflateSettings{})
		f, err := ResponseHeaders(hs, "chat", d)
		if err != nil {
			done <- err
			return
		}
		nc.Write(AppendResponse(nil, f))
		done <- echo(NewConn(nc, br, Options{Deflate: d}))
	}()

	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
	cli.Write(append([]byte(req), txt("first")...))
	br := bufio.NewReader(cli)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != rfcAccept || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if f, err := readServerFrame(br); err != nil || f != wtxt("first") {
		t.Fatalf("echo %v %v", f, err)
	}
	cli.Write(cat(txt("second"), cclose(CloseGoingAway, "bye")))
	for _, want := range []sframe{wtxt("second"), {fin | byte(OpClose), "\x03\xe9"}} {
		if f, err := readServerFrame(br); err != nil || f != want {
			t.Fatalf("frame %v %v, want %v", f, err, want)
		}
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the close: %d bytes, %v; want EOF (the server closes the connection)", n, err)
	}
	var ce *CloseError
	if err := <-done; !errors.As(err, &ce) || ce.Code != CloseGoingAway || ce.Reason != "bye" || !ce.Remote {
		t.Errorf("server ended with %v", err)
	}
}

// stream is a transport like an HTTP/2 stream: a reader, a writer and Close,
// without deadlines or CloseWrite.
type stream struct {
	io.Reader
	io.Writer
	closed chan struct{}
	once   sync.Once
}

func (s *stream) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.Reader.(*io.PipeReader).Close()
		s.Writer.(*io.PipeWriter).Close()
	})
	return nil
}

// The RFC 8441 path: a Conn over a bare stream, with no handshake bytes.
func TestStream(t *testing.T) {
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	s := &stream{Reader: sr, Writer: sw, closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- echo(NewConn(s, nil, Options{})) }()
	go func() { cw.Write(cat(txt("over h2"), ping("p"), cclose(CloseNormal, ""))) }()
	br := bufio.NewReader(cr)
	for _, want := range []sframe{wtxt("over h2"), wpong("p"), {fin | byte(OpClose), "\x03\xe8"}} {
		if f, err := readServerFrame(br); err != nil || f != want {
			t.Fatalf("frame %v %v, want %v", f, err, want)
		}
	}
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was not closed after the close handshake")
	}
	var ce *CloseError
	if err := <-done; !errors.As(err, &ce) || ce.Code != CloseNormal {
		t.Errorf("server ended with %v", err)
	}
}

// The app closes: its code and reason go out, the peer's answer ends the
// reading; a peer that never answers is given up on after the close timeout.
func TestWriteClose(t *testing.T) {
	for _, answer := range []bool{true, false} {
		cli, srv := net.Pipe()
		c := NewConn(srv, nil, Options{CloseTimeout: 200 * time.Millisecond})
		done := make(chan error, 1)
		go func() {
			_, _, err := c.ReadMessage(nil)
			done <- err
		}()
		go c.WriteClose(CloseServiceRestart, "restarting")
		cli.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(cli)
		f, err := readServerFrame(br)
		if err != nil || f != (sframe{fin | byte(OpClose), "\x03\xf4restarting"}) {
			t.Fatalf("close frame %q %v", f.payload, err)
		}
		if answer {
			cli.Write(cclose(CloseServiceRestart, ""))
		}
		var ce *CloseError
		select {
		case err := <-done:
			if !errors.As(err, &ce) {
				t.Fatalf("answer %v: ReadMessage ended with %v", answer, err)
			}
			if answer && (ce.Code != CloseServiceRestart || !ce.Remote) || !answer && ce.Code != CloseAbnormal {
				t.Errorf("answer %v: %v", answer, ce)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("answer %v: ReadMessage did not end", answer)
		}
		if err := c.WriteMessage(OpText, []byte("late")); err != ErrCloseSent {
			t.Errorf("write after close: %v", err)
		}
		cli.Close()
	}
	c := NewConn(struct{ io.ReadWriter }{}, nil, Options{})
	for _, code := range []int{999, 1004, 1005, 1006, 1015, 2000, 5000} {
		if err := c.WriteClose(code, ""); err == nil {
			t.Errorf("WriteClose(%d) accepted", code)
		}
	}
	if err := c.WriteClose(1000, strings.Repeat("x", 124)); err == nil {
		t.Error("a 124-byte reason accepted")
	}
}

// StartKeepAlive pings on timers: an
// answering peer keeps the connection, a silent one is failed with 1011
// after one ping, and stop ends the pings.
func TestStartKeepAlive(t *testing.T) {
	for _, answer := range []bool{true, false} {
		cli, srv := net.Pipe()
		c := NewConn(srv, nil, Options{CloseTimeout: 100 * time.Millisecond})
		stop := c.StartKeepAlive(20*time.Millisecond, 50*time.Millisecond)
		rdone := make(chan error, 1)
		go func() {
			_, _, err := c.ReadMessage(nil)
			rdone <- err
		}()
		cli.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(cli)
		pings := 0
		var last sframe
		for pings < 5 {
			f, err := readServerFrame(br)
			if err != nil {
				break
			}
			last = f
			if Opcode(f.b0&0xf) != OpPing {
				break
			}
			pings++
			if answer {
				cli.Write(pong(f.payload))
			}
		}
		if answer {
			if pings != 5 {
				t.Errorf("answering peer: %d pings, then %v", pings, describe([]sframe{last}))
			}
			stop()
			cli.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if f, err := readServerFrame(br); err == nil {
				t.Errorf("a frame after stop: %v", describe([]sframe{f}))
			}
		} else {
			if pings != 1 || closeCode(last.payload) != CloseInternalError {
				t.Errorf("silent peer: %d pings, then %s", pings, describe([]sframe{last}))
			}
			var ce *CloseError
			if err := <-rdone; !errors.As(err, &ce) || ce.Code != CloseInternalError {
				t.Errorf("ReadMessage returned %v", err)
			}
			stop()
		}
		cli.Close()
		c.Close()
	}
}

// countWriter counts the writes that reach the transport.
type countWriter struct {
	io.Reader
	writes int
}

func (w *countWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }

// Messages queued before a Flush leave in one write.
func TestBatchedWrites(t *testing.T) {
	w := &countWriter{Reader: strings.NewReader("")}
	c := NewConn(w, nil, Options{})
	for range 3 {
		if err := c.WriteMessage(OpBinary, make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	}
	if w.writes != 0 {
		t.Fatalf("%d writes before Flush", w.writes)
	}
	if err := c.Flush(); err != nil || w.writes != 1 {
		t.Errorf("Flush: %v, %d writes, want 1", err, w.writes)
	}
}
