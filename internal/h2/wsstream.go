package h2

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"wisp/internal/httphdr"
)

// A WebSocket's stream (RFC 8441): its request head, the switch at h1's
// 101, and the raw bytes both ways after it. See stream.

// wsDropped reports the request headers (canonical names) the upgrade
// request made of an extended CONNECT does not take from it: those of
// dropped, :protocol, and those it is given anew.
func wsDropped(k string) bool {
	switch k {
	case ":protocol", "Sec-Websocket-Key", "Sec-Websocket-Accept":
		return true
	}
	return dropped(k)
}

// Synthesized reports the header fields wsRequestHead adds to an extended
// CONNECT to make it an HTTP/1.1 upgrade (any case): not the client's, so
// an app's view of the request leaves them out.
func Synthesized(name string) bool {
	return strings.EqualFold(name, "Upgrade") || strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Sec-WebSocket-Key")
}

// wsRequestHead is a WebSocket's extended CONNECT (RFC 8441 4) as the
// HTTP/1.1 upgrade request it stands for (RFC 6455 4.1): a GET of its
// :path with its headers, Upgrade and Connection, and a Sec-WebSocket-Key
// of 16 random bytes, so that the HTTP/1.1 handshake check applies as is
// (the 101's Sec-WebSocket-Accept, made of it, does not go out). It has no
// body: what the client sends is the WebSocket's own bytes (readRaw).
func wsRequestHead(r *http.Request) []byte {
	b := appendHead(make([]byte, 0, 512), "GET", r, wsDropped)
	var key [16]byte
	rand.Read(key[:]) // never fails (crypto/rand)
	b = append(b, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = base64.StdEncoding.AppendEncode(b, key[:])
	return append(b, "\r\n\r\n"...)
}

// switchHead sends the 101 head h1 wrote for a WebSocket's extended CONNECT
// as its 200 (RFC 8441 5): its header fields but the connection-specific
// ones (Upgrade, Connection) and Sec-WebSocket-Accept (there was no key),
// flushed at once, since the client waits for it to begin. The stream is
// switched from then on.
func (s *stream) switchHead(lines string) error {
	h := s.w.Header()
	for lines != "" {
		var l string
		l, lines, _ = strings.Cut(lines, "\r\n")
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = http.CanonicalHeaderKey(strings.TrimSpace(name))
		switch name {
		case "Sec-Websocket-Accept", "Content-Length":
			continue
		}
		if httphdr.ConnectionSpecific(name) {
			continue
		}
		h[name] = append(h[name], strings.TrimSpace(value))
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing
	}
	s.head = true
	s.mu.Lock()
	s.switched = true
	s.mu.Unlock()
	s.signal()
	s.w.WriteHeader(http.StatusOK)
	return s.rc.Flush()
}

// isSwitched reports whether a WebSocket's stream switched to raw bytes.
func (s *stream) isSwitched() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switched
}

// writeRaw sends p as DATA, flushed, within the write deadline: a write
// that passes it resets the stream (net/http can cut a write blocked by
// flow control no other way), and the stream takes no write after that.
// Writes are serial (wmu), as a net.Conn's may come from several
// goroutines.
func (s *stream) writeRaw(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	dl, closed, cut := s.wdl, s.closed, s.cutOff
	if !closed {
		s.writing = true
	}
	s.mu.Unlock()
	switch {
	case closed:
		return 0, net.ErrClosed
	case cut:
		return 0, os.ErrDeadlineExceeded
	case !dl.IsZero() && !time.Now().Before(dl):
		return 0, os.ErrDeadlineExceeded
	}
	var t *time.Timer
	if !dl.IsZero() {
		t = time.AfterFunc(time.Until(dl), func() { s.cut(true) })
	}
	n, err := 0, s.r.Context().Err()
	if err != nil {
		err = errors.New("h2: the stream was reset")
	} else if n, err = s.w.Write(p); err == nil {
		err = s.rc.Flush()
	}
	if t != nil {
		t.Stop()
	}
	s.mu.Lock()
	s.writing = false
	if s.cutOff {
		err = os.ErrDeadlineExceeded
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, nil
}

// cut resets the stream if a write is under way (a write deadline passed,
// or the exchange ended with a write of another goroutine's still blocked).
func (s *stream) cut(deadline bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing {
		s.cutOff = s.cutOff || deadline
		s.rc.SetWriteDeadline(time.Unix(1, 0)) // a passed deadline resets the stream now
	}
}

// readRaw reads the client's DATA on a WebSocket's stream, through pump:
// net/http's own read deadline would fail the request body for good when
// it passes, and a WebSocket's reader lives on after a timeout (h1 cuts its
// watch for the client's departure short with a deadline in the past). It
// returns io.EOF at the client's END_STREAM, an error once it reset the
// stream, and, before the switch, io.EOF once h1's answer (a denial) is
// complete.
func (s *stream) readRaw(p []byte) (int, error) {
	for {
		if len(s.raw) > 0 {
			n := copy(p, s.raw)
			s.raw = s.raw[n:]
			if len(s.raw) == 0 {
				s.free <- struct{}{}
			}
			return n, nil
		}
		s.mu.Lock()
		dl, closed, done, switched, rerr := s.rdl, s.closed, s.done, s.switched, s.rawErr
		s.mu.Unlock()
		switch {
		case closed:
			return 0, net.ErrClosed
		case rerr != nil:
			return 0, rerr
		case done && !switched:
			return 0, io.EOF
		case !dl.IsZero() && !time.Now().Before(dl):
			return 0, os.ErrDeadlineExceeded
		}
		if s.pumpDone == nil {
			s.mu.Lock()
			if !s.closed { // else end ran: no pump after it
				s.data, s.free = make(chan []byte), make(chan struct{}, 1)
				s.quit, s.pumpDone = make(chan struct{}), make(chan struct{})
				go s.pump()
			}
			s.mu.Unlock()
			continue
		}
		var t *time.Timer
		var timer <-chan time.Time
		if !dl.IsZero() {
			t = time.NewTimer(time.Until(dl))
			timer = t.C
		}
		select {
		case b, ok := <-s.data:
			if ok {
				s.raw = b
			}
		case <-s.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// pumpBuf is the size of pump's buffer, which an idle WebSocket holds.
const pumpBuf = 4 << 10

// pump reads the request body of a WebSocket's stream and hands it to
// readRaw, a buffer at a time, until the body ends or fails (rawErr) or
// the exchange ends (end, its owner).
func (s *stream) pump() {
	defer close(s.pumpDone)
	buf := make([]byte, pumpBuf)
	for {
		n, err := s.r.Body.Read(buf)
		if n > 0 {
			select {
			case s.data <- buf[:n]:
			case <-s.quit:
				return
			}
			select {
			case <-s.free:
			case <-s.quit:
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				err = errors.Join(errors.New("h2: the stream was reset"), err)
			}
			s.mu.Lock()
			s.rawErr = err
			s.mu.Unlock()
			close(s.data)
			return
		}
	}
}

// end closes a WebSocket's stream once the exchange is over, before
// serveStream returns (net/http's ResponseWriter and Body are not to be
// used after that): pump ends, and a write still under way on another
// goroutine is cut and waited for.
func (s *stream) end() {
	if !s.ws {
		return
	}
	s.mu.Lock()
	s.closed = true
	pumping := s.pumpDone != nil
	s.mu.Unlock()
	s.signal()
	s.cut(false)
	s.wmu.Lock()
	s.wmu.Unlock()
	if pumping {
		close(s.quit)
		s.r.Body.Close() // ends a Read that waits for DATA
		<-s.pumpDone
	}
}
