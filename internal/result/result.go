// Package result holds what the workflows return and the names they are found by: what the
// workflows, the programs that start them and the API share. It imports nothing of this
// project, so the API reads backup results without linking the workflows, their
// activities, ZooKeeper or the restore.
package result

import "time"

const (
	// BackupWorkflowName and RestoreWorkflowName are the registered workflow types, as
	// operators type them in `temporal workflow start --type`.
	BackupWorkflowName  = "BackupWorkflow"
	RestoreWorkflowName = "RestoreWorkflow"
	// TargetAttributeName is the Keyword search attribute every BackupWorkflow sets to its
	// deployment's Backup.Target (bucket URL joined with the backup prefix). The API lists
	// only the executions whose tag equals its own, so deployments sharing a Temporal
	// namespace never see each other's backups.
	TargetAttributeName = "MetadataBackupTarget"
	// DefaultTaskQueue is the default temporal.taskQueue; its deployment's Schedule is
	// DefaultScheduleID.
	DefaultTaskQueue  = "metadata-backup"
	DefaultScheduleID = "metadata-backup"
)

// ScheduleID is the Temporal Schedule of the deployment whose workers poll taskQueue:
// DefaultScheduleID for the default queue, "metadata-backup-<taskQueue>" otherwise. Each
// deployment (its own task queue, bucket and ensemble) has its own schedule, so one
// deployment's worker never pauses another's backups.
func ScheduleID(taskQueue string) string {
	if taskQueue == DefaultTaskQueue {
		return DefaultScheduleID
	}
	return DefaultScheduleID + "-" + taskQueue
}

// Counts describe a dumped tree: the manifest, the dump and the backup's result carry them.
type Counts struct {
	Znodes           int64 `json:"znodes"`
	EphemeralSkipped int64 `json:"ephemeralSkipped"`
	// Vanished counts znodes deleted between being listed and being read.
	Vanished int64 `json:"vanished"`
	// DataBytes is the sum of the znodes' data lengths.
	DataBytes int64 `json:"dataBytes"`
}

// RoleCounts are one store's counts in a backup: its role ("local", "configuration") and
// its address as configured, without credentials.
type RoleCounts struct {
	Role   string `json:"role"`
	Source string `json:"source"`
	Counts
}

// Durations are seconds spent per stage, measured on the workflow's clock, so they include
// retries and queueing and are the same on every replay.
type Durations struct {
	Prepare     float64 `json:"prepare"`
	Dump        float64 `json:"dump"`
	Compression float64 `json:"compression"`
	Upload      float64 `json:"upload"`
	Total       float64 `json:"total"`
}

// Backup is BackupWorkflow's result, what `bin/starter backup` prints, and what the API's
// list and metrics are built from.
type Backup struct {
	// Name is the object key, e.g. metadata-backup-1700000000000.tar.gz.
	Name string `json:"name"`
	// URL is the object's full address, e.g. s3a://bucket/metadata-backup-1700000000000.tar.gz.
	URL    string `json:"url"`
	Target string `json:"target"`
	// Time is when the backup started; its Unix milliseconds are in Name.
	Time time.Time `json:"time"`
	Counts
	SizeNonCompressed int64  `json:"sizeNonCompressed"`
	SizeCompressed    int64  `json:"sizeCompressed"`
	ZxidStart         string `json:"zxidStart"`
	ZxidEnd           string `json:"zxidEnd"`
	// SHA256 is the hex SHA-256 of the whole .tar.gz object.
	SHA256 string `json:"sha256"`
	// Roles break Counts down per store (local, and configuration when it is a store apart);
	// Counts are their totals. Results of backups from before roles have none.
	Roles []RoleCounts `json:"roles,omitempty"`
	// AuthUnused is set when zookeeper.auth is configured and no znode the backup read
	// needed it (every one was readable by anyone): the credentials were not proven, and a
	// wrong password would have gone unnoticed.
	AuthUnused bool      `json:"authUnused,omitempty"`
	Durations  Durations `json:"durations"`
}

// Every finished BackupWorkflow and RestoreWorkflow run sets two memo fields, strings, so
// `temporal workflow describe`, DescribeWorkflowExecution and the Web UI's run view tell
// what it did without a worker and without decoding its result: MemoSummary, one line
// (for a backup: znodes, size and object URL; for a restore: znodes created, ledgers kept
// and dropped), and MemoDetails, the same and more in Markdown. Runs recorded before the
// summary existed have neither.
const (
	MemoSummary = "summary"
	MemoDetails = "details"
)
