// Package metrics counts what a wisp process serves, for the admin
// listener's /metrics (Prometheus text and OpenMetrics, through
// prometheus/client_golang).
//
// The request path touches only atomics of its own series (site, vdir,
// status class), found through a sync.Map read: no lock is shared across
// connections. A pool's workers send a Snapshot of their counters to the
// supervisor with their status reports (every second, and a last one when
// they stop); the supervisor adds the snapshot of each worker that is gone
// to the pool's retired totals, so that a pool's counters are one view of
// all its workers and never go backwards across a recycle.
package metrics

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Buckets are the upper bounds, in seconds, of the duration histograms.
var Buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Key names a series of requests.
type Key struct {
	Site, Vdir, Code string // Code: the status class, "2xx"
}

// series is one Key's counters.
type series struct {
	count    atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	sumNanos atomic.Uint64
	buckets  [16]atomic.Uint64 // per Buckets, then +Inf
}

// Counters are one process's request counters.
type Counters struct {
	series   sync.Map // Key → *series
	inflight atomic.Int64
	conns    atomic.Int64
	refused  sync.Map // reason → *atomic.Uint64
	spills   atomic.Uint64
	waitSum  atomic.Uint64
	waits    [16]atomic.Uint64
	waitN    atomic.Uint64
	// ASGI (asgi.go)
	wsOpen  atomic.Int64
	wsIn    atomic.Uint64
	wsOut   atomic.Uint64
	loopLag atomic.Int64 // nanoseconds, the last measurement
}

// New makes empty counters.
func New() *Counters { return &Counters{} }

// Class is a status's class label: "2xx".
func Class(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

func (c *Counters) get(k Key) *series {
	if s, ok := c.series.Load(k); ok {
		return s.(*series)
	}
	s, _ := c.series.LoadOrStore(k, &series{})
	return s.(*series)
}

func bucketOf(d time.Duration) int {
	sec := d.Seconds()
	for i, b := range Buckets {
		if sec <= b {
			return i
		}
	}
	return len(Buckets)
}

// Route is a site's vdir: its series by status class, found once (a
// server keeps one per mount) rather than per request.
type Route struct {
	c     *Counters
	site  string
	vdir  string
	codes [7]atomic.Pointer[series] // 0: other, 1..5: 1xx..5xx, 6: unused
}

// Route returns the route of a site's vdir.
func (c *Counters) Route(site, vdir string) *Route {
	if c == nil {
		return nil
	}
	return &Route{c: c, site: site, vdir: vdir}
}

// Request counts one answered request of the route.
func (r *Route) Request(status int, in, out int64, d time.Duration) {
	if r == nil {
		return
	}
	i := 0
	if status >= 100 && status <= 599 {
		i = status / 100
	}
	s := r.codes[i].Load()
	if s == nil {
		s = r.c.get(Key{r.site, r.vdir, Class(status)})
		r.codes[i].Store(s)
	}
	s.record(in, out, d)
}

// Request counts one answered request.
func (c *Counters) Request(site, vdir string, status int, in, out int64, d time.Duration) {
	if c == nil {
		return
	}
	c.get(Key{site, vdir, Class(status)}).record(in, out, d)
}

func (s *series) record(in, out int64, d time.Duration) {
	s.count.Add(1)
	s.bytesIn.Add(uint64(max(in, 0)))
	s.bytesOut.Add(uint64(max(out, 0)))
	s.sumNanos.Add(uint64(d))
	s.buckets[bucketOf(d)].Add(1)
}

// Begin and End count a request in flight.
func (c *Counters) Begin() {
	if c != nil {
		c.inflight.Add(1)
	}
}
func (c *Counters) End() {
	if c != nil {
		c.inflight.Add(-1)
	}
}

// Conn counts connections opening (+1) and closing (-1).
func (c *Counters) Conn(delta int64) {
	if c != nil {
		c.conns.Add(delta)
	}
}

// Wait counts the time a request waited for a Python thread.
func (c *Counters) Wait(d time.Duration) {
	if c == nil {
		return
	}
	c.waitN.Add(1)
	c.waitSum.Add(uint64(d))
	c.waits[bucketOf(d)].Add(1)
}

// Refused counts a request refused before the app (reason: "408", "413",
// "431", "503 queue full"...).
func (c *Counters) Refused(reason string) {
	if c == nil {
		return
	}
	v, ok := c.refused.Load(reason)
	if !ok {
		v, _ = c.refused.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Spilled counts a request body spilled to a temp file.
func (c *Counters) Spilled() {
	if c != nil {
		c.spills.Add(1)
	}
}

// WebSocketOpen counts WebSocket connections opening (+1) and closing (-1).
func (c *Counters) WebSocketOpen(delta int64) {
	if c != nil {
		c.wsOpen.Add(delta)
	}
}

// WebSocketMessage counts one WebSocket message: received from the client
// (in) or sent to it.
func (c *Counters) WebSocketMessage(in bool) {
	if c == nil {
		return
	}
	if in {
		c.wsIn.Add(1)
	} else {
		c.wsOut.Add(1)
	}
}

// LoopLag records how late the ASGI event loop answers (the last
// measurement, or how long an unanswered one has waited).
func (c *Counters) LoopLag(d time.Duration) {
	if c != nil {
		c.loopLag.Store(int64(max(d, 0)))
	}
}

// Histogram is a histogram's counts: per bucket (not cumulative, the last
// one +Inf), and its sum in seconds.
type Histogram struct {
	Counts []uint64 `json:"counts"`
	Sum    float64  `json:"sum"`
}

// Count is the histogram's number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

func (h *Histogram) add(o Histogram) {
	if len(h.Counts) < len(o.Counts) {
		h.Counts = append(h.Counts, make([]uint64, len(o.Counts)-len(h.Counts))...)
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.Sum += o.Sum
}

// Series is one Key's counters in a Snapshot.
type Series struct {
	Key
	Requests uint64    `json:"requests"`
	BytesIn  uint64    `json:"bytes_in"`
	BytesOut uint64    `json:"bytes_out"`
	Duration Histogram `json:"duration"`
}

// Snapshot is a process's counters at a moment: what a worker reports.
type Snapshot struct {
	Series   []Series          `json:"series,omitempty"`
	InFlight int64             `json:"in_flight"`
	Conns    int64             `json:"connections"`
	Queued   int64             `json:"queued"`         // waiting for a Python thread (set by the caller)
	Busy     int64             `json:"threads_busy"`   // Python threads running a request (set by the caller)
	GC       uint64            `json:"gc_collections"` // Python's garbage collections (set by the caller)
	Refused  map[string]uint64 `json:"refused,omitempty"`
	Spills   uint64            `json:"spills"`
	Wait     Histogram         `json:"wait"`
	// LogDropped is the access log lines dropped (set by the caller).
	LogDropped uint64 `json:"log_dropped"`
	// TraceDropped is the trace lines readers lost (set by the caller).
	TraceDropped uint64 `json:"trace_dropped"`
	// WebSocketsOpen is the WebSocket connections open (a gauge).
	WebSocketsOpen int64 `json:"websockets_open,omitempty"`
	// WebSocketIn and WebSocketOut count the WebSocket messages received
	// from clients and sent to them.
	WebSocketIn  uint64 `json:"websocket_messages_in,omitempty"`
	WebSocketOut uint64 `json:"websocket_messages_out,omitempty"`
	// LoopLag is how late the ASGI event loop answered, in seconds (a
	// gauge): the last measurement, or how long the loop has not answered
	// if that is longer. Snapshots add up to the worst of their loops.
	LoopLag float64 `json:"event_loop_lag,omitempty"`
}

func histOf(b *[16]atomic.Uint64, sumNanos uint64) Histogram {
	h := Histogram{Counts: make([]uint64, len(Buckets)+1), Sum: float64(sumNanos) / 1e9}
	for i := range h.Counts {
		h.Counts[i] = b[i].Load()
	}
	return h
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() Snapshot {
	var s Snapshot
	if c == nil {
		return s
	}
	c.series.Range(func(k, v any) bool {
		x := v.(*series)
		s.Series = append(s.Series, Series{Key: k.(Key), Requests: x.count.Load(), BytesIn: x.bytesIn.Load(),
			BytesOut: x.bytesOut.Load(), Duration: histOf(&x.buckets, x.sumNanos.Load())})
		return true
	})
	sort.Slice(s.Series, func(i, j int) bool { return less(s.Series[i].Key, s.Series[j].Key) })
	s.InFlight = c.inflight.Load()
	s.Conns = c.conns.Load()
	c.refused.Range(func(k, v any) bool {
		if s.Refused == nil {
			s.Refused = map[string]uint64{}
		}
		s.Refused[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	s.Spills = c.spills.Load()
	s.Wait = histOf(&c.waits, c.waitSum.Load())
	s.WebSocketsOpen = c.wsOpen.Load()
	s.WebSocketIn, s.WebSocketOut = c.wsIn.Load(), c.wsOut.Load()
	s.LoopLag = time.Duration(c.loopLag.Load()).Seconds()
	return s
}

func less(a, b Key) bool {
	if a.Site != b.Site {
		return a.Site < b.Site
	}
	if a.Vdir != b.Vdir {
		return a.Vdir < b.Vdir
	}
	return a.Code < b.Code
}

// Add adds o's counters to s (gauges too: the caller adds live workers'
// in-flight requests and leaves retired ones' out).
func (s *Snapshot) Add(o Snapshot) {
	idx := map[Key]int{}
	for i, x := range s.Series {
		idx[x.Key] = i
	}
	for _, x := range o.Series {
		i, ok := idx[x.Key]
		if !ok {
			s.Series = append(s.Series, Series{Key: x.Key})
			i = len(s.Series) - 1
			idx[x.Key] = i
		}
		y := &s.Series[i]
		y.Requests += x.Requests
		y.BytesIn += x.BytesIn
		y.BytesOut += x.BytesOut
		y.Duration.add(x.Duration)
	}
	sort.Slice(s.Series, func(i, j int) bool { return less(s.Series[i].Key, s.Series[j].Key) })
	s.InFlight += o.InFlight
	s.Conns += o.Conns
	s.Queued += o.Queued
	s.Busy += o.Busy
	s.GC += o.GC
	for k, v := range o.Refused {
		if s.Refused == nil {
			s.Refused = map[string]uint64{}
		}
		s.Refused[k] += v
	}
	s.Spills += o.Spills
	s.Wait.add(o.Wait)
	s.LogDropped += o.LogDropped
	s.TraceDropped += o.TraceDropped
	s.WebSocketsOpen += o.WebSocketsOpen
	s.WebSocketIn += o.WebSocketIn
	s.WebSocketOut += o.WebSocketOut
	s.LoopLag = max(s.LoopLag, o.LoopLag) // the worst loop: lags do not add up
}

// Retire clears the gauges of a snapshot whose process is gone, before it
// is added to a pool's retired totals: its counters stay, its requests in
// flight, open WebSockets and loop lag are no more.
func (s *Snapshot) Retire() {
	s.InFlight = 0
	s.WebSocketsOpen = 0
	s.LoopLag = 0
}
