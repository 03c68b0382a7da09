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

	"filippo.io/age"
	"github.com/go-zookeeper/zk"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/etcdstore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storeurl"
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
	Key        string `json:"key"`
	URL        string `json:"url"`
	StagingDir string `json:"stagingDir"`
	// ZxidStart and Source are the local store's (kept for runs from before roles).
	ZxidStart int64    `json:"zxidStart"`
	Source    []string `json:"source"`
	// Roles are the stores to dump, local first, each with its consistency start.
	Roles []RolePrep `json:"roles,omitempty"`
}

// RolePrep is one store a backup dumps.
type RolePrep struct {
	Role string `json:"role"`
	// Source is the store's canonical address without credentials (storeurl.URL.String).
	Source    string `json:"source"`
	Store     string `json:"store"`
	Root      string `json:"root,omitempty"`
	ZxidStart int64  `json:"zxidStart"`
}

// storeRole is a role with its config section.
type storeRole struct {
	role string
	cfg  config.ZooKeeper
}

// roles are the stores this deployment backs up: the local one, and the configuration store
// when it is configured apart.
func roles(cfg config.Config) []storeRole {
	out := []storeRole{{archive.RoleLocal, cfg.ZooKeeper}}
	if z, separate := cfg.ConfigStore(); separate {
		out = append(out, storeRole{archive.RoleConfiguration, z})
	}
	return out
}

// Prepare checks every end before anything is dumped: each store answers (with auth, its
// chroot exists) and gives its last zxid after a sync, and the bucket accepts a write. An
// unreachable configuration store fails the backup like the local one: an archive of the
// local store alone is never uploaded as if it were whole.
func (b *Backup) Prepare(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	store, err := b.openStore(ctx)
	if err != nil {
		return PrepareResult{}, err
	}
	if err := store.CheckWritable(ctx); err != nil {
		return PrepareResult{}, classify(fmt.Errorf("check bucket: %w", err))
	}
	var res PrepareResult
	for _, r := range roles(b.Config) {
		u, err := r.cfg.URL()
		if err != nil {
			return PrepareResult{}, nonRetryable(ErrTypeInvalidConfig, err)
		}
		zc, err := connectStore(ctx, r.cfg, 1)
		if err != nil {
			return PrepareResult{}, roleError(r.role, err)
		}
		zxid, err := zc.Position(ctx)
		zc.Close()
		if err != nil {
			return PrepareResult{}, roleError(r.role, classify(fmt.Errorf("%s: position: %w", u, err)))
		}
		res.Roles = append(res.Roles, RolePrep{Role: r.role, Source: u.String(), Store: string(u.Kind), Root: u.Root, ZxidStart: zxid})
		if r.role == archive.RoleLocal {
			res.ZxidStart, res.Source = zxid, u.Servers
		}
	}
	key := archive.ObjectName(b.Config.Backup.BackupPrefix, in.StartMillis)
	staging := filepath.Join(stagingDir(b.Config, b.Staging), strings.TrimSuffix(key, archive.ObjectSuffix))
	if err := os.RemoveAll(staging); err != nil {
		return PrepareResult{}, fmt.Errorf("clear staging dir: %w", err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return PrepareResult{}, fmt.Errorf("create staging dir: %w", err)
	}
	res.Key, res.URL, res.StagingDir = key, store.URL(key), staging
	return res, nil
}

// roleError names the configuration store in errors about it (the local store's errors
// stay as they were); a non-retryable error stays non-retryable.
func roleError(role string, err error) error {
	if role == archive.RoleLocal || err == nil {
		return err
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() {
		return temporal.NewNonRetryableApplicationError("configuration store: "+app.Error(), app.Type(), nil)
	}
	return fmt.Errorf("configuration store: %w", err)
}

// DumpInput points the dump at its staging directory.
type DumpInput struct {
	StagingDir string `json:"stagingDir"`
}

// DumpResult describes the stream files: the manifest's fields the dump knows (per role:
// counts, stream size and SHA-256, the zxid after the walk and the highest seen; their
// totals; the times).
type DumpResult struct {
	// StreamPath is the local role's stream; every role's is <staging>/<archive.StreamFor>.
	StreamPath string           `json:"streamPath"`
	Manifest   archive.Manifest `json:"manifest"`
	// AuthUnused: zookeeper.auth is set and no znode read needed it (see result.Backup).
	AuthUnused bool `json:"authUnused,omitempty"`
}

// DumpProgress is the dump's heartbeat detail.
type DumpProgress struct {
	Role   string `json:"role,omitempty"`
	Znodes int64  `json:"znodes"`
	Bytes  int64  `json:"bytes"`
}

// Dump streams every store's whole tree (relative to its chroot) into its stream file under
// the staging directory, the local store first. A retry starts over: the files are
// rewritten from the beginning.
func (b *Backup) Dump(ctx context.Context, in DumpInput) (DumpResult, error) {
	started := time.Now().UTC()
	res := DumpResult{StreamPath: filepath.Join(in.StagingDir, archive.StreamName)}
	authUsed := false
	var done int64
	for _, r := range roles(b.Config) {
		role, used, err := b.dumpRole(ctx, r, in.StagingDir, done)
		if err != nil {
			return DumpResult{}, roleError(r.role, err)
		}
		done += role.Znodes
		authUsed = authUsed || used
		res.Manifest.Roles = append(res.Manifest.Roles, role)
		res.Manifest.Znodes += role.Znodes
		res.Manifest.EphemeralSkipped += role.EphemeralSkipped
		res.Manifest.Vanished += role.Vanished
		res.Manifest.DataBytes += role.DataBytes
	}
	res.Manifest.StartTime, res.Manifest.EndTime = started, time.Now().UTC()
	// Kept for readers of results from before roles: the local role's.
	l := res.Manifest.Local()
	res.Manifest.ZxidEnd, res.Manifest.MaxZxid = l.Consistency.ZxidEnd, l.Consistency.MaxZxid
	res.AuthUnused = b.Config.ZooKeeper.Auth != "" && !authUsed
	return res, nil
}

// dumpRole walks one store into its stream file and describes it. before is the znode
// count of roles already dumped, so heartbeats count up over the whole backup.
func (b *Backup) dumpRole(ctx context.Context, r storeRole, dir string, before int64) (archive.Role, bool, error) {
	u, err := r.cfg.URL()
	if err != nil {
		return archive.Role{}, false, nonRetryable(ErrTypeInvalidConfig, err)
	}
	zc, err := connectStore(ctx, r.cfg, 0)
	if err != nil {
		return archive.Role{}, false, err
	}
	defer zc.Close()
	name := archive.StreamFor(r.role)
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return archive.Role{}, false, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	sw := archive.NewStreamWriter(f)
	authNeeded := false
	stats, err := zc.Walk(ctx, zookeeper.WalkOptions{
		Root: "/",
		Progress: func(s zookeeper.WalkStats) {
			activity.RecordHeartbeat(ctx, DumpProgress{Role: r.role, Znodes: before + s.Znodes, Bytes: s.DataBytes})
		},
	}, func(rec znode.Record) error {
		authNeeded = authNeeded || !znode.WorldReadable(rec.ACL)
		return sw.Write(rec)
	})
	if err != nil {
		return archive.Role{}, false, classify(err)
	}
	if err := sw.Flush(); err != nil {
		return archive.Role{}, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return archive.Role{}, false, fmt.Errorf("sync %s: %w", path, err)
	}
	consistency := archive.Consistency{PointInTime: true, Revision: stats.MaxZxid}
	if !zc.PointInTime() {
		zxidEnd, err := zc.Position(ctx)
		if err != nil {
			return archive.Role{}, false, classify(fmt.Errorf("%s: position: %w", u, err))
		}
		consistency = archive.Consistency{ZxidEnd: archive.Zxid(zxidEnd), MaxZxid: archive.Zxid(stats.MaxZxid)}
	}
	return archive.Role{
		Role: r.role, Stream: name, Store: string(u.Kind), Source: u.String(), Root: u.Root,
		Consistency:  consistency,
		Counts:       result.Counts{Znodes: sw.Count(), EphemeralSkipped: stats.EphemeralSkipped, Vanished: stats.Vanished, DataBytes: sw.DataBytes()},
		StreamBytes:  sw.Bytes(),
		StreamSHA256: sw.SHA256(),
	}, authNeeded, nil
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

// Compress writes <staging>/<key> as tar.gz with the manifest first, then each role's
// stream. A full disk is retried (space may come free); an archive that cannot be written
// from its streams is not.
func (b *Backup) Compress(ctx context.Context, in CompressInput) (CompressResult, error) {
	m := in.Dump.Manifest
	m.ToolVersion = ToolVersion()
	m.ManagedLedgerPath = b.Config.Backup.ManagedLedgerPath
	if len(m.Roles) == 0 {
		// A dump by a worker from before roles (upgraded mid-backup): its one stream is the
		// local store's, described at the manifest's top.
		m.Roles = []archive.Role{{
			Role: archive.RoleLocal, Stream: archive.StreamName, Store: "zookeeper", Source: "zk:" + strings.Join(in.Prepare.Source, ","),
			Consistency: archive.Consistency{ZxidEnd: m.ZxidEnd, MaxZxid: m.MaxZxid},
			Counts:      m.Counts, StreamBytes: m.StreamBytes, StreamSHA256: m.StreamSHA256,
		}}
		in.Prepare.Roles = []RolePrep{{Role: archive.RoleLocal, ZxidStart: in.Prepare.ZxidStart}}
	}
	// backup.encryption.recipients: each stream is encrypted to them (age) and the manifest
	// says so; it stays plaintext.
	var recipients []age.Recipient
	if keys := b.Config.Backup.Encryption.Recipients; len(keys) > 0 {
		var err error
		if recipients, err = archive.ParseRecipients(keys); err != nil {
			return CompressResult{}, nonRetryable(ErrTypeInvalidConfig, fmt.Errorf("backup.encryption.recipients: %w", err))
		}
		m.Encryption = &archive.Encryption{Scheme: "age", Recipients: keys}
	}
	streams := make([]archive.Stream, len(m.Roles))
	for i := range m.Roles {
		r := &m.Roles[i]
		for _, p := range in.Prepare.Roles {
			if p.Role == r.Role && !r.Consistency.PointInTime {
				r.Consistency.ZxidStart = archive.Zxid(p.ZxidStart)
			}
		}
		path := filepath.Join(in.Prepare.StagingDir, r.Stream)
		size := r.StreamBytes
		if m.Encryption != nil {
			var err error
			if path, size, err = encryptFile(path, recipients); err != nil {
				return CompressResult{}, err
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return CompressResult{}, fmt.Errorf("open dump of %s: %w", r.Role, err)
		}
		defer f.Close()
		streams[i] = archive.Stream{R: f, Size: size}
	}
	out := filepath.Join(in.Prepare.StagingDir, in.Prepare.Key)
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return CompressResult{}, fmt.Errorf("create archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	var base int64 // bytes of the streams before this one, so heartbeats count up
	for i := range streams {
		off := base
		streams[i].R = &progressReader{r: streams[i].R, every: 8 << 20, report: func(n int64) {
			activity.RecordHeartbeat(ctx, DumpProgress{Bytes: off + n})
		}}
		base += streams[i].Size
	}
	tarSize, err := archive.Write(cw, m, streams)
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

// encryptFile writes path's content encrypted to recipients into path.age, and returns that
// file and its size. A retry writes it again.
func encryptFile(path string, recipients []age.Recipient) (string, int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("encrypt %s: %w", path, err)
	}
	defer src.Close()
	out := path + archive.EncryptedSuffix
	dst, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("encrypt %s: %w", path, err)
	}
	cw := &countingWriter{w: dst}
	err = archive.EncryptStream(cw, src, recipients)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("encrypt %s: %w", path, err)
	}
	return out, cw.n, nil
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

// Connect opens the local store (the zookeeper section); conns 0 means the default pool
// size.
func Connect(ctx context.Context, cfg config.Config, conns int) (metastore.Store, error) {
	return connectStore(ctx, cfg.ZooKeeper, conns)
}

// connectStore opens one store section, under its chroot: ZooKeeper or etcd, behind the
// one interface the pipeline uses.
func connectStore(ctx context.Context, z config.ZooKeeper, conns int) (metastore.Store, error) {
	u, err := z.URL()
	if err != nil {
		return nil, nonRetryable(ErrTypeInvalidConfig, err)
	}
	if u.Kind == storeurl.Etcd {
		return connectEtcd(ctx, u, z)
	}
	c, err := zookeeper.Connect(ctx, zookeeper.Options{
		Servers: u.Servers, Root: u.Root, SessionTimeout: time.Duration(z.SessionTimeout),
		Auth: z.Auth, Conns: conns,
	})
	if err != nil {
		return nil, classify(err)
	}
	return c, nil
}

// connectEtcd opens an etcd store (Pulsar's metadataStoreUrl=etcd:...). A wrong user or
// password fails at once; an unreachable cluster is retried like ZooKeeper.
func connectEtcd(ctx context.Context, u storeurl.URL, z config.ZooKeeper) (metastore.Store, error) {
	opts := etcdstore.Options{Endpoints: u.Servers, Root: u.Root, DialTimeout: 10 * time.Second}
	if z.Auth != "" {
		user, password, err := z.EtcdUser()
		if err != nil {
			return nil, nonRetryable(ErrTypeInvalidConfig, err)
		}
		opts.Username, opts.Password = user, password
	}
	s, err := etcdstore.Connect(ctx, opts)
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrPermissionDenied):
		return nil, nonRetryable(ErrTypeZooKeeperAuth, err)
	case err != nil:
		return nil, err
	}
	return etcdstore.Meta{Store: s}, nil
}

// Error types of non-retryable failures, as they appear in workflow history.
const (
	ErrTypeBucketNotFound = "BucketNotFound"
	ErrTypeAccessDenied   = "AccessDenied"
	ErrTypeZooKeeperAuth  = "ZooKeeperAuth"
	ErrTypeCorrupt        = "CorruptArchive"
	ErrTypeInvalidConfig  = "InvalidConfig"
	ErrTypeChrootNotFound = "ChrootNotFound"
	ErrTypeEncrypted      = "ArchiveEncrypted"
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
	case errors.Is(err, archive.ErrEncrypted):
		return nonRetryable(ErrTypeEncrypted, err)
	case errors.Is(err, zookeeper.ErrChrootMissing):
		return nonRetryable(ErrTypeChrootNotFound, err)
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
