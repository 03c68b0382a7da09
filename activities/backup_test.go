package activities

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-zookeeper/zk"
	"go.temporal.io/sdk/temporal"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// Errors retrying cannot fix fail the stage at once, with their message intact; the rest
// stay retryable.
func TestClassify(t *testing.T) {
	cases := []struct {
		err       error
		retryable bool
		typ       string
	}{
		{fmt.Errorf("check bucket: put s3a://x/p: %w", storage.ErrBucketNotFound), false, ErrTypeBucketNotFound},
		{fmt.Errorf("upload: %w", storage.ErrAccessDenied), false, ErrTypeAccessDenied},
		{fmt.Errorf("read /x: %w", zk.ErrNoAuth), false, ErrTypeZooKeeperAuth},
		{fmt.Errorf("x: %w", archive.ErrCorrupt), false, ErrTypeCorrupt},
		{errors.New("zookeeper session expired"), true, ""},
		{fmt.Errorf("get s3a://x/k: %w", errors.New("connection refused")), true, ""},
	}
	for _, c := range cases {
		got := classify(c.err)
		var app *temporal.ApplicationError
		if !c.retryable {
			if !errors.As(got, &app) || !app.NonRetryable() || app.Type() != c.typ || app.Message() != c.err.Error() {
				t.Errorf("%v: got %#v", c.err, got)
			}
		} else if errors.As(got, &app) && app.NonRetryable() {
			t.Errorf("%v: made non-retryable", c.err)
		}
	}
}

// Cleanup removes only directories under the staging root, whatever path it is given.
func TestCleanupStaysUnderStagingRoot(t *testing.T) {
	root := t.TempDir()
	b := &Backup{Config: config.Config{Backup: config.Backup{StagingDir: root}}}
	dir := filepath.Join(root, "metadata-backup-1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Cleanup(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("staging dir still there: %v", err)
	}
	outside := t.TempDir()
	for _, p := range []string{root, outside, filepath.Join(root, ".."), "/"} {
		if err := b.Cleanup(t.Context(), p); err == nil {
			t.Errorf("cleanup of %s allowed", p)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("outside dir touched: %v", err)
	}
}
