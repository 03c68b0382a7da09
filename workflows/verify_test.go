package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

func newVerifyEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(testWorkerOptions)
	env.RegisterWorkflowWithOptions(VerifyWorkflow, workflowRegisterOptions(result.VerifyWorkflowName))
	env.RegisterActivity(&activities.Backup{})
	env.RegisterActivity(&activities.Restore{})
	env.RegisterActivity(&activities.Verify{})
	env.OnActivity(a.Target, mock.Anything).Return(activities.TargetInfo{Target: "s3a://b/p"}, nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

var located = activities.LocateResult{Name: "p-1.tar.gz", URL: "s3a://b/p-1.tar.gz", RecordedSHA256: "aa"}

// Checksum only (no scratch ensemble): download, validate, done; the object's SHA-256 must be
// the one its backup recorded, or nothing else is trusted.
func TestVerifyChecksumOnly(t *testing.T) {
	env := newVerifyEnv(t)
	env.OnActivity(va.LocateArchive, mock.Anything, activities.LocateInput{}).Return(located, nil).Once()
	dl := activities.DownloadResult{StagingDir: "/s/x", ArchivePath: "/s/x/a.tar.gz", SHA256: "aa", Manifest: archive.Manifest{Counts: result.Counts{Znodes: 7}}}
	env.OnActivity(ra.DownloadArchive, mock.Anything, activities.DownloadInput{RestorePoint: located.URL}).Return(dl, nil).Once()
	env.OnActivity(ra.ValidateArchive, mock.Anything, activities.ArchiveInput{ArchivePath: dl.ArchivePath}).After(2*time.Second).Return(activities.ValidateResult{}, nil).Once()
	env.OnActivity(ra.CleanupRestore, mock.Anything, dl.StagingDir).Return(nil).Once()
	env.OnActivity(va.PrepareScratch, mock.Anything).Return(nil).Never()
	env.ExecuteWorkflow(result.VerifyWorkflowName, VerifyInput{})
	var v result.Verify
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if err := env.GetWorkflowResult(&v); err != nil || v.Method != result.VerifyChecksum || v.Znodes != 7 || v.SHA256 != "aa" || v.Drill != nil || !near(v.Seconds, 2) {
		t.Fatalf("result %+v, %v", v, err)
	}

	env = newVerifyEnv(t)
	env.OnActivity(va.LocateArchive, mock.Anything, mock.Anything).Return(located, nil).Once()
	dl.SHA256 = "bb"
	env.OnActivity(ra.DownloadArchive, mock.Anything, mock.Anything).Return(dl, nil).Once()
	env.OnActivity(ra.ValidateArchive, mock.Anything, mock.Anything).Return(activities.ValidateResult{}, nil).Never()
	env.OnActivity(ra.CleanupRestore, mock.Anything, dl.StagingDir).Return(nil).Once()
	env.ExecuteWorkflow(result.VerifyWorkflowName, VerifyInput{})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeArchiveTampered || !strings.Contains(Cause(err), "has SHA-256 bb, but its backup recorded aa") {
		t.Fatalf("tampered: %v", err)
	}
}
