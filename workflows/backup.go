package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
)

// a is only used for activity method names; the worker registers the real struct.
var a *activities.Backup

// retry is shared by every stage: transient faults (ZooKeeper session expiry, S3 down) are
// retried with backoff; errors the activities mark non-retryable (missing bucket, wrong
// credentials, bad auth) fail the stage at once.
var retry = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Second,
	MaximumAttempts:    5,
}

func stage(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         retry,
	})
}

// BackupWorkflow dumps the whole ZooKeeper tree, packs it with its manifest and uploads it
// under <backupPrefix>-<unix millis>.tar.gz. The four stages share local files, so they run
// in one session, on one worker host; the staging files are removed whatever the outcome.
func BackupWorkflow(ctx workflow.Context) (BackupResult, error) {
	start := workflow.Now(ctx)
	var target activities.TargetInfo
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry})
	if err := workflow.ExecuteLocalActivity(lctx, a.Target).Get(ctx, &target); err != nil {
		return BackupResult{}, stageError("target", err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, TargetAttribute.ValueSet(target.Target)); err != nil {
		return BackupResult{}, stageError("tag with target", err)
	}

	sctx, err := workflow.CreateSession(ctx, &workflow.SessionOptions{
		CreationTimeout:  2 * time.Minute,
		ExecutionTimeout: 6 * time.Hour,
		HeartbeatTimeout: 30 * time.Second,
	})
	if err != nil {
		return BackupResult{}, stageError("create session", err)
	}
	defer workflow.CompleteSession(sctx)

	res := BackupResult{Target: target.Target, Time: start.UTC()}
	mark := start
	lap := func() float64 {
		now := workflow.Now(ctx)
		d := now.Sub(mark).Seconds()
		mark = now
		return d
	}

	var prep activities.PrepareResult
	err = workflow.ExecuteActivity(stage(sctx, 2*time.Minute), a.Prepare, activities.PrepareInput{StartMillis: start.UnixMilli()}).Get(ctx, &prep)
	res.Durations.Prepare = lap()
	if err != nil {
		return res, stageError("prepare", err)
	}
	defer func() {
		// Cleanup runs even when the workflow is failing or cancelled.
		dctx, cancel := workflow.NewDisconnectedContext(sctx)
		defer cancel()
		_ = workflow.ExecuteActivity(stage(dctx, time.Minute), a.Cleanup, prep.StagingDir).Get(dctx, nil)
	}()
	res.Name, res.URL = prep.Key, prep.URL

	var dump activities.DumpResult
	err = workflow.ExecuteActivity(stage(sctx, 2*time.Hour), a.Dump, activities.DumpInput{StagingDir: prep.StagingDir}).Get(ctx, &dump)
	res.Durations.Dump = lap()
	if err != nil {
		return res, stageError("dump", err)
	}

	var comp activities.CompressResult
	err = workflow.ExecuteActivity(stage(sctx, time.Hour), a.Compress, activities.CompressInput{Prepare: prep, Dump: dump}).Get(ctx, &comp)
	res.Durations.Compression = lap()
	if err != nil {
		return res, stageError("compress", err)
	}

	var up activities.UploadResult
	err = workflow.ExecuteActivity(stage(sctx, 2*time.Hour), a.Upload, activities.UploadInput{ArchivePath: comp.ArchivePath, Key: prep.Key, Size: comp.SizeCompressed}).Get(ctx, &up)
	res.Durations.Upload = lap()
	if err != nil {
		return res, stageError("upload", err)
	}

	res.URL = up.URL
	res.Znodes = dump.Znodes
	res.EphemeralSkipped = dump.EphemeralSkipped
	res.Vanished = dump.Vanished
	res.DataBytes = dump.DataBytes
	res.SizeNonCompressed = comp.SizeNonCompressed
	res.SizeCompressed = comp.SizeCompressed
	res.SHA256 = comp.SHA256
	res.ZxidStart = archive.Zxid(prep.ZxidStart)
	res.ZxidEnd = archive.Zxid(dump.ZxidEnd)
	res.Durations.Total = workflow.Now(ctx).Sub(start).Seconds()
	return res, nil
}
