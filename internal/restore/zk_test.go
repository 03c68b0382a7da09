package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
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

// superConn is a raw connection as ZooKeeper's super user, closed when the test ends.
func superConn(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	raw := testenv.SuperConn(t, addr)
	t.Cleanup(raw.Close)
	return raw
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
		Counts: result.Counts{Znodes: sw.Count(), EphemeralSkipped: stats.EphemeralSkipped, DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	path := filepath.Join(t.TempDir(), "backup.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := archive.WriteV1(f, m, bytes.NewReader(stream.Bytes()), int64(stream.Len())); err != nil {
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
	ledgers, err := restore.ReadTargetLedgers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{TargetLedgers: ledgers, RestoredAt: time.Now()}, nil)
	if err != nil || plan.LedgerCollisions.Count != 0 {
		t.Fatalf("plan: %v, collisions %v", err, plan.LedgerCollisions)
	}
	owner := restore.Owner{WorkflowID: "wf-" + version, RunID: run}
	b, err := restore.Begin(ctx, c, restore.BeginInput{RestorePoint: point, RestoreVersion: version, WorkflowID: owner.WorkflowID, RunID: owner.RunID,
		ToolVersion: "test", StartedAt: time.Now(), Archive: restore.ArchiveInfo{SHA256: "x"}, Check: chk, TempDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := restore.Apply(ctx, c, openFile(t, path), restore.ApplyInput{Owner: owner, Floor: plan.LedgerIDFloor}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Mark(ctx, c, restore.MarkInput{Owner: owner, CompletedAt: time.Now(), Created: st.Created}); err != nil {
		t.Fatal(err)
	}
	return b, st
}

// The domain stages against real servers, no Temporal: a round trip of the awkward tree
// with 63-bit ledger ids into a target whose cluster metadata was initialised first (the
// supported order; the other one is refused before anything is written), the plan's counts
// against the generator's summary, the broker-load model over the result, apply's
// idempotence, the marker, and a second version that clears and restores again.
func TestRestoreStagesRoundTripOnRealZooKeeper(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.StartZooKeeper(t), testenv.StartZooKeeper(t)
	o := pulsartree.Sized(2000)
	o.Awkward, o.Compression, o.LongLedgerIDs = true, mlpb.CompressionType_LZ4, true
	_, sum := restoretest.Populate(t, src.Addr, o)
	path := dumpArchive(t, src.Addr, restore.DefaultManagedLedgerPath)
	source := restoretest.ReadTree(t, src.Addr)
	c := connectZK(t, dst.Addr)

	// Restore first: refused, naming the step to run first, with nothing written.
	var r *restore.Refusal
	if _, err := restore.Check(ctx, c, "s3a://bkt/a.tar.gz", "1", []string{restore.DefaultManagedLedgerPath}); !errors.As(err, &r) ||
		r.Kind != restore.RefusedNoBookKeeper || !strings.Contains(err.Error(), restore.InitClusterCommand) {
		t.Fatalf("restore into an ensemble without BookKeeper metadata: %v", err)
	}
	if tree := restoretest.ReadTree(t, dst.Addr); len(tree) != 0 {
		t.Fatalf("the refused restore wrote %d znodes", len(tree))
	}

	// initialize-cluster-metadata first, then the restore.
	restoretest.InitCluster(t, dst.Addr)
	before := restoretest.ReadTree(t, dst.Addr)
	target, err := restore.ReadTarget(ctx, c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{Target: target, RestoredAt: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := restoretest.Expect(sum)
	if plan.LedgersKept != want.LedgersKept || plan.LedgersDropped != want.LedgersDropped || plan.CursorsReset != want.CursorsReset ||
		plan.TopicsWithDataLossCount != int64(len(want.TopicsWithDataLoss)) || plan.SchemasToRegister.Count != want.SchemasToRegister ||
		plan.CompactionReset.Count != want.CompactionReset || plan.StaleCursors.Count != want.StaleCursors ||
		plan.Skipped[restore.SkipBookKeeperBound] != want.BookKeeperBound ||
		plan.TopicsCount != int64(len(sum.Topics)) || plan.ConflictsCount != 0 {
		t.Fatalf("plan %+v\nwant %+v", plan, want)
	}
	if f := plan.LedgerIDFloor; f.Highest < want.FloorAbove || f.FirstID <= want.FloorAbove || f.HOB != pulsartree.SourceHOB+1 {
		t.Fatalf("floor %+v, the archive names ids up to %d", f, want.FloorAbove)
	}
	// What initialize-cluster-metadata wrote with the new cluster's values and the archive
	// has too: the archive's replace them.
	slices.Sort(plan.InitReplaced)
	if !slices.Equal(plan.InitReplaced, []string{"/admin/clusters/" + pulsartree.ClusterName, "/admin/policies/public", "/admin/policies/public/default", "/bookies"}) {
		t.Errorf("init znodes replaced: %v", plan.InitReplaced)
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
	if st.Created+st.Existing+st.InitReplaced != plan.Create || st.InitReplaced != int64(len(plan.InitReplaced)) || st.DeferredACLs == 0 || !st.Floor.Created {
		t.Fatalf("apply %+v, plan creates %d", st, plan.Create)
	}
	restored := restoretest.ReadTree(t, dst.Addr)
	restoretest.CheckRestored(t, source, before, restored, sum)
	restoretest.CheckBrokerLoad(t, restored, sum, restore.DefaultManagedLedgerPath)

	m, _, _, err := restore.ReadMarker(ctx, c)
	if err != nil || m == nil || m.State != restore.StateComplete || m.RestorePoint != "s3a://bkt/a.tar.gz" || m.RestoreVersion != "1" ||
		m.Created != st.Created || m.CompletedAt == nil || m.Tool != restore.ToolName || m.Replaced != nil {
		t.Fatalf("marker %+v, %v", m, err)
	}
	chk, err := restore.Check(ctx, c, "s3a://bkt/a.tar.gz", "1", []string{restore.DefaultManagedLedgerPath})
	if err != nil || chk.Decision != restore.DecisionAlreadyRestored {
		t.Fatalf("same pair again: %+v, %v", chk, err)
	}

	// restore.Apply again over the restored tree: every znode is found identical, the
	// floor in place.
	owner := restore.Owner{WorkflowID: "wf-1", RunID: "run-1"}
	again, err := restore.Apply(ctx, c, openFile(t, path), restore.ApplyInput{Owner: owner, Floor: plan.LedgerIDFloor}, nil)
	if err != nil || again.Created != 0 || again.Existing != plan.Create || again.Floor.Created || again.Floor.Present != plan.LedgerIDFloor.HOB {
		t.Fatalf("second apply %+v, %v", again, err)
	}
	// Another run may not write while the marker names run-1.
	if _, err := restore.Apply(ctx, c, openFile(t, path), restore.ApplyInput{Owner: restore.Owner{WorkflowID: "wf-x", RunID: "other"}}, nil); !errors.Is(err, restore.ErrTargetChanged) {
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
	again2 := restoretest.ReadTree(t, dst.Addr)
	restoretest.CheckRestored(t, source, before, again2, sum)
	restoretest.CheckBrokerLoad(t, again2, sum, restore.DefaultManagedLedgerPath)
	m, _, _, _ = restore.ReadMarker(ctx, c)
	if m.RestoreVersion != "2" || m.Replaced == nil || m.Replaced.RestoreVersion != "1" || m.ClearedAt == nil {
		t.Fatalf("marker after replace %+v", m)
	}
}

// A target whose BookKeeper already has a ledger that a restored topic would list is
// refused by the plan: the broker would open and fence it as its own.
func TestPlanFindsLedgerCollisions(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.StartZooKeeper(t), testenv.StartZooKeeper(t)
	_, sum := restoretest.Populate(t, src.Addr, pulsartree.Sized(300))
	path := dumpArchive(t, src.Addr, restore.DefaultManagedLedgerPath)
	restoretest.InitCluster(t, dst.Addr)
	var kept int64
	for _, tp := range sum.Topics {
		if len(tp.Kept) > 0 {
			kept = tp.Kept[0].ID
			break
		}
	}
	raw := superConn(t, dst.Addr)
	s := fmt.Sprintf("%010d", kept)
	for _, p := range []string{"/ledgers/" + s[:2], "/ledgers/" + s[:2] + "/" + s[2:6], "/ledgers/" + s[:2] + "/" + s[2:6] + "/L" + s[6:]} {
		if _, err := raw.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	c := connectZK(t, dst.Addr)
	ledgers, err := restore.ReadTargetLedgers(ctx, c)
	if err != nil || len(ledgers) != 1 || !ledgers[kept] {
		t.Fatalf("target ledgers %v, %v; want %d", ledgers, err, kept)
	}
	plan, err := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{TargetLedgers: ledgers}, nil)
	if err != nil || plan.LedgerCollisions.Count != 1 || !strings.HasSuffix(plan.LedgerCollisions.First[0], fmt.Sprint(" ", kept)) {
		t.Fatalf("collisions %+v, %v", plan.LedgerCollisions, err)
	}
}

func TestCheckRefusesRunningOrUsedTargets(t *testing.T) {
	ctx := context.Background()
	z := testenv.StartZooKeeper(t)
	raw := superConn(t, z.Addr)
	c := connectZK(t, z.Addr)
	mk := func(p string, flags int32) {
		t.Helper()
		if _, err := raw.Create(p, nil, flags, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	var r *restore.Refusal
	if _, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath}); !errors.As(err, &r) || r.Kind != restore.RefusedNoBookKeeper {
		t.Fatalf("empty target: %v", err)
	}
	// /ledgers alone is not a formatted BookKeeper.
	mk("/ledgers", 0)
	if _, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath}); !errors.As(err, &r) || r.Kind != restore.RefusedNoBookKeeper {
		t.Fatalf("unformatted /ledgers: %v", err)
	}
	// What a new cluster's bookies write is no reason to refuse.
	mk("/ledgers/INSTANCEID", 0)
	mk("/ledgers/available", 0)
	mk("/ledgers/available/10.0.0.1:3181", zk.FlagEphemeral)
	mk("/loadbalance", 0)
	mk("/loadbalance/brokers", 0)
	mk("/managed-ledgers", 0)
	if chk, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath}); err != nil || chk.Decision != restore.DecisionFresh {
		t.Fatalf("new cluster: %+v, %v", chk, err)
	}

	mk("/managed-ledgers/public", 0)
	_, err := restore.Check(ctx, c, "p", "1", []string{"/other-path", restore.DefaultManagedLedgerPath})
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

// Credentials that cannot read the target fail a new restoreVersion before the marker
// moves: the marker still says the earlier restore, complete.
func TestBeginWithWrongCredentialsLeavesTheMarker(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.StartZooKeeper(t), testenv.StartZooKeeper(t)
	o := pulsartree.Sized(300)
	o.Awkward = true
	_, sum := restoretest.Populate(t, src.Addr, o)
	path := dumpArchive(t, src.Addr, restore.DefaultManagedLedgerPath)
	restoretest.InitCluster(t, dst.Addr)
	c := connectZK(t, dst.Addr)
	restoreOnce(t, c, path, "s3a://bkt/a.tar.gz", "1", "run-1")
	before, _, _, err := restore.ReadMarker(ctx, c)
	if err != nil || before == nil || before.State != restore.StateComplete {
		t.Fatalf("marker %+v, %v", before, err)
	}
	// The marker's ACL names the restore's identity, with read for everyone.
	identity := zk.DigestACL(zk.PermAll, pulsartree.DefaultDigestUser, pulsartree.DefaultDigestPassword)[0].ID
	rec, _, err := c.ReadZnode(ctx, restore.MarkerPath)
	if err != nil || len(rec.ACL) != 2 || rec.ACL[0] != (znode.ACL{Perms: 31, Scheme: "digest", ID: identity}) || rec.ACL[1] != (znode.ACL{Perms: 1, Scheme: "world", ID: "anyone"}) {
		t.Fatalf("marker ACL %v (%v), identity %s", rec.ACL, err, identity)
	}
	// Open it up, as a marker an earlier restore without auth left: then only Begin's order
	// (read the target, then write the marker) keeps a wrong password from moving it.
	raw := superConn(t, dst.Addr)
	if _, err := raw.SetACL(restore.MarkerPath, zk.WorldACL(zk.PermAll), -1); err != nil {
		t.Fatal(err)
	}
	_, mv, _, _ := restore.ReadMarker(ctx, c)
	tree := restoretest.ReadTree(t, dst.Addr)

	wrong, err := zookeeper.Connect(ctx, zookeeper.Options{Servers: []string{dst.Addr}, Auth: "digest:" + pulsartree.DefaultDigestUser + ":wrong", Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	chk, err := restore.Check(ctx, wrong, "s3a://bkt/a.tar.gz", "2", []string{restore.DefaultManagedLedgerPath})
	if err != nil || chk.Decision != restore.DecisionReplace {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	_, err = restore.Begin(ctx, wrong, restore.BeginInput{RestorePoint: "s3a://bkt/a.tar.gz", RestoreVersion: "2", WorkflowID: "wf-2", RunID: "run-2",
		ToolVersion: "test", StartedAt: time.Now(), Check: chk, TempDir: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("begin with a wrong password: %v", err)
	}
	after, av, _, err := restore.ReadMarker(ctx, c)
	if err != nil || av != mv || after.RestoreVersion != "1" || after.State != restore.StateComplete {
		t.Fatalf("marker after the failed begin: %+v (version %d, was %d), %v", after, av, mv, err)
	}
	if !reflect.DeepEqual(restoretest.ReadTree(t, dst.Addr), tree) {
		t.Fatal("the failed begin changed the target")
	}

	// The plan tells the wrong password from the archive's ACLs, before any write.
	plan, err := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{Identity: wrong.Identity()}, nil)
	if err != nil || plan.AuthMismatch.Count != int64(len(sum.Special.Digest)) {
		t.Fatalf("auth mismatch %+v, %v", plan.AuthMismatch, err)
	}
	if plan, _ := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{Identity: c.Identity()}, nil); plan.AuthMismatch.Count != 0 {
		t.Fatalf("the right password mismatches: %+v", plan.AuthMismatch)
	}
}

// Another restore that takes the marker over stops a running apply at its next batch: the
// two never interleave their writes.
func TestApplyStopsWhenTheMarkerIsTakenOver(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.StartZooKeeper(t), testenv.StartZooKeeper(t)
	restoretest.Populate(t, src.Addr, pulsartree.Sized(2000))
	path := dumpArchive(t, src.Addr, restore.DefaultManagedLedgerPath)
	restoretest.InitCluster(t, dst.Addr)
	c := connectZK(t, dst.Addr)
	chk, err := restore.Check(ctx, c, "p", "1", []string{restore.DefaultManagedLedgerPath})
	if err != nil {
		t.Fatal(err)
	}
	owner := restore.Owner{WorkflowID: "wf-a", RunID: "run-a"}
	if _, err := restore.Begin(ctx, c, restore.BeginInput{RestorePoint: "p", RestoreVersion: "1", WorkflowID: owner.WorkflowID, RunID: owner.RunID,
		StartedAt: time.Now(), Check: chk, TempDir: t.TempDir()}, nil); err != nil {
		t.Fatal(err)
	}
	// Once the first topics are written, another restore rewrites the marker.
	raw := superConn(t, dst.Addr)
	_, _, watch, err := raw.ExistsW("/managed-ledgers/public")
	if err != nil {
		t.Fatal(err)
	}
	took := make(chan error, 1)
	go func() {
		<-watch
		m, v, _, err := restore.ReadMarker(ctx, c)
		if err == nil {
			m.WorkflowID, m.RunID = "wf-b", "run-b"
			data, _ := json.Marshal(m)
			_, err = raw.Set(restore.MarkerPath, data, v)
		}
		took <- err
	}()
	st, err := restore.Apply(ctx, c, openFile(t, path), restore.ApplyInput{Owner: owner, Creator: zookeeper.CreatorOptions{BatchOps: 10, InFlight: 1}}, nil)
	select {
	case terr := <-took:
		if terr != nil {
			t.Fatal(terr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the takeover never happened: /managed-ledgers/public was not created")
	}
	if !errors.Is(err, restore.ErrTargetChanged) || !errors.Is(err, zookeeper.ErrGuardFailed) {
		t.Fatalf("apply after the takeover: %v (%+v)", err, st)
	}
	plan, _ := restore.MakePlan(ctx, openFile(t, path), restore.PlanInput{}, nil)
	n := len(restoretest.ReadTree(t, dst.Addr))
	if st.Created >= plan.Create || int64(n) >= plan.Create {
		t.Fatalf("apply went on: %d created, %d znodes in the target, the plan creates %d", st.Created, n, plan.Create)
	}
	time.Sleep(500 * time.Millisecond)
	if again := len(restoretest.ReadTree(t, dst.Addr)); again != n {
		t.Fatalf("writes went on after apply returned: %d znodes, then %d", n, again)
	}
}

// A marker an earlier restore created without auth (open ACL) is taken over by a restore
// with auth: only a marker Begin creates must name its identity.
func TestBeginTakesOverAMarkerCreatedWithoutAuth(t *testing.T) {
	ctx := context.Background()
	z := testenv.StartZooKeeper(t)
	restoretest.InitCluster(t, z.Addr)
	raw := superConn(t, z.Addr)
	if _, err := raw.Create(restore.MarkerPath, []byte(`{"tool":"pulsar-metadata-backup","state":"complete","restorePoint":"p","restoreVersion":"1"}`), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	c := connectZK(t, z.Addr)
	chk, err := restore.Check(ctx, c, "p", "2", []string{restore.DefaultManagedLedgerPath})
	if err != nil || chk.Decision != restore.DecisionReplace {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	if _, err := restore.Begin(ctx, c, restore.BeginInput{RestorePoint: "p", RestoreVersion: "2", WorkflowID: "wf", RunID: "run",
		StartedAt: time.Now(), Check: chk, TempDir: t.TempDir()}, nil); err != nil {
		t.Fatalf("begin over an open-ACL marker: %v", err)
	}
	if m, _, _, err := restore.ReadMarker(ctx, c); err != nil || m.RestoreVersion != "2" || m.State != restore.StateApplying {
		t.Fatalf("marker %+v, %v", m, err)
	}
	if rec, _, err := c.ReadZnode(ctx, restore.MarkerPath); err != nil || len(rec.ACL) != 1 || rec.ACL[0] != (znode.ACL{Perms: 31, Scheme: "world", ID: "anyone"}) {
		t.Fatalf("the earlier marker's ACL changed: %v, %v", rec.ACL, err)
	}
}
