// Command worker runs the Temporal worker: it registers the workflows and activities, keeps
// the backup Schedule in line with backup.enable, and starts a restore when restore.enable
// is set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/temporalclient"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

func main() {
	configPath := flag.String("config", "", "config file (YAML)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(*configPath, logger); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(configPath string, logger *slog.Logger) error {
	if configPath == "" {
		return errors.New("--config FILE is required")
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := temporalclient.Dial(ctx, cfg, logger.With("component", "temporal-sdk"), 15*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := temporalclient.EnsureKeywordAttribute(ctx, c, cfg.Temporal.Namespace, workflows.TargetAttribute.GetName()); err != nil {
		return err
	}

	w := worker.New(c, cfg.Temporal.TaskQueue, worker.Options{EnableSessionWorker: true})
	workflows.Register(w)
	activities.RegisterBackup(w, cfg)
	activities.RegisterRestore(w, cfg)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.Temporal.TaskQueue, err)
	}
	defer w.Stop()

	interval := time.Duration(cfg.Backup.BackupInterval) * time.Second
	state, err := workflows.SyncSchedule(ctx, c, cfg.Temporal.TaskQueue, cfg.Backup.Enable, interval)
	if err != nil {
		return err
	}
	logger.Info("worker started", "taskQueue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace,
		"schedule", workflows.ScheduleID, "scheduleState", state, "backupInterval", interval.String(),
		"bucket", cfg.Backup.Bucket, "zookeeper", cfg.ZooKeeper.Servers)
	if cfg.Restore.Enable {
		if err := startRestore(ctx, c, cfg, logger); err != nil {
			return err
		}
	}

	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}
