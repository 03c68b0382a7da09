package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// a is only used for activity method names; the worker registers the real struct.
var a *activities.Backup

// maxBackupSessions bounds how often a backup starts over on a new worker session after
// losing one (the worker holding its staging files stopped).
const maxBackupSessions = 3

var backupSession = &workflow.SessionOptions{
	CreationTimeout:  2 * time.Minute,
	ExecutionTimeout: 6 * time.Hour,
	HeartbeatTimeout: 20 * time.Second,
}

// BackupWorkflow dumps the whole ZooKeeper tree, packs it with its manifest and uploads it
// under <backupPrefix>-<unix millis>.tar.gz. The four stages share local files, so they run
// in one session, on one worker host; the staging files are removed whatever the outcome.
// When the session's worker is lost, the backup starts over on a new session (prepare
// again, the same object key), up to maxBackupSessions times.
func BackupWorkflow(ctx workflow.Context) (BackupResult, error) {
	b := &backupRun{clock: newClock(ctx)}
	var target activities.TargetInfo
	lctx := workflow.WithLocalActivityOptions(ctx, localStage)
	if err := workflow.ExecuteLocalActivity(lctx, a.Target).Get(ctx, &target); err != nil {
		return BackupResult{}, stageError("target", err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, TargetAttribute.ValueSet(target.Target)); err != nil {
		return BackupResult{}, stageError("tag with target", err)
	}
	b.stages = newStages(target.RetryWindow, time.Minute)
	b.res = BackupResult{Target: target.Target, Time: b.start.UTC()}
	if err := withSessions(ctx, "backup", backupSession, maxBackupSessions, b.inSession); err != nil {
		showStage(ctx, "**Failed**: "+Cause(err))
		return b.res, err
	}
	b.res.Durations.Total = b.total()
	if workflow.GetVersion(ctx, pruneAfterBackupChange, workflow.DefaultVersion, 1) == 1 {
		b.res.Prune = b.prune(ctx)
	}
	if err := recordSummary(ctx, backupSummary(b.res), backupDetails(b.res)); err != nil {
		return b.res, err
	}
	return b.res, nil
}

// pruneAfterBackupChange versions the prune after the upload: histories of runs from before
// it replay without one.
const pruneAfterBackupChange = "prune-after-backup"

// pruneStage is the options of a prune: on any worker, no session (it stages nothing). A
// first prune of a large bucket reads many manifests; it heartbeats as it goes.
func pruneStage(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy:            retry,
	})
}

// prune applies the retention policy after a successful upload, as its own activity. Its
// failure is reported in the result and logged; the backup stands. Retention is enforced by
// this prune: each one decides over the whole bucket, so a prune that failed is caught up by
// the next backup's, and a run the schedule skipped for overlap made no archive, which leaves
// restic's rules nothing new to delete (they depend on the archives only, not on the clock;
// see internal/retention); the run it overlapped prunes after its own upload.
func (b *backupRun) prune(ctx workflow.Context) *result.Prune {
	mark := workflow.Now(ctx)
	var p result.Prune
	err := workflow.ExecuteActivity(pruneStage(ctx), a.Prune, activities.PruneInput{KnownGood: b.res.Name, OmitDecisions: true}).Get(ctx, &p)
	if err != nil {
		workflow.GetLogger(ctx).Warn("prune after the backup failed; the backup stands", "error", Cause(err))
		p = result.Prune{Target: b.res.Target, Error: "prune: " + Cause(err)}
	} else if p.Failed > 0 || p.Skipped != "" && !p.Policy.Empty() {
		workflow.GetLogger(ctx).Warn("prune after the backup left archives the policy would delete", "failed", p.Failed, "skipped", p.Skipped)
	}
	p.Seconds = workflow.Now(ctx).Sub(mark).Seconds()
	return &p
}

// backupRun is one BackupWorkflow: its result so far and the stage clock.
type backupRun struct {
	*clock
	stages
	res BackupResult
}

// inSession runs prepare, dump, compress and upload in the session sctx; a new session runs
// them all again. Stage durations add up over sessions.
func (b *backupRun) inSession(sctx workflow.Context) error {
	d := &b.res.Durations
	var prep activities.PrepareResult
	showStage(sctx, "1/4 prepare")
	err := workflow.ExecuteActivity(b.session(sctx, time.Minute), a.Prepare, activities.PrepareInput{StartMillis: b.start.UnixMilli()}).Get(sctx, &prep)
	d.Prepare += b.lap()
	if err != nil {
		return stageError("prepare", err)
	}
	defer func() {
		// Cleanup runs even when the workflow is failing or cancelled; on a lost session it
		// fails at once (the worker's start-up removes what the lost one left).
		dctx, cancel := workflow.NewDisconnectedContext(sctx)
		defer cancel()
		_ = workflow.ExecuteActivity(b.any(dctx, time.Minute), a.Cleanup, prep.StagingDir).Get(dctx, nil)
	}()
	b.res.Name, b.res.URL = prep.Key, prep.URL

	var dump activities.DumpResult
	showStage(sctx, "2/4 dump into "+prep.URL+" (znodes so far: the pending activity's heartbeat details)")
	err = workflow.ExecuteActivity(b.session(sctx, 2*time.Hour), a.Dump, activities.DumpInput{StagingDir: prep.StagingDir}).Get(sctx, &dump)
	d.Dump += b.lap()
	if err != nil {
		return stageError("dump", err)
	}

	var comp activities.CompressResult
	showStage(sctx, fmt.Sprintf("3/4 compress %d znodes", dump.Manifest.Znodes))
	err = workflow.ExecuteActivity(b.session(sctx, time.Hour), a.Compress, activities.CompressInput{Prepare: prep, Dump: dump}).Get(sctx, &comp)
	d.Compression += b.lap()
	if err != nil {
		return stageError("compress", err)
	}

	var up activities.UploadResult
	showStage(sctx, fmt.Sprintf("4/4 upload %s to %s", inspect.Bytes(comp.SizeCompressed), prep.URL))
	err = workflow.ExecuteActivity(b.session(sctx, 2*time.Hour), a.Upload, activities.UploadInput{ArchivePath: comp.ArchivePath, Key: prep.Key, Size: comp.SizeCompressed}).Get(sctx, &up)
	d.Upload += b.lap()
	if err != nil {
		return stageError("upload", err)
	}

	r := &b.res
	r.URL = up.URL
	r.Counts, r.AuthUnused = dump.Manifest.Counts, dump.AuthUnused
	r.SizeNonCompressed, r.SizeCompressed, r.SHA256 = comp.SizeNonCompressed, comp.SizeCompressed, comp.SHA256
	r.ZxidStart, r.ZxidEnd = archive.Zxid(prep.ZxidStart), dump.Manifest.ZxidEnd
	for _, role := range dump.Manifest.Roles {
		r.Roles = append(r.Roles, result.RoleCounts{Role: role.Role, Source: role.Source, Counts: role.Counts})
	}
	return nil
}
