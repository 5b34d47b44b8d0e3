package cli

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"wisp/internal/admin"
	"wisp/internal/config"
	"wisp/internal/dashboard"
	"wisp/internal/metrics"
	"wisp/internal/server"
	"wisp/internal/supervisor"
	"wisp/internal/trace"
)

// poolHealth is what the admin listener of a pool server reports.
type poolHealth struct {
	sup    *supervisor.Supervisor
	config func() *config.Config
}

func (h poolHealth) Dashboard() http.Handler {
	return dashboard.Handler(dashboard.Options{Target: h.sup, Config: h.config, Metrics: h.sup.Metrics, Trace: h.sup.Trace})
}

func (h poolHealth) Health() admin.Report {
	if !h.sup.Responsive() {
		return admin.NewReport([]string{"the supervisor does not answer, or every pool is stopped"})
	}
	return admin.NewReport(nil)
}

func (h poolHealth) Ready() admin.Report { return admin.NewReport(h.sup.Unready()) }

func (h poolHealth) Metrics() http.Handler { return metrics.Handler(h.sup.Metrics) }

// processHealth is what the admin listener of an in-process server reports.
type processHealth struct {
	srv      *server.Server
	draining *atomic.Bool
	counters *metrics.Counters
	extra    func(*metrics.Snapshot) // the access log's and trace's drop counts
	trace    func(ctx context.Context, f trace.Filter, out func(trace.Line) error) error
}

func (h processHealth) view() []metrics.PoolView {
	s := h.counters.Snapshot()
	h.extra(&s)
	return []metrics.PoolView{{Snap: s}}
}

func (h processHealth) Metrics() http.Handler { return metrics.Handler(h.view) }

func (h processHealth) Dashboard() http.Handler {
	return dashboard.Handler(dashboard.Options{Target: inProcessTarget{}, Metrics: h.view, Trace: h.trace})
}

func (h processHealth) Health() admin.Report {
	if ok, why := h.srv.Healthy(); !ok {
		return admin.NewReport([]string{why})
	}
	return admin.NewReport(nil)
}

func (h processHealth) Ready() admin.Report {
	var reasons []string
	if h.draining.Load() {
		reasons = append(reasons, "draining: the server is shutting down")
	}
	if ok, why := h.srv.Healthy(); !ok {
		reasons = append(reasons, why)
	}
	return admin.NewReport(reasons)
}

// startAdmin starts the admin listener when o.Addr is set (nil otherwise).
func startAdmin(o admin.Options, src admin.Source, log *slog.Logger) (*admin.Server, error) {
	if o.Addr == "" {
		return nil, nil
	}
	a, err := admin.Listen(o, src, log)
	if err != nil {
		return nil, err
	}
	log.Info("admin listener: the dashboard at /, /metrics, /healthz, /readyz", "addr", a.Addr())
	return a, nil
}
