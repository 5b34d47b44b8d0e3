package pyembed

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// TestInterruptAfterClose: once Close has begun, Interrupt (a request
// timeout firing late) does not call into Python, which would take the GIL
// of a finalized interpreter; it reports ErrClosed. GCCollections (what
// /metrics asks) called while Close runs and after it returns -1 and does not
// panic (it sent on the closed channel of main-thread calls), and LoadApp
// and a second Close report ErrClosed. (One test: a process embeds Python
// once.)
func TestInterruptAfterClose(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no %s", py)
	}
	ip, err := Start(Options{Python: py})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if n := ip.GCCollections(); n < 0 {
		t.Fatalf("gc collections of a running interpreter: %d", n)
	}
	// /metrics scrapes racing with the shutdown
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 100000; k++ {
				select {
				case <-stop:
					return
				default:
				}
				ip.GCCollections()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := ip.Close(10 * time.Second); err != nil {
		t.Fatalf("close: %v", err)
	}
	close(stop)
	wg.Wait()
	if n := ip.GCCollections(); n != -1 {
		t.Errorf("gc collections after close: %d, want -1", n)
	}
	if _, err := ip.LoadApp("os:getcwd", false, false); !errors.Is(err, ErrClosed) {
		t.Errorf("load app after close: %v, want ErrClosed", err)
	}
	if err := ip.Close(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
	called := false
	_, hit, err := ip.Interrupt(1, 2*time.Second, func() bool { called = true; return true })
	if !errors.Is(err, ErrClosed) || hit || called {
		t.Fatalf("interrupt after close: hit %v, still() called %v, err %v; want ErrClosed and no call", hit, called, err)
	}
}
