package e2e

// Faults a user can cause must not take a pool down (issue 8): SIGTERM under
// load, crashing requests, segfaults, failed reloads.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawOutcome is what one connection of rawLoad saw.
type rawOutcome int

const (
	rawOK       rawOutcome = iota // a whole 200 response
	rawRefused                    // the connect was refused: fine once the server stops
	rawReset                      // accepted, then reset or closed without a reply
	rawBadReply                   // a reply that is not a whole 200
)

// rawLoad makes one request per new TCP connection from n goroutines until
// stop is closed, and tallies the outcomes; resets and bad replies are kept
// with their error.
type rawLoad struct {
	mu     sync.Mutex
	counts [4]int
	errs   []string
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startRawLoad(addr, path string, n int) *rawLoad {
	l := &rawLoad{stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				o, err := rawGet(addr, path)
				l.mu.Lock()
				l.counts[o]++
				if o == rawReset || o == rawBadReply {
					l.errs = append(l.errs, fmt.Sprint(err))
				}
				l.mu.Unlock()
				if o == rawRefused {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *rawLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func rawGet(addr, path string) (rawOutcome, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return rawRefused, err
		}
		return rawBadReply, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); err != nil {
		return rawReset, fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return rawReset, fmt.Errorf("read the response: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return rawReset, fmt.Errorf("read the body: %w", err)
	}
	if resp.StatusCode != 200 {
		return rawBadReply, fmt.Errorf("status %d: %s", resp.StatusCode, trunc(body))
	}
	return rawOK, nil
}

// Point 2: after SIGTERM the pool's listening sockets close at once, so that
// a connection arriving while the workers drain is refused by the kernel, not
// accepted and then reset when the process exits. In-flight requests finish.
func TestPoolSIGTERMNoResets(t *testing.T) {
	t.Parallel()
	s := serve(t, onePoolConfig("processes = 2\nthreads = 4\ngraceful_timeout = \"20s\""))
	s.readyWorkers(t, "default", 2)
	// slow requests in flight keep the workers draining for ~2s
	type result struct {
		o   rawOutcome
		err error
	}
	slow := make(chan result, 2)
	for range 2 {
		go func() {
			o, err := rawGet(s.Addr, "/sleep?s=2.5")
			slow <- result{o, err}
		}()
	}
	load := startRawLoad(s.Addr, "/work?ms=5", 6)
	time.Sleep(700 * time.Millisecond)
	s.signal(syscall.SIGTERM)
	code, ok := s.wait(30 * time.Second)
	load.finish()
	if !ok {
		t.Fatalf("wisp serve did not exit within 30s of SIGTERM")
	}
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	for range 2 {
		r := <-slow
		if r.o != rawOK {
			t.Errorf("a /sleep request in flight at SIGTERM did not complete: %v", r.err)
		}
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("fresh-connection load across SIGTERM: %d ok, %d refused, %d reset, %d bad replies",
		load.counts[rawOK], load.counts[rawRefused], load.counts[rawReset], load.counts[rawBadReply])
	if load.counts[rawOK] == 0 {
		t.Errorf("no request succeeded before the SIGTERM: the load did not run")
	}
	if n := load.counts[rawReset] + load.counts[rawBadReply]; n > 0 {
		t.Errorf("%d connections were accepted and then reset or badly answered (want 0; refused is fine): %s",
			n, strings.Join(load.errs[:min(len(load.errs), 5)], "; "))
	}
}
