// Package catalog is the list of backups the API serves: the backups a workflow history
// vouches for, cross-checked against the archives actually in the bucket. A backup whose
// archive is gone is marked missing; an archive no workflow accounts for (older than the
// history's retention, or written by another deployment) is listed from its own manifest.
//
// The package knows nothing of Temporal: the caller turns workflow results into Backups
// with Source FromTemporal and hands them to Build.
package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// Source says where an entry's fields come from.
type Source string

const (
	// FromTemporal entries are completed BackupWorkflow runs; their fields are the
	// workflow's result.
	FromTemporal Source = "temporal"
	// FromBucket entries are archives no listed run accounts for; their fields are what the
	// object and its manifest say.
	FromBucket Source = "bucket"
)

// ArchiveSuffix ends the name of every backup archive. Other objects under the prefix are
// not backups: they are neither listed nor counted; nor are the archives of a longer prefix
// that starts with this one (archive.IsLongerPrefixName), which another deployment writes.
const ArchiveSuffix = archive.ObjectSuffix

// Backup is one entry of the list. The JSON names are those of the workflow's result. A
// field that the entry's source cannot give is omitted rather than shown as zero: archives
// listed from the bucket have no durations, no non-compressed size and no workflow, and an
// archive whose manifest was not read has no znode counts or zxids either.
type Backup struct {
	Name string    `json:"name"`
	URL  string    `json:"url"`
	Time time.Time `json:"time"`
	// Counts are the workflow's result's or the manifest's; nil when neither was read.
	*result.Counts
	SizeNonCompressed *int64 `json:"sizeNonCompressed,omitempty"`
	SizeCompressed    int64  `json:"sizeCompressed"`
	ZxidStart         string `json:"zxidStart,omitempty"`
	ZxidEnd           string `json:"zxidEnd,omitempty"`
	// Roles break the counts down per store (local, configuration); nil for entries from
	// before roles.
	Roles     []result.RoleCounts `json:"roles,omitempty"`
	SHA256    string              `json:"sha256,omitempty"`
	Durations *result.Durations   `json:"durations,omitempty"`
	// Prune is what the prune after the run's backup did (runs only).
	Prune *result.Prune `json:"prune,omitempty"`
	// LastVerified says when the archive was last verified, and how; nil if never (as far as
	// Temporal remembers).
	LastVerified *Verified `json:"lastVerified,omitempty"`
	WorkflowID   string    `json:"workflowId,omitempty"`
	RunID        string    `json:"runId,omitempty"`
	// Missing is true when the run completed but its archive is no longer in the bucket.
	Missing bool   `json:"missing"`
	Source  Source `json:"source"`
	// Error says why an archive found in the bucket cannot be described: its manifest is
	// unreadable (not one of our archives, or corrupt) or could not be fetched this time.
	Error string `json:"error,omitempty"`
}

// Verified is the latest successful verification of an archive.
type Verified struct {
	At time.Time `json:"at"`
	// Method is "checksum" or "restore-drill" (result.Verify*).
	Method string `json:"method"`
}

// Restorable reports whether b is a candidate for "latest": its archive is in the bucket
// and its contents are known, from the workflow's result or the archive's own manifest.
func (b Backup) Restorable() bool {
	return !b.Missing && b.Error == "" && b.Counts != nil
}

// Bucket is what the catalog needs of a storage.Store.
type Bucket interface {
	List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	URL(key string) string
}

// Options bound the work of one Build.
type Options struct {
	// Prefix is backup.backupPrefix: archives are the objects whose key starts with it and
	// ends with ArchiveSuffix.
	Prefix string
	// MaxManifestReads caps how many archives not yet described Build opens, newest first;
	// the rest are read by later Builds (manifests are cached). Default 32.
	MaxManifestReads int
	// ManifestReaders is how many manifests are read at once. Default 4.
	ManifestReaders int
	// MaxEntries caps the list to the newest entries; ArchiveBytes still counts every
	// archive. Default 10000.
	MaxEntries int
}

// Catalog builds snapshots of the list. It keeps the manifests it has read, since an
// archive never changes under its key without its size or modification time changing.
type Catalog struct {
	bucket Bucket
	opts   Options

	mu        sync.Mutex
	manifests map[string]manifestEntry
}

type manifestEntry struct {
	size    int64
	modTime time.Time
	m       archive.Manifest
	err     error // a corrupt archive: reading it again would not help
}

// New returns a Catalog over bucket.
func New(bucket Bucket, opts Options) *Catalog {
	if opts.MaxManifestReads <= 0 {
		opts.MaxManifestReads = 32
	}
	if opts.ManifestReaders <= 0 {
		opts.ManifestReaders = 4
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	return &Catalog{bucket: bucket, opts: opts, manifests: map[string]manifestEntry{}}
}

// Snapshot is the list at one moment.
type Snapshot struct {
	// Backups are newest first (see Less), at most Options.MaxEntries of them.
	Backups []Backup
	// Archives and ArchiveBytes count every archive in the bucket under the prefix.
	Archives     int
	ArchiveBytes int64
}

// Latest is the newest restorable backup this deployment's workflows made or, when no run
// is restorable (none within the history's retention), the newest restorable archive in the
// bucket. Runs come first because an archive copied or written into the prefix by someone
// else is not this deployment's backup, and only a run has stage durations.
func (s Snapshot) Latest() (Backup, bool) {
	var fallback *Backup
	for i, b := range s.Backups {
		if !b.Restorable() {
			continue
		}
		if b.Source == FromTemporal {
			return b, true
		}
		if fallback == nil {
			fallback = &s.Backups[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Backup{}, false
}

// Build lists the bucket and merges it with runs, the backups known from workflow history
// (Source FromTemporal, Name the object key). A run is matched to the archive whose key is
// its Name; without one it is marked missing. Archives no run matches are listed from their
// manifest. An error listing the bucket fails Build; an error reading one manifest only
// marks that entry.
func (c *Catalog) Build(ctx context.Context, runs []Backup) (Snapshot, error) {
	var objects []storage.ObjectInfo
	var snap Snapshot
	err := c.bucket.List(ctx, c.opts.Prefix, func(o storage.ObjectInfo) error {
		if !strings.HasSuffix(o.Key, ArchiveSuffix) || archive.IsLongerPrefixName(c.opts.Prefix, o.Key) {
			return nil
		}
		snap.Archives++
		snap.ArchiveBytes += o.Size
		objects = append(objects, o)
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("list backups: %w", err)
	}

	byKey := make(map[string]storage.ObjectInfo, len(objects))
	for _, o := range objects {
		byKey[o.Key] = o
	}
	claimed := make(map[string]bool, len(runs))
	backups := make([]Backup, 0, len(runs)+len(objects))
	for _, r := range runs {
		r.Source = FromTemporal
		_, ok := byKey[r.Name]
		r.Missing = !ok
		if ok {
			claimed[r.Name] = true
		}
		backups = append(backups, r)
	}

	var foreign []storage.ObjectInfo
	for _, o := range objects {
		if !claimed[o.Key] {
			foreign = append(foreign, o)
		}
	}
	described := c.describe(ctx, foreign)
	for i, o := range foreign {
		backups = append(backups, c.bucketEntry(o, described[i]))
	}
	c.forget(byKey)

	slices.SortFunc(backups, func(a, b Backup) int { return compareKeys(keyOf(a), keyOf(b)) })
	if len(backups) > c.opts.MaxEntries {
		backups = backups[:c.opts.MaxEntries]
	}
	snap.Backups = backups
	return snap, nil
}

// described is what Build knows of a foreign archive's contents.
type described struct {
	m   *archive.Manifest
	err error
}

// describe returns the manifest (or the reason there is none) of each object: from the
// cache, or read now for up to MaxManifestReads of the newest uncached ones. Objects left
// unread this time get a zero described.
func (c *Catalog) describe(ctx context.Context, objects []storage.ObjectInfo) []described {
	out := make([]described, len(objects))
	var todo []int
	c.mu.Lock()
	for i, o := range objects {
		e, ok := c.manifests[o.Key]
		if ok && e.size == o.Size && e.modTime.Equal(o.ModTime) {
			if e.err != nil {
				out[i].err = e.err
			} else {
				m := e.m
				out[i].m = &m
			}
			continue
		}
		todo = append(todo, i)
	}
	c.mu.Unlock()

	// Keys sort in time order for <prefix>-<millis> names: read the newest first.
	slices.Reverse(todo)
	if len(todo) > c.opts.MaxManifestReads {
		todo = todo[:c.opts.MaxManifestReads]
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(c.opts.ManifestReaders, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = c.readManifest(ctx, objects[i])
			}
		}()
	}
	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

func (c *Catalog) readManifest(ctx context.Context, o storage.ObjectInfo) described {
	if ctx.Err() != nil {
		return described{}
	}
	r, err := c.bucket.Get(ctx, o.Key)
	if err != nil {
		if ctx.Err() != nil {
			return described{} // out of time: try again next Build
		}
		return described{err: fmt.Errorf("manifest not read: %w", err)}
	}
	m, err := archive.ReadManifest(r)
	r.Close()
	if err != nil {
		if errors.Is(err, archive.ErrCorrupt) {
			c.remember(o, manifestEntry{err: err})
			return described{err: err}
		}
		if ctx.Err() != nil {
			return described{}
		}
		return described{err: fmt.Errorf("manifest not read: %s: %w", c.bucket.URL(o.Key), err)}
	}
	c.remember(o, manifestEntry{m: m})
	return described{m: &m}
}

func (c *Catalog) remember(o storage.ObjectInfo, e manifestEntry) {
	e.size, e.modTime = o.Size, o.ModTime
	c.mu.Lock()
	c.manifests[o.Key] = e
	c.mu.Unlock()
}

// forget drops cached manifests of archives no longer in the bucket, so the cache never
// outgrows the bucket.
func (c *Catalog) forget(present map[string]storage.ObjectInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.manifests {
		if _, ok := present[k]; !ok {
			delete(c.manifests, k)
		}
	}
}

func (c *Catalog) bucketEntry(o storage.ObjectInfo, d described) Backup {
	b := Backup{
		Name:           o.Key,
		URL:            c.bucket.URL(o.Key),
		SizeCompressed: o.Size,
		Source:         FromBucket,
	}
	// The time is the backup's start: the millis in a <prefix>-<millis> name (as for runs), else
	// the manifest's start time, else when the object was written.
	switch t, ok := c.nameTime(o.Key); {
	case ok:
		b.Time = t
	case d.m != nil && !d.m.StartTime.IsZero():
		b.Time = d.m.StartTime.UTC()
	default:
		b.Time = o.ModTime.UTC()
	}
	if d.err != nil {
		b.Error = d.err.Error()
	}
	if m := d.m; m != nil {
		c := m.Counts
		b.Counts = &c
		l := m.Local()
		b.ZxidStart, b.ZxidEnd = l.Consistency.ZxidStart, l.Consistency.ZxidEnd
		for _, r := range m.Roles {
			b.Roles = append(b.Roles, result.RoleCounts{Role: r.Role, Source: r.Source, Counts: r.Counts})
		}
	}
	return b
}

// nameTime parses <prefix>-<unix millis>.tar.gz, the name the backup workflow gives.
func (c *Catalog) nameTime(key string) (time.Time, bool) {
	return archive.ParseObjectName(c.opts.Prefix, key)
}

// sortKey orders the list: newest first; at equal times runs before bucket archives, then
// by name and run ID, descending, so that the order is total and a page token can name a
// position in it.
type sortKey struct {
	Time   time.Time `json:"t"`
	Bucket bool      `json:"b,omitempty"`
	Name   string    `json:"n"`
	RunID  string    `json:"r,omitempty"`
}

func keyOf(b Backup) sortKey {
	return sortKey{Time: b.Time, Bucket: b.Source == FromBucket, Name: b.Name, RunID: b.RunID}
}

// compareKeys is negative when a comes first in the list.
func compareKeys(a, b sortKey) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	if a.Bucket != b.Bucket {
		if a.Bucket {
			return 1
		}
		return -1
	}
	if c := cmp.Compare(b.Name, a.Name); c != 0 {
		return c
	}
	return cmp.Compare(b.RunID, a.RunID)
}
