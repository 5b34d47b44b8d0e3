package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PoolView is one pool's counters (or the in-process server's, Pool "") and
// its workers, as /metrics shows them.
type PoolView struct {
	Pool           string
	State          string // running, idle, stopped ("" in-process)
	Snap           Snapshot
	Workers        []WorkerView
	Recycles       map[string]uint64
	Crashes        uint64
	RapidFailStops uint64
}

// WorkerView is one worker process.
type WorkerView struct {
	PID   int
	State string
	RSS   int64 // bytes
}

var (
	dRequests = prometheus.NewDesc("wisp_requests_total", "Requests answered, by site, vdir, pool and status class.",
		[]string{"site", "vdir", "pool", "code"}, nil)
	dDuration = prometheus.NewDesc("wisp_request_duration_seconds", "Time from a request's head to its last byte sent.",
		[]string{"site", "vdir", "pool", "code"}, nil)
	dBytesIn = prometheus.NewDesc("wisp_request_bytes_total", "Request body bytes declared by Content-Length.",
		[]string{"site", "vdir", "pool"}, nil)
	dBytesOut = prometheus.NewDesc("wisp_response_bytes_total", "Response body bytes sent.",
		[]string{"site", "vdir", "pool"}, nil)
	dInFlight = prometheus.NewDesc("wisp_requests_in_flight", "Requests being answered.", []string{"pool"}, nil)
	dGC       = prometheus.NewDesc("wisp_python_gc_collections_total", "Collections of Python's garbage collector, all generations.", []string{"pool"}, nil)
	dWait     = prometheus.NewDesc("wisp_python_thread_wait_seconds", "Time requests waited in the queue for a Python thread.", []string{"pool"}, nil)
	dQueued   = prometheus.NewDesc("wisp_requests_queued", "Requests waiting for a Python thread.", []string{"pool"}, nil)
	dBusy     = prometheus.NewDesc("wisp_python_threads_busy", "Python threads running a request.", []string{"pool"}, nil)
	dConns    = prometheus.NewDesc("wisp_connections_open", "Client connections open.", []string{"pool"}, nil)
	dIdle     = prometheus.NewDesc("wisp_connections_idle", "Client connections open with no request in flight (keep-alive).", []string{"pool"}, nil)
	dRefused  = prometheus.NewDesc("wisp_requests_refused_total",
		"Requests refused before an app ran them, by reason (408, 413, 431, 400, 503 queue full...).", []string{"pool", "reason"}, nil)
	dSpills       = prometheus.NewDesc("wisp_body_spills_total", "Request bodies spilled to a temp file.", []string{"pool"}, nil)
	dLogDropped   = prometheus.NewDesc("wisp_access_log_dropped_total", "Access log lines dropped because the log did not keep up.", []string{"pool"}, nil)
	dTraceDropped = prometheus.NewDesc("wisp_trace_dropped_total", "Trace lines lost by readers that did not keep up.", []string{"pool"}, nil)
	dWorkers      = prometheus.NewDesc("wisp_workers", "Worker processes by state.", []string{"pool", "state"}, nil)
	dRSS          = prometheus.NewDesc("wisp_worker_resident_memory_bytes", "Resident memory of each worker process.", []string{"pool", "pid"}, nil)
	dRecycles     = prometheus.NewDesc("wisp_worker_recycles_total", "Workers recycled, by reason.", []string{"pool", "reason"}, nil)
	dCrashes      = prometheus.NewDesc("wisp_worker_crashes_total", "Worker processes that died on their own or failed to start.", []string{"pool"}, nil)
	dRapidFail    = prometheus.NewDesc("wisp_pool_rapid_fail_stops_total", "Times rapid-fail protection stopped the pool.", []string{"pool"}, nil)
	dWSOpen       = prometheus.NewDesc("wisp_websocket_connections_open", "WebSocket connections open.", []string{"pool"}, nil)
	dWSMessages   = prometheus.NewDesc("wisp_websocket_messages_total", "WebSocket messages received from clients (in) and sent to them (out).",
		[]string{"pool", "direction"}, nil)
	dLoopLag = prometheus.NewDesc("wisp_event_loop_lag_seconds",
		"How late the ASGI event loop answers a probe Go posts every 250ms (the last one, or the one still unanswered); a pool shows its worst worker.",
		[]string{"pool"}, nil)
	dPoolUp = prometheus.NewDesc("wisp_pool_running", "1 while the pool runs (or is idle, started on demand), 0 when stopped.", []string{"pool"}, nil)
)

// collector turns PoolViews into Prometheus metrics at each scrape.
type collector struct{ src func() []PoolView }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRequests, dDuration, dBytesIn, dBytesOut, dInFlight, dGC, dWait, dQueued, dBusy, dConns, dIdle, dRefused, dSpills, dLogDropped,
		dTraceDropped, dWSOpen, dWSMessages, dLoopLag, dWorkers, dRSS, dRecycles, dCrashes, dRapidFail, dPoolUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range c.src() {
		bytes := map[[2]string][2]uint64{}
		for _, s := range p.Snap.Series {
			counter(dRequests, s.Requests, s.Site, s.Vdir, p.Pool, s.Code)
			ch <- prometheus.MustNewConstHistogram(dDuration, s.Duration.Count(), s.Duration.Sum, cumulative(s.Duration),
				s.Site, s.Vdir, p.Pool, s.Code)
			k := [2]string{s.Site, s.Vdir}
			b := bytes[k]
			bytes[k] = [2]uint64{b[0] + s.BytesIn, b[1] + s.BytesOut}
		}
		for k, b := range bytes {
			counter(dBytesIn, b[0], k[0], k[1], p.Pool)
			counter(dBytesOut, b[1], k[0], k[1], p.Pool)
		}
		gauge(dInFlight, float64(p.Snap.InFlight), p.Pool)
		ch <- prometheus.MustNewConstHistogram(dWait, p.Snap.Wait.Count(), p.Snap.Wait.Sum, cumulative(p.Snap.Wait), p.Pool)
		gauge(dQueued, float64(p.Snap.Queued), p.Pool)
		counter(dGC, p.Snap.GC, p.Pool)
		gauge(dBusy, float64(p.Snap.Busy), p.Pool)
		gauge(dConns, float64(p.Snap.Conns), p.Pool)
		gauge(dIdle, float64(max(p.Snap.Conns-p.Snap.InFlight, 0)), p.Pool)
		for reason, n := range p.Snap.Refused {
			counter(dRefused, n, p.Pool, reason)
		}
		counter(dSpills, p.Snap.Spills, p.Pool)
		counter(dLogDropped, p.Snap.LogDropped, p.Pool)
		counter(dTraceDropped, p.Snap.TraceDropped, p.Pool)
		gauge(dWSOpen, float64(p.Snap.WebSocketsOpen), p.Pool)
		counter(dWSMessages, p.Snap.WebSocketIn, p.Pool, "in")
		counter(dWSMessages, p.Snap.WebSocketOut, p.Pool, "out")
		gauge(dLoopLag, p.Snap.LoopLag, p.Pool)
		if p.State == "" {
			continue // in-process: no workers, no pool
		}
		states := map[string]float64{"starting": 0, "ready": 0, "draining": 0}
		for _, w := range p.Workers {
			states[w.State]++
			gauge(dRSS, float64(w.RSS), p.Pool, strconv.Itoa(w.PID))
		}
		for st, n := range states {
			gauge(dWorkers, n, p.Pool, st)
		}
		for reason, n := range p.Recycles {
			counter(dRecycles, n, p.Pool, reason)
		}
		counter(dCrashes, p.Crashes, p.Pool)
		counter(dRapidFail, p.RapidFailStops, p.Pool)
		up := 1.0
		if p.State == "stopped" {
			up = 0
		}
		gauge(dPoolUp, up, p.Pool)
	}
}

// cumulative is a histogram's buckets as Prometheus wants them: upper bound
// → observations at or below it (+Inf is implied by the count).
func cumulative(h Histogram) map[float64]uint64 {
	out := make(map[float64]uint64, len(Buckets))
	var n uint64
	for i, b := range Buckets {
		if i < len(h.Counts) {
			n += h.Counts[i]
		}
		out[b] = n
	}
	return out
}

// Handler serves /metrics for src, with the Go runtime's and the process's
// own collectors, in Prometheus text or OpenMetrics as the scraper asks.
func Handler(src func() []PoolView) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
