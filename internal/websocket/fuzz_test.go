package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// FuzzReadFrame reads one frame header from arbitrary bytes: no panic, and a
// header read is one that appendHeader-style encoding can describe.
func FuzzReadFrame(f *testing.F) {
	f.Add(txt("hello"))
	f.Add(cframe(fin|2, make([]byte, 200)))
	f.Add(cframe(fin|2, make([]byte, 70000)))
	f.Add([]byte{fin | 2, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), 16)
		h, err := readHeader(br)
		if err != nil {
			return
		}
		if h.length < 0 || h.rsv&^0x70 != 0 || h.op > 0xf {
			t.Fatalf("header %+v", h)
		}
	})
}

// fuzzLimit is the message size limit of FuzzConn.
const fuzzLimit = 4096

// FuzzConn runs a Conn over arbitrary client bytes (the first byte picks
// permessage-deflate and its context takeover): it must never panic, never
// return a message over the limit or text that is not UTF-8, and never grow
// its buffer far past the limit, whatever the lengths claim.
func FuzzConn(f *testing.F) {
	cli := &testDeflater{}
	f.Add(append([]byte{0}, cat(txt("hello"), cf(1, "frag"), ping("p"), cf(fin, "ment"), normal())...))
	f.Add(append([]byte{1}, cat(cframe(fin|rsv1|1, cli.compress([]byte("compressed hello"))), cframe(fin|rsv1|1, cli.compress([]byte("compressed hello"))))...))
	f.Add(append([]byte{3}, cframe(fin|rsv1|2, (&testDeflater{}).compress(make([]byte, 1<<20)))...))
	f.Add(append([]byte{0}, cat(cf(1, "κό"), cf(fin, "σμε\xed\xa0\x80"))...))
	f.Add(append([]byte{0}, cframe(fin|2, make([]byte, fuzzLimit+1))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		opts := Options{MaxMessageSize: fuzzLimit}
		if b[0]&1 != 0 {
			opts.Deflate = &Deflate{ServerNoContextTakeover: b[0]&2 != 0, ClientNoContextTakeover: b[0]&4 != 0}
		}
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(b[1:]), io.Discard}
		c := NewConn(rw, nil, opts)
		var buf []byte
		for range 1000 {
			op, msg, err := c.ReadMessage(buf)
			if err != nil {
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *CloseError", err)
				}
				return
			}
			if len(msg) > fuzzLimit {
				t.Fatalf("message of %d bytes over the limit", len(msg))
			}
			if cap(msg) > 4*fuzzLimit+8192 {
				t.Fatalf("buffer grew to %d bytes", cap(msg))
			}
			if op == OpText && !utf8.Valid(msg) {
				t.Fatalf("text message is not UTF-8: %q", msg)
			}
			if op != OpText && op != OpBinary {
				t.Fatalf("opcode %v", op)
			}
			c.WriteMessage(op, msg)
			buf = msg
		}
	})
}

// FuzzUTF8 checks the incremental checker against utf8.Valid, fed in two
// pieces split anywhere.
func FuzzUTF8(f *testing.F) {
	for _, s := range append(append([]string{"", "hello", "κόσμε"}, validUTF8...), invalidUTF8...) {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		i := int(cut) % (len(b) + 1)
		var u utf8Checker
		ok := u.feed(b[:i]) && u.feed(b[i:]) && u.complete()
		if ok != utf8.Valid(b) {
			t.Fatalf("%q split at %d: checker says %v, utf8.Valid %v", b, i, ok, !ok)
		}
		// A prefix the checker refuses has no valid completion, so
		// refusing it is failing fast, not failing early.
		var p utf8Checker
		if !p.feed(b[:i]) && utf8.Valid(b[:i]) {
			t.Fatalf("%q: valid prefix refused", b[:i])
		}
	})
}

// FuzzParseExtensions parses arbitrary Sec-WebSocket-Extensions values:
// no panic, and what parses has token names and values.
func FuzzParseExtensions(f *testing.F) {
	f.Add(`permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits="10"`)
	f.Add("x-foo; a=b; c, , y")
	f.Add(`a; b="\"`)
	f.Fuzz(func(t *testing.T, v string) {
		ext, ok := parseExtensions(nil, v)
		if !ok {
			return
		}
		for _, e := range ext {
			if !isToken(e.Name) {
				t.Fatalf("name %q", e.Name)
			}
			for _, p := range e.Params {
				if !isToken(p.Name) || p.HasValue && !isToken(p.Value) {
					t.Fatalf("param %+v", p)
				}
			}
		}
		NegotiateDeflate(ext, DeflateSettings{})
	})
}
