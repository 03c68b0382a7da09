package restore_test

// BenchmarkApply measures the whole apply stage — archive read and verified, every record
// classified, managed ledgers and cursors decoded and rewritten, then the zookeeper Creator —
// against the same rewritten records created one request at a time, and against the Creator
// alone fed the same records from memory (the apply's overhead), on the same tree: a
// pulsartree of RESTORE_BENCH_TREE znodes (default 240,000, of which about 100,000 are
// restored; the rest is BookKeeper metadata and live state the restore skips).
// RESTORE_BENCH_ONE (default 5,000) bounds the one-at-a-time yardstick, which runs near
// 2,000/s; rates are compared. Run it alone, once:
//
//	go test ./internal/restore -run '^$' -bench Apply -benchtime 1x -timeout 30m

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
)

func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	treeSize, one := testenv.EnvInt(b, "RESTORE_BENCH_TREE", 240_000), testenv.EnvInt(b, "RESTORE_BENCH_ONE", 5_000)
	// RESTORE_BENCH_ARCHIVE names an archive to apply instead of a generated tree's (to
	// compare two versions of the code on the same archive, or to measure one's own);
	// RESTORE_BENCH_SAVE keeps the generated one there.
	path := os.Getenv("RESTORE_BENCH_ARCHIVE")
	if path == "" {
		src := testenv.StartZooKeeper(b)
		o := pulsartree.Sized(treeSize)
		o.Compression = mlpb.CompressionType_LZ4
		srcConn, _ := restoretest.Populate(b, src.Addr, o)
		path = dumpArchive(b, src.Addr, restore.DefaultManagedLedgerPath)
		srcConn.Close()
		src.Stop()
		if save := os.Getenv("RESTORE_BENCH_SAVE"); save != "" {
			data, err := os.ReadFile(path)
			if err == nil {
				err = os.WriteFile(save, data, 0o644)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}

	b.StopTimer() // the metrics below are what counts
	// What the apply costs besides creating: reading, verifying, decoding and rewriting.
	start := time.Now()
	plan, err := restore.MakePlan(ctx, openFile(b, path), restore.PlanInput{RestoredAt: time.Now()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	dp := time.Since(start)
	b.Logf("read and rewrite only: %d records (%d to create) in %s: %.0f records/s", plan.Znodes, plan.Create, dp.Round(time.Millisecond), float64(plan.Znodes)/dp.Seconds())

	// The records to create, rewritten, in memory: what the Creator alone is fed.
	var recs []znode.Record
	{
		ar, err := archive.NewReader(openFile(b, path))
		if err != nil {
			b.Fatal(err)
		}
		rw := restore.NewRewriter(ar.Manifest().ManagedLedgerPath, time.Now())
		for {
			rec, err := ar.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			it, err := rw.Next(rec)
			if err != nil {
				b.Fatal(err)
			}
			if it.Skip == "" {
				recs = append(recs, it.Record)
			}
		}
	}

	// One target server for every pass, cleared before each measurement: a production
	// ensemble is a long-running JVM, so later passes measure it warmed up (make bench runs
	// three and reports the last).
	dst := testenv.StartZooKeeper(b)
	restoretest.InitCluster(b, dst.Addr)
	c := connectZK(b, dst.Addr)
	clear := func() {
		if _, err := restore.Clear(ctx, c, b.TempDir(), nil); err != nil {
			b.Fatal(err)
		}
		if _, err := c.DeleteZnodes(ctx, []string{restore.MarkerPath}); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		// The Creator alone, from memory: the apply's upper bound.
		clear()
		start := time.Now()
		cr := c.NewCreator(ctx, zookeeper.CreatorOptions{})
		for _, r := range recs {
			if err := cr.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		cs, err := cr.Close()
		if err != nil {
			b.Fatal(err)
		}
		d0 := time.Since(start)
		creatorRate := float64(cs.Created) / d0.Seconds()
		b.Logf("creator alone: %d znodes in %s: %.0f znodes/s", cs.Created, d0.Round(time.Millisecond), creatorRate)

		// The whole apply: read, verify, rewrite, create.
		clear()
		owner := restore.Owner{WorkflowID: "bench", RunID: "bench"}
		chk, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := restore.Begin(ctx, c, restore.BeginInput{RestorePoint: "p", RestoreVersion: "1", WorkflowID: owner.WorkflowID, RunID: owner.RunID, Check: chk}, nil); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		st, err := restore.Apply(ctx, c, openFile(b, path), restore.ApplyInput{Owner: owner, Floor: plan.LedgerIDFloor}, nil)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(st.Created) / d.Seconds()
		b.Logf("apply: %d records read, %d znodes created in %s: %.0f znodes/s (%d batches)", st.Records, st.Created, d.Round(time.Millisecond), rate, st.Batches)

		// The yardstick: the same rewritten records, one create request at a time.
		clear()
		ar, err := archive.NewReader(openFile(b, path))
		if err != nil {
			b.Fatal(err)
		}
		rw := restore.NewRewriter(ar.Manifest().ManagedLedgerPath, time.Now())
		created := 0
		start = time.Now()
		for created < one {
			rec, err := ar.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			it, err := rw.Next(rec)
			if err != nil {
				b.Fatal(err)
			}
			if it.Skip != "" {
				continue
			}
			if _, err := c.CreateOne(ctx, it.Record); err != nil {
				b.Fatal(err)
			}
			created++
		}
		d1 := time.Since(start)
		oneRate := float64(created) / d1.Seconds()
		b.Logf("one at a time: %d znodes in %s: %.0f znodes/s", created, d1.Round(time.Millisecond), oneRate)
		b.Logf("apply is %.1fx one at a time, and %.0f%% of the Creator alone", rate/oneRate, 100*rate/creatorRate)
		b.ReportMetric(rate, "znodes/s")
		b.ReportMetric(oneRate, "one-at-a-time-znodes/s")
		b.ReportMetric(rate/oneRate, "x-one-at-a-time")
		b.ReportMetric(creatorRate, "creator-alone-znodes/s")
	}
}
