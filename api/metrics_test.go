package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

func testConfig() config.Config {
	cfg := config.Default()
	cfg.ZooKeeper.Auth = "digest:user:zk-password"
	return cfg
}

// expected renders the exposition the collector should produce for these inputs.
func expected(closed, failed, bucketBytes int64, latest *catalog.Backup) string {
	var b strings.Builder
	write := func(d *prometheus.Desc, name, typ string, v float64) {
		help := strings.Split(d.String(), `help: "`)[1]
		help = help[:strings.Index(help, `"`)]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	write(descCount, "backup_count", "counter", float64(closed))
	write(descFailures, "backup_failure_count", "counter", float64(failed))
	write(descSizeTotal, "backup_size_total", "gauge", float64(bucketBytes))
	if latest != nil {
		write(descSizeCompressed, "backup_size_compressed", "gauge", float64(latest.SizeCompressed))
		write(descLastSuccess, "backup_last_success_timestamp_seconds", "gauge", float64(latest.Time.Unix()))
		write(descZnodes, "backup_znodes", "gauge", float64(latest.Znodes))
		write(descEphemeralSkipped, "backup_ephemeral_znodes_skipped", "gauge", float64(latest.EphemeralSkipped))
		if latest.SizeNonCompressed != nil {
			write(descSizeNonCompressed, "backup_size_non_compressed", "gauge", float64(*latest.SizeNonCompressed))
		}
		if d := latest.Durations; d != nil {
			write(descTimeTotal, "backup_execution_time_total", "gauge", d.Total)
			write(descTimePrepare, "backup_execution_time_prepare", "gauge", d.Prepare)
			write(descTimeDump, "backup_execution_time_dump", "gauge", d.Dump)
			write(descTimeCompression, "backup_execution_time_compression", "gauge", d.Compression)
			write(descTimeUpload, "backup_execution_time_upload", "gauge", d.Upload)
		}
	}
	return b.String()
}

var backupMetricNames = append(slices.Clone(compatibleMetricNames), "backup_last_success_timestamp_seconds", "backup_znodes",
	"backup_ephemeral_znodes_skipped")

func TestMetricsFollowTemporalAndBucket(t *testing.T) {
	f := newFixture(t)
	c := backupCollector{snaps: f.snaps}

	// Nothing yet: counts and the bucket total, no latest.
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(0, 0, 0, nil)), backupMetricNames...); err != nil {
		t.Error(err)
	}

	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1 := f.addRun(base, 3, false)
	r2 := f.addRun(base.Add(10*time.Minute), 9, false)
	f.addRun(base.Add(20*time.Minute), 5, true)
	f.runs.closed++
	f.runs.failed = 1
	f.put("metadata-backup-notes.txt", []byte("ignored"))
	f.start()
	c = backupCollector{snaps: f.snaps}
	total := r1.SizeCompressed + r2.SizeCompressed
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(4, 1, total, &r2)), backupMetricNames...); err != nil {
		t.Error(err)
	}

	// A newer archive known only from the bucket counts in the total but is not latest.
	foreign := archiveBytes(t, 2, base.Add(time.Hour))
	f.put("metadata-backup-copy.tar.gz", foreign)
	total += int64(len(foreign))
	f.start()
	c = backupCollector{snaps: f.snaps}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(4, 1, total, &r2)), backupMetricNames...); err != nil {
		t.Error(err)
	}

	// Once retention has dropped every run, it is: no stage durations, no tar size.
	f.runs.mu.Lock()
	f.runs.backups, f.runs.closed, f.runs.failed = nil, 0, 0
	f.runs.mu.Unlock()
	f.start()
	c = backupCollector{snaps: f.snaps}
	snap, err := f.snaps.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := snap.Latest()
	if latest.Source != catalog.FromBucket || latest.Name != "metadata-backup-copy.tar.gz" {
		t.Fatalf("latest = %+v", latest)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(0, 0, total, &latest)), backupMetricNames...); err != nil {
		t.Error(err)
	}
}

// Prunes: what the prunes of completed backups and PruneWorkflow runs deleted, and the
// archives in the bucket now; deleting archives lowers the retained count and the total size.
func TestPruneMetrics(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := f.addRun(base, 3, false)
	f.addRun(base.Add(10*time.Minute), 4, false)
	r3 := f.addRun(base.Add(20*time.Minute), 5, false)
	f.runs.mu.Lock()
	f.runs.backups[1].Prune = &result.Prune{PruneCounts: result.PruneCounts{Deleted: 2}}
	f.runs.backups[2].Prune = &result.Prune{PruneCounts: result.PruneCounts{Deleted: 1}, Error: ""}
	f.runs.lifecycle.PruneDeleted = 4
	f.runs.mu.Unlock()
	f.put("metadata-backup-eu-1772366400000.tar.gz", archiveBytes(t, 2, base)) // another deployment's
	f.start()
	m := scrape(t, f)
	total := float64(old.SizeCompressed + f.runs.backups[1].SizeCompressed + r3.SizeCompressed)
	if m["backup_prune_deleted_count"] != 7 || m["backup_retained_count"] != 3 || m["backup_size_total"] != total {
		t.Fatalf("metrics %v, want total %v", m, total)
	}
	// A prune deletes the oldest archive: fewer archives, a smaller total.
	if err := f.store.Delete(t.Context(), old.Name); err != nil {
		t.Fatal(err)
	}
	f.start()
	m = scrape(t, f)
	if m["backup_retained_count"] != 2 || m["backup_size_total"] != total-float64(old.SizeCompressed) {
		t.Fatalf("after a delete: %v", m)
	}
}

// scrape serves /metrics and parses the unlabelled backup_* samples.
func scrape(t *testing.T, f *fixture) map[string]float64 {
	t.Helper()
	status, _, body := f.get("/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d %s", status, body)
	}
	return backupSamples(t, body)
}

// backupSamples parses the unlabelled backup_* samples of a /metrics body.
func backupSamples(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "backup_") {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[name] = x
	}
	return out
}

func TestMetricsLintOnlyOnSeedNames(t *testing.T) {
	f := newFixture(t)
	f.addRun(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, false)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(backupCollector{snaps: f.snaps}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	for _, p := range problems {
		if !slices.Contains(compatibleMetricNames, p.Metric) && !slices.Contains(lifecycleMetricNames, p.Metric) {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
		flagged[p.Metric] = true
	}
	// The collector does serve the compatible names (which is why they are flagged).
	for _, n := range []string{"backup_count", "backup_failure_count", "backup_size_total", "backup_execution_time_total"} {
		if !flagged[n] {
			t.Errorf("%s not linted: is it still served under its compatible name?", n)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t)
	r := f.addRun(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, false)
	status, h, body := f.get("/metrics")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", status, h.Get("Content-Type"))
	}
	text := string(body)
	for _, want := range []string{
		"# TYPE backup_count counter\nbackup_count 1\n",
		"# TYPE backup_failure_count counter\nbackup_failure_count 0\n",
		fmt.Sprintf("# TYPE backup_size_compressed gauge\nbackup_size_compressed %d\n", r.SizeCompressed),
		"# TYPE go_goroutines gauge",
		"# TYPE process_cpu_seconds_total counter",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "# HELP backup_") && !strings.Contains(line, "ytes") && !strings.Contains(line, "econds") &&
			!strings.Contains(line, "Number of") {
			t.Errorf("help without a unit: %s", line)
		}
	}
}

// backup_interval_seconds follows backup.enable and backup.backupInterval: the alert rule
// on the latest success's age divides by it.
func TestIntervalMetricFollowsSchedule(t *testing.T) {
	cfg := config.Default()
	if got := scheduledInterval(cfg); got != 0 {
		t.Fatalf("backup.enable false: interval %s, want none", got)
	}
	cfg.Backup.Enable = true
	cfg.Backup.BackupInterval = 900
	f := newFixture(t)
	f.interval = scheduledInterval(cfg)
	f.start()
	_, _, body := f.get("/metrics")
	if !strings.Contains(string(body), "\nbackup_interval_seconds 900\n") {
		t.Errorf("/metrics with backupInterval 900 lacks backup_interval_seconds 900:\n%s", body)
	}
	f.interval = 0
	f.start()
	_, _, body = f.get("/metrics")
	if strings.Contains(string(body), "backup_interval_seconds") {
		t.Errorf("/metrics with the schedule off serves backup_interval_seconds")
	}
}

// Drills: the last successful verification's time and duration, the failures, and in the
// list when each archive was last verified and how.
func TestVerifyMetricsAndList(t *testing.T) {
	f := newFixture(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1 := f.addRun(base, 3, false)
	r2 := f.addRun(base.Add(time.Hour), 4, false)
	f.start()
	if m := scrape(t, f); m["backup_verify_failure_count"] != 0 {
		t.Fatalf("before any drill: %v", m)
	} else if _, ok := m["backup_last_verified_timestamp_seconds"]; ok {
		t.Fatal("a last verification before any")
	}
	f.runs.mu.Lock()
	f.runs.lifecycle.Verified = []result.Verify{
		{Name: r2.Name, Method: result.VerifyRestoreDrill, VerifiedAt: base.Add(3 * time.Hour), Seconds: 42},
		{Name: r1.Name, Method: result.VerifyChecksum, VerifiedAt: base.Add(2 * time.Hour), Seconds: 5},
		{Name: r2.Name, Method: result.VerifyChecksum, VerifiedAt: base.Add(90 * time.Minute), Seconds: 3},
	}
	f.runs.lifecycle.VerifyFailed = 2
	f.runs.mu.Unlock()
	f.start()
	m := scrape(t, f)
	if m["backup_verify_failure_count"] != 2 || m["backup_verify_execution_time_seconds"] != 42 ||
		m["backup_last_verified_timestamp_seconds"] != float64(base.Add(3*time.Hour).Unix()) {
		t.Fatalf("metrics %v", m)
	}
	_, _, body := f.get("/backup/list")
	var l listBody
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 2 {
		t.Fatalf("list %s", body)
	}
	for _, b := range l.Backups {
		want := catalog.Verified{At: base.Add(3 * time.Hour), Method: result.VerifyRestoreDrill}
		if b.Name == r1.Name {
			want = catalog.Verified{At: base.Add(2 * time.Hour), Method: result.VerifyChecksum}
		}
		if b.LastVerified == nil || !b.LastVerified.At.Equal(want.At) || b.LastVerified.Method != want.Method {
			t.Errorf("%s: lastVerified %+v, want %+v", b.Name, b.LastVerified, want)
		}
	}
}
