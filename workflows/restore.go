package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
)

// ra is only used for activity method names; the worker registers the real struct.
var ra *activities.Restore

// RestoreInput is RestoreWorkflow's input: plain JSON with no secrets, as operators type it
// in `temporal workflow start --input '{"restorePoint":"s3a://...","restoreVersion":"2"}'`.
type RestoreInput struct {
	// RestorePoint is the archive's object URL (s3a://, s3://, file://), or a bare key
	// resolved against the worker's restore.bucket (backup.bucket when empty).
	RestorePoint string `json:"restorePoint"`
	// RestoreVersion makes a pair with RestorePoint: restoring the same point again on
	// purpose takes a new version.
	RestoreVersion string `json:"restoreVersion"`
	// DryRun stops after the plan: nothing is written.
	DryRun bool `json:"dryRun"`
}

// RestoreDurations are seconds per stage on the workflow's clock (retries and queueing
// included); Check adds up both gate checks, Clear is the begin stage (marker and clearing
// of an earlier restore).
type RestoreDurations struct {
	Check    float64 `json:"check"`
	Download float64 `json:"download"`
	Validate float64 `json:"validate"`
	Plan     float64 `json:"plan"`
	Clear    float64 `json:"clear"`
	Apply    float64 `json:"apply"`
	Mark     float64 `json:"mark"`
	Total    float64 `json:"total"`
}

// RestoreReport is RestoreWorkflow's result and what `bin/starter restore` prints. The
// first fields are named as the restore issue requires; see docs/RESTORE.md for all.
type RestoreReport struct {
	RestorePoint   string `json:"restorePoint"`
	RestoreVersion string `json:"restoreVersion"`
	DryRun         bool   `json:"dryRun"`
	// AlreadyRestored is true for a repeat of a pair the target (marker) or Temporal (an
	// earlier run of the same workflow ID) says was restored: nothing was done.
	AlreadyRestored bool `json:"alreadyRestored"`
	// Created counts znodes written; Existing znodes found already there and identical.
	Created  int64 `json:"created"`
	Existing int64 `json:"existing"`
	// Skipped counts archive records not restored, per reason (restore.SkipReasons).
	Skipped            map[string]int64 `json:"skipped"`
	LedgersKept        int64            `json:"ledgersKept"`
	LedgersDropped     int64            `json:"ledgersDropped"`
	CursorsReset       int64            `json:"cursorsReset"`
	TopicsWithDataLoss []string         `json:"topicsWithDataLoss"`
	// What the new cluster needs to know, from the plan (docs/RESTORE.md): the floor under
	// its ledger ids, schemas to register again, topics to compact again, metadata of
	// functions, packages and stream storage left out, and subscriptions whose position may
	// be older than their last acknowledgement.
	LedgerIDFloor          restore.LedgerIDFloor `json:"ledgerIdFloor"`
	SchemasToRegister      restore.Listed        `json:"schemasToRegister"`
	CompactionReset        restore.Listed        `json:"compactionReset"`
	BookKeeperBoundSkipped map[string]int64      `json:"bookkeeperBoundSkipped"`
	StaleCursors           restore.Listed        `json:"staleCursors"`
	// InitReplaced counts znodes of `pulsar initialize-cluster-metadata` replaced by the
	// archive's; Floor says whether this run set the ledger-id floor or found it in place.
	InitReplaced int64                `json:"initReplaced"`
	Floor        *restore.FloorResult `json:"floor,omitempty"`
	Durations    RestoreDurations     `json:"durations"`
	// Replaced is the earlier restore of another pair this one replaced; Clear says what
	// clearing it did (znodes deleted, kept as ancestors of skipped paths, or denied by a
	// locked parent's ACL).
	Replaced *restore.Previous    `json:"replaced,omitempty"`
	Clear    *restore.BeginResult `json:"clear,omitempty"`
	// Target is the ensemble restored into; WorkflowID the run that did it.
	Target     []string `json:"target"`
	WorkflowID string   `json:"workflowId"`
	// Archive identifies what was restored; Plan is the full plan (lists capped).
	Archive *restore.ArchiveInfo `json:"archive,omitempty"`
	Plan    *restore.Plan        `json:"plan,omitempty"`
	// Marker is the target's marker: as written by this run, or, for a repeat, the one that
	// said so.
	Marker *restore.Marker `json:"marker,omitempty"`
}

// Restore workflow IDs: one per pair and target, so Temporal itself refuses a second run of
// a pair that succeeded; dry runs get their own.
const (
	RestoreIDPrefix       = "metadata-restore-"
	RestoreDryRunIDPrefix = "metadata-restore-dryrun-"
)

// RestorePairHash is the first 16 hex digits of
// SHA-256(restorePoint "\n" restoreVersion "\n" taskQueue). The task queue stands for the
// target: the workers polling it restore into their own zookeeper.servers, and deployments
// sharing a Temporal namespace have their own queues, so the same pair restored into two
// clusters are two restores.
func RestorePairHash(point, version, taskQueue string) string {
	sum := sha256.Sum256([]byte(point + "\n" + version + "\n" + taskQueue))
	return hex.EncodeToString(sum[:8])
}

// RestoreWorkflowID is the workflow ID for a restore input on taskQueue:
// "metadata-restore-<hash>" for a real restore, "metadata-restore-dryrun-<hash>-<unix
// millis of now>" for a dry run, so dry runs never block the real one nor each other. The
// restore point must be resolved already (restore.ResolvePoint).
func RestoreWorkflowID(in RestoreInput, taskQueue string, now time.Time) string {
	h := RestorePairHash(in.RestorePoint, in.RestoreVersion, taskQueue)
	if in.DryRun {
		return fmt.Sprintf("%s%s-%d", RestoreDryRunIDPrefix, h, now.UnixMilli())
	}
	return RestoreIDPrefix + h
}

// maxRestoreSessions bounds how often a restore starts over on a new worker session after
// losing one (the worker holding the downloaded archive stopped).
const maxRestoreSessions = 3

func restoreStage(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// A session's activities go to one host's queue: if that host is gone, fail fast and
		// start over on a new session.
		ScheduleToStartTimeout: 2 * time.Minute,
		HeartbeatTimeout:       15 * time.Second,
		RetryPolicy:            retry,
	})
}

// RestoreWorkflow restores a backup archive into the worker's ZooKeeper ensemble. Stages:
//
//  1. resolve (local): the full object URL and the target, from the worker's config;
//  2. check: the gate (restore.Check). A refusal fails the run, nothing written; a pair the
//     marker records as complete ends it as alreadyRestored;
//  3. in a session (the stages share the downloaded file): download, validate, plan. A dry
//     run ends here with the plan. Conflicting znodes in a target without marker refuse;
//  4. check again, then clear (restore.Begin: marker "applying", earlier restore cleared);
//  5. apply, in the session; if the session's worker is lost, a new session downloads the
//     same archive again (it must not have changed) and applies again, which continues;
//  6. mark: the marker says "complete".
//
// Failures are one line, "<stage>: <cause>", non-retryable, typed as the cause (refusals:
// ClusterRunning, TargetHasManagedLedgers, ForeignMarker, TargetConflict).
func RestoreWorkflow(ctx workflow.Context, in RestoreInput) (RestoreReport, error) {
	start := workflow.Now(ctx)
	rep := RestoreReport{
		RestorePoint: in.RestorePoint, RestoreVersion: in.RestoreVersion, DryRun: in.DryRun,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Skipped:    map[string]int64{}, TopicsWithDataLoss: []string{}, BookKeeperBoundSkipped: map[string]int64{},
	}
	mark := start
	lap := func() float64 {
		now := workflow.Now(ctx)
		d := now.Sub(mark).Seconds()
		mark = now
		return d
	}
	done := func() (RestoreReport, error) {
		rep.Durations.Total = workflow.Now(ctx).Sub(start).Seconds()
		return rep, nil
	}
	if err := restore.CheckVersion(in.RestoreVersion); err != nil {
		return rep, temporal.NewNonRetryableApplicationError("input: "+err.Error(), activities.ErrTypeInvalidInput, nil)
	}

	var res activities.ResolveResult
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry})
	if err := workflow.ExecuteLocalActivity(lctx, ra.ResolveRestore, activities.ResolveInput{RestorePoint: in.RestorePoint}).Get(ctx, &res); err != nil {
		return rep, stageError("resolve", err)
	}
	rep.RestorePoint, rep.Target = res.RestorePoint, res.Target
	mlPaths := []string{res.ManagedLedgerPath}

	check := func() (restore.CheckResult, error) {
		lap()
		var chk restore.CheckResult
		err := workflow.ExecuteActivity(stage(ctx, 5*time.Minute), ra.CheckTarget, activities.CheckInput{
			RestorePoint: rep.RestorePoint, RestoreVersion: in.RestoreVersion, ManagedLedgerPaths: mlPaths,
		}).Get(ctx, &chk)
		rep.Durations.Check += lap()
		if err != nil {
			return chk, stageError("check", err)
		}
		return chk, nil
	}
	alreadyRestored := func(chk restore.CheckResult) (RestoreReport, error) {
		rep.AlreadyRestored, rep.Marker = true, chk.Marker
		if m := chk.Marker; m != nil {
			a := m.Archive
			rep.Archive, rep.Replaced = &a, m.Replaced
		}
		return done()
	}

	chk, err := check()
	if err != nil {
		return rep, err
	}
	if chk.Decision == restore.DecisionAlreadyRestored {
		return alreadyRestored(chk)
	}

	var (
		dl     activities.DownloadResult
		plan   restore.Plan
		begun  bool
		stats  restore.ApplyStats
		result *RestoreReport
	)
	// attempt runs the session stages once; it returns a final report for a run that ends
	// early (dry run, already restored).
	attempt := func(sctx workflow.Context) (*RestoreReport, error) {
		defer func() {
			if dl.StagingDir == "" {
				return
			}
			dctx, cancel := workflow.NewDisconnectedContext(sctx)
			defer cancel()
			_ = workflow.ExecuteActivity(stage(dctx, time.Minute), ra.CleanupRestore, dl.StagingDir).Get(dctx, nil)
		}()
		first := dl.SHA256 == ""
		lap()
		var got activities.DownloadResult
		err := workflow.ExecuteActivity(restoreStage(sctx, 2*time.Hour), ra.DownloadArchive, activities.DownloadInput{
			RestorePoint: rep.RestorePoint, ExpectSHA256: dl.SHA256,
		}).Get(ctx, &got)
		rep.Durations.Download += lap()
		if err != nil {
			return nil, stageError("download", err)
		}
		dl = got
		m := dl.Manifest
		rep.Archive = &restore.ArchiveInfo{SHA256: dl.SHA256, StreamSHA256: m.StreamSHA256, Znodes: m.Znodes, BackupTime: m.StartTime, ManagedLedgerPath: m.ManagedLedgerPath}
		if m.ManagedLedgerPath != "" && m.ManagedLedgerPath != res.ManagedLedgerPath {
			mlPaths = []string{res.ManagedLedgerPath, m.ManagedLedgerPath}
		}
		if first {
			err = workflow.ExecuteActivity(restoreStage(sctx, time.Hour), ra.ValidateArchive, activities.ArchiveInput{ArchivePath: dl.ArchivePath}).Get(ctx, nil)
			rep.Durations.Validate += lap()
			if err != nil {
				return nil, stageError("validate", err)
			}
			err = workflow.ExecuteActivity(restoreStage(sctx, time.Hour), ra.PlanRestore, activities.PlanInput{
				ArchivePath: dl.ArchivePath, CompareTarget: chk.Decision == restore.DecisionFresh, RestoredAt: start,
			}).Get(ctx, &plan)
			rep.Durations.Plan += lap()
			if err != nil {
				return nil, stageError("plan", err)
			}
			rep.Plan = &plan
			rep.Skipped, rep.LedgersKept, rep.LedgersDropped = plan.Skipped, plan.LedgersKept, plan.LedgersDropped
			rep.CursorsReset, rep.TopicsWithDataLoss = plan.CursorsReset, plan.TopicsWithDataLoss
			rep.LedgerIDFloor, rep.SchemasToRegister, rep.CompactionReset = plan.LedgerIDFloor, plan.SchemasToRegister, plan.CompactionReset
			rep.BookKeeperBoundSkipped, rep.StaleCursors = plan.BookKeeperBoundSkipped, plan.StaleCursors
			if plan.ConflictsCount > 0 && !in.DryRun {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"plan: restore refused: the target holds %d znode(s) the archive has with other contents (%s); restore only into a new cluster",
					plan.ConflictsCount, listNames(plan.Conflicts)), restore.RefusedConflicts, nil)
			}
			if c := plan.LedgerCollisions; c.Count > 0 && !in.DryRun {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"plan: restore refused: the target's BookKeeper already has %d ledger(s) that restored topics list (%s); restore before anything creates ledgers in the new cluster",
					c.Count, listNames(c.First)), restore.RefusedLedgerCollision, nil)
			}
			if in.DryRun {
				rep.Existing = plan.Existing
				return &rep, nil
			}
		}
		if !begun {
			chk2, err := check()
			if err != nil {
				return nil, err
			}
			if chk2.Decision == restore.DecisionAlreadyRestored {
				r, _ := alreadyRestored(chk2)
				return &r, nil
			}
			var b restore.BeginResult
			err = workflow.ExecuteActivity(stage(ctx, 2*time.Hour), ra.BeginRestore, activities.BeginInput{
				RestorePoint: rep.RestorePoint, RestoreVersion: in.RestoreVersion, StartedAt: start,
				Archive: *rep.Archive, Check: chk2,
			}).Get(ctx, &b)
			rep.Durations.Clear += lap()
			if err != nil {
				return nil, stageError("clear", err)
			}
			begun = true
			rep.Replaced, rep.Clear = b.Replaced, &b
		}
		err = workflow.ExecuteActivity(restoreStage(sctx, 6*time.Hour), ra.ApplyArchive, activities.ApplyInput{
			ArchivePath: dl.ArchivePath, LedgerIDFloor: plan.LedgerIDFloor,
		}).Get(ctx, &stats)
		rep.Durations.Apply += lap()
		if err != nil {
			return nil, stageError("apply", err)
		}
		return nil, nil
	}

	for n := 1; ; n++ {
		sctx, err := workflow.CreateSession(ctx, &workflow.SessionOptions{
			CreationTimeout:  2 * time.Minute,
			ExecutionTimeout: 12 * time.Hour,
			HeartbeatTimeout: 20 * time.Second,
		})
		if err != nil {
			return rep, stageError("create session", err)
		}
		result, err = attempt(sctx)
		lost := err != nil && sessionLost(ctx, sctx, err)
		workflow.CompleteSession(sctx)
		if err == nil {
			break
		}
		if !lost || n == maxRestoreSessions {
			return rep, err
		}
		workflow.GetLogger(ctx).Warn("restore: worker session lost, starting over on a new one", "attempt", n, "error", Cause(err))
	}
	if result != nil {
		return done()
	}

	var mk restore.Marker
	err = workflow.ExecuteActivity(stage(ctx, 5*time.Minute), ra.MarkRestored, activities.MarkInput{
		CompletedAt: workflow.Now(ctx), Created: stats.Created,
	}).Get(ctx, &mk)
	rep.Durations.Mark += lap()
	if err != nil {
		return rep, stageError("mark", err)
	}
	rep.Created, rep.Existing, rep.Marker = stats.Created, stats.Existing, &mk
	rep.InitReplaced, rep.Floor = stats.InitReplaced, &stats.Floor
	return done()
}

// sessionLost tells whether err came from losing the session's worker rather than from the
// stage itself: the session failed, or its activity was cancelled or timed out while the
// workflow itself goes on.
func sessionLost(ctx, sctx workflow.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if info := workflow.GetSessionInfo(sctx); info != nil && info.SessionState == workflow.SessionStateFailed {
		return true
	}
	var canceled *temporal.CanceledError
	var timeout *temporal.TimeoutError
	return errors.As(err, &canceled) || errors.As(err, &timeout) || errorType(err) == "SessionWorkerShutdown"
}

func listNames(s []string) string {
	if len(s) > 3 {
		return fmt.Sprintf("%s, %s, %s and more", s[0], s[1], s[2])
	}
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// StartRestore starts RestoreWorkflow for in (whose RestorePoint must be resolved, see
// restore.ResolvePoint) under its derived ID on taskQueue. The reuse policy allows a new run
// of the ID only when the earlier one failed (refused included), was cancelled, terminated
// or timed out. When a run of the ID is running or has succeeded, it returns that run with
// already = true and starts nothing.
func StartRestore(ctx context.Context, c client.Client, taskQueue string, in RestoreInput) (run client.WorkflowRun, already bool, err error) {
	id := RestoreWorkflowID(in, taskQueue, time.Now())
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowExecutionTimeout:                 24 * time.Hour,
	}, RestoreWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return c.GetWorkflow(ctx, id, started.RunId), true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("start %s %s: %w", RestoreWorkflowName, id, err)
	}
	return run, false, nil
}

// RunRestore starts (StartRestore) and waits for a restore, and returns its report. A
// repeat of a pair Temporal still knows returns the earlier run's report with
// alreadyRestored set. The error of a failed run is its one-line cause.
func RunRestore(ctx context.Context, c client.Client, taskQueue string, in RestoreInput) (RestoreReport, error) {
	run, already, err := StartRestore(ctx, c, taskQueue, in)
	if err != nil {
		return RestoreReport{}, err
	}
	var rep RestoreReport
	if err := run.Get(ctx, &rep); err != nil {
		return RestoreReport{}, fmt.Errorf("restore %s failed: %s", run.GetID(), Cause(err))
	}
	if already {
		rep.AlreadyRestored = true
	}
	return rep, nil
}
