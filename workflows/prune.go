package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// PruneInput is PruneWorkflow's input.
type PruneInput struct {
	// DryRun decides and reports, and deletes nothing.
	DryRun bool `json:"dryRun"`
}

// PruneWorkflow applies the retention policy now (`bin/starter prune`): the same Prune
// activity that runs after every backup, with every object's decision in its result. It
// tags itself with its deployment's target, as BackupWorkflow does, so the API counts its
// deletions.
func PruneWorkflow(ctx workflow.Context, in PruneInput) (result.Prune, error) {
	var target activities.TargetInfo
	lctx := workflow.WithLocalActivityOptions(ctx, localStage)
	if err := workflow.ExecuteLocalActivity(lctx, a.Target).Get(ctx, &target); err != nil {
		return result.Prune{}, stageError("target", err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, TargetAttribute.ValueSet(target.Target)); err != nil {
		return result.Prune{}, stageError("tag with target", err)
	}
	var p result.Prune
	if err := workflow.ExecuteActivity(pruneStage(ctx), a.Prune, activities.PruneInput{DryRun: in.DryRun}).Get(ctx, &p); err != nil {
		return p, stageError("prune", err)
	}
	return p, nil
}
