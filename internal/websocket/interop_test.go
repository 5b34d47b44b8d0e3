package websocket

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// serveEcho accepts connections on ln until it closes, handshakes each
// with the deflate settings s, and echoes; it returns when every connection
// has ended.
func serveEcho(ln net.Listener, s DeflateSettings) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(nc)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			fields := func(yield func(string, string) bool) {
				for name, vs := range req.Header {
					for _, v := range vs {
						if !yield(name, v) {
							return
						}
					}
				}
			}
			hs, err := CheckHandshake(req.Method, fields)
			if err != nil {
				return
			}
			d := NegotiateDeflate(hs.Extensions, s)
			f, err := ResponseHeaders(hs, "chat", d)
			if err != nil {
				return
			}
			nc.Write(AppendResponse(nil, f))
			echo(NewConn(nc, br, Options{Deflate: d}))
		})
	}
}

// An independent client, Python's wsproto (Debian's python3-wsproto, which
// scripts/deps.sh brings with python3-selenium), against the Conn: the
// handshake, messages whole and fragmented, compressed with and without
// context takeover, a ping and the close handshake.
func TestInteropWsproto(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import wsproto").Run() != nil {
		t.Skip("/usr/bin/python3 cannot import wsproto (apt-get install python3-wsproto)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveEcho(ln, DeflateSettings{})
	}()
	defer func() { ln.Close(); <-served }()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, mode := range []string{"plain", "deflate", "deflate-nocontext", "deflate-window9"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/wsproto_client.py", itoa(port), mode).CombinedOutput()
			if err != nil || string(out) != "ok\n" {
				t.Errorf("client: %v\n%s", err, out)
			}
		})
	}
}
