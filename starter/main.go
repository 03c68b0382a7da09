// Command starter starts one workflow now, waits for it and prints its result as one JSON
// object on stdout, or reads archives: inspect says what one holds, diff what changed
// between two (text, or JSON with --json). On failure it exits non-zero with the cause on
// stderr.
//
//	starter --config FILE backup
//	starter --config FILE restore [--restore-point URL] [--restore-version V] [--dry-run]
//	starter [--config FILE] inspect [--json] URL
//	starter [--config FILE] diff [--json] URL1 URL2
//	starter --config FILE prune [--dry-run]
//	starter --config FILE verify [URL]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/temporalclient"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

const usage = `usage: starter --config FILE backup
       starter --config FILE restore [--restore-point URL] [--restore-version V] [--dry-run]
       starter [--config FILE] inspect [--json] URL
       starter [--config FILE] diff [--json] URL1 URL2
       starter --config FILE prune [--dry-run]
       starter --config FILE verify [URL]
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("starter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v\n%s", err, usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd := fs.Arg(0); cmd == "inspect" || cmd == "diff" {
		a, err := newArchives(*configPath)
		if err != nil {
			return err
		}
		if cmd == "inspect" {
			return inspectCmd(ctx, a, fs.Args()[1:], stdout)
		}
		return diffCmd(ctx, a, fs.Args()[1:], stdout)
	}
	if *configPath == "" || fs.NArg() < 1 {
		return fmt.Errorf("--config FILE and a command are required\n%s", usage)
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	c, err := temporalclient.Dial(ctx, cfg, nil, 15*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()

	switch cmd := fs.Arg(0); cmd {
	case "backup":
		return backup(ctx, c, cfg, stdout)
	case "restore":
		return restoreCmd(ctx, c, cfg, fs.Args()[1:], stdout)
	case "prune":
		return pruneCmd(ctx, c, cfg, fs.Args()[1:], stdout)
	case "verify":
		return verifyCmd(ctx, c, cfg, fs.Args()[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func backup(ctx context.Context, c client.Client, cfg config.Config, stdout io.Writer) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("%s-manual-%d", result.ScheduleID(cfg.Temporal.TaskQueue), time.Now().UnixMilli()),
		TaskQueue:                cfg.Temporal.TaskQueue,
		WorkflowExecutionTimeout: 6 * time.Hour,
	}, result.BackupWorkflowName)
	if err != nil {
		return fmt.Errorf("start %s: %w", result.BackupWorkflowName, err)
	}
	var res result.Backup
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("backup %s failed: %s", run.GetID(), workflows.Cause(err))
	}
	return json.NewEncoder(stdout).Encode(res)
}
