// Package activities adapts the domain packages under internal/ to Temporal: one method per
// workflow stage, heartbeats with progress, and error classification (an error retrying
// cannot fix is returned as non-retryable). Nothing here decides order; workflows do.
package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
)

// Backup holds what the backup stages need. Credentials are not here: S3's come from the
// AWS SDK's default chain in the worker's environment, ZooKeeper's from the config file, and
// neither ever enters an activity's input or result.
type Backup struct {
	Config config.Config
	// Staging is this worker process's own staging directory (staging.Claim), under the
	// config's staging root; "" means the root itself.
	Staging string
}

// stagingDir is where this process stages files.
func stagingDir(cfg config.Config, own string) string {
	if own != "" {
		return own
	}
	return cfg.Backup.StagingRoot()
}

// TargetInfo says where this worker's backups go.
type TargetInfo struct {
	// Target is config.Backup.Target: BucketURL joined with Prefix.
	Target    string `json:"target"`
	BucketURL string `json:"bucketURL"`
	Prefix    string `json:"prefix"`
	// RetryWindow is config.RetryWindow: how long each stage retries transient faults.
	RetryWindow time.Duration `json:"retryWindow"`
}

// Target reports the configured destination. It does no I/O; it is a (local) activity only
// because the workflow must not read configuration itself.
func (b *Backup) Target(ctx context.Context) (TargetInfo, error) {
	bk := b.Config.Backup
	return TargetInfo{Target: bk.Target(), BucketURL: strings.TrimRight(bk.Bucket, "/"), Prefix: bk.BackupPrefix, RetryWindow: time.Duration(b.Config.RetryWindow)}, nil
}

// PrepareInput names the backup: its Unix milliseconds come from the workflow's clock.
type PrepareInput struct {
	StartMillis int64 `json:"startMillis"`
}

// PrepareResult is what later stages need to know.
type PrepareResult struct {
	Key        string   `json:"key"`
	URL        string   `json:"url"`
	StagingDir string   `json:"stagingDir"`
	ZxidStart  int64    `json:"zxidStart"`
	Source     []string `json:"source"`
}

// Prepare checks both ends before anything is dumped: ZooKeeper answers (with auth) and
// gives its last zxid after a sync, and the bucket accepts a write.
func (b *Backup) Prepare(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	servers, err := b.Config.ZooKeeper.ServerList()
	if err != nil {
		return PrepareResult{}, nonRetryable(ErrTypeInvalidConfig, err)
	}
	store, err := b.openStore(ctx)
	if err != nil {
		return PrepareResult{}, err
	}
	if err := store.CheckWritable(ctx); err != nil {
		return PrepareResult{}, classify(fmt.Errorf("check bucket: %w", err))
	}
	zk, err := Connect(ctx, b.Config, 1)
	if err != nil {
		return PrepareResult{}, err
	}
	defer zk.Close()
	zxid, err := zk.LastZxid(ctx)
	if err != nil {
		return PrepareResult{}, classify(fmt.Errorf("zookeeper last zxid: %w", err))
	}
	key := archive.ObjectName(b.Config.Backup.BackupPrefix, in.StartMillis)
	staging := filepath.Join(stagingDir(b.Config, b.Staging), strings.TrimSuffix(key, archive.ObjectSuffix))
	if err := os.RemoveAll(staging); err != nil {
		return PrepareResult{}, fmt.Errorf("clear staging dir: %w", err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return PrepareResult{}, fmt.Errorf("create staging dir: %w", err)
	}
	return PrepareResult{Key: key, URL: store.URL(key), StagingDir: staging, ZxidStart: zxid, Source: servers}, nil
}

// DumpInput points the dump at its staging directory.
type DumpInput struct {
	StagingDir string `json:"stagingDir"`
}

// DumpResult describes the stream file: the manifest's fields the dump knows (counts,
// stream size and SHA-256, times, the zxid after the walk and the highest seen).
type DumpResult struct {
	StreamPath string           `json:"streamPath"`
	Manifest   archive.Manifest `json:"manifest"`
	// AuthUnused: zookeeper.auth is set and no znode read needed it (see result.Backup).
	AuthUnused bool `json:"authUnused,omitempty"`
}

// DumpProgress is the dump's heartbeat detail.
type DumpProgress struct {
	Znodes int64 `json:"znodes"`
	Bytes  int64 `json:"bytes"`
}

// Dump streams the whole tree into <staging>/znodes.jsonl. A retry starts over: the file
// is rewritten from the beginning.
func (b *Backup) Dump(ctx context.Context, in DumpInput) (DumpResult, error) {
	started := time.Now().UTC()
	zk, err := Connect(ctx, b.Config, 0)
	if err != nil {
		return DumpResult{}, err
	}
	defer zk.Close()
	path := filepath.Join(in.StagingDir, archive.StreamName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return DumpResult{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	sw := archive.NewStreamWriter(f)
	authNeeded := false
	stats, err := zk.Walk(ctx, zookeeper.WalkOptions{
		Root: "/",
		Progress: func(s zookeeper.WalkStats) {
			activity.RecordHeartbeat(ctx, DumpProgress{Znodes: s.Znodes, Bytes: s.DataBytes})
		},
	}, func(r znode.Record) error {
		authNeeded = authNeeded || !znode.WorldReadable(r.ACL)
		return sw.Write(r)
	})
	if err != nil {
		return DumpResult{}, classify(err)
	}
	if err := sw.Flush(); err != nil {
		return DumpResult{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return DumpResult{}, fmt.Errorf("sync %s: %w", path, err)
	}
	zxidEnd, err := zk.LastZxid(ctx)
	if err != nil {
		return DumpResult{}, classify(fmt.Errorf("zookeeper last zxid: %w", err))
	}
	m := archive.Manifest{
		Counts:    result.Counts{Znodes: sw.Count(), EphemeralSkipped: stats.EphemeralSkipped, Vanished: stats.Vanished, DataBytes: sw.DataBytes()},
		StartTime: started, EndTime: time.Now().UTC(),
		ZxidEnd: archive.Zxid(zxidEnd), MaxZxid: archive.Zxid(stats.MaxZxid),
		StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	return DumpResult{StreamPath: path, Manifest: m, AuthUnused: b.Config.ZooKeeper.Auth != "" && !authNeeded}, nil
}

// CompressInput carries what goes into the manifest.
type CompressInput struct {
	Prepare PrepareResult `json:"prepare"`
	Dump    DumpResult    `json:"dump"`
}

// CompressResult describes the archive file.
type CompressResult struct {
	ArchivePath       string `json:"archivePath"`
	SizeNonCompressed int64  `json:"sizeNonCompressed"`
	SizeCompressed    int64  `json:"sizeCompressed"`
	SHA256            string `json:"sha256"`
}

// Compress writes <staging>/<key> as tar.gz with the manifest first. A full disk is retried
// (space may come free); an archive that cannot be written from its stream is not.
func (b *Backup) Compress(ctx context.Context, in CompressInput) (CompressResult, error) {
	d := in.Dump
	m := d.Manifest
	m.ToolVersion, m.Source = ToolVersion(), in.Prepare.Source
	m.ManagedLedgerPath = b.Config.Backup.ManagedLedgerPath
	m.ZxidStart = archive.Zxid(in.Prepare.ZxidStart)
	stream, err := os.Open(d.StreamPath)
	if err != nil {
		return CompressResult{}, fmt.Errorf("open dump: %w", err)
	}
	defer stream.Close()
	out := filepath.Join(in.Prepare.StagingDir, in.Prepare.Key)
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return CompressResult{}, fmt.Errorf("create archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	progress := &progressReader{r: stream, every: 8 << 20, report: func(n int64) {
		activity.RecordHeartbeat(ctx, DumpProgress{Bytes: n})
	}}
	tarSize, err := archive.WriteArchive(cw, m, progress, m.StreamBytes)
	if err == nil {
		err = f.Sync()
	}
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return CompressResult{}, fmt.Errorf("write archive %s: the staging disk is full (backup.stagingDir %s): %w", out, b.Config.Backup.StagingRoot(), err)
	case errors.Is(err, archive.ErrCorrupt):
		return CompressResult{}, nonRetryable(ErrTypeCorrupt, err)
	case err != nil:
		return CompressResult{}, fmt.Errorf("write archive %s: %w", out, err)
	}
	return CompressResult{ArchivePath: out, SizeNonCompressed: tarSize, SizeCompressed: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// UploadInput names the file and its key.
type UploadInput struct {
	ArchivePath string `json:"archivePath"`
	Key         string `json:"key"`
	Size        int64  `json:"size"`
}

// UploadResult is where the backup landed.
type UploadResult struct {
	URL string `json:"url"`
}

// Upload puts the archive under its final key. The store's Put is atomic, so a failed or
// retried upload never leaves a partial object under the key.
func (b *Backup) Upload(ctx context.Context, in UploadInput) (UploadResult, error) {
	store, err := b.openStore(ctx)
	if err != nil {
		return UploadResult{}, err
	}
	f, err := os.Open(in.ArchivePath)
	if err != nil {
		return UploadResult{}, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	r := &progressReader{r: f, every: 4 << 20, report: func(n int64) {
		activity.RecordHeartbeat(ctx, DumpProgress{Bytes: n})
	}}
	if err := store.Put(ctx, in.Key, r, in.Size); err != nil {
		return UploadResult{}, classify(err)
	}
	return UploadResult{URL: store.URL(in.Key)}, nil
}

// Cleanup removes a backup's staging directory; the workflow runs it after success and
// failure alike. Only directories under the staging root are removed.
func (b *Backup) Cleanup(ctx context.Context, stagingDir string) error {
	root := b.Config.Backup.StagingRoot()
	rel, err := filepath.Rel(root, stagingDir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return nonRetryable(ErrTypeInvalidInput, fmt.Errorf("cleanup: %q is not under the staging root %s", stagingDir, root))
	}
	if err := os.RemoveAll(stagingDir); err != nil {
		return fmt.Errorf("cleanup %s: %w", stagingDir, err)
	}
	return nil
}

func (b *Backup) openStore(ctx context.Context) (storage.Store, error) {
	store, err := storage.Open(ctx, b.Config.Backup.Bucket, b.Config.S3.StoreOptions())
	if err != nil {
		return nil, classify(fmt.Errorf("open bucket: %w", err))
	}
	return store, nil
}

// Connect opens a ZooKeeper client from the config; conns 0 means the default pool size.
func Connect(ctx context.Context, cfg config.Config, conns int) (*zookeeper.Client, error) {
	servers, err := cfg.ZooKeeper.ServerList()
	if err != nil {
		return nil, nonRetryable(ErrTypeInvalidConfig, err)
	}
	c, err := zookeeper.Connect(ctx, zookeeper.Options{
		Servers: servers, SessionTimeout: time.Duration(cfg.ZooKeeper.SessionTimeout),
		Auth: cfg.ZooKeeper.Auth, Conns: conns,
	})
	if err != nil {
		return nil, classify(err)
	}
	return c, nil
}

// Error types of non-retryable failures, as they appear in workflow history.
const (
	ErrTypeBucketNotFound = "BucketNotFound"
	ErrTypeAccessDenied   = "AccessDenied"
	ErrTypeZooKeeperAuth  = "ZooKeeperAuth"
	ErrTypeCorrupt        = "CorruptArchive"
	ErrTypeInvalidConfig  = "InvalidConfig"
)

// classify marks errors that retrying cannot fix as non-retryable, keeping the message.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrBucketNotFound):
		return nonRetryable(ErrTypeBucketNotFound, err)
	case errors.Is(err, storage.ErrAccessDenied):
		return nonRetryable(ErrTypeAccessDenied, err)
	case errors.Is(err, zk.ErrAuthFailed), errors.Is(err, zk.ErrNoAuth):
		return nonRetryable(ErrTypeZooKeeperAuth, err)
	case errors.Is(err, archive.ErrCorrupt):
		return nonRetryable(ErrTypeCorrupt, err)
	}
	return err
}

func nonRetryable(kind string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), kind, nil)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// progressReader reports bytes read every `every` bytes, for heartbeats.
type progressReader struct {
	r      io.Reader
	n      int64
	next   int64
	every  int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n >= p.next {
		p.report(p.n)
		p.next = p.n + p.every
	}
	return n, err
}
