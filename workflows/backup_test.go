package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// testWorkerOptions are the test environments' worker options: sessions, and a deadlock
// detection timeout that a starved CPU (CI runs packages in parallel on two) cannot reach
// while workflow code runs, where the SDK's 1 s default was once reached. A workflow that
// really blocks still fails, after 10 s.
var testWorkerOptions = worker.Options{EnableSessionWorker: true, DeadlockDetectionTimeout: 10 * time.Second}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(testWorkerOptions)
	env.RegisterWorkflowWithOptions(BackupWorkflow, workflowRegisterOptions(result.BackupWorkflowName))
	env.RegisterActivity(&activities.Backup{})
	env.SetStartTime(time.UnixMilli(1700000000000))
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

var prep = activities.PrepareResult{
	Key: "metadata-backup-1700000000000.tar.gz", URL: "s3a://b/metadata-backup-1700000000000.tar.gz",
	StagingDir: "/tmp/stage/x", ZxidStart: 0x1a2b, Source: []string{"zk:2181"},
}

func TestBackupChainsStagesAndReportsExactResult(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/metadata-backup"}, nil)
	env.OnUpsertTypedSearchAttributes(temporal.NewSearchAttributes(TargetAttribute.ValueSet("s3a://b/metadata-backup"))).Return(nil).Once()
	env.OnActivity(a.Prepare, mock.Anything, activities.PrepareInput{StartMillis: 1700000000000}).After(time.Second).Return(prep, nil).Once()
	dump := activities.DumpResult{StreamPath: "/tmp/stage/x/znodes.jsonl", AuthUnused: true, Manifest: archive.Manifest{
		Counts: result.Counts{Znodes: 20102, EphemeralSkipped: 1, DataBytes: 99}, StreamBytes: 555, StreamSHA256: "ab", ZxidEnd: "0x1a2f"}}
	env.OnActivity(a.Dump, mock.Anything, activities.DumpInput{StagingDir: prep.StagingDir}).After(5*time.Second).Return(dump, nil).Once()
	comp := activities.CompressResult{ArchivePath: "/tmp/stage/x/a.tar.gz", SizeNonCompressed: 123456, SizeCompressed: 34567, SHA256: "cd"}
	env.OnActivity(a.Compress, mock.Anything, activities.CompressInput{Prepare: prep, Dump: dump}).After(2*time.Second).Return(comp, nil).Once()
	env.OnActivity(a.Upload, mock.Anything, activities.UploadInput{ArchivePath: comp.ArchivePath, Key: prep.Key, Size: 34567}).After(3*time.Second).Return(activities.UploadResult{URL: prep.URL}, nil).Once()
	env.OnActivity(a.Cleanup, mock.Anything, prep.StagingDir).Return(nil).Once()
	pruned := result.Prune{Target: "s3a://b/metadata-backup", Policy: result.Retention{KeepLast: 2},
		PruneCounts:  result.PruneCounts{Objects: 5, Archives: 4, Delete: 2, Deleted: 2, DeletedBytes: 77, Retained: 2},
		DeletedNames: []string{"metadata-backup-1.tar.gz", "metadata-backup-2.tar.gz"}}
	// After the upload, on its own: the archive just written is protected, and the decisions
	// stay out of the backup's history.
	env.OnActivity(a.Prune, mock.Anything, activities.PruneInput{KnownGood: prep.Key, OmitDecisions: true}).After(4*time.Second).Return(pruned, nil).Once()
	// Last, the one-line summary goes into the visibility store for the Web UI's run list.
	env.OnUpsertTypedSearchAttributes(temporal.NewSearchAttributes(SummaryAttribute.ValueSet(
		"20102 znodes, 33.8 KiB compressed: s3a://b/metadata-backup-1700000000000.tar.gz"))).Return(nil).Once()

	env.ExecuteWorkflow(result.BackupWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if p := res.Prune; p == nil || p.Deleted != 2 || p.Retained != 2 || len(p.DeletedNames) != 2 || !near(p.Seconds, 4) || p.Error != "" {
		t.Fatalf("prune %+v", p)
	}
	if res.URL != prep.URL || res.Name != prep.Key || res.Znodes != 20102 || res.EphemeralSkipped != 1 ||
		res.SizeNonCompressed != 123456 || res.SizeCompressed != 34567 || res.ZxidStart != "0x1a2b" ||
		res.ZxidEnd != "0x1a2f" || res.SHA256 != "cd" || res.Target != "s3a://b/metadata-backup" || !res.AuthUnused ||
		!res.Time.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("result %+v", res)
	}
	// Stage times come from the workflow clock; the mocks take 1, 5, 2 and 3 seconds.
	d := res.Durations
	if !near(d.Prepare, 1) || !near(d.Dump, 5) || !near(d.Compression, 2) || !near(d.Upload, 3) || !near(d.Total, 11) {
		t.Fatalf("durations %+v", d)
	}
}

func near(got, want float64) bool { return got >= want && got < want+0.5 }

func TestBackupFailedStageStopsChainAndStillCleansUp(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(prep, nil)
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).Return(activities.DumpResult{},
		temporal.NewNonRetryableApplicationError("read /x: not authorized (set zookeeper.auth)", activities.ErrTypeZooKeeperAuth, nil)).Once()
	env.OnActivity(a.Cleanup, mock.Anything, prep.StagingDir).Return(nil).Once()
	env.OnActivity(a.Prune, mock.Anything, mock.Anything).Return(result.Prune{}, nil).Never()

	env.ExecuteWorkflow(result.BackupWorkflowName)
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("workflow succeeded")
	}
	if got := Cause(err); got != "dump: read /x: not authorized (set zookeeper.auth)" {
		t.Fatalf("cause %q", got)
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeZooKeeperAuth {
		t.Fatalf("error type lost: %v", err)
	}
}

// A prune that fails (here: the bucket cannot be listed for its whole retry window) is
// reported in the result; the backup it follows succeeds.
func TestFailedPruneNeverFailsTheBackup(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(prep, nil)
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).Return(activities.DumpResult{Manifest: archive.Manifest{Counts: result.Counts{Znodes: 3}}}, nil)
	env.OnActivity(a.Compress, mock.Anything, mock.Anything).Return(activities.CompressResult{}, nil)
	env.OnActivity(a.Upload, mock.Anything, mock.Anything).Return(activities.UploadResult{URL: prep.URL}, nil)
	env.OnActivity(a.Cleanup, mock.Anything, mock.Anything).Return(nil).Once()
	env.OnActivity(a.Prune, mock.Anything, mock.Anything).Return(result.Prune{},
		temporal.NewNonRetryableApplicationError("list s3a://b/p: access denied", activities.ErrTypeAccessDenied, nil)).Once()
	env.ExecuteWorkflow(result.BackupWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Name != prep.Key || res.Znodes != 3 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if res.Prune == nil || res.Prune.Error != "prune: list s3a://b/p: access denied" || res.Prune.Deleted != 0 {
		t.Fatalf("prune %+v", res.Prune)
	}
}

func TestBackupRetriesTransientDumpFailure(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(prep, nil)
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).Return(activities.DumpResult{}, errors.New("zookeeper session expired")).Twice()
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).Return(activities.DumpResult{Manifest: archive.Manifest{Counts: result.Counts{Znodes: 3}}}, nil).Once()
	env.OnActivity(a.Compress, mock.Anything, mock.Anything).Return(activities.CompressResult{}, nil)
	env.OnActivity(a.Upload, mock.Anything, mock.Anything).Return(activities.UploadResult{URL: "u"}, nil)
	env.OnActivity(a.Cleanup, mock.Anything, mock.Anything).Return(nil).Once()
	env.ExecuteWorkflow(result.BackupWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
}

func TestBackupPrepareFailureNamesCause(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(activities.PrepareResult{},
		temporal.NewNonRetryableApplicationError("check bucket: put s3a://nope/x: bucket does not exist", activities.ErrTypeBucketNotFound, nil)).Once()
	env.ExecuteWorkflow(result.BackupWorkflowName)
	err := env.GetWorkflowError()
	if err == nil || !strings.HasPrefix(Cause(err), "prepare: check bucket") || strings.Contains(Cause(err), "\n") {
		t.Fatalf("err %v, cause %q", err, Cause(err))
	}
}

// The session's worker is lost during the dump (the session fails and cancels it): the
// backup starts over on a new session, preparing again with the same object key, and
// succeeds there.
func TestBackupStartsOverOnANewSessionWhenTheWorkerIsLost(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, activities.PrepareInput{StartMillis: 1700000000000}).Return(prep, nil).Twice()
	lost := temporal.NewCanceledError()
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).After(8*time.Second).Return(activities.DumpResult{}, lost).Once()
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).After(4*time.Second).Return(activities.DumpResult{Manifest: archive.Manifest{Counts: result.Counts{Znodes: 3}}}, nil).Once()
	env.OnActivity(a.Compress, mock.Anything, mock.Anything).Return(activities.CompressResult{}, nil).Once()
	env.OnActivity(a.Upload, mock.Anything, mock.Anything).Return(activities.UploadResult{URL: prep.URL}, nil).Once()
	env.OnActivity(a.Cleanup, mock.Anything, prep.StagingDir).Return(nil).Twice()
	env.ExecuteWorkflow(result.BackupWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Name != prep.Key || res.Znodes != 3 || !near(res.Durations.Dump, 12) {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// Lost on every session, it gives up after maxBackupSessions, saying the worker was lost.
func TestBackupGivesUpAfterLosingEverySession(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(prep, nil).Times(maxBackupSessions)
	env.OnActivity(a.Dump, mock.Anything, mock.Anything).Return(activities.DumpResult{},
		temporal.NewNonRetryableApplicationError("session failed due to worker shutdown", "SessionWorkerShutdown", nil)).Times(maxBackupSessions)
	env.OnActivity(a.Cleanup, mock.Anything, mock.Anything).Return(nil).Times(maxBackupSessions)
	env.ExecuteWorkflow(result.BackupWorkflowName)
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeWorkerLost ||
		Cause(err) != "backup: the worker running it was lost 3 times, giving up; last: dump: session failed due to worker shutdown" {
		t.Fatalf("error %v, cause %q", err, Cause(err))
	}
}

// A stage that used up its retry window failed; it is not a lost worker.
func TestBackupStageTimeoutIsNotALostWorker(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(activities.PrepareResult{},
		temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, errors.New("check bucket: put s3a://b/x: dial tcp 127.0.0.1:9000: connect: connection refused"))).Once()
	env.ExecuteWorkflow(result.BackupWorkflowName)
	err := env.GetWorkflowError()
	if want := "prepare: timed out (ScheduleToClose) after: check bucket: put s3a://b/x: dial tcp 127.0.0.1:9000: connect: connection refused"; Cause(err) != want {
		t.Fatalf("cause %q, want %q", Cause(err), want)
	}
}
