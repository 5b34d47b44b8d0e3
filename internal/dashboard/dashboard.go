// Package dashboard is the admin listener's page: one HTML file embedded in
// the binary (no CDN, no build step), and the small JSON API it polls:
// pools and workers, sites and vdirs, request rate and latency (from the
// metrics counters), recent recycles and crashes, a live tail of the trace,
// and the recycle, start and stop buttons.
package dashboard

import (
	"context"
	_ "embed"
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
}

type vdir struct {
	Site     string   `json:"site"`
	Bindings []string `json:"bindings"`
	Vdir     string   `json:"vdir"`
	App      string   `json:"app"`
	Pool     string   `json:"pool"`
}

type status struct {
	PID         int     `json:"pid"`
	Config      string  `json:"config"`
	Pools       []pool  `json:"pools"`
	Vdirs       []vdir  `json:"vdirs"`
	Requests    uint64  `json:"requests"`     // all requests answered, for the rate chart
	DurationSum float64 `json:"duration_sum"` // their total time in seconds, for the latency chart
}

// Handler serves the page at / and its API under /api/.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
		w.Write(page)
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st := o.Target.Status()
		out := status{PID: st.PID, Config: st.Config}
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
			out.Pools = append(out.Pools, pool{PoolStatus: p, Recycles: v.Recycles, Crashes: v.Crashes})
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
