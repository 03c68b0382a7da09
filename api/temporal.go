package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// runSource is what the API needs of Temporal: the BackupWorkflow runs of one target.
type runSource interface {
	// Counts returns how many runs have closed and how many of those did not complete
	// (failed, timed out, terminated or cancelled).
	Counts(ctx context.Context) (closed, failed int64, err error)
	// Completed returns the backups of the most recently closed completed runs.
	Completed(ctx context.Context) ([]catalog.Backup, error)
	// Lifecycle reads the target's completed PruneWorkflow runs.
	Lifecycle(ctx context.Context) (lifecycle, error)
	// Ping checks that Temporal answers queries about the target.
	Ping(ctx context.Context) error
}

// lifecycle is what the target's prune runs (other than the prunes inside backups) and
// restore drills say.
type lifecycle struct {
	// PruneDeleted counts the archives completed PruneWorkflow runs deleted.
	PruneDeleted int64
	// Verified are the completed VerifyWorkflow runs' results, newest closed first;
	// VerifyFailed counts the runs that did not complete.
	Verified     []result.Verify
	VerifyFailed int64
}

// temporalRuns reads runs from Temporal's visibility store, and results from history.
// Results are kept by run ID: a closed run's result never changes, so each is fetched once.
type temporalRuns struct {
	c      client.Client
	base   string // the visibility query that selects this target's runs
	prunes string // the same for PruneWorkflow
	drills string // and for VerifyWorkflow
	// maxRuns caps the runs listed per refresh; older runs' archives appear as bucket
	// entries.
	maxRuns int
	// fetchers is how many results are fetched at once.
	fetchers int
	log      *slog.Logger

	mu      sync.Mutex
	results map[string]runResult
	// pruned holds the archives each completed PruneWorkflow run deleted, by run ID.
	pruned map[string]int64
	// verified holds each completed VerifyWorkflow run's result, by run ID (nil: not one).
	verified map[string]*result.Verify
}

type runResult struct {
	backup catalog.Backup
	ok     bool // false: the result could not be decoded, skip the run
}

func newTemporalRuns(c client.Client, target string, maxRuns int, log *slog.Logger) *temporalRuns {
	return &temporalRuns{
		c:        c,
		base:     targetQuery(target),
		prunes:   typeQuery(result.PruneWorkflowName, target),
		drills:   typeQuery(result.VerifyWorkflowName, target),
		verified: map[string]*result.Verify{},
		maxRuns:  maxRuns,
		fetchers: 4,
		log:      log,
		results:  map[string]runResult{},
		pruned:   map[string]int64{},
	}
}

// targetQuery selects the BackupWorkflow runs tagged with target. Only this deployment's
// runs carry its target, so deployments sharing a namespace never see each other's.
func targetQuery(target string) string { return typeQuery(result.BackupWorkflowName, target) }

// typeQuery selects the runs of one workflow type tagged with target.
func typeQuery(workflowType, target string) string {
	return fmt.Sprintf("WorkflowType = %s AND %s = %s",
		quote(workflowType), result.TargetAttributeName, quote(target))
}

// quote makes s a string literal of Temporal's visibility query language, which takes
// backslash escapes inside single quotes.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

const (
	closedFilter    = " AND ExecutionStatus != 'Running'"
	failedFilter    = " AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated', 'Canceled')"
	completedFilter = " AND ExecutionStatus = 'Completed'"
)

// count counts the runs query selects; what names them in errors.
func (t *temporalRuns) count(ctx context.Context, what, query string) (int64, error) {
	resp, err := t.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, fmt.Errorf("count %s %s runs: %w", what, result.BackupWorkflowName, err)
	}
	return resp.GetCount(), nil
}

func (t *temporalRuns) Counts(ctx context.Context) (closed, failed int64, err error) {
	if closed, err = t.count(ctx, "closed", t.base+closedFilter); err != nil {
		return 0, 0, err
	}
	if failed, err = t.count(ctx, "failed", t.base+failedFilter); err != nil {
		return 0, 0, err
	}
	return closed, failed, nil
}

// Ping runs the same kind of query as a refresh, so it also fails when the namespace or
// the search attribute is missing.
func (t *temporalRuns) Ping(ctx context.Context) error {
	_, err := t.count(ctx, "all", t.base)
	return err
}

type runRef struct{ workflowID, runID string }

func (t *temporalRuns) Completed(ctx context.Context) ([]catalog.Backup, error) {
	refs, err := t.listCompleted(ctx, t.base)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	todo := unfetched(t.results, refs)
	t.mu.Unlock()

	if err := t.fetchAll(ctx, todo, t.fetch); err != nil {
		return nil, err
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]catalog.Backup, 0, len(refs))
	for _, r := range refs {
		if res, ok := t.results[r.runID]; ok && res.ok {
			out = append(out, res.backup)
		}
	}
	return out, nil
}

// Lifecycle sums what the target's completed PruneWorkflow runs deleted (the most recent
// maxRuns of them); each run's result is fetched once.
func (t *temporalRuns) Lifecycle(ctx context.Context) (lifecycle, error) {
	refs, err := t.listCompleted(ctx, t.prunes)
	if err != nil {
		return lifecycle{}, err
	}
	var todo []runRef
	t.mu.Lock()
	listed := make(map[string]bool, len(refs))
	for _, r := range refs {
		listed[r.runID] = true
		if _, ok := t.pruned[r.runID]; !ok {
			todo = append(todo, r)
		}
	}
	for id := range t.pruned {
		if !listed[id] {
			delete(t.pruned, id)
		}
	}
	t.mu.Unlock()
	if err := t.fetchAll(ctx, todo, t.fetchPrune); err != nil {
		return lifecycle{}, err
	}
	var lc lifecycle
	t.mu.Lock()
	for _, r := range refs {
		lc.PruneDeleted += t.pruned[r.runID]
	}
	t.mu.Unlock()
	if lc.VerifyFailed, err = t.count(ctx, "failed verify", t.drills+failedFilter); err != nil {
		return lifecycle{}, err
	}
	if lc.Verified, err = t.verifications(ctx); err != nil {
		return lifecycle{}, err
	}
	return lc, nil
}

// verifications returns the results of the target's completed VerifyWorkflow runs, newest
// closed first, each fetched once.
func (t *temporalRuns) verifications(ctx context.Context) ([]result.Verify, error) {
	refs, err := t.listCompleted(ctx, t.drills)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	todo := unfetched(t.verified, refs)
	t.mu.Unlock()
	err = t.fetchAll(ctx, todo, func(ctx context.Context, r runRef) error {
		var raw json.RawMessage
		err := t.c.GetWorkflow(ctx, r.workflowID, r.runID).Get(ctx, &raw)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			return nil
		case err != nil:
			return fmt.Errorf("get result of workflow %s run %s: %w", r.workflowID, r.runID, err)
		}
		var v *result.Verify
		if err := json.Unmarshal(raw, &v); err != nil || v == nil || v.Name == "" {
			v = nil
		}
		t.mu.Lock()
		t.verified[r.runID] = v
		t.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []result.Verify
	for _, r := range refs {
		if v := t.verified[r.runID]; v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

func (t *temporalRuns) fetchPrune(ctx context.Context, r runRef) error {
	var raw json.RawMessage
	err := t.c.GetWorkflow(ctx, r.workflowID, r.runID).Get(ctx, &raw)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil // deleted since it was listed
	case err != nil:
		return fmt.Errorf("get result of workflow %s run %s: %w", r.workflowID, r.runID, err)
	}
	// A result that does not decode (another version of the workflow?) counts nothing.
	var res result.Prune
	if err := json.Unmarshal(raw, &res); err != nil {
		t.log.Warn("skipping a PruneWorkflow result that is not a prune", "workflowId", r.workflowID, "runId", r.runID, "error", err)
	}
	t.mu.Lock()
	t.pruned[r.runID] = int64(res.Deleted)
	t.mu.Unlock()
	return nil
}

// listCompleted pages through the completed runs base selects, newest closed first, up to
// maxRuns runs.
func (t *temporalRuns) listCompleted(ctx context.Context, base string) ([]runRef, error) {
	query := base + completedFilter
	var refs []runRef
	var token []byte
	for len(refs) < t.maxRuns {
		resp, err := t.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         query,
			PageSize:      int32(min(t.maxRuns-len(refs), 1000)),
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list completed runs (%s): %w", base, err)
		}
		for _, e := range resp.GetExecutions() {
			if len(refs) == t.maxRuns {
				break
			}
			refs = append(refs, runRef{workflowID: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId()})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	return refs, nil
}

// unfetched returns the refs whose result cache has none yet, and drops from cache the runs
// refs no longer lists (aged out of retention, or past maxRuns). The caller holds t.mu.
func unfetched[V any](cache map[string]V, refs []runRef) []runRef {
	var todo []runRef
	listed := make(map[string]bool, len(refs))
	for _, r := range refs {
		listed[r.runID] = true
		if _, ok := cache[r.runID]; !ok {
			todo = append(todo, r)
		}
	}
	for id := range cache {
		if !listed[id] {
			delete(cache, id)
		}
	}
	return todo
}

// fetchAll fetches the results of refs with fetch, a few at a time. Results fetched before
// an error are kept, so a refresh cut short by its timeout still makes progress for the next
// one.
func (t *temporalRuns) fetchAll(ctx context.Context, refs []runRef, fetch func(context.Context, runRef) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan runRef)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(t.fetchers, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if err := fetch(ctx, r); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for _, r := range refs {
		if ctx.Err() != nil {
			break
		}
		work <- r
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return fmt.Errorf("fetch workflow results: %w", ctx.Err())
	}
	return firstErr
}

func (t *temporalRuns) fetch(ctx context.Context, r runRef) error {
	var raw json.RawMessage
	err := t.c.GetWorkflow(ctx, r.workflowID, r.runID).Get(ctx, &raw)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil // deleted since it was listed; the next listing will not have it
	case err != nil:
		return fmt.Errorf("get result of workflow %s run %s: %w", r.workflowID, r.runID, err)
	}
	var res result.Backup
	if err := json.Unmarshal(raw, &res); err != nil || res.Name == "" {
		// Not a result this API understands (another version of the workflow?). Skipping
		// it leaves its archive, if any, listed from the bucket.
		t.log.Warn("skipping a BackupWorkflow result that is not a backup", "workflowId", r.workflowID, "runId", r.runID, "error", err)
		t.store(r, runResult{})
		return nil
	}
	t.store(r, runResult{backup: fromResult(res, r), ok: true})
	return nil
}

func (t *temporalRuns) store(r runRef, res runResult) {
	t.mu.Lock()
	t.results[r.runID] = res
	t.mu.Unlock()
}

// fromResult is a run's entry in the list.
func fromResult(res result.Backup, r runRef) catalog.Backup {
	return catalog.Backup{
		Name:              res.Name,
		URL:               res.URL,
		Time:              res.Time.UTC(),
		Counts:            &res.Counts,
		SizeNonCompressed: &res.SizeNonCompressed,
		SizeCompressed:    res.SizeCompressed,
		ZxidStart:         res.ZxidStart,
		ZxidEnd:           res.ZxidEnd,
		Roles:             res.Roles,
		SHA256:            res.SHA256,
		Durations:         &res.Durations,
		Prune:             res.Prune,
		WorkflowID:        r.workflowID,
		RunID:             r.runID,
		Source:            catalog.FromTemporal,
	}
}
