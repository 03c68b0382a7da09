package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// verifyCmd runs the restore drill (VerifyWorkflow) now on the archive at URL, or the newest
// one, waits, and prints its result as one JSON object. A verification that finds a problem
// fails with it on stderr: a restore that differs names the first differing znodes.
func verifyCmd(ctx context.Context, c client.Client, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("verify: unexpected argument %q\n%s", args[1], usage)
	}
	in := workflows.VerifyInput{}
	if len(args) == 1 {
		in.URL = args[0]
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("%s-manual-%d", result.VerifyScheduleID(cfg.Temporal.TaskQueue), time.Now().UnixMilli()),
		TaskQueue:                cfg.Temporal.TaskQueue,
		WorkflowExecutionTimeout: 12 * time.Hour,
	}, result.VerifyWorkflowName, in)
	if err != nil {
		return fmt.Errorf("start %s: %w", result.VerifyWorkflowName, err)
	}
	var res result.Verify
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("verify %s failed: %s", run.GetID(), workflows.Cause(err))
	}
	return json.NewEncoder(stdout).Encode(res)
}
