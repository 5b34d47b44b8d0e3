package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// bodyEcho answers with the request body itself.
func bodyEcho(w *Response, r *Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.SetStatus(BodyError(err), "")
		msg := err.Error()
		w.SetContentLength(int64(len(msg)))
		w.Write([]byte(msg))
		return
	}
	w.SetContentLength(int64(len(b)))
	w.Write(b)
}

// encodeChunked encodes body in chunks whose sizes come from sizes, with
// variations chosen by the bits of flags.
func encodeChunked(body, sizes []byte, flags uint8) string {
	eol := "\r\n"
	if flags&16 != 0 {
		eol = "\n" // refused in chunked framing (CVE-2025-22871)
	}
	exts := []string{";a=b", " ;x", "; n = \"q v\"", ";e=" + strings.Repeat("y", 30), ";\t t"}
	var b strings.Builder
	for i := 0; len(body) > 0; i++ {
		n := len(body)
		if len(sizes) > 0 {
			n = min(1+int(sizes[i%len(sizes)])*(1+int(flags>>5)), len(body))
		}
		size := fmt.Sprintf("%x", n)
		if flags&4 != 0 {
			size = strings.ToUpper(size)
		}
		if flags&8 != 0 {
			size = "000" + size
		}
		b.WriteString(size)
		if flags&1 != 0 {
			b.WriteString(exts[i%len(exts)])
		}
		b.WriteString(eol)
		b.Write(body[:n])
		b.WriteString(eol)
		body = body[n:]
	}
	b.WriteString("0")
	if flags&1 != 0 {
		b.WriteString(";end")
	}
	b.WriteString(eol)
	if flags&2 != 0 {
		b.WriteString("X-Trailer: v" + eol + "Another-One:" + eol)
	}
	b.WriteString(eol)
	return b.String()
}

// FuzzChunkedBody sends a body in chunks cut at fuzzed places, followed by
// another request, and checks that the handler reads exactly the body and
// that the next request is intact.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("hello world"), []byte{2, 0, 5}, uint8(0))
	f.Add([]byte("hello world"), []byte{}, uint8(1|2))
	f.Add([]byte(""), []byte{1}, uint8(2))
	f.Add([]byte("\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), []byte{3, 1}, uint8(1|4|8))
	f.Add(bytes.Repeat([]byte("abcdefgh"), 3000), []byte{255, 17, 0, 200}, uint8(1|2|4|16|32))
	f.Add(bytes.Repeat([]byte{0, '\n', '\r', 0xff}, 100), []byte{0}, uint8(16|2|64))
	ts := startUnixServer(f, bodyEcho, func(s *Server) { s.ReadTimeout = 5 * time.Second })
	f.Fuzz(func(t *testing.T, body, sizes []byte, flags uint8) {
		if len(body) > 1<<18 {
			body = body[:1<<18]
		}
		req := "POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + encodeChunked(body, sizes, flags) +
			"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"
		nc, err := net.Dial(ts.network, ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			// in several writes, cut where the sizes say
			rest := req
			for i := 0; len(rest) > 0; i++ {
				n := len(rest)
				if len(sizes) > 0 && flags&64 != 0 {
					n = min(1+int(sizes[(i+1)%len(sizes)]), n)
				}
				if _, err := io.WriteString(nc, rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
		}()
		br := bufio.NewReader(nc)
		r, err := readResponse(br, "POST")
		if err != nil {
			t.Fatalf("response: %v", err)
		}
		if flags&16 != 0 {
			if r.status != 400 {
				t.Fatalf("bare LF chunk lines: status %d, want 400", r.status)
			}
			if b, err := io.ReadAll(br); len(b) > 0 || err != nil {
				t.Fatalf("after the 400: %q, %v", b, err)
			}
			return
		}
		if r.status != 200 || !bytes.Equal(r.body, body) {
			t.Fatalf("status %d, body of %d bytes, want the %d sent (%q)", r.status, len(r.body), len(body), r.body[:min(len(r.body), 100)])
		}
		r, err = readResponse(br, "GET")
		if err != nil || r.status != 200 || len(r.body) != 0 {
			t.Fatalf("the next request: %v %+v", err, r)
		}
	})
}

// rawHandler does what the path says, so that FuzzServeRaw reaches the
// response paths too.
func rawHandler(w *Response, r *Request) {
	w.AddHeader("X-Method", r.Method)
	w.AddHeader("X-Path", r.Path)
	r.Body.Limit(1 << 16)
	switch r.Path {
	case "/stream":
		w.Write([]byte("one"))
		w.Flush()
		w.Write([]byte("two"))
	case "/gone":
		io.Copy(io.Discard, r.Body)
		if g := r.Gone(); g != nil {
			select {
			case <-g:
			case <-time.After(2 * time.Millisecond):
			}
		}
		w.SetStatus(204, "")
	case "/deny":
		w.SetStatus(403, "")
	case "/short":
		w.SetContentLength(10)
		w.Write([]byte("abc"))
	case "/abort":
		w.SetContentLength(10)
		w.Write([]byte("abc"))
		w.Flush()
		w.Abort()
	case "/over":
		w.SetContentLength(2)
		w.Write([]byte("abcdef"))
	default:
		echo(w, r)
	}
}

// FuzzServeRaw sends arbitrary bytes as requests: the server must not panic,
// must close the connection once the client is done, and must only ever
// write well-framed responses.
func FuzzServeRaw(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /stream HTTP/1.0\r\n\r\n",
		"POST /gone HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"POST /deny HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /abort HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /over HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\n\r\nGET http://h/x?y HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\nabc",
		"GET / HTTP/2.0\r\n\r\n",
		"\x00\xff\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	ts := startUnixServer(f, rawHandler, func(s *Server) { s.MaxHeaderBytes = 8 << 10 })
	f.Fuzz(func(t *testing.T, in []byte) {
		ts.log.Reset()
		nc, err := net.Dial(ts.network, ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			nc.Write(in)
			if cw, ok := nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
		out, err := io.ReadAll(nc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server neither answered nor closed; it wrote %q", out)
		}
		if log := ts.log.String(); strings.Contains(log, "panic") {
			t.Fatalf("panic serving %q:\n%s", in, log)
		}
		// the output is a sequence of well-framed responses
		br := bufio.NewReader(bytes.NewReader(out))
		var last *response
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			if last != nil && last.closes() {
				rest, _ := io.ReadAll(br)
				t.Fatalf("bytes after a Connection: close response: %q", rest)
			}
			r, err := readResponse(br, "")
			if err != nil {
				if r != nil && (r.header("X-Path") == "/short" || r.header("X-Path") == "/abort") && errors.Is(err, io.ErrUnexpectedEOF) {
					break // the handler wrote less than it declared: the close says so
				}
				t.Fatalf("malformed response after %+v: %v\nresponse: %+v\nall output: %q", last, err, r, out)
			}
			if r.status == 100 {
				continue
			}
			if p := r.header("X-Path"); p == "/over" && len(r.body) != 2 {
				t.Fatalf("/over sent %q", r.body)
			}
			last = r
		}
	})
}
