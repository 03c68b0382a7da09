package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// va is only used for activity method names; the worker registers the real struct.
var va *activities.Verify

// VerifyInput is VerifyWorkflow's input: the archive's URL, or "" for the newest.
type VerifyInput struct {
	URL string `json:"url,omitempty"`
}

// VerifyIDPrefix starts the workflow IDs of the drill's restores.
const VerifyIDPrefix = "metadata-verify-"

// VerifyWorkflow is the restore drill. It verifies one archive whole, in a session:
//
//  1. locate: the newest archive of the prefix (or the one given) and the SHA-256 its
//     backup recorded;
//  2. download it (the restore's activity, which computes the object's SHA-256): it must
//     equal the recorded one, or the archive was changed since its backup (ArchiveTampered);
//  3. validate it (the restore's validation: gzip, every record, the manifest's counts and
//     stream SHA-256, parents first, every managed ledger and cursor rewrites);
//  4. with verify.zookeeper: claim the scratch ensemble, restore the archive there with
//     RestoreWorkflow (a child on the scratch task queue, whose workers target it), read the
//     tree back and compare it with the archive as the restore writes it (RestoreDiffers,
//     naming the first differing znodes), and clear the scratch ensemble whatever happened.
func VerifyWorkflow(ctx workflow.Context, in VerifyInput) (result.Verify, error) {
	clk := newClock(ctx)
	var target activities.TargetInfo
	lctx := workflow.WithLocalActivityOptions(ctx, localStage)
	if err := workflow.ExecuteLocalActivity(lctx, a.Target).Get(ctx, &target); err != nil {
		return result.Verify{}, stageError("target", err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, TargetAttribute.ValueSet(target.Target)); err != nil {
		return result.Verify{}, stageError("tag with target", err)
	}
	st := newStages(target.RetryWindow, 15*time.Second)
	var loc activities.LocateResult
	if err := workflow.ExecuteActivity(st.any(ctx, 5*time.Minute), va.LocateArchive, activities.LocateInput{URL: in.URL}).Get(ctx, &loc); err != nil {
		return result.Verify{}, stageError("locate", err)
	}
	v := &verifyRun{stages: st, loc: loc, res: result.Verify{
		Target: target.Target, Name: loc.Name, URL: loc.URL, Method: result.VerifyChecksum, RecordedSHA256: loc.RecordedSHA256,
	}}
	if err := withSessions(ctx, "verify", restoreSession, maxRestoreSessions, v.inSession); err != nil {
		return v.res, err
	}
	v.res.VerifiedAt = workflow.Now(ctx).UTC()
	v.res.Seconds = clk.total()
	return v.res, nil
}

type verifyRun struct {
	stages
	loc activities.LocateResult
	res result.Verify
}

func (v *verifyRun) inSession(sctx workflow.Context) error {
	var dl activities.DownloadResult
	if err := workflow.ExecuteActivity(v.session(sctx, 2*time.Hour), ra.DownloadArchive, activities.DownloadInput{RestorePoint: v.loc.URL}).Get(sctx, &dl); err != nil {
		return stageError("download", err)
	}
	defer func() {
		dctx, cancel := workflow.NewDisconnectedContext(sctx)
		defer cancel()
		_ = workflow.ExecuteActivity(v.any(dctx, time.Minute), ra.CleanupRestore, dl.StagingDir).Get(dctx, nil)
	}()
	v.res.SHA256, v.res.Counts, v.res.BackupTime = dl.SHA256, dl.Manifest.Counts, dl.Manifest.StartTime
	if rec := v.loc.RecordedSHA256; rec != "" && rec != dl.SHA256 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"checksum: %s has SHA-256 %s, but its backup recorded %s: the object changed since it was written", v.loc.URL, dl.SHA256, rec),
			activities.ErrTypeArchiveTampered, nil)
	}
	if err := workflow.ExecuteActivity(v.session(sctx, time.Hour), ra.ValidateArchive, activities.ArchiveInput{ArchivePath: dl.ArchivePath}).Get(sctx, nil); err != nil {
		return stageError("validate", err)
	}
	if len(v.loc.Scratch) == 0 {
		return nil
	}
	return v.drill(sctx, dl)
}

// drill restores the archive into the scratch ensemble, compares, and clears it.
func (v *verifyRun) drill(sctx workflow.Context, dl activities.DownloadResult) error {
	runID := workflow.GetInfo(sctx).WorkflowExecution.RunID
	d := &result.Drill{Scratch: v.loc.Scratch, RestoreWorkflowID: VerifyIDPrefix + "restore-" + runID}
	if err := workflow.ExecuteActivity(v.any(sctx, 5*time.Minute), va.PrepareScratch).Get(sctx, nil); err != nil {
		return stageError("restore drill: scratch", err)
	}
	defer func() {
		dctx, cancel := workflow.NewDisconnectedContext(sctx)
		defer cancel()
		_ = workflow.ExecuteActivity(v.any(dctx, time.Hour), va.ClearScratch).Get(dctx, &d.Cleared)
	}()
	cctx := workflow.WithChildOptions(sctx, workflow.ChildWorkflowOptions{
		WorkflowID:               d.RestoreWorkflowID,
		TaskQueue:                result.ScratchTaskQueue(workflow.GetInfo(sctx).TaskQueueName),
		WorkflowExecutionTimeout: 12 * time.Hour,
	})
	var rep RestoreReport
	if err := workflow.ExecuteChildWorkflow(cctx, result.RestoreWorkflowName, RestoreInput{
		RestorePoint: v.loc.URL, RestoreVersion: "verify-" + runID,
	}).Get(sctx, &rep); err != nil {
		return temporal.NewNonRetryableApplicationError("restore drill: the restore into the scratch ensemble failed: "+Cause(err), activities.ErrTypeRestoreDiffers, err)
	}
	d.Created = rep.Created
	if c := rep.Configuration; c != nil {
		d.Created += c.Created
	}
	var cmp activities.CompareResult
	if err := workflow.ExecuteActivity(v.session(sctx, time.Hour), va.CompareScratch, activities.CompareInput{
		ArchivePath: dl.ArchivePath, RestorePoint: v.loc.URL,
	}).Get(sctx, &cmp); err != nil {
		return stageError("restore drill: compare", err)
	}
	d.Compared, d.Skipped = cmp.Compared, cmp.Skipped
	if cmp.Count > 0 {
		names := make([]string, 0, 3)
		for _, x := range cmp.Differences[:min(3, len(cmp.Differences))] {
			names = append(names, x.String())
		}
		more := ""
		if cmp.Count > int64(len(names)) {
			more = fmt.Sprintf(" and %d more", cmp.Count-int64(len(names)))
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"restore drill: the tree read back from the scratch ensemble differs from the archive at %d znode(s): %s%s",
			cmp.Count, strings.Join(names, ", "), more), activities.ErrTypeRestoreDiffers, nil, cmp.Differences)
	}
	v.res.Method, v.res.Drill = result.VerifyRestoreDrill, d
	return nil
}
