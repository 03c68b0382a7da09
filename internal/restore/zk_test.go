package restore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
)

func connectZK(t testing.TB, addr string) *zookeeper.Client {
	t.Helper()
	c, err := zookeeper.Connect(context.Background(), zookeeper.Options{Servers: []string{addr}, Auth: restoretest.Auth, Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dumpArchive backs the tree at addr up into an archive file, the way the backup does:
// a walk into a stream, packed with its manifest.
func dumpArchive(t testing.TB, addr, mlPath string) string {
	t.Helper()
	c := connectZK(t, addr)
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	stats, err := c.Walk(context.Background(), zookeeper.WalkOptions{}, func(r znode.Record) error { return sw.Write(r) })
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{
		ToolVersion: "test", Source: []string{addr}, ManagedLedgerPath: mlPath,
		StartTime: time.Now().UTC(), EndTime: time.Now().UTC(), ZxidStart: "0x1", ZxidEnd: "0x1", MaxZxid: archive.Zxid(stats.MaxZxid),
		Znodes: sw.Count(), EphemeralSkipped: stats.EphemeralSkipped, DataBytes: sw.DataBytes(), StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	path := filepath.Join(t.TempDir(), "backup.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := archive.WriteArchive(f, m, bytes.NewReader(stream.Bytes()), int64(stream.Len())); err != nil {
		t.Fatal(err)
	}
	return path
}

func openFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// restoreOnce runs the stages as the workflow does, without Temporal.
func restoreOnce(t *testing.T, c *zookeeper.Client, path, point, version, run string) (restore.BeginResult, restore.ApplyStats) {
	t.Helper()
	ctx := context.Background()
	chk, err := restore.Check(ctx, c, point, version, []string{restore.DefaultManagedLedgerPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Validate(ctx, openFile(t, path), nil); err != nil {
		t.Fatal(err)
	}
	owner := restore.Owner{WorkflowID: "wf-" + version, RunID: run}
	b, err := restore.Begin(ctx, c, restore.BeginInput{RestorePoint: point, RestoreVersion: version, WorkflowID: owner.WorkflowID, RunID: owner.RunID,
		ToolVersion: "test", StartedAt: time.Now(), Archive: restore.ArchiveInfo{SHA256: "x"}, Check: chk, TempDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := restore.Apply(ctx, c, openFile(t, path), owner, zookeeper.CreatorOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Mark(ctx, c, restore.MarkInput{Owner: owner, CompletedAt: time.Now(), Created: st.Created}); err != nil {
		t.Fatal(err)
	}
	return b, st
}

// The domain stages against real servers, no Temporal: a round trip of the awkward tree,
// the plan's counts against the generator's summary, apply's idempotence, the marker, and
// a second version that clears and restores again.
func TestRestoreStagesRoundTripOnRealZooKeeper(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.StartZooKeeper(t), testenv.StartZooKeeper(t)
	o := pulsartree.Sized(2000)
	o.Awkward, o.Compression = true, mlpb.CompressionType_LZ4
	_, sum := restoretest.Populate(t, src.Addr, o)
	path := dumpArchive(t, src.Addr, restore.DefaultManagedLedgerPath)
	source := restoretest.ReadTree(t, src.Addr)
	c := connectZK(t, dst.Addr)

	target, err := restore.ReadTarget(ctx, c, 1000)
	if err != nil || len(target) != 0 {
		t.Fatalf("fresh target holds %v (%v)", target, err)
	}
	plan, err := restore.MakePlan(ctx, openFile(t, path), target, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := restoretest.Expect(sum)
	if plan.LedgersKept != want.LedgersKept || plan.LedgersDropped != want.LedgersDropped || plan.CursorsReset != want.CursorsReset ||
		plan.TopicsWithDataLossCount != int64(len(want.TopicsWithDataLoss)) || plan.SchemasLostCount != want.SchemasLost ||
		plan.TopicsCount != int64(len(sum.Topics)) || plan.ConflictsCount != 0 {
		t.Fatalf("plan %+v\nwant %+v", plan, want)
	}
	if plan.PayloadFormats["managed-ledger/lz4"] == 0 || plan.PayloadFormats["managed-ledger/zstd"] == 0 || plan.PayloadFormats["cursor/lz4"] != 1 {
		t.Fatalf("payload formats %v", plan.PayloadFormats)
	}
	var bk int64
	for p := range source {
		if znode.Under(p, "/ledgers") {
			bk++
		}
	}
	if plan.Skipped[restore.SkipBookKeeper] != bk || plan.Skipped[restore.SkipLoadStatistics] == 0 || plan.Skipped[restore.SkipRoot] != 1 {
		t.Fatalf("skipped %v, /ledgers holds %d", plan.Skipped, bk)
	}

	_, st := restoreOnce(t, c, path, "s3a://bkt/a.tar.gz", "1", "run-1")
	if st.Created != plan.Create || st.Existing != 0 || st.DeferredACLs == 0 {
		t.Fatalf("apply %+v, plan creates %d", st, plan.Create)
	}
	restored := restoretest.ReadTree(t, dst.Addr)
	restoretest.CheckRestored(t, source, restored, sum)

	m, _, _, err := restore.ReadMarker(ctx, c)
	if err != nil || m == nil || m.State != restore.StateComplete || m.RestorePoint != "s3a://bkt/a.tar.gz" || m.RestoreVersion != "1" ||
		m.Created != st.Created || m.CompletedAt == nil || m.Tool != restore.ToolName || m.Replaced != nil {
		t.Fatalf("marker %+v, %v", m, err)
	}
	chk, err := restore.Check(ctx, c, "s3a://bkt/a.tar.gz", "1", []string{restore.DefaultManagedLedgerPath})
	if err != nil || chk.Decision != restore.DecisionAlreadyRestored {
		t.Fatalf("same pair again: %+v, %v", chk, err)
	}

	// restore.Apply again over the restored tree: every znode is found identical.
	again, err := restore.Apply(ctx, c, openFile(t, path), restore.Owner{WorkflowID: "wf-1", RunID: "run-1"}, zookeeper.CreatorOptions{}, nil)
	if err != nil || again.Created != 0 || again.Existing != plan.Create {
		t.Fatalf("second apply %+v, %v", again, err)
	}
	// Another run may not write while the marker names run-1.
	if _, err := restore.Apply(ctx, c, openFile(t, path), restore.Owner{WorkflowID: "wf-x", RunID: "other"}, zookeeper.CreatorOptions{}, nil); !errors.Is(err, restore.ErrTargetChanged) {
		t.Fatalf("apply by a run the marker does not name: %v", err)
	}

	// A new version replaces: the first restore's znodes are cleared, then restored again.
	chk, err = restore.Check(ctx, c, "s3a://bkt/a.tar.gz", "2", []string{restore.DefaultManagedLedgerPath})
	if err != nil || chk.Decision != restore.DecisionReplace {
		t.Fatalf("new version: %+v, %v", chk, err)
	}
	b, st2 := restoreOnce(t, c, path, "s3a://bkt/a.tar.gz", "2", "run-2")
	// The worker is not the super user: the locked parent's child stays (found identical).
	if b.Replaced == nil || b.Replaced.RestoreVersion != "1" || b.Denied != 1 || b.Deleted+b.Kept+b.Denied < plan.Create ||
		st2.Created+st2.Existing != plan.Create || st2.Existing > 5 {
		t.Fatalf("replace: begin %+v, apply %+v, plan creates %d", b, st2, plan.Create)
	}
	restoretest.CheckRestored(t, source, restoretest.ReadTree(t, dst.Addr), sum)
	m, _, _, _ = restore.ReadMarker(ctx, c)
	if m.RestoreVersion != "2" || m.Replaced == nil || m.Replaced.RestoreVersion != "1" || m.ClearedAt == nil {
		t.Fatalf("marker after replace %+v", m)
	}
}

func TestCheckRefusesRunningOrUsedTargets(t *testing.T) {
	ctx := context.Background()
	z := testenv.StartZooKeeper(t)
	raw, _, err := zk.Connect([]string{z.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := connectZK(t, z.Addr)
	mk := func(p string, flags int32) {
		t.Helper()
		if _, err := raw.Create(p, nil, flags, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	if chk, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath}); err != nil || chk.Decision != restore.DecisionFresh {
		t.Fatalf("empty target: %+v, %v", chk, err)
	}
	// What a new cluster's bookies write is no reason to refuse.
	mk("/ledgers", 0)
	mk("/ledgers/available", 0)
	mk("/ledgers/available/10.0.0.1:3181", zk.FlagEphemeral)
	mk("/loadbalance", 0)
	mk("/loadbalance/brokers", 0)
	mk("/managed-ledgers", 0)
	if chk, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath}); err != nil || chk.Decision != restore.DecisionFresh {
		t.Fatalf("new cluster: %+v, %v", chk, err)
	}

	mk("/managed-ledgers/public", 0)
	var r *restore.Refusal
	_, err = restore.Check(ctx, c, "p", "1", []string{"/other-path", restore.DefaultManagedLedgerPath})
	if !errors.As(err, &r) || r.Kind != restore.RefusedManagedLedgers || !strings.Contains(err.Error(), "/managed-ledgers/public") {
		t.Fatalf("managed ledgers: %v", err)
	}

	mk("/loadbalance/brokers/10.0.0.1:8080", zk.FlagEphemeral)
	_, err = restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath})
	if !errors.As(err, &r) || r.Kind != restore.RefusedClusterRunning || !strings.Contains(err.Error(), "10.0.0.1:8080") {
		t.Fatalf("live broker: %v", err)
	}
	if err := raw.Delete("/loadbalance/brokers/10.0.0.1:8080", -1); err != nil {
		t.Fatal(err)
	}

	if _, err := raw.Create(restore.MarkerPath, []byte("someone else's"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	_, err = restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath})
	if !errors.As(err, &r) || r.Kind != restore.RefusedForeignMarker {
		t.Fatalf("foreign marker: %v", err)
	}
	// A marker of this tool lifts the managed-ledger refusal.
	if _, err := raw.Set(restore.MarkerPath, []byte(`{"tool":"pulsar-metadata-backup","state":"complete","restorePoint":"p","restoreVersion":"1"}`), -1); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]restore.Decision{"1": restore.DecisionAlreadyRestored, "2": restore.DecisionReplace} {
		if chk, err := restore.Check(ctx, c, "p", v, []string{restore.DefaultManagedLedgerPath}); err != nil || chk.Decision != want {
			t.Fatalf("version %s: %+v, %v", v, chk, err)
		}
	}
}
