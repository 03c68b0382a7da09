package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-zookeeper/zk"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

const itBucket = "it-backups"

// liveAPI is one API instance over real servers, on a loopback port.
type liveAPI struct {
	url  string
	stop func()
}

func startAPI(t *testing.T, cfg config.Config) *liveAPI {
	t.Helper()
	o := options{cacheTTL: 200 * time.Millisecond, refreshTimeout: 5 * time.Second, maxRuns: 1000}
	a, err := newAPI(t.Context(), cfg, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(a.handler())
	go func() { _ = srv.Serve(l) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = srv.Close()
			a.close()
		}
	}
	t.Cleanup(stop)
	return &liveAPI{url: "http://" + l.Addr().String(), stop: stop}
}

func (a *liveAPI) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	start := time.Now()
	resp, err := c.Get(a.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("GET %s took %s", path, took)
	}
	return resp.StatusCode, body
}

func (a *liveAPI) list(t *testing.T) []catalog.Backup {
	t.Helper()
	status, body := a.get(t, "/backup/list")
	if status != 200 {
		t.Fatalf("/backup/list = %d %s", status, body)
	}
	var l listBody
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	return l.Backups
}

// metrics scrapes the unlabelled backup_* samples.
func (a *liveAPI) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	status, body := a.get(t, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d %s", status, body)
	}
	return backupSamples(t, body)
}

// eventually retries check until it passes: visibility and the API's cache lag a little.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// addNamespace creates a namespace's policies znode.
func addNamespace(t *testing.T, addr, path string) {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(path, []byte(`{"bundles":{"numBundles":1}}`), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

func seedZooKeeper(t *testing.T, addr string) {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := zk.WorldACL(zk.PermAll)
	for _, p := range []string{"/admin", "/admin/policies", "/admin/policies/public", "/managed-ledgers", "/ledgers"} {
		if _, err := c.Create(p, []byte("data of "+p), 0, open); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
}

type backupRun struct {
	workflowID, runID string
	res               result.Backup
	err               error
}

func runBackup(t *testing.T, tc client.Client, cfg config.Config, id string) backupRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue}, result.BackupWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	r := backupRun{workflowID: run.GetID(), runID: run.GetRunID()}
	r.err = run.Get(ctx, &r.res)
	return r
}

// bucketArchives lists the bucket behind the API's back: key to size of every archive.
func bucketArchives(t *testing.T, s3c *s3.Client) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	resp, err := s3c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(itBucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range resp.Contents {
		if strings.HasSuffix(*o.Key, ".tar.gz") {
			out[*o.Key] = *o.Size
		}
	}
	return out
}

// checkRunEntry compares an entry with the workflow result it must come from.
func checkRunEntry(b catalog.Backup, r backupRun, missing bool) error {
	res := r.res
	switch {
	case b.Source != catalog.FromTemporal || b.Missing != missing:
		return fmt.Errorf("%s: source %s missing %v, want temporal, %v", b.Name, b.Source, b.Missing, missing)
	case b.WorkflowID != r.workflowID || b.RunID != r.runID:
		return fmt.Errorf("%s: run %s/%s, want %s/%s", b.Name, b.WorkflowID, b.RunID, r.workflowID, r.runID)
	case b.Name != res.Name || b.URL != res.URL || !b.Time.Equal(res.Time):
		return fmt.Errorf("entry %s %s %s, result %s %s %s", b.Name, b.URL, b.Time, res.Name, res.URL, res.Time)
	case b.Counts == nil || *b.Counts != res.Counts:
		return fmt.Errorf("%s: counts differ from result %+v", b.Name, res)
	case b.SizeNonCompressed == nil || *b.SizeNonCompressed != res.SizeNonCompressed || b.SizeCompressed != res.SizeCompressed:
		return fmt.Errorf("%s: sizes differ from result %+v", b.Name, res)
	case b.ZxidStart != res.ZxidStart || b.ZxidEnd != res.ZxidEnd || b.SHA256 != res.SHA256:
		return fmt.Errorf("%s: zxids or checksum differ from result %+v", b.Name, res)
	case b.Durations == nil || *b.Durations != res.Durations:
		return fmt.Errorf("%s: durations %+v, result %+v", b.Name, b.Durations, res.Durations)
	}
	return nil
}

// checkMetrics compares the scrape with the latest run's result, the counts of runs and
// what the bucket holds.
func checkMetrics(got map[string]float64, closed, failed int, latest result.Backup, bucket map[string]int64) error {
	var total int64
	for _, size := range bucket {
		total += size
	}
	want := map[string]float64{
		"backup_count":                          float64(closed),
		"backup_failure_count":                  float64(failed),
		"backup_size_non_compressed":            float64(latest.SizeNonCompressed),
		"backup_size_compressed":                float64(latest.SizeCompressed),
		"backup_size_total":                     float64(total),
		"backup_execution_time_total":           latest.Durations.Total,
		"backup_execution_time_prepare":         latest.Durations.Prepare,
		"backup_execution_time_dump":            latest.Durations.Dump,
		"backup_execution_time_compression":     latest.Durations.Compression,
		"backup_execution_time_upload":          latest.Durations.Upload,
		"backup_last_success_timestamp_seconds": float64(latest.Time.UnixNano()) / 1e9,
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return fmt.Errorf("%s not served", name)
		}
		if math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			return fmt.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	return nil
}

func TestAgainstRealTemporalMinIOAndZooKeeper(t *testing.T) {
	tp := testenv.StartTemporal(t, workflows.SearchAttributes...)
	m := testenv.StartMinIO(t)
	m.SetEnv(t)
	zoo := testenv.StartZooKeeper(t)
	seedZooKeeper(t, zoo.Addr)

	// One config file, as the worker and the API share it in production.
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	yaml := fmt.Sprintf(`zookeeper:
  servers: %q
temporal:
  hostPort: %q
  namespace: %q
  taskQueue: it-backup
s3:
  endpoint: %q
  forcePathStyle: true
backup:
  bucket: "s3a://%s"
  backupPrefix: metadata-backup
  stagingDir: %q
`, zoo.Addr, tp.HostPort, tp.Namespace, m.Endpoint, itBucket, t.TempDir())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	tc := tp.Client(t)
	startBackupWorker(t, tc, cfg)

	api := startAPI(t, cfg)

	// The bucket does not exist yet: the API says so, and the first backup fails on it.
	status, body := api.get(t, "/backup/list")
	if status != 503 || !strings.Contains(string(body), "bucket") {
		t.Fatalf("/backup/list without a bucket = %d %s", status, body)
	}
	status, body = api.get(t, "/readyz")
	var ready health.Report
	if err := json.Unmarshal(body, &ready); err != nil || status != 503 || ready.Checks["temporal"] != "ok" || ready.Checks["bucket"] == "ok" {
		t.Fatalf("/readyz without a bucket = %d %s", status, body)
	}
	failed := runBackup(t, tc, cfg, "it-backup-1")
	if failed.err == nil {
		t.Fatalf("backup into a missing bucket succeeded: %+v", failed.res)
	}

	m.MakeBucket(itBucket)
	older := runBackup(t, tc, cfg, "it-backup-2")
	addNamespace(t, zoo.Addr, "/admin/policies/public/ns-diff")
	newer := runBackup(t, tc, cfg, "it-backup-3")
	for _, r := range []backupRun{older, newer} {
		if r.err != nil {
			t.Fatalf("backup %s: %v", r.workflowID, r.err)
		}
	}
	if !newer.res.Time.After(older.res.Time) {
		t.Fatalf("backups not in time order: %s then %s", older.res.Time, newer.res.Time)
	}
	s3c := m.S3Client()

	// Three runs, one failed; two backups, newest first, exactly as the results say.
	eventually(t, "list after three backups", func() error {
		list := api.list(t)
		if len(list) != 2 {
			return fmt.Errorf("%d entries, want 2", len(list))
		}
		if err := checkRunEntry(list[0], newer, false); err != nil {
			return err
		}
		return checkRunEntry(list[1], older, false)
	})
	status, body = api.get(t, "/backup/latest")
	var latest catalog.Backup
	if err := json.Unmarshal(body, &latest); err != nil || status != 200 {
		t.Fatalf("/backup/latest = %d %s", status, body)
	}
	if err := checkRunEntry(latest, newer, false); err != nil {
		t.Fatalf("/backup/latest: %v", err)
	}
	eventually(t, "metrics after three backups", func() error {
		return checkMetrics(api.metrics(t), 3, 1, newer.res, bucketArchives(t, s3c))
	})
	if status, body := api.get(t, "/readyz"); status != 200 {
		t.Fatalf("/readyz = %d %s", status, body)
	}

	// What changed between the two backups: the namespace added in between.
	diffPath := "/backup/diff?from=" + older.res.Name + "&to=" + newer.res.Name
	status, body = api.get(t, diffPath)
	var d backupdiff.Result
	if err := json.Unmarshal(body, &d); err != nil || status != 200 {
		t.Fatalf("GET %s = %d %s", diffPath, status, body)
	}
	if d.From.URL != older.res.URL || d.To.URL != newer.res.URL || d.Znodes.Added != 1 || d.Znodes.Removed != 0 || d.Znodes.Changed != 0 ||
		d.Namespaces.Added.Count != 1 || d.Namespaces.Added.First[0] != "public/ns-diff" {
		t.Fatalf("GET %s = %s", diffPath, body)
	}

	// A new instance, as after a restart, serves the same.
	_, list1 := api.get(t, "/backup/list")
	_, latest1 := api.get(t, "/backup/latest")
	metrics1 := api.metrics(t)
	api.stop()
	api = startAPI(t, cfg)
	_, list2 := api.get(t, "/backup/list")
	_, latest2 := api.get(t, "/backup/latest")
	if !bytes.Equal(list1, list2) || !bytes.Equal(latest1, latest2) {
		t.Fatalf("after restart:\n%s\n%s\nbefore:\n%s\n%s", list2, latest2, list1, latest1)
	}
	if err := checkMetrics(api.metrics(t), 3, 1, newer.res, bucketArchives(t, s3c)); err != nil {
		t.Fatalf("metrics after restart: %v (before: %v)", err, metrics1)
	}

	// The newest archive is deleted: its run is marked missing and the older one is latest.
	if _, err := s3c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(itBucket), Key: aws.String(newer.res.Name)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted archive marked missing", func() error {
		list := api.list(t)
		if len(list) != 2 {
			return fmt.Errorf("%d entries, want 2", len(list))
		}
		if err := checkRunEntry(list[0], newer, true); err != nil {
			return err
		}
		return checkRunEntry(list[1], older, false)
	})
	status, body = api.get(t, "/backup/latest")
	if err := json.Unmarshal(body, &latest); err != nil || status != 200 || checkRunEntry(latest, older, false) != nil {
		t.Fatalf("/backup/latest after deleting the newest = %d %s", status, body)
	}
	if status, body := api.get(t, diffPath); status != 404 || !strings.Contains(string(body), newer.res.Name) {
		t.Fatalf("GET %s after deleting the newest = %d %s", diffPath, status, body)
	}
	if err := checkMetrics(api.metrics(t), 3, 1, older.res, bucketArchives(t, s3c)); err != nil {
		t.Fatalf("metrics after deleting the newest: %v", err)
	}

	// Foreign objects under the prefix: a real archive under another name is listed from its
	// manifest; a .tar.gz that is not an archive is listed with the reason; anything else is
	// not a backup and is ignored.
	const imported, broken, notes = "metadata-backup-imported.tar.gz", "metadata-backup-broken.tar.gz", "metadata-backup-notes.txt"
	if _, err := s3c.CopyObject(t.Context(), &s3.CopyObjectInput{Bucket: aws.String(itBucket), Key: aws.String(imported),
		CopySource: aws.String(itBucket + "/" + older.res.Name)}); err != nil {
		t.Fatal(err)
	}
	for key, data := range map[string]string{broken: "not a gzip stream", notes: "operator notes"} {
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(itBucket), Key: aws.String(key),
			Body: strings.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "foreign objects listed from the bucket", func() error {
		byName := map[string]catalog.Backup{}
		for _, b := range api.list(t) {
			byName[b.Name] = b
		}
		if len(byName) != 4 {
			return fmt.Errorf("entries %v, want the two runs, %s and %s", byName, imported, broken)
		}
		imp, ok := byName[imported]
		if !ok || imp.Source != catalog.FromBucket || imp.Missing || imp.Error != "" || imp.WorkflowID != "" ||
			imp.Durations != nil || imp.URL != "s3a://"+itBucket+"/"+imported || imp.SizeCompressed != older.res.SizeCompressed ||
			imp.Counts == nil || imp.Znodes != older.res.Znodes || imp.ZxidStart != older.res.ZxidStart || imp.ZxidEnd != older.res.ZxidEnd {
			return fmt.Errorf("imported archive entry %+v, copied from %+v", imp, older.res)
		}
		if b := byName[broken]; b.Source != catalog.FromBucket || !strings.Contains(b.Error, "corrupt") || b.Counts != nil {
			return fmt.Errorf("broken archive entry %+v", b)
		}
		return nil
	})
	status, body = api.get(t, "/backup/latest")
	if err := json.Unmarshal(body, &latest); err != nil || status != 200 || checkRunEntry(latest, older, false) != nil {
		t.Fatalf("/backup/latest with foreign archives = %d %s", status, body)
	}
	if status, body := api.get(t, "/backup/diff?from="+imported+"&to="+broken); status != 422 || !strings.Contains(string(body), "corrupt archive") {
		t.Fatalf("diff with a broken archive = %d %s", status, body)
	}
	status, body = api.get(t, "/backup/diff?from="+older.res.Name+"&to="+imported)
	var copied backupdiff.Result
	if err := json.Unmarshal(body, &copied); err != nil || status != 200 || copied.Znodes.Unchanged != older.res.Znodes ||
		copied.Znodes.Changed+copied.Znodes.Added+copied.Znodes.Removed != 0 {
		t.Fatalf("diff of an archive and its copy = %d %s", status, body)
	}
	if err := checkMetrics(api.metrics(t), 3, 1, older.res, bucketArchives(t, s3c)); err != nil {
		t.Fatalf("metrics with foreign archives: %v", err)
	}

	// MinIO down: 503 with the reason, promptly.
	m.Kill()
	time.Sleep(300 * time.Millisecond) // past the cache's TTL
	status, body = api.get(t, "/backup/list")
	if status != 503 || !strings.Contains(string(body), "bucket") {
		t.Fatalf("/backup/list with MinIO down = %d %s", status, body)
	}
}

// Retention on real servers: the prune after a backup and a PruneWorkflow run delete archives,
// and the API counts what they deleted, the archives left and their size.
func TestPruneMetricsAgainstRealServers(t *testing.T) {
	tp := testenv.StartTemporal(t, workflows.SearchAttributes...)
	m := testenv.StartMinIO(t)
	m.SetEnv(t)
	m.MakeBucket(itBucket)
	zoo := testenv.StartZooKeeper(t)
	seedZooKeeper(t, zoo.Addr)
	cfg := config.Default()
	cfg.ZooKeeper.Servers = zoo.Addr
	cfg.Temporal.HostPort, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue = tp.HostPort, tp.Namespace, "it-prune"
	cfg.S3.Endpoint, cfg.S3.ForcePathStyle = m.Endpoint, true
	cfg.Backup.Bucket, cfg.Backup.StagingDir = "s3a://"+itBucket, t.TempDir()
	cfg.Backup.Retention = result.Retention{KeepLast: 1}
	tc := tp.Client(t)
	startBackupWorker(t, tc, cfg)
	api := startAPI(t, cfg)
	s3c := m.S3Client()
	putOld := func(n int) {
		for i := range n {
			at := time.Date(2025, 1, 1+i, 0, 0, 0, 0, time.UTC)
			key := fmt.Sprintf("metadata-backup-%d.tar.gz", at.UnixMilli())
			if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(itBucket), Key: aws.String(key),
				Body: bytes.NewReader(archiveBytes(t, 3, at))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := func(deleted, retained float64) {
		t.Helper()
		eventually(t, "prune metrics", func() error {
			got := api.metrics(t)
			var total int64
			for _, size := range bucketArchives(t, s3c) {
				total += size
			}
			if got["backup_prune_deleted_count"] != deleted || got["backup_retained_count"] != retained || got["backup_size_total"] != float64(total) {
				return fmt.Errorf("metrics %v, want %v deleted, %v retained, %d bytes", got, deleted, retained, total)
			}
			return nil
		})
	}

	putOld(3)
	want(0, 3)
	r := runBackup(t, tc, cfg, "it-prune-backup")
	if r.err != nil || r.res.Prune == nil || r.res.Prune.Deleted != 3 {
		t.Fatalf("backup %+v, %v", r.res.Prune, r.err)
	}
	want(3, 1)
	if n := len(bucketArchives(t, s3c)); n != 1 {
		t.Fatalf("%d archives after keepLast 1", n)
	}
	eventually(t, "the backup's entry says what its prune did", func() error {
		list := api.list(t)
		if len(list) != 1 || list[0].Prune == nil || list[0].Prune.Deleted != 3 {
			return fmt.Errorf("list %+v", list)
		}
		return nil
	})

	// A dry run deletes and counts nothing; a PruneWorkflow run counts what it deleted.
	putOld(2)
	for i, dry := range []bool{true, false} {
		run, err := tc.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: fmt.Sprintf("it-prune-%d", i), TaskQueue: cfg.Temporal.TaskQueue},
			result.PruneWorkflowName, workflows.PruneInput{DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		var p result.Prune
		if err := run.Get(t.Context(), &p); err != nil || p.Delete != 2 {
			t.Fatalf("prune (dry run %v): %+v, %v", dry, p.PruneCounts, err)
		}
		if dry {
			want(3, 3)
		}
	}
	want(5, 1)
}

// startBackupWorker runs the workflows and the backup's activities on cfg's task queue until
// the test ends.
func startBackupWorker(t *testing.T, tc client.Client, cfg config.Config) {
	t.Helper()
	w := worker.New(tc, cfg.Temporal.TaskQueue, worker.Options{EnableSessionWorker: true})
	workflows.Register(w)
	activities.RegisterBackup(w, cfg, "")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}
