package websocket

import "encoding/binary"

// utf8Checker validates UTF-8 incrementally, across fragments of a message,
// so that a text message is refused at the first frame that cannot begin a
// valid sequence (RFC 6455 8.1, "fail fast") rather than at its end. The zero
// value is ready at the start of a message.
type utf8Checker struct {
	need   int  // continuation bytes still expected by the current sequence
	lo, hi byte // the range of the next continuation byte
}

// feed checks p, the next bytes of the message, and reports whether they can
// still be part of valid UTF-8.
func (u *utf8Checker) feed(p []byte) bool {
	i := 0
	for i < len(p) {
		if u.need == 0 {
			// ASCII, eight bytes at a time.
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
				i += 8
			}
			if i == len(p) {
				break
			}
			c := p[i]
			i++
			switch {
			case c < 0x80:
			case c >= 0xc2 && c <= 0xdf:
				u.need, u.lo, u.hi = 1, 0x80, 0xbf
			case c == 0xe0:
				u.need, u.lo, u.hi = 2, 0xa0, 0xbf // no overlong forms
			case c == 0xed:
				u.need, u.lo, u.hi = 2, 0x80, 0x9f // no surrogates
			case c >= 0xe1 && c <= 0xef:
				u.need, u.lo, u.hi = 2, 0x80, 0xbf
			case c == 0xf0:
				u.need, u.lo, u.hi = 3, 0x90, 0xbf // no overlong forms
			case c >= 0xf1 && c <= 0xf3:
				u.need, u.lo, u.hi = 3, 0x80, 0xbf
			case c == 0xf4:
				u.need, u.lo, u.hi = 3, 0x80, 0x8f // nothing above U+10FFFF
			default:
				return false
			}
			continue
		}
		c := p[i]
		if c < u.lo || c > u.hi {
			return false
		}
		i++
		u.need--
		u.lo, u.hi = 0x80, 0xbf
	}
	return true
}

// complete reports whether the bytes fed so far end on a character boundary.
func (u *utf8Checker) complete() bool { return u.need == 0 }
