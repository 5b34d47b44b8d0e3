package websocket

import (
	"context"
	"time"
)

// KeepAlive pings the peer every interval and fails the connection with
// 1011 if no pong comes back within timeout (as uvicorn's
// --ws-ping-interval and --ws-ping-timeout do). It returns nil when ctx
// ends, or the *CloseError it failed the connection with. The caller owns
// the goroutine that runs it, and ends it through ctx when the connection
// ends.
func (c *Conn) KeepAlive(ctx context.Context, interval, timeout time.Duration) error {
	tick := time.NewTimer(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		select { // a stale pong, answering nothing now
		case <-c.pong:
		default:
		}
		if err := c.Ping(nil); err != nil {
			return nil // the connection is ending; its reader reports why
		}
		wait := time.NewTimer(timeout)
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-c.pong:
			wait.Stop()
		case <-wait.C:
			return c.abort(CloseInternalError, "keepalive ping timeout")
		}
		tick.Reset(interval)
	}
}

// abort fails the connection from a goroutine other than the reader's: a
// close frame, then the transport closed, which ends a ReadMessage under
// way with the returned error.
func (c *Conn) abort(code int, reason string) error {
	e := &CloseError{Code: code, Reason: reason}
	if !c.aborted.CompareAndSwap(nil, e) {
		return c.aborted.Load()
	}
	c.sendClose(code, reason)
	c.shutdown(false)
	return e
}
