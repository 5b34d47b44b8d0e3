// Package trace is `wisp trace`, the successor of win32traceutil: a live
// stream of everything the apps write (print, sys.stderr, logging,
// wsgi.errors) and one line per request, tagged with the time, pool, worker
// pid and request id.
//
// Each process (an in-process server, or each pool worker) keeps a Hub: a
// bounded ring of recent lines, and the readers attached to it. Publishing
// never waits for a reader: a reader that falls behind loses lines, and the
// count of what it lost is sent to it. A worker serves its hub on a unix
// socket (Serve); the supervisor merges its workers' streams (Dial) for the
// control API's GET /v1/trace.
package trace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Line is one line of the trace.
type Line struct {
	Time    time.Time `json:"time"`
	Pool    string    `json:"pool,omitempty"`
	PID     int       `json:"pid"`
	Site    string    `json:"site,omitempty"`
	Vdir    string    `json:"vdir,omitempty"`
	Request string    `json:"request_id,omitempty"`
	// Stream is where the line came from: "stdout" and "stderr" (print,
	// sys.stderr, logging's stream handlers), "wsgi.errors", or "request"
	// (one per request: method, path, status, duration).
	Stream string `json:"stream"`
	Text   string `json:"text"`
	// Dropped, on a line of its own, counts the lines this reader lost
	// because it did not keep up.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Filter selects lines; empty fields match everything.
type Filter struct {
	Site, Vdir, Pool string
	Since            time.Time // history from this time (zero: none)
}

// Match reports whether l passes the filter (Since aside).
func (f Filter) Match(l *Line) bool {
	if l.Dropped > 0 {
		return true
	}
	if f.Pool != "" && l.Pool != f.Pool {
		return false
	}
	if f.Site != "" && l.Site != f.Site {
		return false
	}
	if f.Vdir != "" {
		v := "/" + strings.Trim(f.Vdir, "/")
		if l.Vdir != v && !(v == "/" && l.Vdir == "") {
			return false
		}
	}
	return true
}

// RingSize is how many recent lines a hub keeps.
const RingSize = 4096

// readerBuffer is how many lines a reader may fall behind before it loses some.
const readerBuffer = 1024

// Hub is one process's trace: its recent lines and its readers.
type Hub struct {
	pool string // every line's Pool
	pid  int    // every line's PID

	mu      sync.Mutex
	ring    []Line
	next    int
	full    bool
	readers map[*Reader]struct{}
	dropped atomic.Uint64 // lines lost by readers, all together
}

// NewHub makes an empty hub for the lines of this process, in pool ("" for
// an in-process server).
func NewHub(pool string) *Hub {
	return &Hub{pool: pool, pid: os.Getpid(), ring: make([]Line, RingSize), readers: map[*Reader]struct{}{}}
}

// Reader is one attached reader.
type Reader struct {
	C       chan Line
	h       *Hub
	filter  Filter
	dropped atomic.Uint64
}

// Publish adds a line; it never blocks.
func (h *Hub) Publish(l Line) {
	if h == nil {
		return
	}
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	l.Pool, l.PID = h.pool, h.pid
	h.mu.Lock()
	h.ring[h.next] = l
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
	for r := range h.readers {
		if !r.filter.Match(&l) {
			continue
		}
		select {
		case r.C <- l:
		default:
			r.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
	h.mu.Unlock()
}

// Dropped is how many lines readers have lost.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Attach adds a reader: it gets the kept lines since f.Since, then every new
// line that matches f.
func (h *Hub) Attach(f Filter) (*Reader, []Line) {
	r := &Reader{C: make(chan Line, readerBuffer), h: h, filter: f}
	h.mu.Lock()
	defer h.mu.Unlock()
	var hist []Line
	if !f.Since.IsZero() {
		n := h.next
		if h.full {
			n = len(h.ring)
		}
		start := 0
		if h.full {
			start = h.next
		}
		for i := 0; i < n; i++ {
			l := h.ring[(start+i)%len(h.ring)]
			if !l.Time.Before(f.Since) && f.Match(&l) {
				hist = append(hist, l)
			}
		}
	}
	h.readers[r] = struct{}{}
	return r, hist
}

// Detach removes the reader.
func (r *Reader) Detach() {
	r.h.mu.Lock()
	delete(r.h.readers, r)
	r.h.mu.Unlock()
}

// TakeDropped returns and clears the count of lines this reader lost.
func (r *Reader) TakeDropped() uint64 { return r.dropped.Swap(0) }

// Stream sends the hub's lines that match f to out until ctx ends or out
// fails: history first, then live lines, with a Dropped line whenever the
// reader lost some.
func (h *Hub) Stream(ctx context.Context, f Filter, out func(Line) error) error {
	r, hist := h.Attach(f)
	defer r.Detach()
	for _, l := range hist {
		if err := out(l); err != nil {
			return err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-r.C:
			if err := out(l); err != nil {
				return err
			}
		case <-tick.C:
			if n := r.TakeDropped(); n > 0 {
				if err := out(Line{Time: time.Now(), Stream: "trace", Dropped: n,
					Text: fmt.Sprintf("%d lines dropped: this reader did not keep up", n)}); err != nil {
					return err
				}
			}
		}
	}
}

// Serve serves the hub on ln (a worker's trace socket): a client sends one
// JSON Filter line, then reads JSON lines.
func (h *Hub) Serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go h.serveConn(c)
	}
}

type wireFilter struct {
	Site, Vdir, Pool string
	Since            time.Time
}

func (h *Hub) serveConn(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var wf wireFilter
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&wf); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the reader went away
		var b [1]byte
		c.Read(b[:])
		cancel()
	}()
	w := bufio.NewWriter(c)
	enc := json.NewEncoder(w)
	h.Stream(ctx, Filter(wf), func(l Line) error {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := enc.Encode(l); err != nil {
			return err
		}
		return w.Flush()
	})
}

// ErrNotServing is Dial's error when nothing serves on the socket (yet).
var ErrNotServing = errors.New("trace: not serving")

// Dial reads the trace a worker serves on the unix socket path, calling out
// for each line, until ctx ends or the worker goes away.
func Dial(ctx context.Context, path string, f Filter, out func(Line) error) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotServing, err)
	}
	defer c.Close()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	if err := json.NewEncoder(c).Encode(wireFilter(f)); err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	for {
		var l Line
		if err := dec.Decode(&l); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := out(l); err != nil {
			return err
		}
	}
}

// Tag is what the app's output is tagged with: the request the writing
// thread serves.
type Tag struct {
	Request, Site, Vdir string
}

// Python returns the pyembed Options.Trace hook that publishes the app's
// output on h.
func (h *Hub) Python() func(stream, text string, tag any) {
	return func(stream, text string, tag any) {
		l := Line{Stream: stream, Text: text}
		if t, ok := tag.(*Tag); ok && t != nil {
			l.Request, l.Site, l.Vdir = t.Request, t.Site, t.Vdir
		}
		h.Publish(l)
	}
}
