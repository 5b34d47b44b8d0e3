package websocket

import (
	"compress/flate"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// DeflateSettings is the server's policy for permessage-deflate (RFC 7692).
// The zero value accepts an offer with context takeover both ways at
// flate.BestSpeed.
type DeflateSettings struct {
	// ServerNoContextTakeover makes the server compress each message on
	// its own (no 32 KiB window kept between messages), even when the
	// client did not ask for it: less memory per connection, worse ratio.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover asks the client to compress each message on
	// its own, so the server keeps no decompression window either.
	ClientNoContextTakeover bool
	// Level is the compress/flate level of the messages the server sends;
	// 0 means flate.BestSpeed.
	Level int
}

// Deflate is the permessage-deflate agreement of one connection, as
// NegotiateDeflate makes it. A nil *Deflate means no compression.
type Deflate struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is 15 when the client asked for it (the only
	// value the server can honour, compress/flate's window being fixed),
	// else 0 (not sent).
	ServerMaxWindowBits int
	// Level is the compress/flate level of the messages the server
	// sends, as compress/flate numbers them (0 is no compression);
	// NegotiateDeflate sets it from DeflateSettings.Level.
	Level int
}

// extensionName is the token of RFC 7692.
const extensionName = "permessage-deflate"

// NegotiateDeflate picks the first of the client's permessage-deflate offers
// the server can honour (RFC 7692 section 7.1), or returns nil if none. An
// offer is declined when its parameters are unknown, repeated or malformed,
// or when it asks for server_max_window_bits below 15: compress/flate always
// uses a 32 KiB window, so the server could not keep the promise. Any
// client_max_window_bits is fine: the decompressor keeps a 32 KiB window,
// enough for every window the client may use, so the response leaves it out.
func NegotiateDeflate(offers []Extension, s DeflateSettings) *Deflate {
	level := s.Level
	if level == 0 {
		level = flate.BestSpeed
	}
	for _, o := range offers {
		if !strings.EqualFold(o.Name, extensionName) {
			continue
		}
		if d, ok := acceptOffer(o, s, level); ok {
			return d
		}
	}
	return nil
}

// acceptOffer returns the agreement for one offer, or false to decline it.
func acceptOffer(o Extension, s DeflateSettings, level int) (*Deflate, bool) {
	d := &Deflate{
		ServerNoContextTakeover: s.ServerNoContextTakeover,
		ClientNoContextTakeover: s.ClientNoContextTakeover,
		Level:                   level,
	}
	var seen [4]bool
	for _, p := range o.Params {
		var i int
		switch strings.ToLower(p.Name) {
		case "server_no_context_takeover":
			if p.HasValue {
				return nil, false
			}
			d.ServerNoContextTakeover = true
			i = 0
		case "client_no_context_takeover":
			if p.HasValue {
				return nil, false
			}
			// A hint the client keeps no context: then the server
			// need not keep a window either.
			d.ClientNoContextTakeover = true
			i = 1
		case "server_max_window_bits":
			bits, ok := windowBits(p.Value)
			if !p.HasValue || !ok || bits != 15 {
				return nil, false
			}
			d.ServerMaxWindowBits = bits
			i = 2
		case "client_max_window_bits":
			if p.HasValue {
				if _, ok := windowBits(p.Value); !ok {
					return nil, false
				}
			}
			i = 3
		default:
			return nil, false
		}
		if seen[i] {
			return nil, false
		}
		seen[i] = true
	}
	return d, true
}

// windowBits parses an LZ77 window size of 8 to 15 bits, as 1*DIGIT without
// a leading zero (RFC 7692 7.1.2).
func windowBits(v string) (int, bool) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// String returns the Sec-WebSocket-Extensions value of the response that
// accepts the agreement.
func (d *Deflate) String() string {
	s := extensionName
	if d.ServerNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	if d.ClientNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if d.ServerMaxWindowBits != 0 {
		s += "; server_max_window_bits=" + strconv.Itoa(d.ServerMaxWindowBits)
	}
	return s
}

// deflateTail ends every compressed message: the empty stored block a sync
// flush writes, which the sender strips (RFC 7692 7.2.1).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// windowSize is the LZ77 window of compress/flate, and the most a peer's
// window may be.
const windowSize = 1 << 15

// FlatePool shares compressors among the connections that compress each
// message on its own (server_no_context_takeover), so that such a
// connection holds none between messages: a compress/flate writer is about
// 1.2 MB. One pool serves a whole server; the zero value is ready to use.
type FlatePool struct {
	pools [flate.BestCompression - flate.HuffmanOnly + 1]sync.Pool // by level
}

// get returns a compressor of the level, writing to w.
func (p *FlatePool) get(level int, w io.Writer) (*flate.Writer, error) {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		return flate.NewWriter(w, level) // the error of an invalid level
	}
	if fw, ok := p.pools[level-flate.HuffmanOnly].Get().(*flate.Writer); ok {
		fw.Reset(w)
		return fw, nil
	}
	return flate.NewWriter(w, level)
}

func (p *FlatePool) put(level int, fw *flate.Writer) { p.pools[level-flate.HuffmanOnly].Put(fw) }

// deflater compresses the messages a Conn sends.
type deflater struct {
	fw    *flate.Writer // the connection's own, for context takeover
	pool  *FlatePool    // else, if set, where each message borrows one
	out   sliceWriter
	level int
	fresh bool // reset the compressor before each message
}

// sliceWriter appends what it is written to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compress returns p compressed as one message's payload, tail stripped.
// The result is valid until the next call.
func (d *deflater) compress(p []byte) ([]byte, error) {
	d.out.b = d.out.b[:0]
	fw := d.fw
	switch {
	case d.fresh && d.pool != nil:
		var err error
		if fw, err = d.pool.get(d.level, &d.out); err != nil {
			return nil, err
		}
		defer d.pool.put(d.level, fw)
	case fw == nil:
		var err error
		if fw, err = flate.NewWriter(&d.out, d.level); err != nil {
			return nil, err
		}
		d.fw = fw
	case d.fresh:
		fw.Reset(&d.out)
	}
	if _, err := fw.Write(p); err != nil {
		return nil, err
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	b := d.out.b
	if len(b) < 4 || [4]byte(b[len(b)-4:]) != deflateTail {
		return nil, errors.New("deflate: flush did not end with an empty stored block")
	}
	return b[:len(b)-4], nil
}

// inflateTrailer follows a message's compressed bytes: the stripped tail,
// then an empty final stored block, so that the decompressor ends with
// io.EOF rather than waiting for more.
var inflateTrailer = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflater decompresses the messages a Conn receives, bounding their size
// as it goes.
type inflater struct {
	fr    io.ReadCloser // a flate.Resetter
	src   twoPart
	hist  []byte // the last windowSize bytes of output, for context takeover
	fresh bool   // the client resets its compressor for each message
}

// errTooBig is a message whose decompressed size passes the limit.
var errTooBig = errors.New("decompressed message too big")

// inflate appends to dst the decompression of comp, a message's payload,
// failing with errTooBig as soon as the output passes limit bytes: the
// output buffer grows only as output is produced, so a small message that
// inflates to gigabytes costs at most limit bytes.
func (f *inflater) inflate(dst, comp []byte, limit int64) ([]byte, error) {
	f.src = twoPart{a: comp, b: inflateTrailer}
	var dict []byte
	if !f.fresh {
		dict = f.hist
	}
	if f.fr == nil {
		f.fr = flate.NewReaderDict(&f.src, dict)
	} else if err := f.fr.(flate.Resetter).Reset(&f.src, dict); err != nil {
		return dst, err
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			produced := int64(len(dst) - start)
			if produced > limit {
				return dst, errTooBig
			}
			// Grow by what was produced (at least 512 bytes), and
			// by no more than one byte past the limit.
			grow := max(int64(len(dst)-start), 512)
			grow = min(grow, limit-produced+1)
			dst = slices.Grow(dst, int(grow))
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)-start) > limit {
			return dst, errTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, err
		}
	}
	if !f.fresh {
		out := dst[start:]
		if len(out) >= windowSize {
			f.hist = append(f.hist[:0], out[len(out)-windowSize:]...)
		} else {
			f.hist = append(f.hist, out...)
			if over := len(f.hist) - windowSize; over > 0 {
				f.hist = f.hist[:copy(f.hist, f.hist[over:])]
			}
		}
	}
	return dst, nil
}

// twoPart reads a, then b, as compress/flate wants: with ReadByte, so that
// it needs no bufio.Reader of its own.
type twoPart struct{ a, b []byte }

func (t *twoPart) Read(p []byte) (int, error) {
	if len(t.a) == 0 {
		t.a, t.b = t.b, nil
		if len(t.a) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, t.a)
	t.a = t.a[n:]
	return n, nil
}

func (t *twoPart) ReadByte() (byte, error) {
	if len(t.a) == 0 {
		t.a, t.b = t.b, nil
		if len(t.a) == 0 {
			return 0, io.EOF
		}
	}
	c := t.a[0]
	t.a = t.a[1:]
	return c, nil
}
