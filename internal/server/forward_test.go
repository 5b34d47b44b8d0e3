package server

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakePool is a pool's unix socket whose n-th connection (from 0) is handled
// by conns[n] (the last one for any after).
type fakePool struct {
	socket string
	ln     net.Listener
	mu     sync.Mutex
	n      int
	wg     sync.WaitGroup
}

func newFakePool(t *testing.T, conns ...func(c net.Conn)) *fakePool {
	t.Helper()
	p := &fakePool{socket: filepath.Join(t.TempDir(), "pool.sock")}
	ln, err := net.Listen("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			h := conns[min(p.n, len(conns)-1)]
			p.n++
			p.mu.Unlock()
			p.wg.Add(1)
			go func() { defer p.wg.Done(); defer c.Close(); h(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *fakePool) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *fakePool) transport() *retryTransport {
	return newRetryTransport(p.socket, slog.New(slog.DiscardHandler))
}

// resetUnread closes the connection once the request has arrived, without
// reading it: the client gets ECONNRESET (a draining worker closing an idle
// connection as a request comes in on it).
func resetUnread(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return
	}
	// wait until the request is there, reading nothing of it
	var b [1]byte
	raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
	time.Sleep(20 * time.Millisecond) // the whole request is in the socket's queue
}

// answer reads one request and answers status with the request's body as
// its body, and the extra header lines (each ending in \r\n).
func answer(status, extra string, got *[]string, mu *sync.Mutex) func(c net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		*got = append(*got, req.Method+" "+string(b))
		mu.Unlock()
		io.WriteString(c, "HTTP/1.1 "+status+"\r\n"+extra+"Connection: close\r\nContent-Length: "+
			strconv.Itoa(len(b))+"\r\n\r\n"+string(b))
	}
}

func post(t *testing.T, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", "http://wisp-pool/x/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A POST whose connection the worker reset with the request unread is sent
// again, whole, on another connection.
func TestForwardRetriesResetRequest(t *testing.T) {
	var mu sync.Mutex
	var got []string
	p := newFakePool(t, resetUnread, answer("200 OK", "", &got, &mu))
	resp, err := p.transport().RoundTrip(post(t, "the body"))
	if err != nil {
		t.Fatalf("RoundTrip: %v (connections %d)", err, p.conns())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "the body" || p.conns() != 2 {
		t.Errorf("status %d, body %q after %d connections; want 200, the body sent again, 2", resp.StatusCode, b, p.conns())
	}
	if len(got) != 1 || got[0] != "POST the body" {
		t.Errorf("the pool ran %q; want one POST with its body", got)
	}
}

// A connection the worker closed as soon as it accepted it (it was
// draining), before or as the request came: the request is sent again,
// whatever the method.
func TestForwardRetriesClosedAtOnce(t *testing.T) {
	for i := range 20 {
		var mu sync.Mutex
		var got []string
		p := newFakePool(t, func(c net.Conn) {}, answer("200 OK", "", &got, &mu))
		resp, err := p.transport().RoundTrip(post(t, "once"))
		if err != nil {
			t.Fatalf("try %d: RoundTrip: %v (connections %d)", i, err, p.conns())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || p.conns() != 2 || len(got) != 1 {
			t.Fatalf("try %d: status %d after %d connections, pool ran %q; want 200 after 2, one POST", i, resp.StatusCode, p.conns(), got)
		}
	}
}

// A 503 with X-Wisp-Unserved (a worker whose threads had stopped) is sent
// again; the header does not reach the client.
func TestForwardRetriesUnserved(t *testing.T) {
	var mu sync.Mutex
	var got []string
	p := newFakePool(t, answer("503 Service Unavailable", hdrUnserved+": stopping\r\n", &got, &mu),
		answer("200 OK", "", &got, &mu))
	resp, err := p.transport().RoundTrip(post(t, "b"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || p.conns() != 2 {
		t.Errorf("status %d after %d connections; want 200 after 2", resp.StatusCode, p.conns())
	}
	// never more than the bound: each try unserved, the last answer relayed without the header
	p2 := newFakePool(t, answer("503 Service Unavailable", hdrUnserved+": stopping\r\n", &got, &mu))
	resp, err = p2.transport().RoundTrip(post(t, "b"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := 1 + len(forwardRetries); resp.StatusCode != 503 || p2.conns() != want || resp.Header.Get(hdrUnserved) != "" {
		t.Errorf("always unserved: status %d after %d connections, %s %q; want 503 after %d, no header",
			resp.StatusCode, p2.conns(), hdrUnserved, resp.Header.Get(hdrUnserved), want)
	}
}

// A request that may have run is never sent twice: a POST whose connection
// ended after the worker read it all (the worker died in the app), and a
// request whose answer had begun; nor one whose body cannot be sent again.
func TestForwardNoRetryWhenItMayHaveRun(t *testing.T) {
	readAllThenClose := func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.ReadAll(req.Body)
		}
	}
	p := newFakePool(t, readAllThenClose)
	if resp, err := p.transport().RoundTrip(post(t, "pay once")); err == nil {
		resp.Body.Close()
		t.Errorf("got status %d; want an error", resp.StatusCode)
	}
	if p.conns() != 1 {
		t.Errorf("POST read whole then connection closed: %d connections; want 1 (no retry)", p.conns())
	}

	halfAnswer := func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		}
	}
	p2 := newFakePool(t, halfAnswer)
	req, _ := http.NewRequest("GET", "http://wisp-pool/x/", nil)
	if resp, err := p2.transport().RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Errorf("got status %d; want an error", resp.StatusCode)
	}
	if p2.conns() != 1 {
		t.Errorf("GET whose answer had begun: %d connections; want 1 (no retry)", p2.conns())
	}

	p3 := newFakePool(t, resetUnread)
	req = post(t, "streamed")
	req.GetBody = nil // a body that cannot be read again
	if resp, err := p3.transport().RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Errorf("got status %d; want an error", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "reset") {
		t.Errorf("error %v; want the reset itself", err)
	}
	if p3.conns() != 1 {
		t.Errorf("body without GetBody: %d connections; want 1 (no retry)", p3.conns())
	}
}

// unrun's verdicts on the errors a try can end with.
func TestUnrun(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "unix", Err: io.ErrClosedPipe}
	for _, c := range []struct {
		err              error
		reused, idem, ok bool
	}{
		{dial, false, false, true},
		{io.EOF, true, true, true},
		{io.EOF, false, true, false},
		{io.EOF, true, false, false},
		{io.ErrUnexpectedEOF, false, false, false},
	} {
		if got := unrun(c.err, c.reused, c.idem) != ""; got != c.ok {
			t.Errorf("unrun(%v, reused %v, idempotent %v) = %v; want %v", c.err, c.reused, c.idem, got, c.ok)
		}
	}
}
