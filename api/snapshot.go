package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// snapshot is everything the endpoints and metrics serve, read from Temporal and the bucket
// in one refresh, so that /backup/latest and /metrics always agree.
type snapshot struct {
	catalog.Snapshot
	// Closed and Failed count this target's BackupWorkflow runs in visibility.
	Closed, Failed int64
	// PruneDeleted counts the archives the prunes of completed BackupWorkflow and
	// PruneWorkflow runs deleted.
	PruneDeleted int64
	// LastVerification is the newest completed verification; VerifyFailed counts the
	// verifications that did not complete.
	LastVerification *result.Verify
	VerifyFailed     int64
}

// snapshots caches the latest snapshot for ttl. Concurrent callers share one refresh, which
// runs detached from any caller (a client that gives up does not cancel it for the others)
// and is bounded by timeout, so no request waits longer than that. A failed refresh is
// remembered for errTTL, so that an outage does not turn every request into a new attempt.
type snapshots struct {
	runs    runSource
	cat     *catalog.Catalog
	ttl     time.Duration
	errTTL  time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	// redact removes secrets from errors before they are logged.
	redact func(string) string

	mu       sync.Mutex
	last     *refresh // the latest finished refresh, nil before the first
	inflight *refresh
}

type refresh struct {
	done chan struct{}
	at   time.Time
	snap *snapshot
	err  error
}

func newSnapshots(runs runSource, cat *catalog.Catalog, ttl, timeout time.Duration, log *slog.Logger) *snapshots {
	return &snapshots{runs: runs, cat: cat, ttl: ttl, errTTL: min(ttl, time.Second), timeout: timeout, now: time.Now, log: log,
		redact: func(s string) string { return s }}
}

// Get returns a snapshot no older than ttl, or the error of the refresh that tried to take
// one. It returns ctx's error if ctx ends first.
func (s *snapshots) Get(ctx context.Context) (*snapshot, error) {
	s.mu.Lock()
	if r := s.last; r != nil {
		age := s.now().Sub(r.at)
		if (r.err == nil && age < s.ttl) || (r.err != nil && age < s.errTTL) {
			s.mu.Unlock()
			return r.snap, r.err
		}
	}
	r := s.inflight
	if r == nil {
		r = &refresh{done: make(chan struct{})}
		s.inflight = r
		go s.run(r)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.snap, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *snapshots) run(r *refresh) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	r.snap, r.err = s.take(ctx)
	r.at = s.now()
	if r.err != nil && ctx.Err() != nil {
		r.err = fmt.Errorf("%w (refresh timed out after %s)", r.err, s.timeout)
	}
	if r.err != nil {
		s.log.Warn("refresh from Temporal and the bucket failed", "error", s.redact(r.err.Error()))
	}
	s.mu.Lock()
	s.last, s.inflight = r, nil
	s.mu.Unlock()
	close(r.done)
}

func (s *snapshots) take(ctx context.Context) (*snapshot, error) {
	var snap snapshot
	var err error
	if snap.Closed, snap.Failed, err = s.runs.Counts(ctx); err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	runs, err := s.runs.Completed(ctx)
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	lc, err := s.runs.Lifecycle(ctx)
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	snap.PruneDeleted = lc.PruneDeleted
	for _, r := range runs {
		if r.Prune != nil {
			snap.PruneDeleted += int64(r.Prune.Deleted)
		}
	}
	if snap.Snapshot, err = s.cat.Build(ctx, runs); err != nil {
		return nil, fmt.Errorf("bucket: %w", err)
	}
	snap.VerifyFailed = lc.VerifyFailed
	verified := map[string]catalog.Verified{}
	for i, v := range lc.Verified {
		if i == 0 || v.VerifiedAt.After(snap.LastVerification.VerifiedAt) {
			snap.LastVerification = &lc.Verified[i]
		}
		if have, ok := verified[v.Name]; !ok || v.VerifiedAt.After(have.At) {
			verified[v.Name] = catalog.Verified{At: v.VerifiedAt, Method: v.Method}
		}
	}
	for i := range snap.Backups {
		if v, ok := verified[snap.Backups[i].Name]; ok {
			snap.Backups[i].LastVerified = &v
		}
	}
	return &snap, nil
}
