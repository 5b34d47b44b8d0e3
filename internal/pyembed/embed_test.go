package pyembed

import (
	"errors"
	"os"
	"testing"
	"time"
)

// TestInterruptAfterClose: once Close has begun, Interrupt (a request
// timeout firing late) does not call into Python, which would take the GIL
// of a finalized interpreter; it reports ErrClosed.
func TestInterruptAfterClose(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no %s", py)
	}
	ip, err := Start(Options{Python: py})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := ip.Close(10 * time.Second); err != nil {
		t.Fatalf("close: %v", err)
	}
	called := false
	_, hit, err := ip.Interrupt(1, 2*time.Second, func() bool { called = true; return true })
	if !errors.Is(err, ErrClosed) || hit || called {
		t.Fatalf("interrupt after close: hit %v, still() called %v, err %v; want ErrClosed and no call", hit, called, err)
	}
}
