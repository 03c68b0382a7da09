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
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
)

// Restore holds what the restore stages need: the worker's config, whose zookeeper section
// is the target ensemble. Like Backup it holds no credentials of its own: S3's come from the
// worker's environment, ZooKeeper's from the config, and neither enters an input or result.
type Restore struct {
	Config config.Config
	// Staging is this worker process's own staging directory, as Backup.Staging.
	Staging string
	// Creator tunes Apply's batches; zero values take the zookeeper package's defaults.
	Creator zookeeper.CreatorOptions
}

// Error types of non-retryable restore failures, besides the refusals' kinds
// (restore.Refused*) and those of Backup (BucketNotFound, AccessDenied, ZooKeeperAuth,
// CorruptArchive).
const (
	ErrTypeInvalidInput         = "InvalidInput"
	ErrTypeRestorePointNotFound = "RestorePointNotFound"
	ErrTypeUnrestorable         = "UnrestorableArchive"
	ErrTypeArchiveChanged       = "ArchiveChanged"
	ErrTypeTargetChanged        = "TargetChanged"
	// ErrTypeNoIdentity: the archive is encrypted and no configured age identity opens it.
	ErrTypeNoIdentity = "NoIdentityMatches"
)

// ResolveInput is the workflow's input as given.
type ResolveInput struct {
	RestorePoint string `json:"restorePoint"`
}

// ResolveResult is what the workflow needs from the worker's config.
type ResolveResult struct {
	// RestorePoint is the archive's full object URL.
	RestorePoint string `json:"restorePoint"`
	// Target is the ensemble restored into (zookeeper.servers), ManagedLedgerPath its
	// brokers' managedLedgerPath (backup.managedLedgerPath).
	Target            []string `json:"target"`
	ManagedLedgerPath string   `json:"managedLedgerPath"`
	// ConfigurationTarget is the configuration store restored into when it is apart from
	// the local one (configurationStore.servers, canonical, no credentials).
	ConfigurationTarget string `json:"configurationTarget,omitempty"`
	// RetryWindow is config.RetryWindow: how long each stage retries transient faults.
	RetryWindow time.Duration `json:"retryWindow"`
}

// ResolveRestore resolves a bare-key restorePoint against restore.bucket (backup.bucket
// when empty) and reports the target. It does no I/O: it is a (local) activity because the
// workflow must not read configuration itself.
func (r *Restore) ResolveRestore(ctx context.Context, in ResolveInput) (ResolveResult, error) {
	point, err := restore.ResolvePoint(in.RestorePoint, r.Config.RestoreBucket())
	if err != nil {
		return ResolveResult{}, nonRetryable(ErrTypeInvalidInput, err)
	}
	servers, err := r.Config.ZooKeeper.ServerList()
	if err != nil {
		return ResolveResult{}, nonRetryable(ErrTypeInvalidConfig, err)
	}
	res := ResolveResult{RestorePoint: point, Target: servers, ManagedLedgerPath: r.Config.Backup.ManagedLedgerPath, RetryWindow: time.Duration(r.Config.RetryWindow)}
	if z, separate := r.Config.ConfigStore(); separate {
		u, err := z.URL()
		if err != nil {
			return ResolveResult{}, nonRetryable(ErrTypeInvalidConfig, err)
		}
		res.ConfigurationTarget = u.String()
	}
	return res, nil
}

// connectConfig opens the configuration store when it is apart from the local one (nil,
// nil otherwise). Its errors name it.
func (r *Restore) connectConfig(ctx context.Context, conns int) (metastore.Store, error) {
	z, separate := r.Config.ConfigStore()
	if !separate {
		return nil, nil
	}
	c, err := connectStore(ctx, z, conns)
	return c, roleError(archive.RoleConfiguration, err)
}

// mustConnectConfig is connectConfig for stages the plan said have a configuration store
// to write: its absence now (the worker's config changed mid-restore) is an error.
func (r *Restore) mustConnectConfig(ctx context.Context) (metastore.Store, error) {
	cc, err := r.connectConfig(ctx, 0)
	if err == nil && cc == nil {
		err = nonRetryable(ErrTypeInvalidConfig, errors.New("the plan restores a configuration store, and configurationStore.servers is no longer set on this worker"))
	}
	return cc, err
}

// CheckInput names the pair and the managed-ledger paths to look under.
type CheckInput struct {
	RestorePoint       string   `json:"restorePoint"`
	RestoreVersion     string   `json:"restoreVersion"`
	ManagedLedgerPaths []string `json:"managedLedgerPaths"`
}

// CheckTarget runs the gate (restore.Check) on the target. A refusal is a non-retryable
// error whose type is the refusal's kind (ClusterRunning, TargetHasManagedLedgers, ...).
func (r *Restore) CheckTarget(ctx context.Context, in CheckInput) (restore.CheckResult, error) {
	zc, err := Connect(ctx, r.Config, 1)
	if err != nil {
		return restore.CheckResult{}, err
	}
	defer zc.Close()
	// The configuration store must answer (and its chroot exist) before anything is written.
	cc, err := r.connectConfig(ctx, 1)
	if err != nil {
		return restore.CheckResult{}, err
	}
	if cc != nil {
		cc.Close()
	}
	res, err := restore.Check(ctx, zc, in.RestorePoint, in.RestoreVersion, in.ManagedLedgerPaths)
	if err != nil {
		return restore.CheckResult{}, classifyRestore(err)
	}
	if err := refuseOpenRun(ctx, res.Marker); err != nil {
		return restore.CheckResult{}, classifyRestore(err)
	}
	return res, nil
}

// refuseOpenRun refuses a target whose marker says another run is applying while that run
// is still open in Temporal: two restores must never write one target at once. Once the run
// is over (failed, cancelled, terminated, or forgotten), its marker may be taken over.
func refuseOpenRun(ctx context.Context, m *restore.Marker) error {
	if m == nil || m.State != restore.StateApplying {
		return nil
	}
	we := activity.GetInfo(ctx).WorkflowExecution
	if m.WorkflowID == we.ID && m.RunID == we.RunID {
		return nil
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return nil
	}
	d, err := c.DescribeWorkflowExecution(ctx, m.WorkflowID, m.RunID)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up the run the restore marker names (%s/%s): %w", m.WorkflowID, m.RunID, err)
	}
	if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil
	}
	return &restore.Refusal{Kind: restore.RefusedInProgress, Msg: fmt.Sprintf(
		"restore of %s version %s is still applying in run %s/%s; wait for it to end (or terminate it) before starting another",
		m.RestorePoint, m.RestoreVersion, m.WorkflowID, m.RunID)}
}

// DownloadInput names the archive. ExpectSHA256, when set, is the SHA-256 an earlier
// download of the same run found: the object must not have changed since it was validated.
type DownloadInput struct {
	RestorePoint string `json:"restorePoint"`
	ExpectSHA256 string `json:"expectSha256,omitempty"`
}

// DownloadResult is the local copy.
type DownloadResult struct {
	StagingDir  string           `json:"stagingDir"`
	ArchivePath string           `json:"archivePath"`
	Size        int64            `json:"size"`
	SHA256      string           `json:"sha256"`
	Manifest    archive.Manifest `json:"manifest"`
}

// DownloadArchive copies the archive into a staging directory of this run, computing its
// SHA-256 on the way, and reads its manifest (kind and format version). The file appears
// under its final name only once complete. A retry downloads again.
func (r *Restore) DownloadArchive(ctx context.Context, in DownloadInput) (DownloadResult, error) {
	loc, key, err := storage.SplitObjectURL(in.RestorePoint)
	if err != nil {
		return DownloadResult{}, nonRetryable(ErrTypeInvalidInput, fmt.Errorf("restorePoint: %w", err))
	}
	store, err := storage.Open(ctx, loc.URL(""), r.Config.S3.StoreOptions())
	if err != nil {
		return DownloadResult{}, classifyRestore(fmt.Errorf("open bucket: %w", err))
	}
	dir := filepath.Join(stagingDir(r.Config, r.Staging), "restore-"+activity.GetInfo(ctx).WorkflowExecution.RunID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DownloadResult{}, fmt.Errorf("create staging dir: %w", err)
	}
	res, err := download(ctx, store, key, dir, in)
	if err == nil && res.Manifest.Encryption != nil {
		err = r.decrypt(in.RestorePoint, res.ArchivePath, res.Manifest.Encryption)
	}
	if err != nil {
		// The workflow cleans up only after a download it knows of.
		_ = os.RemoveAll(dir)
		return DownloadResult{}, err
	}
	return res, nil
}

// decrypt turns an encrypted archive into its plaintext archive in place, with the identity
// of restore.encryption.identityFile, before any stage reads a record: an archive encrypted
// to someone else fails here, before anything is written. The file's content never leaves
// this process (not in errors, inputs or results).
func (r *Restore) decrypt(point, path string, e *archive.Encryption) error {
	idFile := r.Config.Restore.Encryption.IdentityFile
	if idFile == "" {
		return nonRetryable(ErrTypeNoIdentity, fmt.Errorf("%s: %w to age recipient(s) %s, and restore.encryption.identityFile is not set", point, archive.ErrEncrypted, strings.Join(e.Recipients, ", ")))
	}
	ids, err := archive.ReadIdentityFile(idFile)
	if err != nil {
		return nonRetryable(ErrTypeInvalidConfig, fmt.Errorf("restore.encryption.identityFile: %w", err))
	}
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	defer src.Close()
	part := path + ".plain.part"
	dst, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	defer os.Remove(part)
	_, err = archive.Decrypt(src, dst, ids)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, archive.ErrNoIdentity):
		return nonRetryable(ErrTypeNoIdentity, fmt.Errorf("%s: %w", point, err))
	case err != nil:
		return classifyRestore(fmt.Errorf("%s: %w", point, err))
	}
	if err := os.Rename(part, path); err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	return nil
}

func download(ctx context.Context, store storage.Store, key, dir string, in DownloadInput) (DownloadResult, error) {
	body, err := store.Get(ctx, key)
	if err != nil {
		return DownloadResult{}, classifyRestore(err)
	}
	defer body.Close()
	final := filepath.Join(dir, "archive.tar.gz")
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return DownloadResult{}, fmt.Errorf("create %s: %w", part, err)
	}
	defer os.Remove(part)
	defer f.Close()
	h := sha256.New()
	hb := startHeartbeats(ctx)
	defer hb.stop()
	src := &progressReader{r: body, every: 4 << 20, report: func(n int64) { hb.set(restore.Progress{Written: n}) }}
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return DownloadResult{}, classifyRestore(fmt.Errorf("download %s: %w", in.RestorePoint, err))
	}
	if err := f.Close(); err != nil {
		return DownloadResult{}, fmt.Errorf("write %s: %w", part, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if in.ExpectSHA256 != "" && sum != in.ExpectSHA256 {
		return DownloadResult{}, nonRetryable(ErrTypeArchiveChanged, fmt.Errorf(
			"download %s: the object changed since it was validated (SHA-256 %s, was %s)", in.RestorePoint, sum, in.ExpectSHA256))
	}
	if err := os.Rename(part, final); err != nil {
		return DownloadResult{}, fmt.Errorf("download: %w", err)
	}
	mf, err := os.Open(final)
	if err != nil {
		return DownloadResult{}, fmt.Errorf("download: %w", err)
	}
	defer mf.Close()
	m, err := archive.ReadManifest(mf)
	if err != nil {
		return DownloadResult{}, classifyRestore(fmt.Errorf("%s: %w", in.RestorePoint, err))
	}
	return DownloadResult{StagingDir: dir, ArchivePath: final, Size: n, SHA256: sum, Manifest: m}, nil
}

// ArchiveInput names the local archive.
type ArchiveInput struct {
	ArchivePath string `json:"archivePath"`
}

// ValidateResult is what validation found.
type ValidateResult struct {
	Znodes int64 `json:"znodes"`
	// MaxPending is the most managed ledgers held at once while streaming (see
	// restore.Rewriter).
	MaxPending int `json:"maxPending"`
}

// ValidateArchive checks the whole archive before anything is written (restore.Validate).
// A bad archive is a non-retryable CorruptArchive or UnrestorableArchive error.
func (r *Restore) ValidateArchive(ctx context.Context, in ArchiveInput) (ValidateResult, error) {
	f, err := os.Open(in.ArchivePath)
	if err != nil {
		return ValidateResult{}, fmt.Errorf("validate: %w", err)
	}
	defer f.Close()
	hb := startHeartbeats(ctx)
	defer hb.stop()
	v, err := restore.Validate(ctx, f, hb.set)
	if err != nil {
		return ValidateResult{}, classifyRestore(err)
	}
	return ValidateResult{Znodes: v.Manifest.Znodes, MaxPending: v.MaxPending}, nil
}

// PlanInput names the archive and whether to compare it with the target's contents (for
// a target without a marker; replaced and resumed targets are not compared). RestoredAt is
// the cursors' new lastActive in the plan's rewrite.
type PlanInput struct {
	ArchivePath   string    `json:"archivePath"`
	CompareTarget bool      `json:"compareTarget"`
	RestoredAt    time.Time `json:"restoredAt"`
}

// compareLimit is the most target znodes PlanRestore reads to compare: a new cluster holds
// a handful; beyond this the Creator's own comparison catches a conflict at apply time.
const compareLimit = 200_000

// PlanRestore says what the restore does (restore.MakePlan): the dry run's output. It always
// reads the ledgers the target's BookKeeper has, which no restored topic may list.
func (r *Restore) PlanRestore(ctx context.Context, in PlanInput) (restore.Plan, error) {
	hb := startHeartbeats(ctx)
	defer hb.stop()
	pin := restore.PlanInput{RestoredAt: in.RestoredAt}
	zc, err := Connect(ctx, r.Config, 0)
	if err != nil {
		return restore.Plan{}, err
	}
	pin.Identity = zc.Identity()
	pin.TargetLedgers, err = restore.ReadTargetLedgers(ctx, zc)
	if err == nil && in.CompareTarget {
		pin.Target, err = restore.ReadTarget(ctx, zc, compareLimit)
		if errors.Is(err, restore.ErrTargetTooLarge) {
			pin.Target, err = nil, nil
		}
	}
	zc.Close()
	if err != nil {
		return restore.Plan{}, classifyRestore(err)
	}
	f, err := os.Open(in.ArchivePath)
	if err != nil {
		return restore.Plan{}, fmt.Errorf("plan: %w", err)
	}
	defer f.Close()
	p, err := restore.MakePlan(ctx, f, pin, hb.set)
	if err != nil {
		return restore.Plan{}, classifyRestore(err)
	}
	if p.Configuration, err = r.planConfiguration(ctx, in.ArchivePath, hb.set); err != nil {
		return restore.Plan{}, classifyRestore(err)
	}
	return p, nil
}

// planConfiguration plans the archive's configuration role into the configuration store,
// refusing an archive and a target that disagree on whether there is one apart.
func (r *Restore) planConfiguration(ctx context.Context, path string, progress func(restore.Progress)) (*restore.ConfigPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	defer f.Close()
	m, err := archive.ReadManifest(f)
	if err != nil {
		return nil, err
	}
	role, has := m.Role(archive.RoleConfiguration)
	_, separate := r.Config.ConfigStore()
	switch {
	case has && !separate:
		return nil, &restore.Refusal{Kind: restore.RefusedConfigurationShape, Msg: fmt.Sprintf(
			"the archive holds a configuration store apart from the local one (%s), and this worker has none: set configurationStore.servers to the new cluster's configuration store", role.Source)}
	case !has && separate:
		return nil, &restore.Refusal{Kind: restore.RefusedConfigurationShape, Msg: fmt.Sprintf(
			"the archive holds one store (%s), and this worker restores into a configuration store apart (configurationStore.servers): restore into a cluster with one store, or unset configurationStore.servers", m.Local().Source)}
	case !has:
		return nil, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	cc, err := r.mustConnectConfig(ctx)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	cp, err := restore.PlanConfiguration(ctx, cc, f, compareLimit, progress)
	if err != nil {
		return nil, roleError(archive.RoleConfiguration, err)
	}
	return &cp, nil
}

// BeginInput claims the target for a run; see restore.Begin.
type BeginInput struct {
	RestorePoint   string              `json:"restorePoint"`
	RestoreVersion string              `json:"restoreVersion"`
	StartedAt      time.Time           `json:"startedAt"`
	Archive        restore.ArchiveInfo `json:"archive"`
	Check          restore.CheckResult `json:"check"`
	// ConfigMode is the plan's configuration mode ("" for archives of one store).
	ConfigMode string `json:"configMode,omitempty"`
}

// BeginRestore writes the marker as applying for this run and, when the target holds an
// earlier restore of another pair, clears it (restore.Begin). The run is the activity's
// workflow execution.
func (r *Restore) BeginRestore(ctx context.Context, in BeginInput) (restore.BeginResult, error) {
	zc, err := Connect(ctx, r.Config, 0)
	if err != nil {
		return restore.BeginResult{}, err
	}
	defer zc.Close()
	we := activity.GetInfo(ctx).WorkflowExecution
	hb := startHeartbeats(ctx)
	defer hb.stop()
	tmp := filepath.Join(stagingDir(r.Config, r.Staging), "clear-"+we.RunID)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return restore.BeginResult{}, fmt.Errorf("create staging dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	res, err := restore.Begin(ctx, zc, restore.BeginInput{
		RestorePoint: in.RestorePoint, RestoreVersion: in.RestoreVersion,
		WorkflowID: we.ID, RunID: we.RunID, ToolVersion: ToolVersion(),
		StartedAt: in.StartedAt, Archive: in.Archive, Check: in.Check, TempDir: tmp,
	}, hb.set)
	if err != nil {
		return res, classifyRestore(err)
	}
	if res.Replaced != nil && in.ConfigMode != "" {
		// The earlier restore's znodes in the configuration store go too: all of them when
		// the store is this cluster's alone, only those it journaled when it is shared.
		cc, err := r.mustConnectConfig(ctx)
		if err != nil {
			return res, err
		}
		defer cc.Close()
		cs, err := restore.ClearConfiguration(ctx, zc, cc, in.ConfigMode, tmp, hb.set)
		if err != nil {
			return res, roleError(archive.RoleConfiguration, classifyRestore(err))
		}
		res.Configuration = &cs
	}
	return res, nil
}

// ApplyInput names the archive and the plan's ledger-id floor.
type ApplyInput struct {
	ArchivePath   string                `json:"archivePath"`
	LedgerIDFloor restore.LedgerIDFloor `json:"ledgerIdFloor"`
	// ConfigMode is the plan's configuration mode ("" for archives of one store).
	ConfigMode string `json:"configMode,omitempty"`
}

// ApplyArchive sets the ledger-id floor and streams the validated archive into the target
// (restore.Apply). Heartbeats carry restore.Progress. A retried apply continues where it
// stopped: znodes already there and identical are counted as existing.
func (r *Restore) ApplyArchive(ctx context.Context, in ApplyInput) (restore.ApplyStats, error) {
	zc, err := Connect(ctx, r.Config, 0)
	if err != nil {
		return restore.ApplyStats{}, err
	}
	defer zc.Close()
	f, err := os.Open(in.ArchivePath)
	if err != nil {
		return restore.ApplyStats{}, fmt.Errorf("apply: %w", err)
	}
	defer f.Close()
	we := activity.GetInfo(ctx).WorkflowExecution
	owner := restore.Owner{WorkflowID: we.ID, RunID: we.RunID}
	hb := startHeartbeats(ctx)
	defer hb.stop()
	var cs *restore.ConfigStats
	if in.ConfigMode != "" {
		// The configuration role first: tenants and namespaces before the topics under them.
		cc, err := r.mustConnectConfig(ctx)
		if err != nil {
			return restore.ApplyStats{}, err
		}
		defer cc.Close()
		open := func() (io.ReadCloser, error) { return os.Open(in.ArchivePath) }
		st, err := restore.ApplyConfiguration(ctx, zc, cc, open, restore.ConfigApplyInput{
			Owner: owner, Mode: in.ConfigMode, Creator: r.Creator, Limit: compareLimit,
		}, hb.set)
		if err != nil {
			return restore.ApplyStats{Configuration: &st}, roleError(archive.RoleConfiguration, classifyRestore(err))
		}
		cs = &st
	}
	st, err := restore.Apply(ctx, zc, f, restore.ApplyInput{
		Owner: owner, Floor: in.LedgerIDFloor, Creator: r.Creator,
	}, hb.set)
	st.Configuration = cs
	if err != nil {
		return st, classifyRestore(err)
	}
	return st, nil
}

// MarkInput completes the marker.
type MarkInput struct {
	CompletedAt time.Time `json:"completedAt"`
	Created     int64     `json:"created"`
}

// MarkRestored sets the marker of this run's restore to complete (restore.Mark).
func (r *Restore) MarkRestored(ctx context.Context, in MarkInput) (restore.Marker, error) {
	zc, err := Connect(ctx, r.Config, 1)
	if err != nil {
		return restore.Marker{}, err
	}
	defer zc.Close()
	we := activity.GetInfo(ctx).WorkflowExecution
	m, err := restore.Mark(ctx, zc, restore.MarkInput{Owner: restore.Owner{WorkflowID: we.ID, RunID: we.RunID}, CompletedAt: in.CompletedAt, Created: in.Created})
	if err != nil {
		return m, classifyRestore(err)
	}
	return m, nil
}

// CleanupRestore removes a restore's staging directory (only under the staging root).
func (r *Restore) CleanupRestore(ctx context.Context, stagingDir string) error {
	return (&Backup{Config: r.Config}).Cleanup(ctx, stagingDir)
}

// classifyRestore marks what retrying cannot fix as non-retryable, with a type naming it.
func classifyRestore(err error) error {
	var refusal *restore.Refusal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refusal):
		return nonRetryable(refusal.Kind, err)
	case errors.Is(err, restore.ErrInvalidInput):
		return nonRetryable(ErrTypeInvalidInput, err)
	case errors.Is(err, restore.ErrUnrestorable):
		return nonRetryable(ErrTypeUnrestorable, err)
	case errors.Is(err, restore.ErrTargetChanged):
		return nonRetryable(ErrTypeTargetChanged, err)
	case errors.Is(err, storage.ErrNotExist):
		return nonRetryable(ErrTypeRestorePointNotFound, err)
	case errors.Is(err, zk.ErrNodeExists):
		// The Creator found a znode with other contents than the archive's.
		return nonRetryable(restore.RefusedConflicts, err)
	}
	return classify(err)
}

// heartbeats records the latest progress every few seconds from its own goroutine, so an
// activity blocked in a slow call still heartbeats, and progress is visible in the
// workflow's pending activities.
type heartbeats struct {
	mu     sync.Mutex
	latest restore.Progress
	done   chan struct{}
	wg     sync.WaitGroup
}

const heartbeatEvery = 3 * time.Second

func startHeartbeats(ctx context.Context) *heartbeats {
	h := &heartbeats{done: make(chan struct{})}
	activity.RecordHeartbeat(ctx, restore.Progress{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				h.mu.Lock()
				p := h.latest
				h.mu.Unlock()
				activity.RecordHeartbeat(ctx, p)
			case <-h.done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return h
}

func (h *heartbeats) set(p restore.Progress) {
	h.mu.Lock()
	h.latest = p
	h.mu.Unlock()
}

func (h *heartbeats) stop() {
	close(h.done)
	h.wg.Wait()
}
