package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// fakeRuns is a runSource with fixed answers.
type fakeRuns struct {
	mu             sync.Mutex
	closed, failed int64
	backups        []catalog.Backup
	lifecycle      lifecycle
	err            error
	block          bool          // block until ctx ends, as an unreachable server would
	gate           chan struct{} // if set, Counts waits for it to close: a slow server
	calls          atomic.Int32
}

func (f *fakeRuns) wait(ctx context.Context) error {
	f.mu.Lock()
	block, err := f.block, f.err
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return fmt.Errorf("count workflows: %w", ctx.Err())
	}
	return err
}

func (f *fakeRuns) Counts(ctx context.Context) (int64, int64, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if err := f.wait(ctx); err != nil {
		return 0, 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed, f.failed, nil
}

func (f *fakeRuns) Completed(ctx context.Context) ([]catalog.Backup, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]catalog.Backup(nil), f.backups...), nil
}

func (f *fakeRuns) Lifecycle(ctx context.Context) (lifecycle, error) {
	if err := f.wait(ctx); err != nil {
		return lifecycle{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lifecycle, nil
}

func (f *fakeRuns) Ping(ctx context.Context) error { return f.wait(ctx) }

func archiveBytes(t *testing.T, znodes int, start time.Time) []byte {
	t.Helper()
	return archiveOf(t, znodes, start, nil)
}

// archiveOf is a version-1 archive of n znodes /z0.. with data "v" and the ACL acl.
func archiveOf(t *testing.T, n int, start time.Time, acl []znode.ACL) []byte {
	t.Helper()
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for i := range n {
		if err := sw.Write(znode.Record{Path: fmt.Sprintf("/z%d", i), Data: []byte("v"), Mode: znode.ModePersistent, ACL: acl}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{Source: []string{"zk:2181"}, StartTime: start, EndTime: start.Add(time.Second),
		ZxidStart: "0x10", ZxidEnd: "0x11", Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()},
		StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()}
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, &stream, m.StreamBytes); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// fixture is an API over fakeRuns and a local bucket.
type fixture struct {
	t      *testing.T
	runs   *fakeRuns
	dir    string
	store  storage.Store
	snaps  *snapshots
	srv    *server
	http   *httptest.Server
	prefix string
	// interval is what the server serves as backup_interval_seconds (0: none).
	interval time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, runs: &fakeRuns{}, dir: t.TempDir(), prefix: "metadata-backup"}
	st, err := storage.Open(context.Background(), "file://"+f.dir, storage.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	f.start()
	return f
}

// start builds a fresh server over the same runs and bucket, as a restart would.
func (f *fixture) start() {
	if f.http != nil {
		f.http.Close()
	}
	cat := catalog.New(f.store, catalog.Options{Prefix: f.prefix})
	f.snaps = newSnapshots(f.runs, cat, time.Minute, 2*time.Second, quietLog())
	checks := []health.Check{
		{Name: "temporal", Fn: f.runs.Ping},
		{Name: "bucket", Fn: func(ctx context.Context) error { return probeBucket(ctx, f.store, f.prefix) }},
	}
	f.srv = newServer(f.snaps, checks, f.interval, quietLog(), func(s string) string { return s })
	f.http = httptest.NewServer(f.srv.handler())
	f.t.Cleanup(f.http.Close)
}

func (f *fixture) put(key string, data []byte) {
	f.t.Helper()
	if err := f.store.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		f.t.Fatal(err)
	}
}

// addRun records a completed run and, unless missing, uploads its archive.
func (f *fixture) addRun(at time.Time, znodes int, missing bool) catalog.Backup {
	f.t.Helper()
	name := fmt.Sprintf("%s-%d.tar.gz", f.prefix, at.UnixMilli())
	data := archiveBytes(f.t, znodes, at)
	if !missing {
		f.put(name, data)
	}
	nc := int64(len(data) * 4)
	b := catalog.Backup{
		Name: name, URL: f.store.URL(name), Time: at, Counts: &result.Counts{Znodes: int64(znodes), EphemeralSkipped: 1, DataBytes: int64(znodes)},
		SizeNonCompressed: &nc, SizeCompressed: int64(len(data)), ZxidStart: "0x10", ZxidEnd: "0x11",
		Durations:  &result.Durations{Prepare: 0.5, Dump: float64(znodes), Compression: 0.25, Upload: 0.125, Total: float64(znodes) + 1},
		WorkflowID: "wf-" + name, RunID: "run-" + name, Source: catalog.FromTemporal,
	}
	f.runs.mu.Lock()
	f.runs.backups = append(f.runs.backups, b)
	f.runs.closed++
	f.runs.mu.Unlock()
	return b
}

func (f *fixture) get(path string) (int, http.Header, []byte) {
	f.t.Helper()
	resp, err := http.Get(f.http.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (f *fixture) getJSON(path string, wantStatus int, v any) {
	f.t.Helper()
	status, h, body := f.get(path)
	if status != wantStatus {
		f.t.Fatalf("GET %s = %d %s, want %d", path, status, body, wantStatus)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// same compares an entry served as JSON with the one the API was fed.
func same(t *testing.T, got, want catalog.Backup) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("entry\n got %s\nwant %s", g, w)
	}
}

func TestLatestAndList(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1 := f.addRun(base, 3, false)
	r2 := f.addRun(base.Add(10*time.Minute), 5, false)
	r3 := f.addRun(base.Add(20*time.Minute), 7, true) // its archive never made it, or was deleted
	f.runs.failed, f.runs.closed = 1, f.runs.closed+1

	var latest catalog.Backup
	f.getJSON("/backup/latest", 200, &latest)
	same(t, latest, r2) // r3 is newer but missing: not restorable

	var list listBody
	f.getJSON("/backup/list", 200, &list)
	if len(list.Backups) != 3 || list.NextPageToken != "" {
		t.Fatalf("list = %+v", list)
	}
	r3.Missing = true
	for i, want := range []catalog.Backup{r3, r2, r1} {
		same(t, list.Backups[i], want)
	}

	// Pages of one, following the tokens, give the same list.
	var walked []catalog.Backup
	path := "/backup/list?limit=1"
	for range 5 {
		var page listBody
		f.getJSON(path, 200, &page)
		if len(page.Backups) != 1 {
			t.Fatalf("page = %+v", page)
		}
		walked = append(walked, page.Backups...)
		if page.NextPageToken == "" {
			break
		}
		path = "/backup/list?limit=1&pageToken=" + url.QueryEscape(page.NextPageToken)
	}
	if len(walked) != 3 {
		t.Fatalf("walked %d entries", len(walked))
	}
	for i := range walked {
		same(t, walked[i], list.Backups[i])
	}
}

func TestForeignArchivesAndRawJSON(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1 := f.addRun(base, 3, false)
	foreign := archiveBytes(t, 4, base.Add(time.Hour))
	f.put("metadata-backup-from-elsewhere.tar.gz", foreign)
	f.put("metadata-backup-readme.txt", []byte("not a backup"))

	_, _, body := f.get("/backup/list")
	var raw struct {
		Backups []map[string]any `json:"backups"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Backups) != 2 {
		t.Fatalf("list = %s", body)
	}
	fe, run := raw.Backups[0], raw.Backups[1]
	if fe["source"] != "bucket" || fe["name"] != "metadata-backup-from-elsewhere.tar.gz" || fe["znodes"] != 4.0 ||
		fe["sizeCompressed"] != float64(len(foreign)) || fe["missing"] != false || fe["time"] != base.Add(time.Hour).Format(time.RFC3339) {
		t.Errorf("foreign entry = %v", fe)
	}
	for _, absent := range []string{"workflowId", "runId", "durations", "sizeNonCompressed"} {
		if _, ok := fe[absent]; ok {
			t.Errorf("foreign entry has %s: %v", absent, fe)
		}
	}
	// The result's field names, as the starter prints them.
	for _, k := range []string{"name", "url", "time", "znodes", "sizeNonCompressed", "sizeCompressed", "zxidStart", "zxidEnd", "durations", "workflowId", "runId", "missing", "source"} {
		if _, ok := run[k]; !ok {
			t.Errorf("run entry lacks %s: %v", k, run)
		}
	}
	d := run["durations"].(map[string]any)
	if d["total"] != r1.Durations.Total || d["dump"] != r1.Durations.Dump || d["compression"] != r1.Durations.Compression {
		t.Errorf("durations = %v, want %+v", d, *r1.Durations)
	}
	// The foreign archive is newer, but latest is this deployment's run.
	var latest catalog.Backup
	f.getJSON("/backup/latest", 200, &latest)
	same(t, latest, r1)
}

func TestNoBackupYet(t *testing.T) {
	f := newFixture(t)
	var e errorBody
	f.getJSON("/backup/latest", 404, &e)
	if e.Error == "" {
		t.Error("404 without a reason")
	}
	var list listBody
	f.getJSON("/backup/list", 200, &list)
	if list.Backups == nil || len(list.Backups) != 0 {
		t.Errorf("empty list = %+v, want []", list)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	f.addRun(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, false)
	for _, c := range []struct {
		path   string
		status int
		says   string
	}{
		{"/nope", 404, "/nope"},
		{"/backup", 404, "/backup"},
		{"/backup/list/extra", 404, "extra"},
		{"/backup/list?limit=0", 400, "limit"},
		{"/backup/list?limit=-3", 400, "limit"},
		{"/backup/list?limit=ten", 400, "limit"},
		{"/backup/list?limit=10001", 400, "limit"},
		{"/backup/list?limit=1&limit=2", 400, "limit"},
		{"/backup/list?pageToken=garbage!", 400, "pageToken"},
		{"/backup/list?pageToken=", 400, "pageToken"},
		{"/backup/list?limt=5", 400, "limt"},
		{"/backup/latest?x=1", 400, "x"},
	} {
		var e errorBody
		f.getJSON(c.path, c.status, &e)
		if !strings.Contains(e.Error, c.says) {
			t.Errorf("GET %s: error %q does not mention %q", c.path, e.Error, c.says)
		}
	}
	resp, err := http.Post(f.http.URL+"/backup/list", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestUnreachableGives503Promptly(t *testing.T) {
	f := newFixture(t)
	f.runs.block = true
	for _, path := range []string{"/backup/latest", "/backup/list", "/metrics"} {
		start := time.Now()
		var e errorBody
		f.getJSON(path, 503, &e)
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("GET %s took %s", path, took)
		}
		if !strings.HasPrefix(e.Error, "temporal: ") || !strings.Contains(e.Error, "deadline") {
			t.Errorf("GET %s: error %q", path, e.Error)
		}
	}
	var ready health.Report
	f.getJSON("/readyz", 503, &ready)
	if ready.Checks["bucket"] != "ok" || ready.Checks["temporal"] == "ok" || !strings.Contains(ready.Error, "temporal") {
		t.Errorf("readyz = %+v", ready)
	}
	var health map[string]string
	f.getJSON("/healthz", 200, &health)

	// Temporal back, the bucket gone.
	f.runs.mu.Lock()
	f.runs.block = false
	f.runs.mu.Unlock()
	if err := os.Rename(f.dir, f.dir+".gone"); err != nil {
		t.Fatal(err)
	}
	f.start()
	var e errorBody
	f.getJSON("/backup/list", 503, &e)
	if !strings.HasPrefix(e.Error, "bucket: ") || !strings.Contains(e.Error, filepath.Base(f.dir)) {
		t.Errorf("bucket gone: error %q", e.Error)
	}
	f.getJSON("/readyz", 503, &ready)
	if ready.Checks["temporal"] != "ok" || ready.Checks["bucket"] == "ok" {
		t.Errorf("readyz = %+v", ready)
	}
	if err := os.Rename(f.dir+".gone", f.dir); err != nil {
		t.Fatal(err)
	}
	f.getJSON("/readyz", 200, &ready)
}

func TestConcurrentRequestsShareOneRefresh(t *testing.T) {
	f := newFixture(t)
	f.addRun(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, false)
	clock := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	f.snaps.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	// The refresh is held open until every request has arrived, so they can only get one
	// answer by sharing it, not by finding it cached.
	f.runs.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _, body := f.get("/backup/list"); status != 200 {
				t.Errorf("status %d %s", status, body)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(f.runs.gate)
	wg.Wait()
	f.runs.gate = nil
	if n := f.runs.calls.Load(); n != 1 {
		t.Fatalf("20 concurrent requests made %d refreshes, want 1", n)
	}
	advance(f.snaps.ttl - time.Second)
	f.get("/metrics")
	if n := f.runs.calls.Load(); n != 1 {
		t.Fatalf("a request within the TTL refreshed (%d refreshes)", n)
	}
	// A run that finished since shows up once the TTL has passed.
	f.addRun(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC), 2, false)
	advance(2 * time.Second)
	var list listBody
	f.getJSON("/backup/list", 200, &list)
	if n := f.runs.calls.Load(); n != 2 || len(list.Backups) != 2 {
		t.Fatalf("after the TTL: %d refreshes, %d backups", n, len(list.Backups))
	}

	// Failures are remembered briefly, then retried.
	f.runs.mu.Lock()
	f.runs.err = errors.New("connection refused")
	f.runs.mu.Unlock()
	advance(f.snaps.ttl)
	f.getJSON("/backup/list", 503, &errorBody{})
	f.getJSON("/backup/list", 503, &errorBody{})
	if n := f.runs.calls.Load(); n != 3 {
		t.Fatalf("%d refreshes, want one failed attempt shared", n)
	}
	f.runs.mu.Lock()
	f.runs.err = nil
	f.runs.mu.Unlock()
	advance(f.snaps.errTTL)
	f.getJSON("/backup/list", 200, &list)
}

func TestRestartServesTheSame(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.addRun(base, 3, false)
	f.addRun(base.Add(time.Minute), 4, true)
	f.put("metadata-backup-x.tar.gz", []byte("junk"))
	_, _, list1 := f.get("/backup/list")
	_, _, latest1 := f.get("/backup/latest")
	f.start()
	_, _, list2 := f.get("/backup/list")
	_, _, latest2 := f.get("/backup/latest")
	if !bytes.Equal(list1, list2) || !bytes.Equal(latest1, latest2) {
		t.Errorf("after restart:\n%s\n%s\nwas\n%s\n%s", list2, latest2, list1, latest1)
	}
}

func TestRedactedErrors(t *testing.T) {
	const secret = "s3cr3t-value-123"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	f := newFixture(t)
	f.srv.redact = newRedactor(testConfig())
	f.runs.err = fmt.Errorf("signature with %s rejected", secret)
	_, _, body := f.get("/backup/list")
	_, _, ready := f.get("/readyz")
	for _, b := range [][]byte{body, ready} {
		if bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte("***")) {
			t.Errorf("response %s", b)
		}
	}
}

func TestTargetQueryQuotes(t *testing.T) {
	q := targetQuery(`s3a://b/it's\odd`)
	want := `WorkflowType = 'BackupWorkflow' AND MetadataBackupTarget = 's3a://b/it\'s\\odd'`
	if q != want {
		t.Errorf("query = %s\nwant    %s", q, want)
	}
}
