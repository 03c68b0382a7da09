package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// restoreEnv mocks every restore activity; each call is recorded in order in calls, so
// tests check the orchestration alone.
type restoreEnv struct {
	*testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []string
}

func (e *restoreEnv) record(name string) {
	e.mu.Lock()
	e.calls = append(e.calls, name)
	e.mu.Unlock()
}

func (e *restoreEnv) called() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

const (
	point   = "s3a://backups/pulsar-backup-1700000000000.tar.gz"
	version = "2"
)

var (
	manifest = archive.Manifest{Counts: result.Counts{Znodes: 100}, StreamSHA256: strings.Repeat("a", 64), ManagedLedgerPath: "/managed-ledgers", StartTime: time.UnixMilli(1700000000000).UTC()}
	download = activities.DownloadResult{StagingDir: "/stage/restore-x", ArchivePath: "/stage/restore-x/archive.tar.gz", Size: 1234, SHA256: strings.Repeat("b", 64), Manifest: manifest}
	plan     = restore.Plan{
		Znodes: 100, Create: 80, Skipped: map[string]int64{restore.SkipBookKeeper: 15, restore.SkipRoot: 1, restore.SkipLoadStatistics: 4},
		LedgersKept: 7, LedgersDropped: 5, CursorsReset: 3, TopicsWithDataLoss: []string{"persistent://public/default/t1"},
		LedgerIDFloor:          restore.LedgerIDFloor{Highest: 99, HOB: 1, Path: restore.HOBPath(1), FirstID: 1 << 32},
		SchemasToRegister:      restore.Listed{Count: 1, First: []string{"public/default/t1"}},
		CompactionReset:        restore.Listed{Count: 2, First: []string{"persistent://public/default/t1", "persistent://public/default/t2"}},
		StaleCursors:           restore.Listed{Count: 3, First: []string{"persistent://public/default/t1 sub"}},
		BookKeeperBoundSkipped: map[string]int64{"/stream": 6},
	}
	stats = restore.ApplyStats{Records: 100, Skipped: 20, Created: 76, Existing: 2, InitReplaced: 2, Floor: restore.FloorResult{Created: true}}
)

type mocks struct {
	check    []restore.CheckResult // answers in order; the last repeats
	checkErr error
	plan     restore.Plan
	apply    []error // answers in order; then success
	// lose names a stage ("validate", "plan", "begin") whose first call fails as the SDK
	// fails an activity whose session's worker is gone.
	lose  string
	begin restore.BeginResult
}

func newRestoreEnv(t *testing.T, m mocks) *restoreEnv {
	var s testsuite.WorkflowTestSuite
	e := &restoreEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment()}
	e.SetWorkerOptions(testWorkerOptions)
	e.RegisterWorkflowWithOptions(RestoreWorkflow, workflowRegisterOptions(result.RestoreWorkflowName))
	e.RegisterActivity(&activities.Restore{})
	e.SetStartTime(time.UnixMilli(1700000100000))

	e.OnActivity(ra.ResolveRestore, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ResolveInput) (activities.ResolveResult, error) {
		e.record("resolve")
		return activities.ResolveResult{RestorePoint: in.RestorePoint, Target: []string{"zk-new:2181"}, ManagedLedgerPath: "/managed-ledgers"}, nil
	})
	n := 0
	e.OnActivity(ra.CheckTarget, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckInput) (restore.CheckResult, error) {
		e.record("check")
		if in.RestorePoint != point || in.RestoreVersion != version || !slices.Equal(in.ManagedLedgerPaths, []string{"/managed-ledgers"}) {
			t.Errorf("check input %+v", in)
		}
		if m.checkErr != nil {
			return restore.CheckResult{}, m.checkErr
		}
		r := m.check[min(n, len(m.check)-1)]
		n++
		return r, nil
	}).After(time.Second)
	e.OnActivity(ra.DownloadArchive, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DownloadInput) (activities.DownloadResult, error) {
		e.record("download:" + in.ExpectSHA256)
		return download, nil
	}).After(3 * time.Second)
	lost := map[string]bool{}
	loseOnce := func(stage string) error {
		if m.lose == stage && !lost[stage] {
			lost[stage] = true
			return temporal.NewCanceledError()
		}
		return nil
	}
	e.OnActivity(ra.ValidateArchive, mock.Anything, activities.ArchiveInput{ArchivePath: download.ArchivePath}).Return(func(_ context.Context, _ activities.ArchiveInput) (activities.ValidateResult, error) {
		e.record("validate")
		if err := loseOnce("validate"); err != nil {
			return activities.ValidateResult{}, err
		}
		return activities.ValidateResult{Znodes: 100}, nil
	}).After(2 * time.Second)
	e.OnActivity(ra.PlanRestore, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanInput) (restore.Plan, error) {
		e.record("plan")
		if err := loseOnce("plan"); err != nil {
			return restore.Plan{}, err
		}
		if in.ArchivePath != download.ArchivePath {
			t.Errorf("plan input %+v", in)
		}
		if in.CompareTarget {
			e.record("compare")
		}
		if !in.RestoredAt.Equal(time.UnixMilli(1700000100000)) {
			t.Errorf("plan's restore time %v, want the workflow's start", in.RestoredAt)
		}
		return m.plan, nil
	}).After(4 * time.Second)
	e.OnActivity(ra.BeginRestore, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BeginInput) (restore.BeginResult, error) {
		e.record("begin:" + string(in.Check.Decision))
		if m.lose == "begin" && !lost["begin"] {
			lost["begin"] = true
			return restore.BeginResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)
		}
		if in.Archive.SHA256 != download.SHA256 || in.Archive.Znodes != 100 || !in.StartedAt.Equal(time.UnixMilli(1700000100000)) {
			t.Errorf("begin input %+v", in)
		}
		return m.begin, nil
	}).After(5 * time.Second)
	applied := 0
	e.OnActivity(ra.ApplyArchive, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ApplyInput) (restore.ApplyStats, error) {
		e.record("apply")
		// The plan's floor goes to apply, which sets it.
		if in.ArchivePath != download.ArchivePath || in.LedgerIDFloor != m.plan.LedgerIDFloor {
			t.Errorf("apply input %+v, plan's floor %+v", in, m.plan.LedgerIDFloor)
		}
		applied++
		if applied <= len(m.apply) && m.apply[applied-1] != nil {
			return restore.ApplyStats{}, m.apply[applied-1]
		}
		return stats, nil
	}).After(10 * time.Second)
	e.OnActivity(ra.MarkRestored, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.MarkInput) (restore.Marker, error) {
		e.record("mark")
		if in.Created != stats.Created {
			t.Errorf("mark input %+v", in)
		}
		return restore.Marker{Tool: restore.ToolName, State: restore.StateComplete, RestorePoint: point, RestoreVersion: version, Created: in.Created}, nil
	}).After(time.Second)
	e.OnActivity(ra.CleanupRestore, mock.Anything, download.StagingDir).Return(func(_ context.Context, _ string) error {
		e.record("cleanup")
		return nil
	})
	return e
}

func (e *restoreEnv) run(t *testing.T, in RestoreInput) (RestoreReport, error) {
	t.Helper()
	e.ExecuteWorkflow(result.RestoreWorkflowName, in)
	if !e.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := e.GetWorkflowError(); err != nil {
		return RestoreReport{}, err
	}
	var rep RestoreReport
	if err := e.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return rep, nil
}

var fresh = restore.CheckResult{Decision: restore.DecisionFresh, MarkerVersion: -1}

func TestRestoreRunsStagesInOrderAndReports(t *testing.T) {
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: plan})
	rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"resolve", "check", "download:", "validate", "plan", "compare", "check", "begin:fresh", "apply", "cleanup", "mark"}
	if got := e.called(); !slices.Equal(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	if rep.RestorePoint != point || rep.RestoreVersion != version || rep.DryRun || rep.AlreadyRestored ||
		rep.Created != 76 || rep.Existing != 2 || rep.InitReplaced != 2 || rep.Floor == nil || !rep.Floor.Created ||
		rep.LedgerIDFloor != plan.LedgerIDFloor || rep.SchemasToRegister.Count != 1 || rep.CompactionReset.Count != 2 || rep.StaleCursors.Count != 3 ||
		rep.BookKeeperBoundSkipped["/stream"] != 6 || rep.LedgersKept != 7 || rep.LedgersDropped != 5 || rep.CursorsReset != 3 ||
		!slices.Equal(rep.TopicsWithDataLoss, plan.TopicsWithDataLoss) || rep.Skipped[restore.SkipBookKeeper] != 15 ||
		rep.Archive == nil || rep.Archive.SHA256 != download.SHA256 || rep.Marker == nil || rep.Marker.State != restore.StateComplete ||
		rep.Plan == nil || rep.Plan.Create != 80 || !slices.Equal(rep.Target, []string{"zk-new:2181"}) || !strings.HasPrefix(rep.WorkflowID, "default-test-workflow-id") {
		t.Fatalf("report %+v", rep)
	}
	d := rep.Durations
	if !near(d.Check, 2) || !near(d.Download, 3) || !near(d.Validate, 2) || !near(d.Plan, 4) || !near(d.Clear, 5) || !near(d.Apply, 10) || !near(d.Mark, 1) || !near(d.Total, 27) {
		t.Fatalf("durations %+v", d)
	}
}

func TestRestoreDryRunWritesNothing(t *testing.T) {
	p := plan
	p.ConflictsCount, p.Conflicts = 1, []string{"/admin/clusters/c"} // reported, not refused
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: p})
	rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"resolve", "check", "download:", "validate", "plan", "compare", "cleanup"}
	if got := e.called(); !slices.Equal(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	if !rep.DryRun || rep.Created != 0 || rep.Plan == nil || rep.Plan.ConflictsCount != 1 || rep.LedgersDropped != 5 ||
		rep.LedgerIDFloor != plan.LedgerIDFloor || rep.SchemasToRegister.Count != 1 || rep.StaleCursors.Count != 3 {
		t.Fatalf("report %+v", rep)
	}
}

func TestRestoreAlreadyRestoredShortCircuits(t *testing.T) {
	done := restore.CheckResult{Decision: restore.DecisionAlreadyRestored, Marker: &restore.Marker{
		Tool: restore.ToolName, State: restore.StateComplete, RestorePoint: point, RestoreVersion: version,
		Archive: restore.ArchiveInfo{SHA256: "cafe"}, Created: 5,
	}}
	for _, dry := range []bool{false, true} {
		e := newRestoreEnv(t, mocks{check: []restore.CheckResult{done}})
		rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.called(); !slices.Equal(got, []string{"resolve", "check"}) {
			t.Fatalf("stages %v", got)
		}
		if !rep.AlreadyRestored || rep.Created != 0 || rep.Marker == nil || rep.Marker.Created != 5 || rep.Archive.SHA256 != "cafe" || rep.DryRun != dry {
			t.Fatalf("report %+v", rep)
		}
	}
	// Restored by someone else between the plan and the second check.
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh, done}, plan: plan})
	rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	if err != nil || !rep.AlreadyRestored {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	if got := e.called(); slices.Contains(got, "apply") || slices.Contains(got, "mark") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "begin") }) {
		t.Fatalf("stages %v", got)
	}
}

func TestRestoreRefusalsFailFastAndWriteNothing(t *testing.T) {
	refused := temporal.NewNonRetryableApplicationError(
		"restore refused: the target cluster is running: 1 broker(s) registered under /loadbalance/brokers (10.0.0.1:8080); stop every broker first",
		restore.RefusedClusterRunning, nil)
	// Refused at the first check.
	e := newRestoreEnv(t, mocks{checkErr: refused})
	_, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	assertFailure(t, err, restore.RefusedClusterRunning, "check: restore refused: the target cluster is running: 1 broker(s)")
	if got := e.called(); !slices.Equal(got, []string{"resolve", "check"}) {
		t.Fatalf("stages %v", got)
	}

	// Conflicting znodes in a target without a marker refuse after the plan.
	p := plan
	p.ConflictsCount, p.Conflicts = 2, []string{"/admin/clusters/c", "/admin/policies/x"}
	e = newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: p})
	_, err = e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	assertFailure(t, err, restore.RefusedConflicts, "plan: restore refused: the target holds 2 znode(s) the archive has with other contents (/admin/clusters/c, /admin/policies/x)")
	if got := e.called(); slices.Contains(got, "apply") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "begin") }) {
		t.Fatalf("stages %v", got)
	}

	// A ledger the target's BookKeeper already has, listed by a restored topic.
	p = plan
	p.LedgerCollisions = restore.Listed{Count: 1, First: []string{"persistent://public/default/t1 12"}}
	e = newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: p})
	_, err = e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	assertFailure(t, err, restore.RefusedLedgerCollision, "plan: restore refused: the target's BookKeeper already has 1 ledger(s) that restored topics list (persistent://public/default/t1 12)")
	if got := e.called(); slices.Contains(got, "apply") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "begin") }) {
		t.Fatalf("stages %v", got)
	}

	// Input checked before anything runs.
	e = newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}})
	_, err = e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: " "})
	assertFailure(t, err, activities.ErrTypeInvalidInput, "input: invalid restore input: restoreVersion is empty")
	if got := e.called(); len(got) != 0 {
		t.Fatalf("stages %v", got)
	}
}

func assertFailure(t *testing.T, err error, typ, prefix string) {
	t.Helper()
	if err == nil {
		t.Fatal("workflow succeeded")
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != typ || !strings.HasPrefix(Cause(err), prefix) || strings.Contains(Cause(err), "\n") {
		t.Fatalf("error %q (type %q), want type %q and cause starting %q", Cause(err), errorType(err), typ, prefix)
	}
}

func TestRestoreReplaceReportsWhatItCleared(t *testing.T) {
	prev := &restore.Marker{Tool: restore.ToolName, State: restore.StateComplete, RestorePoint: point, RestoreVersion: "1"}
	replace := restore.CheckResult{Decision: restore.DecisionReplace, Marker: prev, MarkerVersion: 3}
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{replace}, plan: plan,
		begin: restore.BeginResult{Replaced: &restore.Previous{RestorePoint: point, RestoreVersion: "1", State: restore.StateComplete}, Deleted: 95, Kept: 1}})
	rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	// A replaced target is not compared: it is cleared first.
	want := []string{"resolve", "check", "download:", "validate", "plan", "check", "begin:replace", "apply", "cleanup", "mark"}
	if got := e.called(); !slices.Equal(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	if rep.Replaced == nil || rep.Replaced.RestoreVersion != "1" || rep.Clear == nil || rep.Clear.Deleted != 95 {
		t.Fatalf("report %+v", rep)
	}
}

// The worker holding the session stops during apply: a new session downloads the same
// archive (checked against the first download's SHA-256) and applies again, without
// validating, planning or beginning twice.
func TestRestoreStartsOverOnANewSessionWhenTheWorkerIsLost(t *testing.T) {
	lost := temporal.NewNonRetryableApplicationError("session failed due to worker shutdown", "SessionWorkerShutdown", nil)
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: plan, apply: []error{lost}})
	rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"resolve", "check", "download:", "validate", "plan", "compare", "check", "begin:fresh", "apply", "cleanup",
		"download:" + download.SHA256, "apply", "cleanup", "mark"}
	if got := e.called(); !slices.Equal(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	if rep.Created != stats.Created || !near(rep.Durations.Apply, 20) || !near(rep.Durations.Download, 6) {
		t.Fatalf("report %+v", rep)
	}

	// A failure of the stage itself is not retried on a new session.
	conflict := temporal.NewNonRetryableApplicationError("create /admin/x: exists with different data", restore.RefusedConflicts, nil)
	e = newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: plan, apply: []error{conflict}})
	_, err = e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	assertFailure(t, err, restore.RefusedConflicts, "apply: create /admin/x: exists with different data")
	if got := e.called(); slices.Contains(got, "mark") || strings.Count(strings.Join(got, " "), "apply") != 1 {
		t.Fatalf("stages %v", got)
	}
}

func TestRestoreWorkflowID(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	id := func(v, tq string, dry bool, at time.Time) string {
		return RestoreWorkflowID(RestoreInput{RestorePoint: point, RestoreVersion: v, DryRun: dry}, tq, at)
	}
	a, a2 := id("1", "tq", false, now), id("1", "tq", false, now.Add(time.Hour))
	if a != a2 || !strings.HasPrefix(a, "metadata-restore-") || len(a) != len("metadata-restore-")+16 {
		t.Fatalf("ids %q %q", a, a2)
	}
	if a == id("2", "tq", false, now) || a == id("1", "other-tq", false, now) {
		t.Fatal("another version or another target must get another ID")
	}
	if dry := id("1", "tq", true, now); dry != "metadata-restore-dryrun-"+a[len("metadata-restore-"):]+"-1700000000123" {
		t.Fatalf("dry-run id %q", dry)
	}
	// The parts are joined unambiguously (versions have no control characters).
	if RestorePairHash("ab", "c", "q") == RestorePairHash("a", "bc", "q") {
		t.Fatal("pair hash ambiguous")
	}
}

// A session lost in any phase starts over on a new one at that phase: validation, the plan,
// its refusals and a dry run's stop are never skipped.
func TestRestoreResumesAtThePhaseTheSessionWasLostIn(t *testing.T) {
	re := "download:" + download.SHA256
	for _, tc := range []struct {
		lose string
		dry  bool
		want []string
	}{
		{"validate", false, []string{"resolve", "check", "download:", "validate", "cleanup",
			re, "validate", "plan", "compare", "check", "begin:fresh", "apply", "cleanup", "mark"}},
		{"plan", false, []string{"resolve", "check", "download:", "validate", "plan", "cleanup",
			re, "plan", "compare", "check", "begin:fresh", "apply", "cleanup", "mark"}},
		{"validate", true, []string{"resolve", "check", "download:", "validate", "cleanup",
			re, "validate", "plan", "compare", "cleanup"}},
		{"plan", true, []string{"resolve", "check", "download:", "validate", "plan", "cleanup",
			re, "plan", "compare", "cleanup"}},
		// Begin runs outside the session, on any worker: a heartbeat timeout there is retried
		// in place (a retried Begin of the same run continues).
		{"begin", false, []string{"resolve", "check", "download:", "validate", "plan", "compare", "check", "begin:fresh", "begin:fresh",
			"apply", "cleanup", "mark"}},
	} {
		e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: plan, lose: tc.lose})
		rep, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version, DryRun: tc.dry})
		if err != nil {
			t.Fatalf("lose %s (dry %v): %v", tc.lose, tc.dry, err)
		}
		if got := e.called(); !slices.Equal(got, tc.want) {
			t.Errorf("lose %s (dry %v): stages\n%v\nwant\n%v", tc.lose, tc.dry, got, tc.want)
		}
		if rep.DryRun != tc.dry || tc.dry && rep.Created != 0 || !tc.dry && rep.Created != stats.Created {
			t.Errorf("lose %s (dry %v): report %+v", tc.lose, tc.dry, rep)
		}
	}

	// A refusal found by the plan of a resumed session still refuses.
	p := plan
	p.ConflictsCount, p.Conflicts = 1, []string{"/admin/x"}
	e := newRestoreEnv(t, mocks{check: []restore.CheckResult{fresh}, plan: p, lose: "validate"})
	_, err := e.run(t, RestoreInput{RestorePoint: point, RestoreVersion: version})
	assertFailure(t, err, restore.RefusedConflicts, "plan: restore refused")
	if got := e.called(); slices.Contains(got, "apply") {
		t.Fatalf("stages %v", got)
	}
}
