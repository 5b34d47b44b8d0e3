package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestNegotiateDeflate(t *testing.T) {
	cases := []struct {
		offer    string
		settings DeflateSettings
		want     string // "" declines
	}{
		{offer: "permessage-deflate", want: "permessage-deflate"},
		{offer: "permessage-deflate; client_max_window_bits", want: "permessage-deflate"},
		{offer: "permessage-deflate; client_max_window_bits=8", want: "permessage-deflate"},
		{offer: `permessage-deflate; client_max_window_bits="10"`, want: "permessage-deflate"},
		{offer: "permessage-deflate; server_no_context_takeover", want: "permessage-deflate; server_no_context_takeover"},
		{offer: "permessage-deflate; client_no_context_takeover", want: "permessage-deflate; client_no_context_takeover"},
		{offer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover", want: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{offer: "permessage-deflate; server_max_window_bits=15", want: "permessage-deflate; server_max_window_bits=15"},
		{offer: "PerMessage-Deflate; Server_No_Context_Takeover", want: "permessage-deflate; server_no_context_takeover"},
		// A window the server cannot honour: declined, and the next offer taken.
		{offer: "permessage-deflate; server_max_window_bits=10"},
		{offer: "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"},
		{offer: "permessage-deflate; server_max_window_bits=10, permessage-deflate", want: "permessage-deflate"},
		{offer: "x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover", want: "permessage-deflate; client_no_context_takeover"},
		// Invalid offers are declined.
		{offer: "permessage-deflate; server_max_window_bits"},
		{offer: "permessage-deflate; client_max_window_bits=16"},
		{offer: "permessage-deflate; client_max_window_bits=7"},
		{offer: "permessage-deflate; client_max_window_bits=08"},
		{offer: "permessage-deflate; server_no_context_takeover; server_no_context_takeover"},
		{offer: "permessage-deflate; server_no_context_takeover=1"},
		{offer: "permessage-deflate; foo"},
		{offer: "x-webkit-deflate-frame"},
		// The server's own policy.
		{offer: "permessage-deflate", settings: DeflateSettings{ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			want: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	}
	for _, c := range cases {
		ext, ok := parseExtensions(nil, c.offer)
		if !ok {
			t.Errorf("%q: does not parse", c.offer)
			continue
		}
		d := NegotiateDeflate(ext, c.settings)
		got := ""
		if d != nil {
			got = d.String()
		}
		if got != c.want {
			t.Errorf("%q: response %q, want %q", c.offer, got, c.want)
		}
	}
}

// testDeflater is the test client's compressor.
type testDeflater struct {
	fw    *flate.Writer
	buf   bytes.Buffer
	noCtx bool
}

// compress returns p compressed as a message payload, tail stripped.
func (d *testDeflater) compress(p []byte) []byte {
	d.buf.Reset()
	if d.fw == nil {
		d.fw, _ = flate.NewWriter(&d.buf, flate.DefaultCompression)
	} else if d.noCtx {
		d.fw.Reset(&d.buf)
	}
	d.fw.Write(p)
	d.fw.Flush()
	b := bytes.Clone(d.buf.Bytes())
	return bytes.TrimSuffix(b, deflateTail[:])
}

// corpus returns n bytes of text that compresses somewhat, like real traffic.
func corpus(r *rand.Rand, n int) string {
	words := []string{"wisp ", "asgi ", "frame ", "message ", "deflate ", "κόσμε ", "0123 ", "websocket ", "\n"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	s := strings.ToValidUTF8(b.String()[:n], "") // no character cut in two
	return s + strings.Repeat(".", n-len(s))
}

// Autobahn 12 and 13: messages of many sizes, compressed both ways, with
// each combination of context takeover, and with the offers of 13.x.
func TestDeflateEcho(t *testing.T) {
	offers := []string{
		"permessage-deflate",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; client_max_window_bits=9",
		"permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
		"permessage-deflate; server_max_window_bits=9", // declined: plain messages
	}
	pool := &FlatePool{} // shared by the parallel subtests, as by a server's connections
	sizes := []int{0, 16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}
	for _, offer := range offers {
		for _, text := range []bool{true, false} {
			name := offer
			if !text {
				name += " binary"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ext, _ := parseExtensions(nil, offer)
				d := NegotiateDeflate(ext, DeflateSettings{})
				r := rand.New(rand.NewPCG(1, 2))
				var chunks [][]byte
				var want []string
				cli := &testDeflater{}
				if d != nil {
					cli.noCtx = d.ClientNoContextTakeover
				}
				op := byte(OpText)
				if !text {
					op = byte(OpBinary)
				}
				for _, n := range sizes {
					for range 5 {
						m := corpus(r, n)
						want = append(want, m)
						if d == nil {
							chunks = append(chunks, cf(fin|op, m))
						} else {
							chunks = append(chunks, cframe(fin|rsv1|op, cli.compress([]byte(m))))
						}
					}
				}
				chunks = append(chunks, normal())
				got, _ := exchange(t, Options{Deflate: d, FlatePool: pool}, chunks)
				if len(got) != len(want)+1 {
					t.Fatalf("%d frames back, want %d:%s", len(got), len(want)+1, describe(got))
				}
				inf := &inflater{}
				if d != nil {
					inf.fresh = d.ServerNoContextTakeover
				}
				for i, w := range want {
					f := got[i]
					if f.b0&0xf != op || f.b0&fin == 0 {
						t.Fatalf("message %d: frame %#x", i, f.b0)
					}
					p := []byte(f.payload)
					if d != nil {
						if f.b0&rsv1 == 0 {
							t.Fatalf("message %d: not compressed", i)
						}
						var err error
						if p, err = inf.inflate(nil, p, 1<<20); err != nil {
							t.Fatalf("message %d: inflate: %v", i, err)
						}
					} else if f.b0&rsv1 != 0 {
						t.Fatalf("message %d: compressed without an agreement", i)
					}
					if string(p) != w {
						t.Fatalf("message %d (%d bytes): echo differs", i, len(w))
					}
				}
				if c := closeCode(got[len(got)-1].payload); c != 1000 {
					t.Errorf("close %d", c)
				}
			})
		}
	}
}

// Frame rules with permessage-deflate on.
func TestDeflateFrames(t *testing.T) {
	d := &Deflate{Level: flate.BestSpeed}
	cli := &testDeflater{noCtx: true}
	hello := cli.compress([]byte("Hello, compressed world"))
	bomb := cli.compress(make([]byte, 64<<20))
	cases := []abCase{
		{id: "fragmented compressed message", opts: Options{CompressMin: 1000}, chunks: frames(cframe(rsv1|1, hello[:5]), cframe(0, hello[5:10]), cframe(fin, hello[10:]), normal()),
			want: []sframe{wtxt("Hello, compressed world")}, close: 1000},
		{id: "uncompressed message with deflate on", opts: Options{CompressMin: 1000}, chunks: frames(txt("plain"), normal()),
			want: []sframe{wtxt("plain")}, close: 1000},
		{id: "RSV1 on a continuation", chunks: frames(cframe(rsv1|1, hello[:5]), cframe(fin|rsv1, hello[5:])), close: 1002},
		{id: "RSV1 on a ping", chunks: frames(cf(fin|rsv1|byte(OpPing), "x")), close: 1002},
		{id: "RSV2 with deflate", chunks: frames(cframe(fin|rsv2|1, hello)), close: 1002},
		{id: "corrupt data", chunks: frames(cframe(fin|rsv1|2, []byte{0xff, 0xff, 0xff, 0xff})), close: 1007},
		{id: "compressed invalid UTF-8", chunks: frames(cframe(fin|rsv1|1, cli.compress([]byte("κόσμε\xed\xa0\x80")))), close: 1007},
		{id: "compressed UTF-8 cut", chunks: frames(cframe(fin|rsv1|1, cli.compress([]byte("κόσμε\xce")))), close: 1007},
		{id: "compressed size over the limit", opts: Options{MaxMessageSize: 100}, chunks: frames(cframe(fin|rsv1|2, cli.compress(make([]byte, 101)))), close: 1009},
		{id: "compressed size at the limit", opts: Options{MaxMessageSize: 100, CompressMin: 1000}, chunks: frames(cframe(fin|rsv1|2, cli.compress(make([]byte, 100))), normal()),
			want: []sframe{wbin(string(make([]byte, 100)))}, close: 1000},
		{id: "zip bomb", opts: Options{MaxMessageSize: 1 << 20}, chunks: frames(cframe(fin|rsv1|2, bomb)), close: 1009},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			c.opts.Deflate = d
			got, _ := exchange(t, c.opts, c.chunks)
			if len(got) == 0 || closeCode(got[len(got)-1].payload) != c.close || !sameFrames(got[:len(got)-1], c.want) {
				t.Errorf("got:%s\nwant:%s\n  close %d", describe(got), describe(c.want), c.close)
			}
		})
	}
}

// A compressed message that inflates to 64 MiB costs about the limit, not
// 64 MiB: the output grows only as far as the limit.
func TestDeflateBombMemory(t *testing.T) {
	cli := &testDeflater{noCtx: true}
	bomb := cframe(fin|rsv1|2, cli.compress(make([]byte, 64<<20)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := exchange(t, Options{Deflate: &Deflate{}, MaxMessageSize: 1 << 20}, frames(bomb))
	runtime.ReadMemStats(&after)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseMessageTooBig || len(got) != 1 {
		t.Fatalf("server ended with %v; frames:%s", err, describe(got))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("allocated %d bytes for a 1 MiB limit", n)
	}
}
