package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
)

// ra is only used for activity method names; the worker registers the real struct.
var ra *activities.Restore

// RestoreInput is RestoreWorkflow's input: plain JSON with no secrets, as operators type it
// in `temporal workflow start --input '{"restorePoint":"s3a://...","restoreVersion":"2"}'`.
type RestoreInput struct {
	// RestorePoint is the archive's object URL (s3a://, s3://, file://), or a bare key
	// resolved against the worker's restore.bucket (backup.bucket when empty).
	RestorePoint string `json:"restorePoint"`
	// RestoreVersion makes a pair with RestorePoint: restoring the same point again on
	// purpose takes a new version.
	RestoreVersion string `json:"restoreVersion"`
	// DryRun stops after the plan: nothing is written.
	DryRun bool `json:"dryRun"`
}

// RestoreDurations are seconds per stage on the workflow's clock (retries and queueing
// included); Check adds up both gate checks, Clear is the begin stage (marker and clearing
// of an earlier restore).
type RestoreDurations struct {
	Check    float64 `json:"check"`
	Download float64 `json:"download"`
	Validate float64 `json:"validate"`
	Plan     float64 `json:"plan"`
	Clear    float64 `json:"clear"`
	Apply    float64 `json:"apply"`
	Mark     float64 `json:"mark"`
	Total    float64 `json:"total"`
}

// RestoreReport is RestoreWorkflow's result and what `bin/starter restore` prints. The
// first fields are named as the restore issue requires; see docs/RESTORE.md for all.
type RestoreReport struct {
	RestorePoint   string `json:"restorePoint"`
	RestoreVersion string `json:"restoreVersion"`
	DryRun         bool   `json:"dryRun"`
	// AlreadyRestored is true for a repeat of a pair the target (marker) or Temporal (an
	// earlier run of the same workflow ID) says was restored: nothing was done.
	AlreadyRestored bool `json:"alreadyRestored"`
	// Created counts znodes written; Existing znodes found already there and identical.
	Created  int64 `json:"created"`
	Existing int64 `json:"existing"`
	// Skipped counts archive records not restored, per reason (restore.SkipReasons).
	Skipped            map[string]int64 `json:"skipped"`
	LedgersKept        int64            `json:"ledgersKept"`
	LedgersDropped     int64            `json:"ledgersDropped"`
	CursorsReset       int64            `json:"cursorsReset"`
	TopicsWithDataLoss []string         `json:"topicsWithDataLoss"`
	// What the new cluster needs to know, from the plan (docs/RESTORE.md): the floor under
	// its ledger ids, schemas to register again, topics to compact again, metadata of
	// functions, packages and stream storage left out, and subscriptions whose position may
	// be older than their last acknowledgement.
	LedgerIDFloor          restore.LedgerIDFloor `json:"ledgerIdFloor"`
	SchemasToRegister      restore.Listed        `json:"schemasToRegister"`
	CompactionReset        restore.Listed        `json:"compactionReset"`
	BookKeeperBoundSkipped map[string]int64      `json:"bookkeeperBoundSkipped"`
	StaleCursors           restore.Listed        `json:"staleCursors"`
	// InitReplaced counts znodes of `pulsar initialize-cluster-metadata` replaced by the
	// archive's; Floor says whether this run set the ledger-id floor or found it in place.
	InitReplaced int64                `json:"initReplaced"`
	Floor        *restore.FloorResult `json:"floor,omitempty"`
	Durations    RestoreDurations     `json:"durations"`
	// Replaced is the earlier restore of another pair this one replaced; Clear says what
	// clearing it did (znodes deleted, kept as ancestors of skipped paths, or denied by a
	// locked parent's ACL).
	Replaced *restore.Previous    `json:"replaced,omitempty"`
	Clear    *restore.BeginResult `json:"clear,omitempty"`
	// Target is the ensemble restored into; WorkflowID the run that did it.
	Target []string `json:"target"`
	// ConfigurationTarget is the configuration store restored into, when apart from the
	// local one; Configuration what restoring the archive's configuration role did there
	// (its mode, created, existing, conflicts left as found). Created and Existing above
	// count the local store.
	ConfigurationTarget string               `json:"configurationTarget,omitempty"`
	Configuration       *restore.ConfigStats `json:"configuration,omitempty"`
	WorkflowID          string               `json:"workflowId"`
	// Archive identifies what was restored; Plan is the full plan (lists capped).
	Archive *restore.ArchiveInfo `json:"archive,omitempty"`
	Plan    *restore.Plan        `json:"plan,omitempty"`
	// Marker is the target's marker: as written by this run, or, for a repeat, the one that
	// said so.
	Marker *restore.Marker `json:"marker,omitempty"`
}

// Restore workflow IDs: one per pair and target, so Temporal itself refuses a second run of
// a pair that succeeded; dry runs get their own.
const (
	RestoreIDPrefix       = "metadata-restore-"
	RestoreDryRunIDPrefix = "metadata-restore-dryrun-"
)

// RestorePairHash is the first 16 hex digits of
// SHA-256(restorePoint "\n" restoreVersion "\n" taskQueue). The task queue stands for the
// target: the workers polling it restore into their own zookeeper.servers, and deployments
// sharing a Temporal namespace have their own queues, so the same pair restored into two
// clusters are two restores.
func RestorePairHash(point, version, taskQueue string) string {
	sum := sha256.Sum256([]byte(point + "\n" + version + "\n" + taskQueue))
	return hex.EncodeToString(sum[:8])
}

// RestoreWorkflowID is the workflow ID for a restore input on taskQueue:
// "metadata-restore-<hash>" for a real restore, "metadata-restore-dryrun-<hash>-<unix
// millis of now>" for a dry run, so dry runs never block the real one nor each other. The
// restore point must be resolved already (restore.ResolvePoint).
func RestoreWorkflowID(in RestoreInput, taskQueue string, now time.Time) string {
	h := RestorePairHash(in.RestorePoint, in.RestoreVersion, taskQueue)
	if in.DryRun {
		return fmt.Sprintf("%s%s-%d", RestoreDryRunIDPrefix, h, now.UnixMilli())
	}
	return RestoreIDPrefix + h
}

// maxRestoreSessions bounds how often a restore starts over on a new worker session after
// losing one (the worker holding the downloaded archive stopped).
const maxRestoreSessions = 3

var restoreSession = &workflow.SessionOptions{
	CreationTimeout:  2 * time.Minute,
	ExecutionTimeout: 12 * time.Hour,
	HeartbeatTimeout: 20 * time.Second,
}

// restorePhase is how far a restore got. Each phase is done once; a new session (the last
// one's worker was lost) downloads the archive again and resumes at the first phase not
// done, so validation, the plan, its refusals and a dry run's stop are never skipped.
type restorePhase int

const (
	phaseValidate restorePhase = iota
	phasePlan
	phaseBegin
	phaseApply
	phaseDone
)

// RestoreWorkflow restores a backup archive into the worker's ZooKeeper ensemble:
//
//  1. resolve (local): the full object URL and the target, from the worker's config;
//  2. check: the gate (restore.Check). A refusal fails the run, nothing written; a pair the
//     marker records as complete ends it as alreadyRestored;
//  3. in a session (the stages share the downloaded file): download, validate, plan. A dry
//     run ends after the plan. Conflicts and ledger collisions refuse;
//  4. begin: check again, then restore.Begin (marker "applying", earlier restore cleared);
//  5. apply, in the session: the ledger-id floor and the tree;
//  6. mark: the marker says "complete".
//
// When the session's worker is lost, a new session downloads the same archive again (it
// must not have changed) and resumes at the first phase not done (restorePhase). Failures
// are one line, "<stage>: <cause>", non-retryable, typed as the cause (refusals:
// ClusterRunning, TargetHasManagedLedgers, ForeignMarker, TargetConflict, ...).
func RestoreWorkflow(ctx workflow.Context, in RestoreInput) (RestoreReport, error) {
	r := &restoreRun{clock: newClock(ctx), in: in}
	r.rep = RestoreReport{
		RestorePoint: in.RestorePoint, RestoreVersion: in.RestoreVersion, DryRun: in.DryRun,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Skipped:    map[string]int64{}, TopicsWithDataLoss: []string{}, BookKeeperBoundSkipped: map[string]int64{},
	}
	if err := restore.CheckVersion(in.RestoreVersion); err != nil {
		return r.rep, temporal.NewNonRetryableApplicationError("input: "+err.Error(), activities.ErrTypeInvalidInput, nil)
	}
	if err := r.resolve(); err != nil {
		return r.rep, err
	}
	chk, err := r.check()
	if err != nil {
		return r.rep, err
	}
	if chk.Decision == restore.DecisionAlreadyRestored {
		return r.finish(r.alreadyRestored(chk))
	}
	r.chk = chk
	if err := withSessions(ctx, "restore", restoreSession, maxRestoreSessions, r.inSession); err != nil {
		showStage(ctx, "**Failed**: "+Cause(err))
		return r.rep, err
	}
	if !r.ended() {
		showStage(ctx, "mark the target restored")
		if err := r.mark(); err != nil {
			return r.rep, err
		}
	}
	r.rep.Durations.Total = r.total()
	return r.finish(r.rep)
}

// finish records the finished run's summary (recordSummary) and returns its report.
func (r *restoreRun) finish(rep RestoreReport) (RestoreReport, error) {
	return rep, recordSummary(r.ctx, restoreSummary(rep), restoreDetails(rep))
}

// restoreRun is one RestoreWorkflow: what it learned so far and how far it got.
type restoreRun struct {
	*clock
	stages
	in      RestoreInput
	rep     RestoreReport
	res     activities.ResolveResult
	mlPaths []string
	chk     restore.CheckResult // the first gate's answer
	dl      activities.DownloadResult
	plan    restore.Plan
	stats   restore.ApplyStats
	phase   restorePhase
}

// ended is true when the run ends before writing: a dry run planned, or the pair found restored.
func (r *restoreRun) ended() bool {
	return r.rep.AlreadyRestored || r.in.DryRun && r.rep.Plan != nil
}

func (r *restoreRun) resolve() error {
	lctx := workflow.WithLocalActivityOptions(r.ctx, localStage)
	if err := workflow.ExecuteLocalActivity(lctx, ra.ResolveRestore, activities.ResolveInput{RestorePoint: r.in.RestorePoint}).Get(r.ctx, &r.res); err != nil {
		return stageError("resolve", err)
	}
	r.rep.RestorePoint, r.rep.Target = r.res.RestorePoint, r.res.Target
	r.rep.ConfigurationTarget = r.res.ConfigurationTarget
	r.mlPaths = []string{r.res.ManagedLedgerPath}
	r.stages = newStages(r.res.RetryWindow, 15*time.Second)
	return nil
}

func (r *restoreRun) check() (restore.CheckResult, error) {
	r.lap()
	var chk restore.CheckResult
	err := workflow.ExecuteActivity(r.any(r.ctx, 5*time.Minute), ra.CheckTarget, activities.CheckInput{
		RestorePoint: r.rep.RestorePoint, RestoreVersion: r.in.RestoreVersion, ManagedLedgerPaths: r.mlPaths,
	}).Get(r.ctx, &chk)
	r.rep.Durations.Check += r.lap()
	if err != nil {
		return chk, stageError("check", err)
	}
	return chk, nil
}

func (r *restoreRun) alreadyRestored(chk restore.CheckResult) RestoreReport {
	r.rep.AlreadyRestored, r.rep.Marker = true, chk.Marker
	if m := chk.Marker; m != nil {
		a := m.Archive
		r.rep.Archive, r.rep.Replaced = &a, m.Replaced
	}
	r.rep.Durations.Total = r.total()
	return r.rep
}

// inSession downloads the archive into the session's host and runs the phases not done yet.
func (r *restoreRun) inSession(sctx workflow.Context) error {
	r.dl.StagingDir = ""
	defer func() {
		if r.dl.StagingDir == "" {
			return
		}
		dctx, cancel := workflow.NewDisconnectedContext(sctx)
		defer cancel()
		_ = workflow.ExecuteActivity(r.any(dctx, time.Minute), ra.CleanupRestore, r.dl.StagingDir).Get(dctx, nil)
	}()
	if err := r.download(sctx); err != nil {
		return err
	}
	for r.phase < phaseDone && !r.ended() {
		var err error
		switch r.phase {
		case phaseValidate:
			err = r.validate(sctx)
		case phasePlan:
			err = r.makePlan(sctx)
		case phaseBegin:
			err = r.begin()
		case phaseApply:
			err = r.apply(sctx)
		}
		if err != nil {
			return err
		}
		r.phase++
	}
	return nil
}

// download fetches the archive; after the first time the object must not have changed.
func (r *restoreRun) download(sctx workflow.Context) error {
	r.lap()
	showStage(sctx, "download "+r.rep.RestorePoint+" (progress: the pending activity's heartbeat details)")
	var got activities.DownloadResult
	err := workflow.ExecuteActivity(r.session(sctx, 2*time.Hour), ra.DownloadArchive, activities.DownloadInput{
		RestorePoint: r.rep.RestorePoint, ExpectSHA256: r.dl.SHA256,
	}).Get(sctx, &got)
	r.rep.Durations.Download += r.lap()
	if err != nil {
		return stageError("download", err)
	}
	r.dl = got
	m := r.dl.Manifest
	r.rep.Archive = &restore.ArchiveInfo{SHA256: r.dl.SHA256, StreamSHA256: m.Local().StreamSHA256, Znodes: m.Znodes, BackupTime: m.StartTime, ManagedLedgerPath: m.ManagedLedgerPath}
	if m.ManagedLedgerPath != "" && m.ManagedLedgerPath != r.res.ManagedLedgerPath {
		r.mlPaths = []string{r.res.ManagedLedgerPath, m.ManagedLedgerPath}
	}
	return nil
}

func (r *restoreRun) validate(sctx workflow.Context) error {
	showStage(sctx, fmt.Sprintf("validate %d znodes (progress: the pending activity's heartbeat details)", r.dl.Manifest.Znodes))
	err := workflow.ExecuteActivity(r.session(sctx, time.Hour), ra.ValidateArchive, activities.ArchiveInput{ArchivePath: r.dl.ArchivePath}).Get(sctx, nil)
	r.rep.Durations.Validate += r.lap()
	if err != nil {
		return stageError("validate", err)
	}
	return nil
}

// makePlan plans the restore and reports it; a dry run ends here. Conflicting znodes and
// ledger collisions refuse a real restore.
func (r *restoreRun) makePlan(sctx workflow.Context) error {
	showStage(sctx, "plan (progress: the pending activity's heartbeat details)")
	err := workflow.ExecuteActivity(r.session(sctx, time.Hour), ra.PlanRestore, activities.PlanInput{
		ArchivePath: r.dl.ArchivePath, CompareTarget: r.chk.Decision == restore.DecisionFresh, RestoredAt: r.start,
	}).Get(sctx, &r.plan)
	r.rep.Durations.Plan += r.lap()
	if err != nil {
		return stageError("plan", err)
	}
	p, rep := &r.plan, &r.rep
	rep.Plan = p
	rep.Skipped, rep.LedgersKept, rep.LedgersDropped = p.Skipped, p.LedgersKept, p.LedgersDropped
	rep.CursorsReset, rep.TopicsWithDataLoss = p.CursorsReset, p.TopicsWithDataLoss
	rep.LedgerIDFloor, rep.SchemasToRegister, rep.CompactionReset = p.LedgerIDFloor, p.SchemasToRegister, p.CompactionReset
	rep.BookKeeperBoundSkipped, rep.StaleCursors = p.BookKeeperBoundSkipped, p.StaleCursors
	if r.in.DryRun {
		rep.Existing = p.Existing
		return nil
	}
	if p.ConflictsCount > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"plan: restore refused: the target holds %d znode(s) the archive has with other contents (%s); restore only into a new cluster",
			p.ConflictsCount, listNames(p.Conflicts)), restore.RefusedConflicts, nil)
	}
	if c := p.Configuration; c != nil && c.Mode == restore.ConfigExclusive && c.Conflicts.Count > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"plan: restore refused: the configuration store, used by this cluster alone, holds %d znode(s) the archive has with other contents (%s); restore only into a new configuration store",
			c.Conflicts.Count, listNames(c.Conflicts.First)), restore.RefusedConflicts, nil)
	}
	if a := p.AuthMismatch; a.Count > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"plan: restore refused: the archive's ACLs name zookeeper.auth's user with another password on %d znode(s) (%s); set the password those znodes were created with",
			a.Count, listNames(a.First)), activities.ErrTypeZooKeeperAuth, nil)
	}
	if c := p.LedgerCollisions; c.Count > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"plan: restore refused: the target's BookKeeper already has %d ledger(s) that restored topics list (%s); restore before anything creates ledgers in the new cluster",
			c.Count, listNames(c.First)), restore.RefusedLedgerCollision, nil)
	}
	return nil
}

// begin runs the gate again, then claims the target (marker "applying") and clears an
// earlier restore of another pair.
func (r *restoreRun) begin() error {
	chk, err := r.check()
	if err != nil {
		return err
	}
	if chk.Decision == restore.DecisionAlreadyRestored {
		r.alreadyRestored(chk)
		return nil
	}
	var b restore.BeginResult
	err = workflow.ExecuteActivity(r.any(r.ctx, 2*time.Hour), ra.BeginRestore, activities.BeginInput{
		RestorePoint: r.rep.RestorePoint, RestoreVersion: r.in.RestoreVersion, StartedAt: r.start,
		Archive: *r.rep.Archive, Check: chk, ConfigMode: r.configMode(),
	}).Get(r.ctx, &b)
	r.rep.Durations.Clear += r.lap()
	if err != nil {
		return stageError("clear", err)
	}
	r.rep.Replaced, r.rep.Clear = b.Replaced, &b
	return nil
}

func (r *restoreRun) apply(sctx workflow.Context) error {
	showStage(sctx, fmt.Sprintf("apply: create %d znodes, keep %d ledgers, drop %d (progress: the pending activity's heartbeat details)",
		r.plan.Create, r.plan.LedgersKept, r.plan.LedgersDropped))
	err := workflow.ExecuteActivity(r.session(sctx, 6*time.Hour), ra.ApplyArchive, activities.ApplyInput{
		ArchivePath: r.dl.ArchivePath, LedgerIDFloor: r.plan.LedgerIDFloor, ConfigMode: r.configMode(),
	}).Get(sctx, &r.stats)
	r.rep.Durations.Apply += r.lap()
	if err != nil {
		return stageError("apply", err)
	}
	return nil
}

func (r *restoreRun) mark() error {
	var mk restore.Marker
	err := workflow.ExecuteActivity(r.any(r.ctx, 5*time.Minute), ra.MarkRestored, activities.MarkInput{
		CompletedAt: workflow.Now(r.ctx), Created: r.stats.Created,
	}).Get(r.ctx, &mk)
	r.rep.Durations.Mark += r.lap()
	if err != nil {
		return stageError("mark", err)
	}
	r.rep.Created, r.rep.Existing, r.rep.Marker = r.stats.Created, r.stats.Existing, &mk
	r.rep.InitReplaced, r.rep.Floor = r.stats.InitReplaced, &r.stats.Floor
	r.rep.Configuration = r.stats.Configuration
	return nil
}

// configMode is the plan's configuration mode, "" for an archive of one store.
func (r *restoreRun) configMode() string {
	if r.plan.Configuration == nil {
		return ""
	}
	return r.plan.Configuration.Mode
}

func listNames(s []string) string {
	if len(s) > 3 {
		return fmt.Sprintf("%s, %s, %s and more", s[0], s[1], s[2])
	}
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
