package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/drill"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/retention"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// Verify holds what the restore drill's own stages need; it downloads and validates the
// archive with the restore's activities (Restore) and restores it with RestoreWorkflow.
type Verify struct {
	Config config.Config
}

// Error types of a verification that found a problem.
const (
	ErrTypeArchiveTampered = "ArchiveTampered"
	ErrTypeRestoreDiffers  = "RestoreDiffers"
	ErrTypeNoArchive       = "NoArchive"
	ErrTypeNotScratch      = "NotScratch"
)

// LocateInput names the archive to verify; "" means the newest of this deployment's.
type LocateInput struct {
	URL string `json:"url,omitempty"`
}

// LocateResult is the archive found, and what its backup recorded.
type LocateResult struct {
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	RecordedSHA256 string   `json:"recordedSha256,omitempty"`
	Scratch        []string `json:"scratch,omitempty"`
}

// maxRunsSearched bounds how many completed backups LocateArchive reads to find the one that
// wrote the archive.
const maxRunsSearched = 50

// LocateArchive finds the archive to verify (the newest archive of the prefix whose manifest
// is this tool's, unless one is named) and the SHA-256 its backup recorded, from the result
// of the BackupWorkflow run that wrote it, when Temporal still has it.
func (v *Verify) LocateArchive(ctx context.Context, in LocateInput) (LocateResult, error) {
	scratch, err := v.Config.Verify.ScratchServers()
	if err != nil {
		return LocateResult{}, nonRetryable(ErrTypeInvalidConfig, err)
	}
	res := LocateResult{URL: in.URL, Scratch: scratch}
	if in.URL == "" {
		store, err := (&Backup{Config: v.Config}).openStore(ctx)
		if err != nil {
			return res, err
		}
		prefix := v.Config.Backup.BackupPrefix
		var keys []string
		err = store.List(ctx, prefix, func(o storage.ObjectInfo) error {
			if _, ok := retention.IsArchive(prefix, o.Key); ok {
				keys = append(keys, o.Key)
			}
			return nil
		})
		if err != nil {
			return res, classify(fmt.Errorf("list %s: %w", store.URL(prefix), err))
		}
		// Newest first by the time in the name; the first whose manifest is this tool's is the
		// one (an object named like an archive that is not one is no backup to verify).
		slices.SortFunc(keys, func(a, b string) int {
			ta, _ := retention.IsArchive(prefix, a)
			tb, _ := retention.IsArchive(prefix, b)
			return tb.Compare(ta)
		})
		newest := ""
		for _, k := range keys {
			if m := readManifest(ctx, store, k); m.State == retention.ManifestOK {
				newest = k
				break
			}
		}
		if newest == "" {
			return res, nonRetryable(ErrTypeNoArchive, fmt.Errorf("no archive of prefix %s in %s to verify", prefix, store.URL("")))
		}
		res.URL = store.URL(newest)
	}
	point, err := restore.ResolvePoint(res.URL, v.Config.Backup.Bucket)
	if err != nil {
		return res, nonRetryable(ErrTypeInvalidInput, err)
	}
	res.URL = point
	_, res.Name, _ = storage.SplitObjectURL(point)
	res.RecordedSHA256, err = v.recordedSHA256(ctx, point)
	if err != nil {
		return res, err
	}
	return res, nil
}

// recordedSHA256 looks for the completed BackupWorkflow of this target whose result names the
// archive at url, among the newest maxRunsSearched.
func (v *Verify) recordedSHA256(ctx context.Context, url string) (string, error) {
	c := activity.GetClient(ctx)
	if c == nil {
		return "", nil
	}
	q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Completed'",
		result.BackupWorkflowName, result.TargetAttributeName, v.Config.Backup.Target())
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: maxRunsSearched})
	if err != nil {
		return "", fmt.Errorf("list backups in temporal: %w", err)
	}
	for _, e := range resp.GetExecutions() {
		var raw json.RawMessage
		if err := c.GetWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Get(ctx, &raw); err != nil {
			continue
		}
		var b result.Backup
		if json.Unmarshal(raw, &b) == nil && b.URL == url {
			return b.SHA256, nil
		}
	}
	return "", nil
}

// PrepareScratch claims verify.zookeeper for a drill (drill.Prepare).
func (v *Verify) PrepareScratch(ctx context.Context) error {
	zc, err := Connect(ctx, v.Config.ScratchConfig(), 1)
	if err != nil {
		return err
	}
	defer zc.Close()
	var confRoot string
	if _, separate := v.Config.ConfigStore(); separate {
		confRoot = result.ScratchConfigurationRoot
	}
	if err := drill.Prepare(ctx, zc, confRoot); err != nil {
		if errors.Is(err, drill.ErrNotScratch) {
			return nonRetryable(ErrTypeNotScratch, fmt.Errorf("verify.zookeeper %s: %w", v.Config.Verify.ZooKeeper, err))
		}
		return classify(err)
	}
	return nil
}

// CompareInput names the local archive and the restore whose result to compare.
type CompareInput struct {
	ArchivePath  string `json:"archivePath"`
	RestorePoint string `json:"restorePoint"`
}

// CompareResult is what the comparison found.
type CompareResult struct {
	Compared    int64              `json:"compared"`
	Skipped     int64              `json:"skipped"`
	Differences []drill.Difference `json:"differences,omitempty"`
	Count       int64              `json:"count"`
}

// maxDifferences is how many differing znodes a comparison names.
const maxDifferences = 20

// CompareScratch reads the scratch ensemble back and compares it with the archive as the
// restore writes it (drill.Compare), with the restore marker's start as the cursors'
// lastActive. The marker must say the restore of this archive is complete. A deployment
// with a configuration store apart has its configuration role compared too, with the
// scratch configuration store (under result.ScratchConfigurationRoot); its differences are
// named "configuration:<path>".
func (v *Verify) CompareScratch(ctx context.Context, in CompareInput) (CompareResult, error) {
	scfg := v.Config.ScratchConfig()
	zc, err := Connect(ctx, scfg, 0)
	if err != nil {
		return CompareResult{}, err
	}
	defer zc.Close()
	m, _, _, err := restore.ReadMarker(ctx, zc)
	if err != nil {
		return CompareResult{}, classify(err)
	}
	if m == nil || m.State != restore.StateComplete || m.RestorePoint != in.RestorePoint {
		return CompareResult{}, nonRetryable(ErrTypeRestoreDiffers, fmt.Errorf("the scratch ensemble's restore marker does not say %s was restored (marker %+v)", in.RestorePoint, m))
	}
	hb := startHeartbeats(ctx)
	defer hb.stop()
	var res CompareResult
	compare := func(store metastore.Store, role string) error {
		f, err := os.Open(in.ArchivePath)
		if err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		defer f.Close()
		r, err := drill.Compare(ctx, store, f, role, m.StartedAt, maxDifferences-len(res.Differences))
		if err != nil {
			if errors.Is(err, archive.ErrCorrupt) || errors.Is(err, restore.ErrUnrestorable) {
				return classifyRestore(err)
			}
			return classify(err)
		}
		res.Compared += r.Compared
		res.Skipped += r.Skipped
		res.Count += r.Count
		for _, d := range r.Differences {
			if role != archive.RoleLocal {
				d.Path = role + ":" + d.Path
			}
			res.Differences = append(res.Differences, d)
		}
		return nil
	}
	if err := compare(zc, archive.RoleLocal); err != nil {
		return CompareResult{}, err
	}
	if _, separate := scfg.ConfigStore(); separate {
		cc, err := connectStore(ctx, scfg.ConfigurationStore, 0)
		if err != nil {
			return CompareResult{}, err
		}
		defer cc.Close()
		if err := compare(cc, archive.RoleConfiguration); err != nil {
			return CompareResult{}, err
		}
	}
	return res, nil
}

// ClearScratch deletes what the drill left in the scratch ensemble (drill.Clear).
func (v *Verify) ClearScratch(ctx context.Context) (int64, error) {
	zc, err := Connect(ctx, v.Config.ScratchConfig(), 1)
	if err != nil {
		return 0, err
	}
	defer zc.Close()
	n, err := drill.Clear(ctx, zc)
	if err != nil {
		return n, classify(err)
	}
	return n, nil
}
