// Package workflows holds the Temporal workflows: deterministic orchestration only. All I/O
// happens in activities (package activities), which these workflows call by name.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

const (
	// BackupWorkflowName and RestoreWorkflowName are the registered workflow types, as
	// operators type them in `temporal workflow start --type`.
	BackupWorkflowName  = "BackupWorkflow"
	RestoreWorkflowName = "RestoreWorkflow"
	// ScheduleID is the Temporal Schedule the worker keeps in step with backup.enable.
	ScheduleID = "metadata-backup"
)

// TargetAttribute tags every BackupWorkflow with the deployment it backs up to,
// config.Backup.Target: the bucket URL joined with the backup prefix. The API lists
// only the executions whose tag equals its own, so deployments sharing a Temporal namespace
// never see each other's backups. The workflow sets it itself at start, whoever started it.
var TargetAttribute = temporal.NewSearchAttributeKeyKeyword("MetadataBackupTarget")

// Durations are seconds spent per stage, measured on the workflow's clock, so they include
// retries and queueing and are the same on every replay.
type Durations struct {
	Prepare     float64 `json:"prepare"`
	Dump        float64 `json:"dump"`
	Compression float64 `json:"compression"`
	Upload      float64 `json:"upload"`
	Total       float64 `json:"total"`
}

// BackupResult is BackupWorkflow's result, what `bin/starter backup` prints, and what the
// API's list and metrics are built from.
type BackupResult struct {
	// Name is the object key, e.g. metadata-backup-1700000000000.tar.gz.
	Name string `json:"name"`
	// URL is the object's full address, e.g. s3a://bucket/metadata-backup-1700000000000.tar.gz.
	URL    string `json:"url"`
	Target string `json:"target"`
	// Time is when the backup started; its Unix milliseconds are in Name.
	Time              time.Time `json:"time"`
	Znodes            int64     `json:"znodes"`
	EphemeralSkipped  int64     `json:"ephemeralSkipped"`
	Vanished          int64     `json:"vanished"`
	DataBytes         int64     `json:"dataBytes"`
	SizeNonCompressed int64     `json:"sizeNonCompressed"`
	SizeCompressed    int64     `json:"sizeCompressed"`
	ZxidStart         string    `json:"zxidStart"`
	ZxidEnd           string    `json:"zxidEnd"`
	// SHA256 is the hex SHA-256 of the whole .tar.gz object.
	SHA256    string    `json:"sha256"`
	Durations Durations `json:"durations"`
}
