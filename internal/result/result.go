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
	// SummaryAttributeName is the Text search attribute every finished BackupWorkflow and
	// RestoreWorkflow run sets to its one-line summary (MemoSummary, cut to
	// SummaryAttributeMaxBytes). The Web UI's run list shows search attributes, not memos, as
	// columns: this is the column an operator adds to see what each run did.
	SummaryAttributeName = "MetadataBackupSummary"
	// SummaryAttributeMaxBytes keeps the summary well inside the server's limit on one search
	// attribute value (frontend.searchAttributesSizeOfValueLimit, 2 KiB by default:
	// temporalio/temporal common/dynamicconfig/constants.go, SearchAttributesSizeOfValueLimit).
	SummaryAttributeMaxBytes = 1024
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
	// Prune is what the prune after the upload did (without per-archive decisions; the
	// activity logs those); nil when the run made none (a run of an earlier version).
	Prune *Prune `json:"prune,omitempty"`
}

// PruneWorkflowName is the registered type of the workflow `bin/starter prune` runs.
const PruneWorkflowName = "PruneWorkflow"

// Retention is backup.retention: how many archives to keep, with the semantics of restic's
// `forget` policy (see internal/retention). Every count 0 keeps everything.
type Retention struct {
	KeepLast    int `yaml:"keepLast" json:"keepLast"`
	KeepHourly  int `yaml:"keepHourly" json:"keepHourly"`
	KeepDaily   int `yaml:"keepDaily" json:"keepDaily"`
	KeepWeekly  int `yaml:"keepWeekly" json:"keepWeekly"`
	KeepMonthly int `yaml:"keepMonthly" json:"keepMonthly"`
}

// Empty is true when no rule is set: nothing is deleted.
func (r Retention) Empty() bool { return r == Retention{} }

// Prune actions.
const (
	ActionKeep   = "keep"
	ActionDelete = "delete"
)

// ArchiveDecision is what a prune decided for one object under the backup prefix.
type ArchiveDecision struct {
	// Name is the object key; Time the backup's start its name carries (absent for objects
	// that are not named as this prefix's archives).
	Name string     `json:"name"`
	Time *time.Time `json:"time,omitempty"`
	Size int64      `json:"size"`
	// Action is "keep" or "delete"; Rule the rule that decided it (see internal/retention:
	// a protection, else the first policy rule that keeps it, else "none"); Matches every
	// policy rule that keeps it.
	Action  string   `json:"action"`
	Rule    string   `json:"rule"`
	Matches []string `json:"matches,omitempty"`
	// Detail says more about the rule when there is more to say (the marker's run, a
	// manifest's error).
	Detail string `json:"detail,omitempty"`
	// Deleted is true once the object was deleted; Error says why a delete failed.
	Deleted bool   `json:"deleted,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PruneCounts sum up one prune.
type PruneCounts struct {
	// Objects under the prefix; Archives among them this deployment's archives (by name and
	// manifest).
	Objects  int `json:"objects"`
	Archives int `json:"archives"`
	// Delete is how many the policy decided to delete; Deleted how many were deleted (0 in
	// a dry run), DeletedBytes their size; Failed how many deletes failed.
	Delete       int   `json:"delete"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deletedBytes"`
	Failed       int   `json:"failed"`
	// Retained is how many of this deployment's archives remain.
	Retained int `json:"retained"`
}

// Prune is the result of one prune: PruneWorkflow's result and what `bin/starter prune`
// prints. A BackupWorkflow's result holds it without Decisions.
type Prune struct {
	Target string    `json:"target,omitempty"`
	DryRun bool      `json:"dryRun"`
	Policy Retention `json:"policy"`
	// Skipped says why nothing was deleted when the prune did not run its deletes (no
	// policy, the restore marker unreadable).
	Skipped string `json:"skipped,omitempty"`
	// Error is set (in a BackupWorkflow's result) when the prune failed; the backup did not.
	Error string `json:"error,omitempty"`
	// Seconds is how long the prune took, on the workflow's clock (in a BackupWorkflow's
	// result).
	Seconds float64 `json:"seconds,omitempty"`
	PruneCounts
	// DeletedNames are the keys deleted (the first 100).
	DeletedNames []string `json:"deletedNames,omitempty"`
	// Decisions is every object's decision, this deployment's archives newest first, then
	// the other objects; at most MaxPruneDecisions (DecisionsTruncated says so; the counts
	// are exact).
	Decisions          []ArchiveDecision `json:"decisions,omitempty"`
	DecisionsTruncated bool              `json:"decisionsTruncated,omitempty"`
}

// MaxPruneDecisions bounds Prune.Decisions, which travels as a workflow result (Temporal
// refuses payloads over 2 MB): about 150 bytes each.
const MaxPruneDecisions = 10000

// MaxPruneDeletedNames bounds Prune.DeletedNames.
const MaxPruneDeletedNames = 100

// VerifyWorkflowName is the registered type of the restore drill.
const VerifyWorkflowName = "VerifyWorkflow"

// VerifyScheduleID is the Schedule of the restore drill of the deployment whose workers poll
// taskQueue: "metadata-backup-verify" for the default queue,
// "metadata-backup-<taskQueue>-verify" otherwise.
func VerifyScheduleID(taskQueue string) string { return ScheduleID(taskQueue) + "-verify" }

// Verification methods.
const (
	// VerifyChecksum: the whole archive was read and checked (SHA-256 of the object against
	// the backup's, gzip, every record, the manifest's counts and checksum).
	VerifyChecksum = "checksum"
	// VerifyRestoreDrill: that, and the archive restored into a scratch ensemble by the
	// restore pipeline, read back and found equal to the archive record by record.
	VerifyRestoreDrill = "restore-drill"
)

// Verify is VerifyWorkflow's result: one archive verified. A verification that finds a
// problem fails the workflow instead, naming it.
type Verify struct {
	Target string `json:"target"`
	// Name, URL and BackupTime identify the archive.
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	BackupTime time.Time `json:"backupTime"`
	// Method is VerifyChecksum or VerifyRestoreDrill; VerifiedAt when the verification ended.
	Method     string    `json:"method"`
	VerifiedAt time.Time `json:"verifiedAt"`
	// SHA256 is the object's; RecordedSHA256 what its backup's result recorded ("" when no
	// run in Temporal recorded it: then only the manifest's stream checksum vouches for it).
	SHA256         string `json:"sha256"`
	RecordedSHA256 string `json:"recordedSha256,omitempty"`
	Counts
	// Drill is what the restore drill did (VerifyRestoreDrill only).
	Drill *Drill `json:"drill,omitempty"`
	// Seconds is how long the verification took, on the workflow's clock.
	Seconds float64 `json:"seconds"`
}

// Drill is a restore drill's account.
type Drill struct {
	// Scratch is the ensemble restored into; RestoreWorkflowID the restore's run.
	Scratch           []string `json:"scratch"`
	RestoreWorkflowID string   `json:"restoreWorkflowId"`
	// Created counts the znodes the restore wrote (into both stores of a deployment with a
	// configuration store apart); Compared the archive's records compared with the trees
	// read back; Skipped those the restore leaves out by its own rules.
	Created  int64 `json:"created"`
	Compared int64 `json:"compared"`
	Skipped  int64 `json:"skipped"`
	// Cleared counts the znodes deleted from the scratch ensemble afterwards.
	Cleared int64 `json:"cleared"`
}

// ScratchConfigurationRoot is, in the drill's scratch ensemble, the chroot the drill restores
// a configuration store apart into (the local store goes to the ensemble's root), so one
// scratch ensemble drills a two-store archive whole.
const ScratchConfigurationRoot = "/metadata-verify-configuration"

// ScratchTaskQueue is the task queue of the workers that restore into the drill's scratch
// ensemble (verify.zookeeper) for the deployment of taskQueue.
func ScratchTaskQueue(taskQueue string) string { return taskQueue + "-verify-scratch" }

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
