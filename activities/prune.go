package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/retention"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// PruneInput says how to prune.
type PruneInput struct {
	// DryRun decides and reports, and deletes nothing.
	DryRun bool `json:"dryRun"`
	// KnownGood is the key of the archive the backup running this prune just wrote: it is
	// protected as the newest successful one whatever else the bucket holds.
	KnownGood string `json:"knownGood,omitempty"`
	// OmitDecisions leaves the per-object decisions out of the result (they are logged):
	// a backup's history keeps only the counts.
	OmitDecisions bool `json:"omitDecisions,omitempty"`
}

// PruneProgress is the prune's heartbeat detail.
type PruneProgress struct {
	Manifests int `json:"manifests"`
	Deleted   int `json:"deleted"`
}

const (
	// manifestReaders is how many manifests a prune reads at once.
	manifestReaders = 8
	// markerTimeout bounds reading the restore marker; past it the prune deletes nothing.
	markerTimeout = 30 * time.Second
)

// Prune applies backup.retention to the archives under the backup prefix
// (internal/retention): it lists them, reads each archive's manifest (only this tool's
// archives count), reads the restore marker of zookeeper.servers, decides, and deletes what
// the policy does not keep. Every decision is logged as one JSON line ("prune decision").
// With no rule set it does nothing. It fails only when the bucket cannot be listed; a delete
// that fails is reported in its decision, and an unreadable marker makes it delete nothing
// (Skipped says why), so that a restore the marker might describe keeps its archive.
func (b *Backup) Prune(ctx context.Context, in PruneInput) (result.Prune, error) {
	policy := b.Config.Backup.Retention
	res := result.Prune{Target: b.Config.Backup.Target(), DryRun: in.DryRun, Policy: policy}
	log := activity.GetLogger(ctx)
	if policy.Empty() && !in.DryRun {
		res.Skipped = "backup.retention sets no rule: nothing is deleted"
		return res, nil
	}
	store, err := b.openStore(ctx)
	if err != nil {
		return res, err
	}
	prefix := b.Config.Backup.BackupPrefix
	var objects []retention.Object
	err = store.List(ctx, prefix, func(o storage.ObjectInfo) error {
		objects = append(objects, retention.Object{Key: o.Key, Size: o.Size})
		return nil
	})
	if err != nil {
		return res, classify(fmt.Errorf("list %s: %w", store.URL(prefix), err))
	}
	progress := PruneProgress{}
	activity.RecordHeartbeat(ctx, progress)
	manifests, err := readManifests(ctx, store, prefix, objects, func(n int) {
		progress.Manifests = n
		activity.RecordHeartbeat(ctx, progress)
	})
	if err != nil {
		return res, err
	}
	marker := b.readMarker(ctx, store)
	decisions := retention.Decide(retention.Input{
		Prefix: prefix, Policy: policy, Objects: objects, Manifests: manifests, Marker: marker, KnownGood: in.KnownGood,
	})
	res.PruneCounts = retention.Count(decisions)
	switch {
	case marker.Unknown:
		res.Skipped = "nothing is deleted: " + marker.Detail
		log.Warn("prune deletes nothing: the restore marker could not be read", "reason", marker.Detail)
	case policy.Empty():
		res.Skipped = "backup.retention sets no rule: nothing is deleted"
	}
	gone := 0
	if !in.DryRun {
		for i := range decisions {
			d := &decisions[i]
			if d.Action != result.ActionDelete {
				continue
			}
			if err := ctx.Err(); err != nil {
				d.Error = "not deleted: " + err.Error()
				res.Failed++
				continue
			}
			err := store.Delete(ctx, d.Name)
			switch {
			case err == nil:
				d.Deleted = true
				res.Deleted++
				res.DeletedBytes += d.Size
				if len(res.DeletedNames) < result.MaxPruneDeletedNames {
					res.DeletedNames = append(res.DeletedNames, d.Name)
				}
			case errors.Is(err, storage.ErrNotExist):
				d.Error = "already gone"
				gone++
			default:
				d.Error = err.Error()
				res.Failed++
			}
			progress.Deleted = res.Deleted
			activity.RecordHeartbeat(ctx, progress)
		}
	}
	if !in.DryRun {
		res.Retained = res.Archives - res.Deleted - gone
	}
	for _, d := range decisions {
		line, _ := json.Marshal(d)
		log.Info("prune decision", "target", res.Target, "dryRun", in.DryRun, "decision", string(line))
	}
	log.Info("prune done", "target", res.Target, "dryRun", in.DryRun, "archives", res.Archives, "delete", res.Delete,
		"deleted", res.Deleted, "failed", res.Failed, "retained", res.Retained, "skipped", res.Skipped)
	if in.OmitDecisions {
		return res, nil
	}
	if len(decisions) > result.MaxPruneDecisions {
		decisions, res.DecisionsTruncated = decisions[:result.MaxPruneDecisions], true
	}
	res.Decisions = decisions
	return res, nil
}

// readManifests reads the manifest of every object named as an archive of prefix,
// manifestReaders at a time: only what the manifest calls this tool's archive is one.
// progress is called with the number read so far.
func readManifests(ctx context.Context, store storage.Store, prefix string, objects []retention.Object, progress func(int)) (map[string]retention.Manifest, error) {
	var keys []string
	for _, o := range objects {
		if _, ok := retention.IsArchive(prefix, o.Key); ok {
			keys = append(keys, o.Key)
		}
	}
	out := make(map[string]retention.Manifest, len(keys))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(manifestReaders, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				m := readManifest(ctx, store, k)
				mu.Lock()
				out[k] = m
				n := len(out)
				mu.Unlock()
				if n%64 == 0 {
					progress(n)
				}
			}
		}()
	}
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		work <- k
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func readManifest(ctx context.Context, store storage.Store, key string) retention.Manifest {
	r, err := store.Get(ctx, key)
	if err != nil {
		return retention.Manifest{State: retention.ManifestUnreadable, Detail: err.Error()}
	}
	defer r.Close()
	if _, err := archive.ReadManifest(r); err != nil {
		if errors.Is(err, archive.ErrCorrupt) {
			return retention.Manifest{State: retention.ManifestForeign, Detail: err.Error()}
		}
		return retention.Manifest{State: retention.ManifestUnreadable, Detail: err.Error()}
	}
	return retention.Manifest{State: retention.ManifestOK}
}

// readMarker reads the restore marker of the deployment's ensemble (zookeeper.servers): an
// "applying" marker naming an archive of this bucket and prefix protects it. When the marker
// cannot be read, the result is Unknown: the prune then deletes nothing.
func (b *Backup) readMarker(ctx context.Context, store storage.Store) retention.Marker {
	ctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	zc, err := Connect(ctx, b.Config, 1)
	if err != nil {
		return retention.Marker{Unknown: true, Detail: fmt.Sprintf("cannot read the restore marker %s of zookeeper %s: %s", restore.MarkerPath, b.Config.ZooKeeper.Servers, oneLineCause(err))}
	}
	defer zc.Close()
	m, _, foreign, err := restore.ReadMarker(ctx, zc)
	switch {
	case err != nil:
		return retention.Marker{Unknown: true, Detail: fmt.Sprintf("cannot read the restore marker %s of zookeeper %s: %s", restore.MarkerPath, b.Config.ZooKeeper.Servers, oneLineCause(err))}
	case foreign || m == nil || m.State != restore.StateApplying:
		return retention.Marker{}
	}
	detail := fmt.Sprintf("restore of %s version %s is applying (run %s/%s)", m.RestorePoint, m.RestoreVersion, m.WorkflowID, m.RunID)
	loc, key, err := storage.SplitObjectURL(m.RestorePoint)
	if err != nil {
		// Not an object URL this tool would write: protect nothing specific, but say so.
		return retention.Marker{Detail: detail}
	}
	ours, err := storage.ParseURL(b.Config.Backup.Bucket)
	if err != nil || !sameLocation(loc, ours) {
		return retention.Marker{Detail: detail}
	}
	return retention.Marker{Protect: key, Detail: detail}
}

// sameLocation tells whether two bucket URLs address the same objects: s3 and s3a are one
// scheme.
func sameLocation(a, b storage.Location) bool {
	norm := func(l storage.Location) storage.Location {
		if l.Scheme == "s3a" {
			l.Scheme = "s3"
		}
		return l
	}
	return norm(a) == norm(b)
}

// oneLineCause is an error's message for a decision's detail (the message of a temporal
// error, not its wrapping).
func oneLineCause(err error) string {
	var ae interface{ Message() string }
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}
