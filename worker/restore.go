package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// startRestore starts the restore restore.enable asks for, without waiting for it, and logs
// its outcome when it ends. Restarting the worker does not restore twice: the workflow ID is
// derived from (restorePoint, restoreVersion), so a running or successful run of the pair is
// found instead of starting another, and a run Temporal has forgotten finds the pair in the
// target's marker and does nothing.
func startRestore(ctx context.Context, c client.Client, cfg config.Config, logger *slog.Logger) error {
	point, err := restore.ResolvePoint(cfg.Restore.RestorePoint, cfg.RestoreBucket())
	if err != nil {
		return err
	}
	in := workflows.RestoreInput{RestorePoint: point, RestoreVersion: cfg.Restore.RestoreVersion}
	run, already, err := launch.StartRestore(ctx, c, cfg.Temporal.TaskQueue, in)
	if err != nil {
		return err
	}
	log := logger.With("workflowId", run.GetID(), "restorePoint", point, "restoreVersion", in.RestoreVersion)
	if already {
		log.Info("restore.enable: this restore already ran or is running; not starting another")
	} else {
		log.Info("restore.enable: restore started")
	}
	go func() {
		var rep workflows.RestoreReport
		if err := run.Get(ctx, &rep); err != nil {
			if ctx.Err() == nil {
				log.Error("restore failed", "cause", workflows.Cause(err))
			}
			return
		}
		log.Info("restore finished", "alreadyRestored", rep.AlreadyRestored || already, "created", rep.Created,
			"ledgersKept", rep.LedgersKept, "ledgersDropped", rep.LedgersDropped, "cursorsReset", rep.CursorsReset)
	}()
	return nil
}
