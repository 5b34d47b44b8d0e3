package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Close codes of RFC 6455 7.4.1 (and 1012-1014 of the IANA registry).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never sent: a close frame without a code
	CloseAbnormal        = 1006 // never sent: the connection ended without a close frame
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseMandatoryExt    = 1010
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTryAgainLater   = 1013
	CloseBadGateway      = 1014
)

// CloseError ends a connection: the close code and reason the peer sent
// (Remote), or the code this side closed with (a protocol error it found,
// the owner's WriteClose, a keepalive timeout), or CloseAbnormal (1006)
// when the transport ended without a close handshake, Err then saying why.
type CloseError struct {
	Code   int
	Reason string
	Remote bool
	Err    error
}

func (e *CloseError) Error() string {
	s := "websocket: closed with " + strconv.Itoa(e.Code)
	if e.Remote {
		s = "websocket: peer closed with " + strconv.Itoa(e.Code)
	}
	if e.Reason != "" {
		s += " " + quote(e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// ErrCloseSent is returned by writes after a close frame was sent.
var ErrCloseSent = errors.New("websocket: close frame already sent")

// closeReceived checks the peer's close frame, echoes it (unless this side
// closed first), and ends the connection.
func (c *Conn) closeReceived(p []byte) error {
	code, reason := CloseNoStatus, ""
	switch {
	case len(p) == 1:
		return c.fail(CloseProtocolError, "close frame with a 1-byte payload")
	case len(p) >= 2:
		code = int(binary.BigEndian.Uint16(p))
		if !validCode(code) {
			return c.fail(CloseProtocolError, "invalid close code "+strconv.Itoa(code))
		}
		if !utf8.Valid(p[2:]) {
			return c.fail(CloseInvalidPayload, "close reason is not UTF-8")
		}
		reason = string(p[2:])
	}
	c.wmu.Lock()
	if !c.closeSent {
		c.closeSent = true
		c.writeFrame(OpClose, 0, p[:min(len(p), 2)])
		c.flush()
	}
	c.wmu.Unlock()
	// The peer sends nothing after its close frame, so nothing unread can
	// turn the close into a reset: close at once, without lingering.
	c.shutdown(false)
	c.rerr = &CloseError{Code: code, Reason: reason, Remote: true}
	return c.rerr
}

// validCode reports the close codes an endpoint may send (RFC 6455 7.4):
// the defined ones but 1004 (reserved), 1005, 1006 and 1015 (never sent),
// 1012-1014 (registered since), and 3000-4999 (libraries, applications).
func validCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// fail fails the connection (RFC 6455 7.1.7): a close frame with code and
// reason if none was sent yet, then the transport closed.
func (c *Conn) fail(code int, reason string) error {
	c.sendClose(code, reason)
	c.shutdown(true)
	c.rerr = &CloseError{Code: code, Reason: reason}
	return c.rerr
}

// ioErr ends reading on a transport error.
func (c *Conn) ioErr(err error) error {
	if e := c.aborted.Load(); e != nil {
		c.rerr = e
		return e
	}
	c.shutdown(false)
	c.rerr = &CloseError{Code: CloseAbnormal, Err: err}
	return c.rerr
}

// sendClose writes a close frame, bounded by the close timeout, unless one
// was sent already.
func (c *Conn) sendClose(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return
	}
	c.closeSent = true
	if d, ok := c.rw.(deadliner); ok {
		d.SetWriteDeadline(time.Now().Add(c.closeTimeout))
	}
	var b [maxControlPayload]byte
	c.writeFrame(OpClose, 0, closePayload(b[:0], code, reason))
	c.flush()
}

// closePayload appends a close frame's payload: the code, then the reason
// cut to fit 125 bytes on a character boundary.
func closePayload(b []byte, code int, reason string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(b, reason...)
}

// deadliner is a transport with deadlines (a net.Conn).
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// shutdown closes the transport, once. With linger (only on the reading
// goroutine), it first half-closes a TCP connection and reads what the peer
// still sends until it goes or the close timeout passes, so that unread
// bytes do not turn the close into a reset that could destroy the close
// frame just sent.
func (c *Conn) shutdown(linger bool) {
	c.stop.Do(func() {
		if d, ok := c.rw.(deadliner); ok && linger {
			if cw, ok := c.rw.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			d.SetReadDeadline(time.Now().Add(c.closeTimeout))
			io.Copy(io.Discard, io.LimitReader(c.br, 1<<20))
		}
		if cl, ok := c.rw.(io.Closer); ok {
			cl.Close()
		}
	})
}

// Close closes the transport at once, without a close handshake (see
// WriteClose for one). A ReadMessage under way returns.
func (c *Conn) Close() error {
	c.shutdown(false)
	return nil
}

// WriteClose starts the close handshake: it sends a close frame with code
// (CloseNormal, ..., or 3000-4999) and reason (UTF-8, at most 123 bytes),
// after what is queued. The reading goroutine then gets the peer's close as
// a *CloseError; on a transport with deadlines, its wait is bounded by the
// close timeout.
func (c *Conn) WriteClose(code int, reason string) error {
	if !validCode(code) {
		return fmt.Errorf("websocket: close code %d cannot be sent", code)
	}
	if len(reason) > maxControlPayload-2 || !utf8.ValidString(reason) {
		return errors.New("websocket: close reason not UTF-8 of at most 123 bytes")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	c.closeSent = true
	var b [maxControlPayload]byte
	c.writeFrame(OpClose, 0, closePayload(b[:0], code, reason))
	c.flush()
	if d, ok := c.rw.(deadliner); ok {
		d.SetReadDeadline(time.Now().Add(c.closeTimeout))
	}
	return c.werr
}
