// Command worker runs the Temporal worker: it removes what dead workers left in the staging
// root, registers the workflows and activities, keeps its deployment's backup Schedule in
// line with backup.enable, and starts a restore when restore.enable is set.
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

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/staging"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/temporalclient"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

func main() {
	configPath := flag.String("config", "", "config file (YAML)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *configPath, logger); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// run runs the worker until ctx ends.
func run(ctx context.Context, configPath string, logger *slog.Logger) error {
	if configPath == "" {
		return errors.New("--config FILE is required")
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}

	var mon *monitor
	var sdkMetrics client.MetricsHandler
	if cfg.Worker.MetricsPort != 0 {
		if mon, err = startMonitor(cfg.Worker.MetricsPort, logger); err != nil {
			return err
		}
		defer mon.stop()
		sdkMetrics = mon.sdk
		logger.Info("serving /metrics, /healthz, /readyz", "addr", mon.addr)
	}

	c, err := temporalclient.DialWithMetrics(ctx, cfg, logger.With("component", "temporal-sdk"), 15*time.Second, sdkMetrics)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := temporalclient.EnsureAttributes(ctx, c, cfg.Temporal.Namespace, workflows.SearchAttributes...); err != nil {
		return err
	}

	// Files a killed worker left between activities are of no use to anyone: its sessions
	// died with it, and their runs start over on new sessions.
	root := cfg.Backup.StagingRoot()
	swept, err := staging.Sweep(root)
	if err != nil {
		return err
	}
	if len(swept.Dirs) > 0 {
		logger.Info("removed what stopped workers left in the staging root", "dirs", len(swept.Dirs), "bytes", swept.Bytes, "root", root)
	}
	own, err := staging.Claim(root)
	if err != nil {
		return err
	}
	defer own.Release()

	w := worker.New(c, cfg.Temporal.TaskQueue, worker.Options{EnableSessionWorker: true})
	workflows.Register(w)
	activities.RegisterBackup(w, cfg, own.Path)
	activities.RegisterRestore(w, cfg, own.Path)
	activities.RegisterVerify(w, cfg)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.Temporal.TaskQueue, err)
	}
	defer w.Stop()
	if cfg.Verify.ZooKeeper != "" {
		// The drill's restores run here: RestoreWorkflow with the restore's activities bound
		// to the scratch ensemble.
		sw := worker.New(c, result.ScratchTaskQueue(cfg.Temporal.TaskQueue), worker.Options{EnableSessionWorker: true})
		workflows.Register(sw)
		activities.RegisterRestore(sw, cfg.ScratchConfig(), own.Path)
		if err := sw.Start(); err != nil {
			return fmt.Errorf("start worker on task queue %s: %w", result.ScratchTaskQueue(cfg.Temporal.TaskQueue), err)
		}
		defer sw.Stop()
	}
	if mon != nil {
		mon.ready(c)
	}

	interval := time.Duration(cfg.Backup.BackupInterval) * time.Second
	deployment := launch.Deployment{TaskQueue: cfg.Temporal.TaskQueue, Target: cfg.Backup.Target()}
	state, err := launch.SyncSchedule(ctx, c, deployment, cfg.Backup.Enable, interval)
	if err != nil {
		return err
	}
	verifyState, err := launch.SyncVerifySchedule(ctx, c, deployment, cfg.Verify.Enable, time.Duration(cfg.Verify.Interval))
	if err != nil {
		return err
	}
	logger.Info("worker started", "taskQueue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace,
		"schedule", result.ScheduleID(cfg.Temporal.TaskQueue), "scheduleState", state, "backupInterval", interval.String(),
		"bucket", cfg.Backup.Bucket, "zookeeper", cfg.ZooKeeper.Servers,
		"verifySchedule", result.VerifyScheduleID(cfg.Temporal.TaskQueue), "verifyScheduleState", verifyState, "verifyScratch", cfg.Verify.ZooKeeper)
	if cfg.Restore.Enable {
		if err := startRestore(ctx, c, cfg, logger); err != nil {
			return err
		}
	}

	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}
