package launch

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// RestoreStartSummary is a restore run's static summary, shown in the Web UI from its start:
// what it restores (its memo says, once it ends, what it did).
func RestoreStartSummary(in workflows.RestoreInput) string {
	s := "restore " + in.RestorePoint + " version " + in.RestoreVersion
	if in.DryRun {
		s = "dry run of a " + s
	}
	return s
}

// StartRestore starts RestoreWorkflow for in (whose RestorePoint must be resolved, see
// restore.ResolvePoint) under its derived ID on taskQueue. The reuse policy allows a new run
// of the ID only when the earlier one failed (refused included), was cancelled, terminated
// or timed out. When a run of the ID is running or has succeeded, it returns that run with
// already = true and starts nothing.
func StartRestore(ctx context.Context, c client.Client, taskQueue string, in workflows.RestoreInput) (run client.WorkflowRun, already bool, err error) {
	id := workflows.RestoreWorkflowID(in, taskQueue, time.Now())
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowExecutionTimeout:                 24 * time.Hour,
		StaticSummary:                            RestoreStartSummary(in),
	}, result.RestoreWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return c.GetWorkflow(ctx, id, started.RunId), true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("start %s %s: %w", result.RestoreWorkflowName, id, err)
	}
	return run, false, nil
}

// RunRestore starts (StartRestore) and waits for a restore, and returns its report. A
// repeat of a pair Temporal still knows returns the earlier run's report with
// alreadyRestored set. The error of a failed run is its one-line cause.
func RunRestore(ctx context.Context, c client.Client, taskQueue string, in workflows.RestoreInput) (workflows.RestoreReport, error) {
	run, already, err := StartRestore(ctx, c, taskQueue, in)
	if err != nil {
		return workflows.RestoreReport{}, err
	}
	var rep workflows.RestoreReport
	if err := run.Get(ctx, &rep); err != nil {
		return workflows.RestoreReport{}, fmt.Errorf("restore %s failed: %s", run.GetID(), workflows.Cause(err))
	}
	if already {
		rep.AlreadyRestored = true
	}
	return rep, nil
}
