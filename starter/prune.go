package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// pruneCmd runs PruneWorkflow now, waits, and prints its result as one JSON object: the
// policy, the counts, and for each object under the prefix keep or delete with the rule
// that decided it. With --dry-run nothing is deleted.
func pruneCmd(ctx context.Context, c client.Client, cfg config.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dryRun := fs.Bool("dry-run", false, "decide and print, delete nothing")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("prune: %v\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("prune: unexpected argument %q\n%s", fs.Arg(0), usage)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("%s-prune-%d", result.ScheduleID(cfg.Temporal.TaskQueue), time.Now().UnixMilli()),
		TaskQueue:                cfg.Temporal.TaskQueue,
		WorkflowExecutionTimeout: time.Hour,
	}, result.PruneWorkflowName, workflows.PruneInput{DryRun: *dryRun})
	if err != nil {
		return fmt.Errorf("start %s: %w", result.PruneWorkflowName, err)
	}
	var res result.Prune
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("prune %s failed: %s", run.GetID(), workflows.Cause(err))
	}
	return json.NewEncoder(stdout).Encode(res)
}
