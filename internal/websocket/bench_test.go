package websocket

import (
	"bufio"
	"io"
	"net"
	"testing"
)

// benchEcho measures one 64-byte message echoed over a transport pair:
// the client writes a masked frame, the server's Conn reads it and writes
// it back, the client reads the echo. Allocations count both sides.
func benchEcho(b *testing.B, cli, srv net.Conn, opts Options) {
	defer cli.Close()
	c := NewConn(srv, nil, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		echo(c)
	}()
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	frame := cframe(fin|byte(OpBinary), payload)
	if opts.Deflate != nil {
		frame = cframe(fin|rsv1|byte(OpBinary), (&testDeflater{noCtx: true}).compress(payload))
	}
	br := bufio.NewReader(cli)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cli.Write(frame); err != nil {
			b.Fatal(err)
		}
		h, err := readHeader(br)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.Discard(int(h.length)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cli.Write(normal())
	io.Copy(io.Discard, br)
	cli.Close()
	<-done
}

func BenchmarkEcho64(b *testing.B) {
	cli, srv := net.Pipe()
	benchEcho(b, cli, srv, Options{})
}

// BenchmarkEcho64TCP is the same over a loopback TCP connection: the
// syscalls of a real socket.
func BenchmarkEcho64TCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		b.Fatal("accept failed")
	}
	benchEcho(b, cli, srv, Options{})
}

// BenchmarkEcho64Deflate is the net.Pipe echo with permessage-deflate (no
// context takeover either way, BestSpeed).
func BenchmarkEcho64Deflate(b *testing.B) {
	cli, srv := net.Pipe()
	benchEcho(b, cli, srv, Options{Deflate: &Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, Level: 1}})
}

// BenchmarkEcho64DeflatePool is BenchmarkEcho64Deflate with the
// compressor borrowed from a FlatePool for each message.
func BenchmarkEcho64DeflatePool(b *testing.B) {
	cli, srv := net.Pipe()
	benchEcho(b, cli, srv, Options{Deflate: &Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, Level: 1}, FlatePool: &FlatePool{}})
}

// loopReader yields the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.b[r.off:])
		n += k
		r.off = (r.off + k) % len(r.b)
	}
	return n, nil
}

// BenchmarkCodec64 is the Conn's own cost for a 64-byte message read and
// written back, without a transport: reading and unmasking a frame, and
// framing the echo into the write buffer, flushed every 16 messages.
func BenchmarkCodec64(b *testing.B) {
	for _, text := range []bool{false, true} {
		name, op := "binary", byte(OpBinary)
		if text {
			name, op = "text", byte(OpText)
		}
		b.Run(name, func(b *testing.B) {
			payload := make([]byte, 64)
			for i := range payload {
				payload[i] = byte('a' + i%26)
			}
			rw := struct {
				io.Reader
				io.Writer
			}{&loopReader{b: cframe(fin|op, payload)}, io.Discard}
			c := NewConn(rw, nil, Options{})
			buf := make([]byte, 0, 128)
			b.SetBytes(64)
			b.ReportAllocs()
			for i := range b.N {
				op, msg, err := c.ReadMessage(buf)
				if err != nil {
					b.Fatal(err)
				}
				c.WriteMessage(op, msg)
				if i%16 == 15 {
					c.Flush()
				}
			}
		})
	}
}
