package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// memBucket is a Bucket in memory that counts Gets and can be told to fail.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	mod     map[string]time.Time
	gets    map[string]int
	getErr  map[string]error
	listErr error
}

func newMemBucket() *memBucket {
	return &memBucket{objects: map[string][]byte{}, mod: map[string]time.Time{}, gets: map[string]int{}, getErr: map[string]error{}}
}

func (m *memBucket) put(key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = data
	m.mod[key] = time.Unix(1_800_000_000, int64(len(m.mod))).UTC()
}

func (m *memBucket) delete(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
}

func (m *memBucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	m.mu.Lock()
	if m.listErr != nil {
		m.mu.Unlock()
		return m.listErr
	}
	var infos []storage.ObjectInfo
	for k, v := range m.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.ObjectInfo{Key: k, Size: int64(len(v)), ModTime: m.mod[k]})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range infos {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets[key]++
	if err := m.getErr[key]; err != nil {
		return nil, err
	}
	v, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", m.URL(key), storage.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

func (m *memBucket) URL(key string) string { return "s3a://bucket/" + key }

func (m *memBucket) getCount(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets[key]
}

// makeArchive writes a real archive of n znodes whose manifest starts at start.
func makeArchive(t *testing.T, n int, start time.Time) ([]byte, archive.Manifest) {
	t.Helper()
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for i := range n {
		rec := znode.Record{Path: fmt.Sprintf("/n%d", i), Data: []byte("data"), Mode: znode.ModePersistent,
			ACL: []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}}
		if err := sw.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{
		ToolVersion: "test", Source: []string{"zk:2181"}, StartTime: start, EndTime: start.Add(time.Second),
		ZxidStart: fmt.Sprintf("0x%x", n*10), ZxidEnd: fmt.Sprintf("0x%x", n*10+1),
		Counts:      result.Counts{Znodes: sw.Count(), EphemeralSkipped: int64(n % 3), DataBytes: sw.DataBytes()},
		StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, &stream, m.StreamBytes); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), m
}

func i64(v int64) *int64 { return &v }

// run is a backup as the API would build it from a workflow result.
func run(name string, t time.Time, size int64) Backup {
	return Backup{
		Name: name, URL: "s3a://bucket/" + name, Time: t, Counts: &result.Counts{Znodes: 7, DataBytes: 28},
		SizeNonCompressed: i64(size * 3), SizeCompressed: size, ZxidStart: "0x1",
		ZxidEnd: "0x2", Durations: &result.Durations{Prepare: 1, Dump: 2, Compression: 3, Upload: 4, Total: 10},
		WorkflowID: "wf-" + name, RunID: "run-" + name,
	}
}

func millisName(t time.Time) string {
	return fmt.Sprintf("metadata-backup-%d.tar.gz", t.UnixMilli())
}

func TestBuildMergesRunsWithBucket(t *testing.T) {
	ctx := context.Background()
	b := newMemBucket()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1, t2, t3, t4 := base, base.Add(10*time.Minute), base.Add(20*time.Minute), base.Add(30*time.Minute)

	// Two runs whose archives are present, one whose archive is gone.
	a1, _ := makeArchive(t, 3, t1)
	a2, _ := makeArchive(t, 4, t2)
	b.put(millisName(t1), a1)
	b.put(millisName(t2), a2)
	runs := []Backup{run(millisName(t1), t1, int64(len(a1))), run(millisName(t2), t2, int64(len(a2))), run(millisName(t4), t4, 99)}

	// Foreign archives: one with a <prefix>-<millis> name, one renamed (its time comes from the
	// manifest), one that is not an archive at all, and a file that is not a backup.
	f1, m1 := makeArchive(t, 5, t3)
	b.put(millisName(t3), f1)
	f2, m2 := makeArchive(t, 6, base.Add(-time.Hour))
	b.put("metadata-backup-copied.tar.gz", f2)
	b.put("metadata-backup-junk.tar.gz", []byte("not gzip at all"))
	b.put("metadata-backup-notes.txt", []byte("hello"))
	b.put("other-prefix-1.tar.gz", a1)
	// Another deployment's, whose prefix starts with this one: listing by prefix finds it.
	b.put("metadata-backup-eu-"+strings.TrimPrefix(millisName(t3), "metadata-backup-"), a1)

	c := New(b, Options{Prefix: "metadata-backup"})
	snap, err := c.Build(ctx, runs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range snap.Backups {
		names = append(names, e.Name)
	}
	// The junk object has no time but its modification time, which memBucket sets later
	// than all the backups.
	want := []string{millisName(t4), millisName(t3), millisName(t2), millisName(t1), "metadata-backup-copied.tar.gz"}
	junk := snap.Backups[0]
	if junk.Name != "metadata-backup-junk.tar.gz" {
		t.Fatalf("want the junk archive first (its mod time is the newest), got %v", names)
	}
	if !slices.Equal(names[1:], want) {
		t.Fatalf("order = %v, want junk then %v", names, want)
	}
	if junk.Source != FromBucket || !strings.Contains(junk.Error, "corrupt") || junk.Counts != nil || junk.Restorable() {
		t.Errorf("junk entry = %+v", junk)
	}

	got := map[string]Backup{}
	for _, e := range snap.Backups {
		got[e.Name] = e
	}
	if e := got[millisName(t4)]; !e.Missing || e.Source != FromTemporal {
		t.Errorf("run without archive = %+v, want missing", e)
	}
	for _, name := range []string{millisName(t1), millisName(t2)} {
		if e := got[name]; e.Missing || e.Source != FromTemporal || e.WorkflowID != "wf-"+name || e.Durations == nil {
			t.Errorf("run with archive = %+v", e)
		}
		// A run's result already says what its archive holds: the archive is never opened.
		if n := b.getCount(name); n != 0 {
			t.Errorf("%s claimed by a run was read %d times", name, n)
		}
	}
	for _, f := range []struct {
		name string
		m    archive.Manifest
		size int
	}{{millisName(t3), m1, len(f1)}, {"metadata-backup-copied.tar.gz", m2, len(f2)}} {
		e := got[f.name]
		if e.Source != FromBucket || e.Missing || e.Error != "" || e.WorkflowID != "" || e.Durations != nil || e.SizeNonCompressed != nil {
			t.Errorf("foreign %s = %+v", f.name, e)
			continue
		}
		if e.Counts == nil || *e.Counts != f.m.Counts ||
			e.ZxidStart != f.m.ZxidStart || e.ZxidEnd != f.m.ZxidEnd || e.SizeCompressed != int64(f.size) ||
			!e.Time.Equal(f.m.StartTime) || e.URL != "s3a://bucket/"+f.name {
			t.Errorf("foreign %s = %+v, manifest %+v", f.name, e, f.m)
		}
	}
	if _, ok := got["metadata-backup-notes.txt"]; ok {
		t.Error("a non-archive object is listed")
	}
	if _, ok := got["other-prefix-1.tar.gz"]; ok {
		t.Error("an archive outside the prefix is listed")
	}
	for name := range got {
		if strings.HasPrefix(name, "metadata-backup-eu-") {
			t.Errorf("the archive of a longer prefix, %s, is listed", name)
		}
	}

	wantBytes := int64(len(a1) + len(a2) + len(f1) + len(f2) + len("not gzip at all"))
	if snap.Archives != 5 || snap.ArchiveBytes != wantBytes {
		t.Errorf("archives = %d (%d bytes), want 5 (%d bytes)", snap.Archives, snap.ArchiveBytes, wantBytes)
	}
	// The newest run is missing, the junk is unreadable, and runs come before the foreign
	// archive at t3: latest is the run at t2.
	if l, ok := snap.Latest(); !ok || l.Name != millisName(t2) {
		t.Errorf("latest = %+v, %v", l, ok)
	}
	// Without restorable runs (retention has dropped them all), the newest foreign archive.
	snap, err = c.Build(ctx, runs[2:])
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := snap.Latest(); !ok || l.Name != millisName(t3) || l.Source != FromBucket {
		t.Errorf("latest without runs = %+v, %v", l, ok)
	}
}

func TestRunsComeBeforeArchivesAtTheSameTime(t *testing.T) {
	b := newMemBucket()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	data, _ := makeArchive(t, 2, at)
	b.put(millisName(at), data)
	// A copy of the same backup under a name without millis: the manifest gives the time.
	b.put("metadata-backup-copy.tar.gz", data)
	r := run(millisName(at), at, int64(len(data)))
	snap, err := New(b, Options{Prefix: "metadata-backup"}).Build(context.Background(), []Backup{r})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Backups) != 2 || snap.Backups[0].Source != FromTemporal || snap.Backups[1].Source != FromBucket {
		t.Fatalf("backups = %+v", snap.Backups)
	}
	if l, _ := snap.Latest(); l.WorkflowID != r.WorkflowID {
		t.Errorf("latest = %+v, want the run", l)
	}
}

func TestManifestsAreReadOnceAndForgotten(t *testing.T) {
	ctx := context.Background()
	b := newMemBucket()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	data, _ := makeArchive(t, 2, at)
	key := millisName(at)
	b.put(key, data)
	c := New(b, Options{Prefix: "metadata-backup"})
	for range 3 {
		if _, err := c.Build(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.getCount(key); n != 1 {
		t.Fatalf("manifest read %d times over three builds, want once", n)
	}
	// Replaced under the same key: read again.
	data2, m2 := makeArchive(t, 9, at)
	b.put(key, data2)
	snap, err := c.Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.getCount(key); n != 2 || snap.Backups[0].Znodes != m2.Znodes {
		t.Fatalf("after replacing: %d reads, entry %+v", n, snap.Backups[0])
	}
	// Deleted: its cached manifest is dropped.
	b.delete(key)
	if _, err := c.Build(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	cached := len(c.manifests)
	c.mu.Unlock()
	if cached != 0 {
		t.Errorf("%d manifests cached for an empty bucket", cached)
	}
}

func TestCorruptIsCachedTransientIsNot(t *testing.T) {
	ctx := context.Background()
	b := newMemBucket()
	b.put("metadata-backup-bad.tar.gz", []byte("garbage"))
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good, _ := makeArchive(t, 2, at)
	b.put(millisName(at), good)
	b.getErr[millisName(at)] = errors.New("get s3a://bucket/x: connection refused")
	c := New(b, Options{Prefix: "metadata-backup"})
	for range 2 {
		snap, err := c.Build(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range snap.Backups {
			if e.Error == "" || e.Restorable() {
				t.Errorf("entry %s: error %q, restorable %v", e.Name, e.Error, e.Restorable())
			}
		}
		if _, ok := snap.Latest(); ok {
			t.Error("latest found among unreadable archives")
		}
	}
	if n := b.getCount("metadata-backup-bad.tar.gz"); n != 1 {
		t.Errorf("corrupt archive read %d times, want once", n)
	}
	if n := b.getCount(millisName(at)); n != 2 {
		t.Errorf("archive that failed to download tried %d times, want every build", n)
	}
	delete(b.getErr, millisName(at))
	snap, err := c.Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := snap.Latest(); !ok || l.Name != millisName(at) {
		t.Errorf("after recovery latest = %+v, %v", l, ok)
	}
}

func TestManifestReadsAreCappedNewestFirst(t *testing.T) {
	ctx := context.Background()
	b := newMemBucket()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var keys []string
	for i := range 5 {
		at := base.Add(time.Duration(i) * time.Minute)
		data, _ := makeArchive(t, i+1, at)
		keys = append(keys, millisName(at))
		b.put(millisName(at), data)
	}
	c := New(b, Options{Prefix: "metadata-backup", MaxManifestReads: 2})
	described := func(s Snapshot) (names []string) {
		for _, e := range s.Backups {
			if e.Counts != nil {
				names = append(names, e.Name)
			}
		}
		return names
	}
	snap, err := c.Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := described(snap); !slices.Equal(got, []string{keys[4], keys[3]}) {
		t.Fatalf("first build described %v, want the two newest", got)
	}
	if len(snap.Backups) != 5 {
		t.Fatalf("undescribed archives not listed: %d entries", len(snap.Backups))
	}
	snap, _ = c.Build(ctx, nil)
	snap, _ = c.Build(ctx, nil)
	if got := described(snap); len(got) != 5 {
		t.Fatalf("after three builds described %v", got)
	}
}

func TestListErrorFailsBuild(t *testing.T) {
	b := newMemBucket()
	b.listErr = fmt.Errorf("list s3a://bucket/: %w", storage.ErrBucketNotFound)
	_, err := New(b, Options{Prefix: "metadata-backup"}).Build(context.Background(), nil)
	if !errors.Is(err, storage.ErrBucketNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestMaxEntriesKeepsNewestButCountsAll(t *testing.T) {
	b := newMemBucket()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var runs []Backup
	var total int64
	for i := range 6 {
		at := base.Add(time.Duration(i) * time.Minute)
		b.put(millisName(at), bytes.Repeat([]byte{1}, 10+i))
		total += int64(10 + i)
		runs = append(runs, run(millisName(at), at, int64(10+i)))
	}
	snap, err := New(b, Options{Prefix: "metadata-backup", MaxEntries: 4}).Build(context.Background(), runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Backups) != 4 || snap.Backups[0].Name != runs[5].Name || snap.Backups[3].Name != runs[2].Name {
		t.Fatalf("kept %d entries: first %s last %s", len(snap.Backups), snap.Backups[0].Name, snap.Backups[len(snap.Backups)-1].Name)
	}
	if snap.Archives != 6 || snap.ArchiveBytes != total {
		t.Errorf("archives %d bytes %d, want 6 and %d", snap.Archives, snap.ArchiveBytes, total)
	}
}
