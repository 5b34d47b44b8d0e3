package websocket

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The Autobahn testsuite's cases (crossbario/autobahn-testsuite,
// autobahn/case/case*.py) for sections 1 framing, 2 pings/pongs, 3 reserved
// bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling and 9 limits
// (in small sizes), as client byte sequences against an echo server; the
// permessage-deflate sections 12 and 13 are in deflate_test.go.

// abCase is one case: what the client sends, the frames the server must
// send back before its close frame, and that frame's code.
type abCase struct {
	id     string
	chunks [][]byte // each one write
	// partial marks a case whose client sends no more, nor closes:
	// the server must act on what it has (fail fast), else the client
	// times out waiting for its close frame.
	partial bool
	want    []sframe
	close   int
	opts    Options
}

// Client frames.
func txt(s string) []byte         { return cf(fin|byte(OpText), s) }
func bin(s string) []byte         { return cf(fin|byte(OpBinary), s) }
func ping(s string) []byte        { return cf(fin|byte(OpPing), s) }
func pong(s string) []byte        { return cf(fin|byte(OpPong), s) }
func normal() []byte              { return cclose(CloseNormal, "") }
func frames(f ...[]byte) [][]byte { return f }

// Expected server frames.
func wtxt(s string) sframe  { return sframe{fin | byte(OpText), s} }
func wbin(s string) sframe  { return sframe{fin | byte(OpBinary), s} }
func wpong(s string) sframe { return sframe{fin | byte(OpPong), s} }

func abCases() []abCase {
	var cs []abCase
	add := func(c abCase) { cs = append(cs, c) }

	// 1: framing, text and binary messages of the lengths around each
	// length encoding.
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		s := strings.Repeat("*", n)
		add(abCase{id: "1.1." + itoa(i+1), chunks: frames(txt(s), normal()), want: []sframe{wtxt(s)}, close: 1000})
		b := strings.Repeat("\xfe", n)
		add(abCase{id: "1.2." + itoa(i+1), chunks: frames(bin(b), normal()), want: []sframe{wbin(b)}, close: 1000})
	}
	big := strings.Repeat("*", 65536)
	add(abCase{id: "1.1.8", chunks: append(chop(txt(big), 997), normal()), want: []sframe{wtxt(big)}, close: 1000})
	bigb := strings.Repeat("\xfe", 65536)
	add(abCase{id: "1.2.8", chunks: append(chop(bin(bigb), 997), normal()), want: []sframe{wbin(bigb)}, close: 1000})

	// 2: pings and pongs.
	p125 := strings.Repeat("\xfe", 125)
	add(abCase{id: "2.1", chunks: frames(ping(""), normal()), want: []sframe{wpong("")}, close: 1000})
	add(abCase{id: "2.2", chunks: frames(ping("Hello, world!"), normal()), want: []sframe{wpong("Hello, world!")}, close: 1000})
	add(abCase{id: "2.3", chunks: frames(ping("\x00\xff\xfe\xfd\xfc\xfb\x00\xff"), normal()), want: []sframe{wpong("\x00\xff\xfe\xfd\xfc\xfb\x00\xff")}, close: 1000})
	add(abCase{id: "2.4", chunks: frames(ping(p125), normal()), want: []sframe{wpong(p125)}, close: 1000})
	add(abCase{id: "2.5", chunks: frames(ping(p125+"\xfe"), normal()), close: 1002})
	add(abCase{id: "2.6", chunks: append(chop(ping(p125), 1), normal()), want: []sframe{wpong(p125)}, close: 1000})
	add(abCase{id: "2.7", chunks: frames(pong(""), normal()), close: 1000})
	add(abCase{id: "2.8", chunks: frames(pong("unsolicited pong payload"), normal()), close: 1000})
	add(abCase{id: "2.9", chunks: frames(pong("unsolicited pong payload"), ping("ping payload"), normal()), want: []sframe{wpong("ping payload")}, close: 1000})
	var pings [][]byte
	var pongs []sframe
	for i := range 10 {
		pings = append(pings, ping("payload-"+itoa(i)))
		pongs = append(pongs, wpong("payload-"+itoa(i)))
	}
	add(abCase{id: "2.10", chunks: append(pings, normal()), want: pongs, close: 1000})
	add(abCase{id: "2.11", chunks: append(chop(cat(pings...), 1), normal()), want: pongs, close: 1000})

	// 3: reserved bits without an extension.
	add(abCase{id: "3.1", chunks: frames(cf(fin|rsv1|1, "Hello"), normal()), close: 1002})
	add(abCase{id: "3.2", chunks: frames(txt("Hello"), cf(fin|rsv2|1, "Hello"), ping("Hello")), want: []sframe{wtxt("Hello")}, close: 1002})
	add(abCase{id: "3.3", chunks: chop(cat(txt("Hello"), cf(fin|rsv2|rsv1|1, "Hello"), ping("Hello")), 1), want: []sframe{wtxt("Hello")}, close: 1002})
	add(abCase{id: "3.4", chunks: chop(cat(txt("Hello"), cf(fin|rsv3|1, "Hello"), ping("Hello")), 1), want: []sframe{wtxt("Hello")}, close: 1002})
	add(abCase{id: "3.5", chunks: frames(cf(fin|rsv1|rsv3|2, "\x00\xff\xfe\xfd\xfc\xfb\x00\xff")), close: 1002})
	add(abCase{id: "3.6", chunks: frames(cf(fin|rsv1|rsv2|byte(OpPing), "Hello")), close: 1002})
	add(abCase{id: "3.7", chunks: frames(cframe(fin|rsv1|rsv2|rsv3|byte(OpClose), closePayload(nil, 1000, ""))), close: 1002})

	// 4: reserved opcodes.
	for i, op := range []byte{3, 4, 5, 6, 7} {
		id := "4.1." + itoa(i+1)
		if i < 2 {
			add(abCase{id: id, chunks: frames(cf(fin|op, strings.Repeat("*", i*125))), close: 1002})
		} else {
			add(abCase{id: id, chunks: frames(txt("Hello"), cf(fin|op, strings.Repeat("*", (i-2)*125)), ping("")), want: []sframe{wtxt("Hello")}, close: 1002})
		}
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		id := "4.2." + itoa(i+1)
		if i < 2 {
			add(abCase{id: id, chunks: frames(cf(fin|op, strings.Repeat("*", i*125))), close: 1002})
		} else {
			add(abCase{id: id, chunks: frames(txt("Hello"), cf(fin|op, strings.Repeat("*", (i-2)*60)), ping("")), want: []sframe{wtxt("Hello")}, close: 1002})
		}
	}

	// 5: fragmentation.
	add(abCase{id: "5.1", chunks: frames(cf(byte(OpPing), "fragment1"), cf(fin, "fragment2")), close: 1002})
	add(abCase{id: "5.2", chunks: frames(cf(byte(OpPong), "fragment1"), cf(fin, "fragment2")), close: 1002})
	frag := cat(cf(1, "fragment1"), cf(fin, "fragment2"))
	add(abCase{id: "5.3", chunks: frames(frag, normal()), want: []sframe{wtxt("fragment1fragment2")}, close: 1000})
	add(abCase{id: "5.4", chunks: frames(cf(1, "fragment1"), cf(fin, "fragment2"), normal()), want: []sframe{wtxt("fragment1fragment2")}, close: 1000})
	add(abCase{id: "5.5", chunks: append(chop(frag, 1), normal()), want: []sframe{wtxt("fragment1fragment2")}, close: 1000})
	pfrag := cat(cf(1, "fragment1"), ping("ping payload"), cf(fin, "fragment2"))
	pwant := []sframe{wpong("ping payload"), wtxt("fragment1fragment2")}
	add(abCase{id: "5.6", chunks: frames(pfrag, normal()), want: pwant, close: 1000})
	add(abCase{id: "5.7", chunks: frames(cf(1, "fragment1"), ping("ping payload"), cf(fin, "fragment2"), normal()), want: pwant, close: 1000})
	add(abCase{id: "5.8", chunks: append(chop(pfrag, 1), normal()), want: pwant, close: 1000})
	bad := cat(cf(fin, "non-continuation payload"), txt("Hello, world!"))
	add(abCase{id: "5.9", chunks: frames(bad), close: 1002})
	add(abCase{id: "5.10", chunks: frames(cf(fin, "non-continuation payload"), txt("Hello, world!")), close: 1002})
	add(abCase{id: "5.11", chunks: chop(bad, 1), close: 1002})
	bad = cat(cf(0, "non-continuation payload"), txt("Hello, world!"))
	add(abCase{id: "5.12", chunks: frames(bad), close: 1002})
	add(abCase{id: "5.13", chunks: frames(cf(0, "non-continuation payload"), txt("Hello, world!")), close: 1002})
	add(abCase{id: "5.14", chunks: chop(bad, 1), close: 1002})
	add(abCase{id: "5.15", chunks: frames(cf(1, "fragment1"), cf(fin, "fragment2"), cf(0, "fragment3"), cf(fin|1, "fragment4")), want: []sframe{wtxt("fragment1fragment2")}, close: 1002})
	add(abCase{id: "5.16", chunks: frames(cf(0, "fragment1"), cf(fin|1, "fragment2"), cf(fin, "fragment3")), close: 1002})
	add(abCase{id: "5.17", chunks: frames(cf(fin, "fragment1"), cf(fin|1, "fragment2"), cf(fin, "fragment3")), close: 1002})
	add(abCase{id: "5.18", chunks: frames(cf(1, "fragment1"), cf(fin|1, "fragment2")), close: 1002})
	many := frames(cf(1, "fragment1"), cf(0, "fragment2"), ping("pongme 1!"), cf(0, "fragment3"), cf(0, "fragment4"), ping("pongme 2!"), cf(fin, "fragment5"), normal())
	mwant := []sframe{wpong("pongme 1!"), wpong("pongme 2!"), wtxt("fragment1fragment2fragment3fragment4fragment5")}
	add(abCase{id: "5.19", chunks: many, want: mwant, close: 1000})
	add(abCase{id: "5.20", chunks: append(chop(cat(many[:len(many)-1]...), 3), normal()), want: mwant, close: 1000})

	// 6: UTF-8.
	add(abCase{id: "6.1.1", chunks: frames(txt(""), normal()), want: []sframe{wtxt("")}, close: 1000})
	add(abCase{id: "6.1.2", chunks: frames(cf(1, ""), cf(0, ""), cf(fin, ""), normal()), want: []sframe{wtxt("")}, close: 1000})
	add(abCase{id: "6.1.3", chunks: frames(cf(1, ""), cf(0, "middle"), cf(fin, ""), normal()), want: []sframe{wtxt("middle")}, close: 1000})
	hello := "Hello-µ@ßöäüàá-UTF-8!!"
	add(abCase{id: "6.2.1", chunks: frames(txt(hello), normal()), want: []sframe{wtxt(hello)}, close: 1000})
	add(abCase{id: "6.2.2", chunks: frames(cf(1, "Hello-µ@ßö"), cf(fin, "äüàá-UTF-8!!"), normal()), want: []sframe{wtxt(hello)}, close: 1000})
	add(abCase{id: "6.2.3", chunks: append(byteFrames(hello), normal()), want: []sframe{wtxt(hello)}, close: 1000})
	kosme := "κόσμε"
	add(abCase{id: "6.2.4", chunks: append(byteFrames(kosme), normal()), want: []sframe{wtxt(kosme)}, close: 1000})
	edited := kosme + "\xed\xa0\x80edited"
	add(abCase{id: "6.3.1", chunks: frames(txt(edited), normal()), close: 1007})
	add(abCase{id: "6.3.2", chunks: append(byteFrames(edited), normal()), close: 1007})
	// Fail fast: the rest of the message never comes.
	add(abCase{id: "6.4.1", partial: true, chunks: frames(cf(1, kosme), cf(0, "\xf4\x90\x80\x80")), close: 1007})
	add(abCase{id: "6.4.2", partial: true, chunks: frames(cf(1, kosme+"\xf4"), cf(0, "\x90")), close: 1007})
	whole := txt(kosme + "\xf4\x90\x80\x80" + "edited")
	cut := len(whole) - len("edited")
	add(abCase{id: "6.4.3", partial: true, chunks: frames(whole[:cut-4], whole[cut-4:cut]), close: 1007})
	add(abCase{id: "6.4.4", partial: true, chunks: frames(whole[:cut-3], whole[cut-3:cut-2]), close: 1007})
	for i, s := range validUTF8 {
		add(abCase{id: "6.5-6.23 valid " + itoa(i), chunks: frames(txt(s), normal()), want: []sframe{wtxt(s)}, close: 1000})
		add(abCase{id: "6.5-6.23 valid fragmented " + itoa(i), chunks: append(byteFrames(s), normal()), want: []sframe{wtxt(s)}, close: 1000})
	}
	for i, s := range invalidUTF8 {
		add(abCase{id: "6.5-6.23 invalid " + itoa(i), chunks: frames(txt(s), normal()), close: 1007})
		add(abCase{id: "6.5-6.23 invalid fragmented " + itoa(i), chunks: append(byteFrames(s), normal()), close: 1007})
	}

	// 7: close handling.
	add(abCase{id: "7.1.1", chunks: frames(txt("Hello World!"), normal()), want: []sframe{wtxt("Hello World!")}, close: 1000})
	add(abCase{id: "7.1.2", chunks: frames(normal(), normal()), close: 1000})
	add(abCase{id: "7.1.3", chunks: frames(normal(), ping("")), close: 1000})
	add(abCase{id: "7.1.4", chunks: frames(normal(), txt("Hello World!")), close: 1000})
	add(abCase{id: "7.1.5", chunks: frames(cf(1, "fragment1"), normal(), cf(fin, "fragment2")), close: 1000})
	big7 := strings.Repeat("BAsd7&jh23", 26214)
	add(abCase{id: "7.1.6", chunks: frames(txt(big7), ping("ping"), normal()), want: []sframe{wtxt(big7), wpong("ping")}, close: 1000})
	add(abCase{id: "7.3.1", chunks: frames(cf(fin|byte(OpClose), "")), close: CloseNoStatus})
	add(abCase{id: "7.3.2", chunks: frames(cf(fin|byte(OpClose), "a")), close: 1002})
	add(abCase{id: "7.3.3", chunks: frames(cclose(1000, "")), close: 1000})
	add(abCase{id: "7.3.4", chunks: frames(cclose(1000, "Hello World!")), close: 1000})
	add(abCase{id: "7.3.5", chunks: frames(cclose(1000, strings.Repeat("*", 123))), close: 1000})
	add(abCase{id: "7.3.6", chunks: frames(cf(fin|byte(OpClose), "\x03\xe8"+strings.Repeat("*", 124))), close: 1002})
	add(abCase{id: "7.5.1", chunks: frames(cf(fin|byte(OpClose), "\x03\xe8"+"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")), close: 1007})
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		add(abCase{id: "7.7 code " + itoa(code), chunks: frames(cclose(code, "")), close: code})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add(abCase{id: "7.9/7.13 code " + itoa(code), chunks: frames(cframe(fin|byte(OpClose), []byte{byte(code >> 8), byte(code)})), close: 1002})
	}

	// 9 (small): large messages, whole and fragmented, and the limit.
	for _, n := range []int{64 << 10, 256 << 10, 1 << 20} {
		s := strings.Repeat("\xfe", n)
		add(abCase{id: "9.2 binary " + itoa(n), chunks: frames(bin(s), normal()), want: []sframe{wbin(s)}, close: 1000})
		t := strings.Repeat("*", n)
		add(abCase{id: "9.1 text " + itoa(n), chunks: frames(txt(t), normal()), want: []sframe{wtxt(t)}, close: 1000})
	}
	mb := strings.Repeat("x", 1<<20)
	var fragsOf64K [][]byte
	for i := 0; i < len(mb); i += 64 << 10 {
		b0 := byte(0)
		if i == 0 {
			b0 = 2
		}
		if i+64<<10 >= len(mb) {
			b0 |= fin
		}
		fragsOf64K = append(fragsOf64K, cf(b0, mb[i:i+64<<10]))
	}
	add(abCase{id: "9.4 fragmented 1 MiB", chunks: append(fragsOf64K, normal()), want: []sframe{wbin(mb)}, close: 1000})
	limit := Options{MaxMessageSize: 1 << 20}
	add(abCase{id: "limit exact", opts: limit, chunks: frames(bin(mb), normal()), want: []sframe{wbin(mb)}, close: 1000})
	// Over the limit: the header alone fails the connection (no payload is sent).
	over := bin(mb + "x")
	add(abCase{id: "limit one frame", opts: limit, partial: true, chunks: frames(over[:14]), close: 1009})
	fourth := cf(fin, strings.Repeat("x", 300<<10))
	add(abCase{id: "limit fragments", opts: limit, partial: true,
		chunks: frames(cf(2, strings.Repeat("x", 300<<10)), cf(0, strings.Repeat("x", 300<<10)), cf(0, strings.Repeat("x", 300<<10)), fourth[:14]), close: 1009})
	add(abCase{id: "limit text", opts: Options{MaxMessageSize: 10}, chunks: frames(txt("0123456789"), txt("0123456789a")), want: []sframe{wtxt("0123456789")}, close: 1009})

	// Further framing rules of RFC 6455 5.
	add(abCase{id: "unmasked", chunks: frames([]byte{fin | 1, 2, 'h', 'i'}), close: 1002})
	add(abCase{id: "64-bit length with the high bit", partial: true, chunks: frames([]byte{fin | 2, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}), close: 1002})
	nonMinimal := []byte{fin | 1, 0x80 | 126, 0, 2, 0, 0, 0, 0, 'h', 'i'}
	add(abCase{id: "non-minimal length", chunks: frames(nonMinimal, normal()), want: []sframe{wtxt("hi")}, close: 1000})
	nonMinimal64 := []byte{fin | 1, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 'h', 'i'}
	add(abCase{id: "non-minimal 64-bit length", chunks: frames(nonMinimal64, normal()), want: []sframe{wtxt("hi")}, close: 1000})
	return cs
}

// byteFrames sends s as a text message of one-byte fragments.
func byteFrames(s string) [][]byte {
	var out [][]byte
	for i := range len(s) {
		b0 := byte(0)
		if i == 0 {
			b0 = 1
		}
		if i == len(s)-1 {
			b0 |= fin
		}
		out = append(out, cf(b0, s[i:i+1]))
	}
	if len(s) == 0 {
		out = append(out, txt(""))
	}
	return out
}

// validUTF8 and invalidUTF8 are the sequences of Autobahn 6.5 to 6.23
// (after Markus Kuhn's UTF-8 decoder stress test).
var validUTF8 = []string{
	"κόσμε",
	"\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80", // first of each length
	"\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", // last of each length
	"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", // around the surrogates
	"\xef\xbf\xbe", "\xf0\x9f\xbf\xbe", "\xf4\x8f\xbf\xbe", // noncharacters are valid
	"\xef\xb7\x90\xef\xb7\xaf", // U+FDD0..U+FDEF
}

var invalidUTF8 = []string{
	"\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", // above U+10FFFF
	"\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", // 5 and 6 bytes
	"\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80\xbf", // lone continuations
	"\xc0\x20", "\xe0\x20", "\xf0\x20", "\xf8\x20", "\xfc\x20", // lonely starts
	"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xdf", "\xef\xbf", "\xf7\xbf\xbf", // cut at the end
	"κόσμε\xce", // a valid start, cut
	"\xfe", "\xff", "\xfe\xfe\xff\xff",
	"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", // overlong '/'
	"\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", // largest overlongs
	"\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", // overlong NUL
	"\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf", // surrogates
	"\xed\xa0\x80\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf", // surrogate pairs
}

func TestAutobahn(t *testing.T) {
	for _, c := range abCases() {
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			got, serr := exchange(t, c.opts, c.chunks)
			if len(got) == 0 || Opcode(got[len(got)-1].b0&0xf) != OpClose {
				t.Fatalf("no close frame; got:%s", describe(got))
			}
			closeFrame := got[len(got)-1]
			got = got[:len(got)-1]
			if !sameFrames(got, c.want) {
				t.Errorf("frames:%s\nwant:%s", describe(got), describe(c.want))
			}
			if code := closeCode(closeFrame.payload); code != c.close {
				t.Errorf("close code %d, want %d (%q)", code, c.close, closeFrame.payload)
			}
			var ce *CloseError
			if !errors.As(serr, &ce) {
				t.Fatalf("server ended with %v, want a *CloseError", serr)
			}
			if ce.Code != c.close {
				t.Errorf("server's CloseError %v, want code %d", ce, c.close)
			}
		})
	}
}

func sameFrames(a, b []sframe) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].b0 != b[i].b0 || !bytes.Equal([]byte(a[i].payload), []byte(b[i].payload)) {
			return false
		}
	}
	return true
}
