package websocket

import (
	"sync"
	"time"
)

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

// StartKeepAlive pings the peer every interval and fails the connection
// with 1011 if no pong comes back within timeout (as uvicorn's
// --ws-ping-interval and --ws-ping-timeout do). It runs on timers, not a
// goroutine of its own, so that an idle connection holds no stack for it.
// stop ends it (call it when the connection ends).
func (c *Conn) StartKeepAlive(interval, timeout time.Duration) (stop func()) {
	k := &keeper{c: c, interval: interval, timeout: timeout}
	k.mu.Lock()
	k.t = time.AfterFunc(interval, k.fire)
	k.mu.Unlock()
	return k.stop
}

// keeper is StartKeepAlive's state: whether its timer waits to ping or for
// the pong.
type keeper struct {
	c                 *Conn
	interval, timeout time.Duration
	mu                sync.Mutex
	t                 *time.Timer
	waiting           bool // a ping went out: the timer is the pong's deadline
	stopped           bool
}

func (k *keeper) fire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	if k.waiting {
		select {
		case <-k.c.pong:
			k.waiting = false
			k.t.Reset(k.interval - min(k.timeout, k.interval))
			return
		default:
		}
		k.stopped = true
		go k.c.abort(CloseInternalError, "keepalive ping timeout") // writes: never under mu
		return
	}
	select { // a stale pong, answering nothing now
	case <-k.c.pong:
	default:
	}
	if k.c.Ping(nil) != nil {
		k.stopped = true // the connection is ending; its reader reports why
		return
	}
	k.waiting = true
	k.t.Reset(k.timeout)
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.stopped = true
	k.t.Stop()
	k.mu.Unlock()
}
