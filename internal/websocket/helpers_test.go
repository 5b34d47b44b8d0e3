package websocket

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testKey masks every frame the test client sends.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// Bits of a frame's first byte, for building test frames.
const (
	fin  = 0x80
	rsv1 = 0x40
	rsv2 = 0x20
	rsv3 = 0x10
)

// cframe builds one masked client frame: b0 is FIN, RSV and opcode.
func cframe(b0 byte, payload []byte) []byte {
	b := []byte{b0}
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, testKey[:]...)
	start := len(b)
	b = append(b, payload...)
	mask(testKey, 0, b[start:])
	return b
}

// cf is cframe with a string payload.
func cf(b0 byte, s string) []byte { return cframe(b0, []byte(s)) }

// cclose builds a masked close frame with a code and reason.
func cclose(code int, reason string) []byte {
	return cframe(fin|byte(OpClose), closePayload(nil, code, reason))
}

// sframe is one frame the server sent.
type sframe struct {
	b0      byte // FIN, RSV, opcode
	payload string
}

// readServerFrame reads one frame the server sent, which must be unmasked.
func readServerFrame(br *bufio.Reader) (sframe, error) {
	h, err := readHeader(br)
	if err != nil {
		return sframe{}, err
	}
	if h.masked {
		return sframe{}, errors.New("server frame is masked")
	}
	p := make([]byte, h.length)
	if _, err := io.ReadFull(br, p); err != nil {
		return sframe{}, err
	}
	b0 := byte(h.op) | h.rsv
	if h.fin {
		b0 |= fin
	}
	return sframe{b0, string(p)}, nil
}

// closeCode returns the code of a close frame's payload (1005 if empty).
func closeCode(p string) int {
	if len(p) < 2 {
		return CloseNoStatus
	}
	return int(binary.BigEndian.Uint16([]byte(p[:2])))
}

// echo serves c as an echo server until it ends, and returns how it ended.
func echo(c *Conn) error {
	buf := make([]byte, 0, 512)
	for {
		op, msg, err := c.ReadMessage(buf)
		if err != nil {
			return err
		}
		if err := c.WriteMessage(op, msg); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return err
		}
		buf = msg
	}
}

// exchange runs an echo server over net.Pipe, sends the chunks (each one
// write, so the server sees it as it is sent), and collects the server's
// frames up to and including its close frame, or to EOF. With partial, the
// client sends nothing more and keeps its side open: the server must act on
// what it has (fail fast). It returns the frames and the server's error.
func exchange(t *testing.T, opts Options, chunks [][]byte) ([]sframe, error) {
	t.Helper()
	cli, srv := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- echo(NewConn(srv, nil, opts)) }()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for _, c := range chunks {
			if _, err := cli.Write(c); err != nil {
				return
			}
		}
	}()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(cli)
	var got []sframe
	for len(got) < 10000 {
		f, err := readServerFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("client read: %v", err)
			}
			break
		}
		got = append(got, f)
		if Opcode(f.b0&0xf) == OpClose {
			break
		}
	}
	cli.Close()
	<-wrote
	var serr error
	select {
	case serr = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not end")
	}
	return got, serr
}

// describe prints frames for a failure message.
func describe(fs []sframe) string {
	var b strings.Builder
	for _, f := range fs {
		p := f.payload
		if len(p) > 40 {
			p = p[:40] + "..."
		}
		b.WriteString("\n  ")
		b.WriteString(Opcode(f.b0 & 0xf).String())
		if f.b0&fin == 0 {
			b.WriteString(" (no FIN)")
		}
		if Opcode(f.b0&0xf) == OpClose {
			b.WriteString(" " + strconv.Itoa(closeCode(f.payload)))
		} else {
			b.WriteString(" " + strconv.Itoa(len(f.payload)) + "B " + strings.ToValidUTF8(p, "?"))
		}
	}
	return b.String()
}

// chop splits b into pieces of n bytes.
func chop(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// cat joins frames into one chunk.
func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func itoa(n int) string { return strconv.Itoa(n) }
