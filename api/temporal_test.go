package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// fakeClient answers the three calls temporalRuns makes. The embedded nil Client panics on
// any other call, which would mean the API does something it should not.
type fakeClient struct {
	client.Client
	mu        sync.Mutex
	runs      []string       // run IDs, newest closed first
	results   map[string]any // run ID: the result value, or an error
	gets      map[string]int
	pageSizes []int32
	queries   []string
	counts    map[string]int64 // by query
	// hide lists no runs for queries that contain it.
	hide string
}

func (c *fakeClient) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries = append(c.queries, req.GetQuery())
	c.pageSizes = append(c.pageSizes, req.GetPageSize())
	if c.hide != "" && strings.Contains(req.GetQuery(), c.hide) {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	start := 0
	if len(req.GetNextPageToken()) > 0 {
		start, _ = strconv.Atoi(string(req.GetNextPageToken()))
	}
	end := min(start+int(req.GetPageSize()), len(c.runs))
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, id := range c.runs[start:end] {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: "wf-" + id, RunId: id},
		})
	}
	if end < len(c.runs) {
		resp.NextPageToken = []byte(strconv.Itoa(end))
	}
	return resp, nil
}

func (c *fakeClient) CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries = append(c.queries, req.GetQuery())
	return &workflowservice.CountWorkflowExecutionsResponse{Count: c.counts[req.GetQuery()]}, nil
}

func (c *fakeClient) GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun {
	return fakeRun{c: c, workflowID: workflowID, runID: runID}
}

type fakeRun struct {
	client.WorkflowRun
	c                 *fakeClient
	workflowID, runID string
}

func (r fakeRun) Get(ctx context.Context, valuePtr any) error {
	r.c.mu.Lock()
	r.c.gets[r.runID]++
	v := r.c.results[r.runID]
	r.c.mu.Unlock()
	if r.workflowID != "wf-"+r.runID {
		return errors.New("wrong workflow ID for run")
	}
	if err, ok := v.(error); ok {
		return err
	}
	// What the SDK's JSON payload converter does.
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, valuePtr)
}

func newFakeClient(n int) *fakeClient {
	c := &fakeClient{results: map[string]any{}, gets: map[string]int{}, counts: map[string]int64{}}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := n - 1; i >= 0; i-- {
		id := "r" + strconv.Itoa(i)
		c.runs = append(c.runs, id)
		at := base.Add(time.Duration(i) * time.Minute)
		c.results[id] = result.Backup{
			Name: "metadata-backup-" + strconv.FormatInt(at.UnixMilli(), 10) + ".tar.gz", URL: "s3a://b/x", Time: at,
			Counts: result.Counts{Znodes: int64(100 + i)}, SizeNonCompressed: int64(1000 + i), SizeCompressed: int64(300 + i),
			ZxidStart: "0x1", ZxidEnd: "0x2", Durations: result.Durations{Dump: float64(i), Total: float64(i) + 1},
		}
	}
	return c
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCompletedPagesAndFetchesEachResultOnce(t *testing.T) {
	c := newFakeClient(7)
	tr := newTemporalRuns(c, "s3a://b/metadata-backup", 5, quietLog())
	got, err := tr.Completed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range got {
		ids = append(ids, b.RunID)
		res := c.results[b.RunID].(result.Backup)
		if b.Name != res.Name || b.Znodes != res.Znodes || *b.SizeNonCompressed != res.SizeNonCompressed ||
			b.Durations.Dump != res.Durations.Dump || b.WorkflowID != "wf-"+b.RunID || !b.Time.Equal(res.Time) {
			t.Errorf("entry %+v from result %+v", b, res)
		}
	}
	if !slices.Equal(ids, []string{"r6", "r5", "r4", "r3", "r2"}) {
		t.Fatalf("runs = %v, want the 5 newest", ids)
	}
	for _, q := range c.queries {
		if !strings.HasSuffix(q, "AND ExecutionStatus = 'Completed'") || !strings.Contains(q, "MetadataBackupTarget = 's3a://b/metadata-backup'") {
			t.Errorf("query %s", q)
		}
	}
	for _, ps := range c.pageSizes {
		if ps > 5 {
			t.Errorf("page size %d above maxRuns", ps)
		}
	}

	// Two more runs close; one older run was deleted by retention before its fetch.
	c.mu.Lock()
	c.runs = append([]string{"r8", "r7"}, c.runs...)
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"r7", "r8"} {
		c.results[id] = result.Backup{Name: "metadata-backup-" + strconv.Itoa(i) + ".tar.gz", Time: base.Add(time.Duration(i) * time.Minute)}
	}
	c.results["r8"] = serviceerror.NewNotFound("workflow execution not found")
	c.mu.Unlock()
	got, err = tr.Completed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, b := range got {
		ids = append(ids, b.RunID)
	}
	if !slices.Equal(ids, []string{"r7", "r6", "r5", "r4"}) {
		t.Errorf("runs = %v", ids)
	}
	for id, n := range c.gets {
		if n != 1 {
			t.Errorf("result of %s fetched %d times", id, n)
		}
	}
	// r3 and r2 fell out of the newest 5: their results are no longer kept.
	tr.mu.Lock()
	_, kept := tr.results["r2"]
	tr.mu.Unlock()
	if kept {
		t.Error("a result no longer listed is still cached")
	}
}

func TestCompletedSkipsForeignResultsAndFailsOnErrors(t *testing.T) {
	c := newFakeClient(3)
	c.results["r1"] = map[string]any{"something": "else"}
	tr := newTemporalRuns(c, "t", 10, quietLog())
	got, err := tr.Completed(t.Context())
	if err != nil || len(got) != 2 {
		t.Fatalf("got %d backups, %v", len(got), err)
	}
	if _, err := tr.Completed(t.Context()); err != nil || c.gets["r1"] != 1 {
		t.Errorf("undecodable result fetched %d times, %v", c.gets["r1"], err)
	}

	c = newFakeClient(3)
	c.results["r0"] = serviceerror.NewUnavailable("connection refused")
	tr = newTemporalRuns(c, "t", 10, quietLog())
	_, err = tr.Completed(t.Context())
	var unavailable *serviceerror.Unavailable
	if !errors.As(err, &unavailable) || !strings.Contains(err.Error(), "wf-r0") {
		t.Fatalf("err = %v", err)
	}
	// What was fetched before the error is kept.
	c.mu.Lock()
	delete(c.results, "r0")
	c.results["r0"] = result.Backup{Name: "n.tar.gz"}
	c.mu.Unlock()
	if got, err := tr.Completed(t.Context()); err != nil || len(got) != 3 {
		t.Fatalf("after recovery: %d, %v", len(got), err)
	}
	for id, n := range c.gets {
		if n != 1 && id != "r0" {
			t.Errorf("result of %s fetched %d times", id, n)
		}
	}
}

func TestCountsQueries(t *testing.T) {
	c := newFakeClient(0)
	base := targetQuery("s3a://b/p")
	c.counts[base+" AND ExecutionStatus != 'Running'"] = 12
	c.counts[base+" AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated', 'Canceled')"] = 3
	closed, failed, err := newTemporalRuns(c, "s3a://b/p", 10, quietLog()).Counts(t.Context())
	if err != nil || closed != 12 || failed != 3 {
		t.Errorf("counts = %d, %d, %v", closed, failed, err)
	}
}

// Lifecycle sums the deletions of the target's completed PruneWorkflow runs, fetching each
// result once; a result that is not a prune counts nothing.
func TestLifecycleSumsPruneRuns(t *testing.T) {
	c := newFakeClient(0)
	c.runs = []string{"p3", "p2", "p1"}
	c.results["p1"] = result.Prune{PruneCounts: result.PruneCounts{Deleted: 3}}
	c.results["p2"] = result.Prune{DryRun: true, PruneCounts: result.PruneCounts{Delete: 9}}
	c.results["p3"] = "not a prune"
	c.hide = result.VerifyWorkflowName
	tr := newTemporalRuns(c, "s3a://b/metadata-backup", 10, quietLog())
	for range 2 {
		lc, err := tr.Lifecycle(t.Context())
		if err != nil || lc.PruneDeleted != 3 {
			t.Fatalf("lifecycle %+v, %v", lc, err)
		}
	}
	for id, n := range c.gets {
		if n != 1 {
			t.Errorf("result of %s fetched %d times", id, n)
		}
	}
	for _, q := range c.queries {
		if strings.Contains(q, result.VerifyWorkflowName) {
			continue
		}
		if !strings.HasPrefix(q, "WorkflowType = 'PruneWorkflow' AND MetadataBackupTarget = 's3a://b/metadata-backup'") || !strings.HasSuffix(q, "AND ExecutionStatus = 'Completed'") {
			t.Errorf("query %s", q)
		}
	}
}

// The restore drills: completed runs' results newest first, each fetched once, and the
// count of those that did not complete.
func TestLifecycleReadsVerifications(t *testing.T) {
	c := newFakeClient(0)
	c.runs = []string{"v2", "v1"}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c.results["v1"] = result.Verify{Name: "metadata-backup-1.tar.gz", Method: result.VerifyChecksum, VerifiedAt: at}
	c.results["v2"] = result.Verify{Name: "metadata-backup-2.tar.gz", Method: result.VerifyRestoreDrill, VerifiedAt: at.Add(time.Hour), Seconds: 12}
	c.hide = result.PruneWorkflowName
	base := typeQuery(result.VerifyWorkflowName, "t")
	c.counts[base+failedFilter] = 2
	tr := newTemporalRuns(c, "t", 10, quietLog())
	for range 2 {
		lc, err := tr.Lifecycle(t.Context())
		if err != nil || lc.VerifyFailed != 2 || len(lc.Verified) != 2 || lc.Verified[0].Name != "metadata-backup-2.tar.gz" || lc.Verified[0].Seconds != 12 {
			t.Fatalf("lifecycle %+v, %v", lc, err)
		}
	}
	if c.gets["v1"] != 1 || c.gets["v2"] != 1 {
		t.Errorf("fetched %v", c.gets)
	}
}
