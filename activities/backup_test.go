package activities

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
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

// A full staging disk while compressing is retried (space may come free), with a message
// that says so; the archive is not corrupt.
func TestCompressOnAFullDiskIsRetryable(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "stage")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for i := range 100 {
		if err := sw.Write(znode.Record{Path: fmt.Sprintf("/n%d", i), Data: bytes.Repeat([]byte{byte(i)}, 1000), ACL: []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}, Mode: znode.ModePersistent}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	streamPath := filepath.Join(dir, archive.StreamName)
	if err := os.WriteFile(streamPath, stream.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The archive's path leads to /dev/full, where every write fails with ENOSPC.
	key := "pulsar-backup-1.tar.gz"
	if err := os.Symlink("/dev/full", filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	b := &Backup{Config: config.Config{Backup: config.Backup{StagingDir: root}}}
	env.RegisterActivity(b)
	_, err := env.ExecuteActivity(b.Compress, CompressInput{
		Prepare: PrepareResult{Key: key, StagingDir: dir},
		Dump:    DumpResult{StreamPath: streamPath, Manifest: archive.Manifest{Counts: result.Counts{Znodes: sw.Count()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()}},
	})
	var app *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "the staging disk is full") || errors.As(err, &app) && app.NonRetryable() {
		t.Fatalf("compress onto a full disk: %v", err)
	}
}
