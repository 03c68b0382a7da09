package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// restoreCmd runs RestoreWorkflow for the pair given by flags (restore.restorePoint and
// restore.restoreVersion of the config when absent), waits, and prints the report as one
// JSON object. A repeat of a restored pair prints the report with alreadyRestored true and
// succeeds; a refused or failed restore returns its cause.
func restoreCmd(ctx context.Context, c client.Client, cfg config.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	point := fs.String("restore-point", cfg.Restore.RestorePoint, "the archive's object URL (s3a://bucket/key.tar.gz), or a key in restore.bucket")
	version := fs.String("restore-version", cfg.Restore.RestoreVersion, "restore version: a new one restores the same point again")
	dryRun := fs.Bool("dry-run", false, "plan only: write nothing")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("restore: %v\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("restore: unexpected argument %q\n%s", fs.Arg(0), usage)
	}
	resolved, err := restore.ResolvePoint(*point, cfg.RestoreBucket())
	if err != nil {
		return err
	}
	if err := restore.CheckVersion(*version); err != nil {
		return err
	}
	rep, err := launch.RunRestore(ctx, c, cfg.Temporal.TaskQueue, workflows.RestoreInput{
		RestorePoint: resolved, RestoreVersion: *version, DryRun: *dryRun,
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}
