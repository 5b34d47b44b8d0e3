// Package asgiws relays an accepted WebSocket between its connection and
// the ASGI app that accepted it: the messages the client sends go to the
// app's receive() through the event loop (internal/pyembed), and what the
// app sends (messages, its close) comes back as the events of its job and
// goes out through the WebSocket codec (internal/websocket). The handshake,
// before the app accepts, is the server's (it is an HTTP exchange); this
// package begins once the 101 (or, over HTTP/2, the 200) has gone out.
//
// Both directions are bounded: the reader takes the next message from the
// client only when the app has received what came before (the loop's body
// window), and the app's send() waits while its hand-offs are unwritten (the
// job's response window), so that neither a flood nor a slow reader grows
// memory.
package asgiws

import (
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"wisp/internal/pyembed"
	"wisp/internal/websocket"
)

// Session is one accepted WebSocket.
type Session struct {
	Conn *websocket.Conn
	Loop *pyembed.Loop
	Job  *pyembed.Job

	// PingInterval pings an idle client that often, and PingTimeout fails
	// the connection (1011) when its pong does not come back in time; 0
	// pings never.
	PingInterval, PingTimeout time.Duration
	// Message, if set, is called for each message, in from the client or
	// out from the app.
	Message func(in bool)
	// Going is closed when the server stops or restarts; the session then
	// closes with the code GoingCode gives (1001, 1012).
	Going     <-chan struct{}
	GoingCode func() int
	// Closed, if set, is called once when the connection has ended (the
	// app may run on).
	Closed func()
}

// Outcome is how a session ended.
type Outcome struct {
	// Code is the close code: the client's, the app's, or the one the
	// server closed with (1006: the connection ended without a close).
	Code int
	// App is the app's outcome (pyembed.OK, ErrLate: it raised), and
	// Traceback its error.
	App       pyembed.Code
	Traceback string
}

// Run relays the session until the app has returned and the connection is
// closed; it closes the connection.
func (s *Session) Run() Outcome {
	quit := make(chan struct{})
	read := make(chan *websocket.CloseError, 1)
	go func() {
		s.read(quit, read)
		if s.Closed != nil {
			s.Closed()
		}
	}()
	if s.PingInterval > 0 {
		// timers, not a goroutine: an idle WebSocket holds no stack for it
		defer s.Conn.StartKeepAlive(s.PingInterval, s.PingTimeout)()
	}
	var out Outcome
	var closed *websocket.CloseError // the reader's end
	closeSent := false
	failed := false // a write failed: the app's events are dropped
	told := false   // the app was told its connection failed
	events := s.Job.Events()
	going := s.Going
	for done := false; !done; {
		var ev pyembed.Event
		select {
		case ev = <-events:
		case ce := <-read:
			closed = ce
			read = nil
			continue
		case <-going:
			going = nil
			if !closeSent {
				closeSent = true
				code := s.GoingCode()
				s.Conn.WriteClose(code, CloseReason(code))
			}
			continue
		}
		// take what else is waiting too, and write it with one flush
		for {
			if ev.Done {
				out.App, out.Traceback = ev.Code, ev.Traceback
				done = true
			} else if !failed && len(ev.Hdr) > 0 {
				var err error
				switch ev.Hdr[0] {
				case 'T', 'B':
					op := websocket.OpBinary
					if ev.Hdr[0] == 'T' {
						op = websocket.OpText
					}
					if closeSent {
						break // the app raced the server's close: its message is dropped
					}
					err = s.Conn.WriteMessage(op, ev.Data)
					if err == nil && s.Message != nil {
						s.Message(false)
					}
				case 'C':
					if !closeSent {
						closeSent = true
						code, reason := parseClose(ev.Hdr[1:])
						if err = s.Conn.WriteClose(code, reason); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
							// a code or reason that cannot be sent (the app's
							// mistake): close anyway
							err = s.Conn.WriteClose(websocket.CloseInternalError, "")
						}
					}
				}
				if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
					failed = true
				}
			}
			ev.Release()
			if done {
				break
			}
			select {
			case ev = <-events:
				continue
			default:
			}
			break
		}
		if !failed && s.Conn.Flush() != nil {
			failed = true
		}
		if failed && !told {
			told = true // the app's send() raises from now on; its receive() gives the disconnect
			s.Loop.Closed(s.Job, websocket.CloseAbnormal, "")
		}
	}
	// The app is done: close if it did not, then wait for the client's
	// close (the codec bounds the wait), and end the reader.
	if !closeSent {
		code := websocket.CloseNormal
		if out.App != pyembed.OK {
			code = websocket.CloseInternalError
		}
		s.Conn.WriteClose(code, "")
		closeSent = true
	}
	close(quit)
	if closed == nil {
		select {
		case closed = <-read:
		case <-time.After(websocket.DefaultCloseTimeout + time.Second):
			s.Conn.Close()
			closed = <-read
		}
	}
	s.Conn.Close()
	out.Code = closed.Code
	return out
}

// read takes the client's messages to the app, one at a time as the app
// receives them, until the connection ends; then it tells the app (the
// close code) and reports the end.
func (s *Session) read(quit <-chan struct{}, end chan<- *websocket.CloseError) {
	var buf []byte // grown by the first message: an idle WebSocket holds none
	for {
		if !s.Loop.WaitBody(s.Job, quit) {
			// the app returned: read on only to finish the close handshake
			for {
				if _, _, err := s.Conn.ReadMessage(buf[:0]); err != nil {
					end <- closeErr(err)
					return
				}
			}
		}
		op, msg, err := s.Conn.ReadMessage(buf)
		if err != nil {
			ce := closeErr(err)
			s.Loop.Closed(s.Job, ce.Code, ce.Reason)
			end <- ce
			return
		}
		s.Loop.Message(s.Job, op == websocket.OpText, msg)
		if s.Message != nil {
			s.Message(true)
		}
		if cap(msg) > 64<<10 {
			msg = nil // do not keep a large message's buffer while idle
		}
		buf = msg
	}
}

func closeErr(err error) *websocket.CloseError {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce
	}
	return &websocket.CloseError{Code: websocket.CloseAbnormal, Err: err}
}

// parseClose reads the app's close: "code\x00reason".
func parseClose(b []byte) (int, string) {
	code, reason := websocket.CloseNormal, ""
	for i, c := range b {
		if c == 0 {
			if n, err := strconv.Atoi(string(b[:i])); err == nil {
				code = n
			}
			reason = string(b[i+1:])
			return code, reason
		}
	}
	return code, reason
}

// CloseReason is the reason a close of the server's own carries (1012
// restart, 1001 going away).
func CloseReason(code int) string {
	switch code {
	case websocket.CloseServiceRestart:
		return "server restart"
	case websocket.CloseGoingAway:
		return "server shutting down"
	}
	return ""
}

// CountingConn is a connection that counts the bytes written to it (for
// the access log) and bounds each write by a timeout, so that a client that
// does not read is cut off.
type CountingConn struct {
	net.Conn
	WriteTimeout time.Duration
	Out          atomic.Int64
}

func (c *CountingConn) Write(p []byte) (int, error) {
	if c.WriteTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.WriteTimeout))
	}
	n, err := c.Conn.Write(p)
	c.Out.Add(int64(n))
	return n, err
}

// CloseWrite half-closes the connection where it can (TCP), for the
// codec's graceful close.
func (c *CountingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
