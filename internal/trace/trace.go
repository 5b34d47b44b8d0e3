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
	"strconv"
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

	// A request's line is kept as its parts and written out (Text, Request)
	// only when a reader takes it: publishing costs the request path no
	// formatting.
	rid    ID
	req    bool
	method string
	target string
	status int
	bytes  int64
	dur    time.Duration
}

// ID is a request id: a client's token, or a number written as 16 hex
// digits when it is read.
type ID struct {
	s string
	n uint64
}

// NewID is the id n.
func NewID(n uint64) ID { return ID{n: n} }

// IDOf is a client's id (copied: the request's memory is reused).
func IDOf(s string) ID { return ID{s: strings.Clone(s)} }

// IsZero reports an unset id.
func (id ID) IsZero() bool { return id.s == "" && id.n == 0 }

// String writes the id.
func (id ID) String() string {
	if id.s != "" || id.n == 0 {
		return id.s
	}
	return string(id.AppendTo(make([]byte, 0, 16)))
}

// AppendTo appends the id to b.
func (id ID) AppendTo(b []byte) []byte {
	if id.s != "" || id.n == 0 {
		return append(b, id.s...)
	}
	const hexdigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexdigits[(id.n>>uint(shift))&15])
	}
	return b
}

// Request publishes a request's line: method, target, status, bytes sent
// and duration, tagged with its site, vdir and id.
func (h *Hub) Request(start time.Time, site, vdir string, id ID, method, target string, status int, bytes int64, dur time.Duration) {
	if h == nil {
		return
	}
	h.Publish(Line{Time: start, Site: site, Vdir: vdir, Stream: "request", rid: id, req: true,
		method: method, target: strings.Clone(target), status: status, bytes: bytes, dur: dur})
}

// finish writes out a line's Text and Request from its parts.
func (l *Line) finish() {
	if l.Request == "" && !l.rid.IsZero() {
		l.Request = l.rid.String()
	}
	if l.req && l.Text == "" {
		var b []byte
		b = append(b, l.method...)
		b = append(b, ' ')
		b = appendQuoted(b, l.target)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(l.status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, l.bytes, 10)
		b = append(b, "B "...)
		b = append(b, l.dur.Round(10*time.Microsecond).String()...)
		l.Text = string(b)
	}
}

// appendQuoted appends s with control bytes escaped, so that a client
// cannot forge trace lines.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			q := strconv.QuoteToASCII(s)
			return append(b, q[1:len(q)-1]...)
		}
	}
	return append(b, s...)
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
		l.finish()
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
			l.finish()
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
	// Close the connection when ctx ends, without a goroutine that would
	// outlive this call (as long as the caller's ctx: the dashboard's tail
	// while workers come and go).
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
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
	Request    ID
	Site, Vdir string
}

// Python returns the pyembed Options.Trace hook that publishes the app's
// output on h.
func (h *Hub) Python() func(stream, text string, tag any) {
	return func(stream, text string, tag any) {
		l := Line{Stream: stream, Text: text}
		if t, ok := tag.(*Tag); ok && t != nil {
			l.rid, l.Site, l.Vdir = t.Request, t.Site, t.Vdir
		}
		h.Publish(l)
	}
}
