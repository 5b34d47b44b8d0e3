package h1

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lateListener hands out one connection as it is closed: Accept returns
// it a moment after Close, as a real accept that won the race does.
type lateListener struct {
	net.Listener // for Addr
	conn         net.Conn
	closed       chan struct{}
	once         sync.Once
	accepting    chan struct{}
	calls        atomic.Int32
}

func (l *lateListener) Accept() (net.Conn, error) {
	if l.calls.Add(1) > 1 {
		return nil, net.ErrClosed
	}
	close(l.accepting)
	<-l.closed
	time.Sleep(50 * time.Millisecond)
	return l.conn, nil
}

func (l *lateListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// A connection accepted just as Shutdown closed the listener is waited for:
// Shutdown does not return while it is open (a pool worker would then stop
// its Python threads and exit with its request read and unanswered).
func TestShutdownWaitsForLateAccept(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	ln := &lateListener{conn: a, closed: make(chan struct{}), accepting: make(chan struct{})}
	var opened, shut atomic.Bool
	var openedAfter atomic.Bool
	s := &Server{Handler: HandlerFunc(echo), ConnChange: func(d int64) {
		if d > 0 {
			opened.Store(true)
			if shut.Load() {
				openedAfter.Store(true)
			}
		}
	}}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	<-ln.accepting
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	shut.Store(true)
	if !opened.Load() {
		time.Sleep(100 * time.Millisecond) // a late accept shows now
	}
	if openedAfter.Load() || !opened.Load() {
		t.Errorf("the connection accepted as the listener closed was tracked after Shutdown returned")
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("Conns() = %d after Shutdown returned", n)
	}
	select {
	case err := <-served:
		if err != ErrServerClosed {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Serve did not return")
	}
}
