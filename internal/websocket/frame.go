package websocket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Opcode is a frame's opcode (RFC 6455 section 5.2).
type Opcode byte

// The opcodes RFC 6455 defines; the others are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// String names the opcode ("text", "binary", ...; "opcode 0x3" for a reserved one).
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode 0x" + string("0123456789abcdef"[op&0xf])
}

// control reports whether op is a control opcode (close, ping, pong and the
// reserved 0xB-0xF).
func (op Opcode) control() bool { return op&0x8 != 0 }

// The header's first byte: FIN and the three RSV bits.
const (
	bitFin  = 0x80
	bitRsv1 = 0x40
	bitRsv2 = 0x20
	bitRsv3 = 0x10
	bitMask = 0x80 // in the second byte
)

// maxHeaderLen is the longest frame header: 2 bytes, an 8-byte length and a
// 4-byte masking key.
const maxHeaderLen = 14

// maxControlPayload is the largest payload of a control frame (RFC 6455 5.5).
const maxControlPayload = 125

// header is one parsed frame header.
type header struct {
	fin    bool
	rsv    byte // the RSV bits as they sit in the first byte (0x70 at most)
	op     Opcode
	masked bool
	key    [4]byte
	length int64
}

// errHeaderLength is a 64-bit payload length with its most significant bit set.
var errHeaderLength = errors.New("payload length with the most significant bit set")

// readHeader reads one frame header from br, peeking and discarding so that
// it never allocates. It returns io.EOF only when br ends before the first
// byte of a header; a header cut short is io.ErrUnexpectedEOF.
func readHeader(br *bufio.Reader) (header, error) {
	var h header
	b, err := br.Peek(2)
	if err != nil {
		if len(b) == 1 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&bitMask != 0 {
		n += 4
	}
	if n > 2 {
		if b, err = br.Peek(n); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
	}
	h.fin = b[0]&bitFin != 0
	h.rsv = b[0] & (bitRsv1 | bitRsv2 | bitRsv3)
	h.op = Opcode(b[0] & 0x0f)
	h.masked = b[1]&bitMask != 0
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
		i = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, errHeaderLength
		}
		h.length = int64(u)
		i = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		copy(h.key[:], b[i:i+4])
	}
	_, err = br.Discard(n)
	return h, err
}

// appendHeader appends an unmasked (server) frame header to b.
func appendHeader(b []byte, fin bool, rsv byte, op Opcode, n int) []byte {
	b0 := rsv | byte(op)
	if fin {
		b0 |= bitFin
	}
	switch {
	case n <= 125:
		return append(b, b0, byte(n))
	case n <= 0xffff:
		return append(b, b0, 126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// mask XORs b with the masking key, b being the payload's bytes from offset
// pos on; it returns the offset after b. Masking and unmasking are the same.
func mask(key [4]byte, pos int, b []byte) int {
	k := key
	if s := pos & 3; s != 0 {
		k = [4]byte{key[s&3], key[(s+1)&3], key[(s+2)&3], key[(s+3)&3]}
	}
	pos += len(b)
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32)<<32 | uint64(k32)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= k[i&3]
	}
	return pos
}
