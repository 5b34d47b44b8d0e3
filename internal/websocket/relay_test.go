package websocket

import (
	"bytes"
	"errors"
	"testing"
)

// A relay's close goes out between two of the server's frames, whatever
// the chunks the stream arrives in, and nothing of the server's follows it.
func TestServerStreamCloseAtBoundary(t *testing.T) {
	frame := func(n int) []byte {
		return append(appendHeader(nil, true, 0, OpBinary, n), bytes.Repeat([]byte{'x'}, n)...)
	}
	var stream []byte
	for _, n := range []int{3, 200, 70000, 0, 125} {
		stream = append(stream, frame(n)...)
	}
	closeFrame := append(appendHeader(nil, true, 0, OpClose, 2), 0x03, 0xf4) // 1012
	for _, chunk := range []int{1, 2, 7, 1000, len(stream)} {
		for cut := 0; cut < len(stream); cut += 997 {
			var out bytes.Buffer
			s := &ServerStream{W: &out}
			var err error
			for i := 0; i < len(stream) && err == nil; i += chunk {
				if i <= cut && cut < i+chunk {
					s.CloseAt(1012, "")
				}
				_, err = s.Write(stream[i:min(i+chunk, len(stream))])
			}
			got := out.Bytes()
			i := bytes.Index(got, closeFrame)
			if i < 0 || i+len(closeFrame) != len(got) {
				t.Fatalf("chunk %d, close at %d: the close frame is not last (at %d of %d)", chunk, cut, i, len(got))
			}
			// what precedes it is whole frames of the stream, as they came
			if !bytes.Equal(got[:i], stream[:i]) || !boundary(stream, i) {
				t.Fatalf("chunk %d, close at %d: %d bytes before the close are not whole frames", chunk, cut, i)
			}
			if _, err := s.Write([]byte{1}); !errors.Is(err, ErrRelayClosed) {
				t.Fatalf("a write after the close: %v", err)
			}
		}
	}
}

// boundary reports whether n bytes of stream end a frame.
func boundary(stream []byte, n int) bool {
	for i := 0; i < n; {
		h := stream[i:]
		hl := headerLen(h[:2])
		i += hl + int(payloadLen(h[:hl]))
		if i == n {
			return true
		}
	}
	return n == 0
}

// A close asked for while the relay's head is still going out waits for
// Begin, and goes before any frame.
func TestServerStreamCloseDuringHead(t *testing.T) {
	var out bytes.Buffer
	s := &ServerStream{W: &out, Head: true}
	s.CloseAt(1001, "")
	if out.Len() != 0 {
		t.Fatalf("a close went out before the head was through: %q", out.Bytes())
	}
	out.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n") // the head, as the relay writes it
	if err := s.Begin(); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 101 Switching Protocols\r\n\r\n" + string(append(appendHeader(nil, true, 0, OpClose, 2), 0x03, 0xe9))
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if _, err := s.Write([]byte{0x82, 0}); !errors.Is(err, ErrRelayClosed) {
		t.Fatalf("a frame after the close: %v", err)
	}
}
