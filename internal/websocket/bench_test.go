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
// context takeover either way).
func BenchmarkEcho64Deflate(b *testing.B) {
	cli, srv := net.Pipe()
	benchEcho(b, cli, srv, Options{Deflate: &Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true}})
}
