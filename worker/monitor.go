package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
)

// readyTimeout bounds the readiness probe's call to Temporal.
const readyTimeout = 3 * time.Second

// monitor serves, on worker.metricsPort, the Temporal SDK's metrics of this worker
// (/metrics, in Prometheus text format, names prefixed temporal_), /healthz (the process
// runs) and /readyz (the worker is polling its task queue and Temporal answers). It starts
// before the worker dials Temporal, so /healthz answers while Temporal is still
// unreachable.
type monitor struct {
	// sdk is the handler the Temporal client reports its metrics through.
	sdk   client.MetricsHandler
	scope io.Closer
	srv   *http.Server
	addr  string
	// temporal is set once the worker polls its task queue.
	temporal atomic.Pointer[client.Client]
}

var errNotStarted = errors.New("worker not started yet")

// startMonitor listens on port (all interfaces) and serves until stop.
func startMonitor(port int, logger *slog.Logger) (*monitor, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:      reg,
		OnRegisterError: func(err error) { logger.Warn("temporal sdk metric not served", "error", err) },
	})
	// Names and label keys follow Prometheus's rules; label values keep their spelling, so
	// task_queue="metadata-backup" matches the configured task queue.
	sanitize := sdktally.PrometheusSanitizeOptions
	sanitize.ValueCharacters = tally.ValidCharacters{Ranges: []tally.SanitizeRange{{0, unicode.MaxRune}}}
	// Tally reports to the registry each second; Prometheus scrapes far less often.
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitize,
		// tally_internal_* counts tally's own scopes: nothing an operator acts on.
		OmitCardinalityMetrics: true,
	}, time.Second)
	m := &monitor{sdk: sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), scope: closer}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", health.Live)
	checks := []health.Check{{Name: "temporal", Fn: m.checkTemporal}}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		health.Ready(w, r, checks, readyTimeout, func(s string) string { return s })
	})
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		closer.Close()
		return nil, fmt.Errorf("worker.metricsPort: listen on :%d: %w", port, err)
	}
	m.addr = l.Addr().String()
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("worker metrics server stopped", "addr", m.addr, "error", err)
		}
	}()
	return m, nil
}

// ready marks the worker as polling through c: from now on /readyz asks Temporal.
func (m *monitor) ready(c client.Client) { m.temporal.Store(&c) }

func (m *monitor) checkTemporal(ctx context.Context) error {
	c := m.temporal.Load()
	if c == nil {
		return errNotStarted
	}
	if _, err := (*c).CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal health check: %w", err)
	}
	return nil
}

func (m *monitor) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	_ = m.scope.Close()
}
