package cli

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"wisp/internal/admin"
	"wisp/internal/metrics"
	"wisp/internal/server"
	"wisp/internal/supervisor"
)

// poolHealth is what the admin listener of a pool server reports.
type poolHealth struct{ sup *supervisor.Supervisor }

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
}

func (h processHealth) Metrics() http.Handler {
	return metrics.Handler(func() []metrics.PoolView {
		s := h.counters.Snapshot()
		h.extra(&s)
		return []metrics.PoolView{{Snap: s}}
	})
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

// startAdmin starts the admin listener when addr is set (nil otherwise).
func startAdmin(addr, token string, src admin.Source, log *slog.Logger) (*admin.Server, error) {
	if addr == "" {
		return nil, nil
	}
	a, err := admin.Listen(addr, token, src, log)
	if err != nil {
		return nil, err
	}
	log.Info("admin listener: /healthz and /readyz", "addr", a.Addr())
	return a, nil
}
