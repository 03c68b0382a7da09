// Package workflows holds the Temporal workflows: deterministic orchestration only. All I/O
// happens in activities (package activities), which these workflows call by name. What they
// return, and the names clients find them by, are in internal/result.
package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// TargetAttribute tags every BackupWorkflow with the deployment it backs up to (see
// result.TargetAttributeName). The workflow sets it itself at start, whoever started it.
var TargetAttribute = temporal.NewSearchAttributeKeyKeyword(result.TargetAttributeName)

// SummaryAttribute carries a finished backup's or restore's one-line summary into the
// visibility store, so the Web UI's run list can show it as a column (see
// result.SummaryAttributeName).
var SummaryAttribute = temporal.NewSearchAttributeKeyString(result.SummaryAttributeName)

// SearchAttributes are the custom search attributes the workflows set: the worker registers
// them in its namespace before it polls, since upserting an unregistered one fails the run's
// workflow task.
var SearchAttributes = []temporal.SearchAttributeKey{TargetAttribute, SummaryAttribute}

// BackupResult is BackupWorkflow's result (result.Backup).
type BackupResult = result.Backup
