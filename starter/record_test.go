//go:build record

package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// TestRecordHistories runs a backup, a restore and a dry run on real servers and writes their
// histories to ../workflows/testdata/histories, which the workflows' replay test replays. Run
// it (`go test -tags record -run TestRecordHistories ./starter`) after a change to a workflow
// that is meant to change its histories.
func TestRecordHistories(t *testing.T) {
	f := newRestoreFixture(t)
	c := f.tp.Client(t)
	ctx := context.Background()
	dir := filepath.Join("..", "workflows", "testdata", "histories")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	save := func(name, id string) {
		t.Helper()
		h := &historypb.History{}
		it := c.GetWorkflowHistory(ctx, id, "", false, 0)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, e)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cfg, err := config.Load(f.config(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	br, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "record-backup", TaskQueue: cfg.Temporal.TaskQueue}, result.BackupWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	save("backup", br.GetID())

	pr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "record-prune", TaskQueue: cfg.Temporal.TaskQueue}, result.PruneWorkflowName, workflows.PruneInput{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	save("prune-dry-run", pr.GetID())

	tg := f.newTarget(t, "record", nil)
	for _, in := range []workflows.RestoreInput{
		{RestorePoint: f.backup.URL, RestoreVersion: "1"},
		{RestorePoint: f.backup.URL, RestoreVersion: "2", DryRun: true},
	} {
		run, _, err := launch.StartRestore(ctx, c, tg.cfg.Temporal.TaskQueue, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		name := "restore"
		if in.DryRun {
			name = "restore-dry-run"
		}
		save(name, run.GetID())
	}
}
