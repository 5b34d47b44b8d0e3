// Package dashboard is the admin listener's page: one HTML file embedded in
// the binary (no CDN, no build step), and the small JSON API it polls:
// pools and workers, sites and vdirs, each pool's request counters and
// duration histogram (the page turns two successive polls into a request
// rate, p50/p99 latency and an error rate), recent recycles and crashes, a
// live tail of the trace, the recycle, start and stop buttons, and the
// favicon.
package dashboard

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/metrics"
	"wisp/internal/poolstate"
	"wisp/internal/trace"
)

//go:embed index.html
var page []byte

// favicon is the page's icon, an SVG: served at /favicon.ico (which browsers
// and crawlers ask for) and inlined in the page as a data: link, so that a
// listener with a token, which answers /favicon.ico only with it, needs no
// request for it.
//
//go:embed favicon.svg
var favicon []byte

// Options are what the dashboard shows and acts on.
type Options struct {
	Target  control.Target                                                              // status and pool actions
	Config  func() *config.Config                                                       // sites and vdirs; nil in-process
	Metrics func() []metrics.PoolView                                                   // counters
	Trace   func(ctx context.Context, f trace.Filter, out func(trace.Line) error) error // the live tail
}

// pool is a pool as the page shows it.
type pool struct {
	poolstate.PoolStatus
	Recycles map[string]uint64 `json:"recycles,omitempty"`
	Crashes  uint64            `json:"crashes"`
	Traffic  traffic           `json:"traffic"`
}

// traffic is a pool's request counters since it was configured (they never
// go backwards across a recycle): the page subtracts two polls.
type traffic struct {
	Requests uint64            `json:"requests"` // answered
	Errors   uint64            `json:"errors"`   // answered with a 5xx
	Refused  uint64            `json:"refused"`  // refused before the app ran (408, 413, 503 queue full...)
	Duration metrics.Histogram `json:"duration"` // per bucket of status.Buckets, then +Inf
	// ASGI: how late the event loop answers (the worst worker's), in
	// seconds, and the WebSockets open now.
	LoopLag    float64 `json:"loop_lag,omitempty"`
	WebSockets int64   `json:"websockets_open,omitempty"`
}

// trafficOf sums a pool's series.
func trafficOf(s metrics.Snapshot) traffic {
	t := traffic{Duration: metrics.Histogram{Counts: make([]uint64, len(metrics.Buckets)+1)}}
	for _, x := range s.Series {
		t.Requests += x.Requests
		if x.Code == "5xx" {
			t.Errors += x.Requests
		}
		for i, c := range x.Duration.Counts {
			if i < len(t.Duration.Counts) {
				t.Duration.Counts[i] += c
			}
		}
		t.Duration.Sum += x.Duration.Sum
	}
	for _, n := range s.Refused {
		t.Refused += n
	}
	t.LoopLag, t.WebSockets = s.LoopLag, s.WebSocketsOpen
	return t
}

type vdir struct {
	Site     string   `json:"site"`
	Bindings []string `json:"bindings"`
	Vdir     string   `json:"vdir"`
	App      string   `json:"app"`
	Pool     string   `json:"pool"`
}

type status struct {
	PID    int    `json:"pid"`
	Config string `json:"config"`
	Pools  []pool `json:"pools"`
	// Process is an in-process server's traffic (wisp run without
	// --workers: no pools).
	Process *traffic `json:"process,omitempty"`
	// Buckets are the duration histograms' upper bounds, in seconds.
	Buckets     []float64 `json:"buckets"`
	Vdirs       []vdir    `json:"vdirs"`
	Requests    uint64    `json:"requests"`     // all requests answered, for the rate chart
	DurationSum float64   `json:"duration_sum"` // their total time in seconds, for the latency chart
}

// Handler serves the page at / and its API under /api/.
func Handler(o Options) http.Handler {
	body := bytes.Replace(page, []byte("@FAVICON@"), []byte("data:image/svg+xml;base64,"+base64.StdEncoding.EncodeToString(favicon)), 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
		w.Write(body)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "max-age=86400")
		w.Write(favicon)
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st := o.Target.Status()
		out := status{PID: st.PID, Config: st.Config, Buckets: metrics.Buckets}
		views := map[string]metrics.PoolView{}
		if o.Metrics != nil {
			for _, v := range o.Metrics() {
				views[v.Pool] = v
				for _, s := range v.Snap.Series {
					out.Requests += s.Requests
					out.DurationSum += s.Duration.Sum
				}
			}
		}
		for _, p := range st.Pools {
			v := views[p.Name]
			out.Pools = append(out.Pools, pool{PoolStatus: p, Recycles: v.Recycles, Crashes: v.Crashes, Traffic: trafficOf(v.Snap)})
		}
		if v, ok := views[""]; ok && len(st.Pools) == 0 {
			t := trafficOf(v.Snap)
			out.Process = &t
		}
		if o.Config != nil {
			if c := o.Config(); c != nil {
				for _, s := range c.Sites {
					for _, v := range s.Vdirs {
						out.Vdirs = append(out.Vdirs, vdir{Site: s.Name, Bindings: s.Bindings, Vdir: v.Path, App: v.App, Pool: v.Pool})
					}
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	for _, verb := range []string{"recycle", "start", "stop"} {
		mux.HandleFunc("POST /api/pools/{pool}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("pool")
			if err := control.PoolAction(o.Target, verb, name); err != nil {
				writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"pool": name, "done": verb})
		})
	}
	mux.HandleFunc("GET /api/trace", func(w http.ResponseWriter, r *http.Request) {
		if o.Trace == nil {
			http.NotFound(w, r)
			return
		}
		f := trace.Filter{}
		if d, err := time.ParseDuration(r.URL.Query().Get("since")); err == nil && d > 0 {
			f.Since = time.Now().Add(-d)
		}
		control.StreamTrace(w, r, f, o.Trace)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
