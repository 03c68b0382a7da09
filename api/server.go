package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
)

const (
	defaultListLimit = 1000
	maxListLimit     = 10000
	// readyTimeout bounds each readiness check.
	readyTimeout = 3 * time.Second
)

type server struct {
	snaps  *snapshots
	checks []health.Check
	log    *slog.Logger
	// redact removes secrets from error messages before they leave the process.
	redact  func(string) string
	metrics http.Handler
	// differ serves /backup/diff; nil leaves it out.
	differ *differ
}

// newServer serves snaps; backupInterval is served as backup_interval_seconds when not 0.
func newServer(snaps *snapshots, checks []health.Check, backupInterval time.Duration, log *slog.Logger, redact func(string) string) *server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		backupCollector{snaps: snaps, interval: backupInterval},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s := &server{snaps: snaps, checks: checks, log: log, redact: redact}
	// OpenMetrics stays off: it would append _total to the compatible counter names.
	s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	return s
}

func (s *server) handler() http.Handler {
	r := mux.NewRouter()
	get := []string{http.MethodGet, http.MethodHead}
	r.HandleFunc("/backup/latest", s.latest).Methods(get...)
	r.HandleFunc("/backup/list", s.list).Methods(get...)
	r.HandleFunc("/backup/diff", s.diff).Methods(get...)
	r.HandleFunc("/healthz", health.Live).Methods(get...)
	r.HandleFunc("/readyz", s.readyz).Methods(get...)
	r.HandleFunc("/metrics", s.serveMetrics).Methods(get...)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", req.Method, req.URL.Path))
	})
	return r
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *server) reply(w http.ResponseWriter, status int, body any) {
	if err := health.WriteJSON(w, status, body); err != nil {
		s.log.Debug("write response", "error", err)
	}
}

func (s *server) fail(w http.ResponseWriter, status int, msg string) {
	s.reply(w, status, errorBody{Error: s.redact(msg)})
}

// snapshot gets the current snapshot or answers 503 with the reason.
func (s *server) snapshot(w http.ResponseWriter, r *http.Request) (*snapshot, bool) {
	snap, err := s.snaps.Get(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			return nil, false // the client is gone
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(max(s.snaps.errTTL, time.Second).Seconds())))
		s.fail(w, http.StatusServiceUnavailable, err.Error())
		return nil, false
	}
	return snap, true
}

// query checks that r has only the allowed parameters, each at most once.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	q := r.URL.Query()
	out := map[string]string{}
	for k, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			if len(allowed) == 0 {
				return nil, fmt.Errorf("unknown query parameter %q: this endpoint takes none", k)
			}
			return nil, fmt.Errorf("unknown query parameter %q: want %s", k, strings.Join(allowed, ", "))
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		out[k] = vs[0]
	}
	return out, nil
}

func (s *server) latest(w http.ResponseWriter, r *http.Request) {
	if _, err := query(r); err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	snap, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	b, ok := snap.Latest()
	if !ok {
		s.fail(w, http.StatusNotFound, "no successful backup with its archive in the bucket yet")
		return
	}
	s.reply(w, http.StatusOK, b)
}

type listBody struct {
	Backups []catalog.Backup `json:"backups"`
	// NextPageToken, when present, fetches the next page: ?pageToken=<it>.
	NextPageToken string `json:"nextPageToken,omitempty"`
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q, err := query(r, "limit", "pageToken")
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := defaultListLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", v, maxListLimit))
			return
		}
		limit = n
	}
	token, hasToken := q["pageToken"]
	if hasToken && token == "" {
		s.fail(w, http.StatusBadRequest, "pageToken is empty: pass the nextPageToken of the previous page")
		return
	}
	snap, ok := s.snapshot(w, r)
	if !ok {
		return
	}
	page, next, err := snap.Page(token, limit)
	if errors.Is(err, catalog.ErrBadToken) {
		s.fail(w, http.StatusBadRequest, "pageToken: not a token this API issued")
		return
	}
	if page == nil {
		page = []catalog.Backup{}
	}
	s.reply(w, http.StatusOK, listBody{Backups: page, NextPageToken: next})
}

// readyz probes every dependency at once, each bounded by readyTimeout. It does not go
// through the snapshot cache: a cached success must not hide an outage that began since.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	health.Ready(w, r, s.checks, readyTimeout, s.redact)
}

// serveMetrics answers 503 with the reason when the snapshot cannot be taken, as the other
// endpoints do, rather than serving the process metrics alone: a failed scrape is what
// monitoring notices.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.snapshot(w, r); !ok {
		return
	}
	s.metrics.ServeHTTP(w, r)
}
