package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// Histories recorded from real runs of both workflows (testdata/histories, written by
// starter's record test: `go test -tags record -run TestRecordHistories ./starter`) replay
// against the workflows as they are now. A change that would break a running schedule's or
// restore's determinism fails here first; a change that is meant to, must version itself
// (workflow.GetVersion) or re-record. Before re-recording a versioned change, keep the
// current files under a new name (backup-before-summary.json, ...): they are what runs
// started by the previous version replay as.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			typ := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
			types[typ] = true
			rp := worker.NewWorkflowReplayer()
			rp.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: result.BackupWorkflowName})
			rp.RegisterWorkflowWithOptions(RestoreWorkflow, workflow.RegisterOptions{Name: result.RestoreWorkflowName})
			rp.RegisterWorkflowWithOptions(PruneWorkflow, workflow.RegisterOptions{Name: result.PruneWorkflowName})
			rp.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: result.VerifyWorkflowName})
			if err := rp.ReplayWorkflowHistory(nil, h); err != nil {
				t.Fatalf("%s does not replay: %v", strings.TrimSuffix(filepath.Base(f), ".json"), err)
			}
		})
	}
	if !types[result.BackupWorkflowName] || !types[result.RestoreWorkflowName] {
		t.Fatalf("recorded histories cover %v; want both workflows", types)
	}
}
