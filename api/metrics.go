package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StreamNative's metric names and types are kept exactly, although three of them break
// Prometheus naming conventions (backup_count and backup_failure_count are counters without
// _total; backup_size_total and backup_execution_time_total are gauges with it): dashboards
// and alerts written for StreamNative's tool keep working.
var (
	descCount = prometheus.NewDesc("backup_count",
		"Number of BackupWorkflow runs of this bucket and prefix that have finished, successfully or not, as counted in Temporal's visibility store (runs older than the namespace's retention are no longer counted).", nil, nil)
	descFailures = prometheus.NewDesc("backup_failure_count",
		"Number of those runs that did not complete: failed, timed out, terminated or cancelled.", nil, nil)
	descSizeNonCompressed = prometheus.NewDesc("backup_size_non_compressed",
		"Size in bytes of the latest backup's tar before compression.", nil, nil)
	descSizeCompressed = prometheus.NewDesc("backup_size_compressed",
		"Size in bytes of the latest backup's .tar.gz archive.", nil, nil)
	descSizeTotal = prometheus.NewDesc("backup_size_total",
		"Size in bytes of all backup archives (.tar.gz objects of this prefix) in the bucket.", nil, nil)
	descTimeTotal = prometheus.NewDesc("backup_execution_time_total",
		"Seconds the latest backup took end to end, retries and queueing included.", nil, nil)
	descTimePrepare = prometheus.NewDesc("backup_execution_time_prepare",
		"Seconds the latest backup spent in its prepare stage.", nil, nil)
	descTimeDump = prometheus.NewDesc("backup_execution_time_dump",
		"Seconds the latest backup spent dumping ZooKeeper.", nil, nil)
	descTimeCompression = prometheus.NewDesc("backup_execution_time_compression",
		"Seconds the latest backup spent compressing.", nil, nil)
	descTimeUpload = prometheus.NewDesc("backup_execution_time_upload",
		"Seconds the latest backup spent uploading.", nil, nil)
	descLastSuccess = prometheus.NewDesc("backup_last_success_timestamp_seconds",
		"Unix time in seconds at which the latest backup started.", nil, nil)
	descZnodes = prometheus.NewDesc("backup_znodes",
		"Number of znodes in the latest backup.", nil, nil)
	descEphemeralSkipped = prometheus.NewDesc("backup_ephemeral_znodes_skipped",
		"Number of ephemeral znodes (live state) the latest backup skipped.", nil, nil)
	descInterval = prometheus.NewDesc("backup_interval_seconds",
		"Seconds between scheduled backups (backup.backupInterval); absent while backup.enable is false. Alert rules compare the latest success's age with it.", nil, nil)

	descPruneDeleted = prometheus.NewDesc("backup_prune_deleted_count",
		"Number of archives the retention policy deleted: the prunes of the BackupWorkflow and PruneWorkflow runs of this bucket and prefix that completed, as counted in Temporal's visibility store (runs older than the namespace's retention are no longer counted).", nil, nil)
	descRetained = prometheus.NewDesc("backup_retained_count",
		"Number of backup archives (.tar.gz objects of this prefix) in the bucket now.", nil, nil)

	descLastVerified = prometheus.NewDesc("backup_last_verified_timestamp_seconds",
		"Unix time in seconds at which the latest successful verification (VerifyWorkflow: checksum, or restore drill) ended.", nil, nil)
	descVerifyFailures = prometheus.NewDesc("backup_verify_failure_count",
		"Number of VerifyWorkflow runs of this bucket and prefix that did not complete (the archive failed verification, or the run failed, timed out, was terminated or cancelled), as counted in Temporal's visibility store.", nil, nil)
	descVerifyTime = prometheus.NewDesc("backup_verify_execution_time_seconds",
		"Seconds the latest successful verification took end to end.", nil, nil)

	allDescs = []*prometheus.Desc{descCount, descFailures, descSizeNonCompressed, descSizeCompressed, descSizeTotal,
		descTimeTotal, descTimePrepare, descTimeDump, descTimeCompression, descTimeUpload, descLastSuccess, descZnodes, descEphemeralSkipped, descInterval,
		descPruneDeleted, descRetained, descLastVerified, descVerifyFailures, descVerifyTime}
)

// compatibleMetricNames are StreamNative's names (and execution_time_dump beside them),
// kept lint or not.
var compatibleMetricNames = []string{"backup_count", "backup_failure_count", "backup_size_non_compressed",
	"backup_size_compressed", "backup_size_total", "backup_execution_time_total", "backup_execution_time_prepare",
	"backup_execution_time_dump", "backup_execution_time_compression", "backup_execution_time_upload"}

// lifecycleMetricNames are the retention metrics, named in the same style as the compatible
// ones and kept lint or not: backup_prune_deleted_count is a counter without _total and
// backup_retained_count a gauge with _count.
var lifecycleMetricNames = []string{"backup_prune_deleted_count", "backup_retained_count", "backup_verify_failure_count"}

// backupCollector serves the backup metrics from the cached snapshot: the values come from
// Temporal and the bucket, never from what this process has seen, so they are right after a
// restart and match /backup/latest. The latest backup's metrics are absent while there is
// none; its stage durations are absent when it is known only from the bucket.
type backupCollector struct {
	snaps interface {
		Get(ctx context.Context) (*snapshot, error)
	}
	// interval is backup.backupInterval when backup.enable is set, else 0 (not served).
	interval time.Duration
}

func (c backupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c backupCollector) Collect(ch chan<- prometheus.Metric) {
	// The snapshot cache bounds this by its refresh timeout.
	snap, err := c.snaps.Get(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descCount, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	if c.interval > 0 {
		gauge(descInterval, c.interval.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descCount, prometheus.CounterValue, float64(snap.Closed))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(snap.Failed))
	gauge(descSizeTotal, float64(snap.ArchiveBytes))
	ch <- prometheus.MustNewConstMetric(descPruneDeleted, prometheus.CounterValue, float64(snap.PruneDeleted))
	gauge(descRetained, float64(snap.Archives))
	ch <- prometheus.MustNewConstMetric(descVerifyFailures, prometheus.CounterValue, float64(snap.VerifyFailed))
	if v := snap.LastVerification; v != nil {
		gauge(descLastVerified, float64(v.VerifiedAt.UnixNano())/1e9)
		gauge(descVerifyTime, v.Seconds)
	}
	latest, ok := snap.Latest()
	if !ok {
		return
	}
	gauge(descSizeCompressed, float64(latest.SizeCompressed))
	gauge(descLastSuccess, float64(latest.Time.UnixNano())/1e9)
	gauge(descZnodes, float64(latest.Znodes))
	gauge(descEphemeralSkipped, float64(latest.EphemeralSkipped))
	if latest.SizeNonCompressed != nil {
		gauge(descSizeNonCompressed, float64(*latest.SizeNonCompressed))
	}
	if d := latest.Durations; d != nil {
		gauge(descTimeTotal, d.Total)
		gauge(descTimePrepare, d.Prepare)
		gauge(descTimeDump, d.Dump)
		gauge(descTimeCompression, d.Compression)
		gauge(descTimeUpload, d.Upload)
	}
}
