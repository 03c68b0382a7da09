package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-zookeeper/zk"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// restoreFixture is the shared part of the restore tests: the stack of startStack (the
// source ZooKeeper, MinIO, Temporal), the awkward Pulsar tree in the source with live
// brokers, and one backup of it made by the real BackupWorkflow.
type restoreFixture struct {
	*stack
	sum    pulsartree.Summary
	source map[string]znode.Record
	backup workflows.BackupResult
	good   []byte // the backup object
}

func newRestoreFixture(t *testing.T) *restoreFixture {
	t.Helper()
	f := &restoreFixture{stack: startStack(t)}
	o := pulsartree.Sized(3000)
	o.Awkward, o.Compression = true, mlpb.CompressionType_LZ4
	_, f.sum = restoretest.Populate(t, f.zk.Addr, o)
	f.source = restoretest.ReadTree(t, f.zk.Addr)
	var out bytes.Buffer
	if err := run([]string{"--config", f.config(t, nil), "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &f.backup); err != nil {
		t.Fatal(err)
	}
	f.good = f.getObject(t, f.backup.Name)
	return f
}

func (f *restoreFixture) putObject(t *testing.T, key string, body []byte) string {
	t.Helper()
	_, err := f.minio.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	return "s3a://backups/" + key
}

// target is a restore target: its own ZooKeeper, initialised as `pulsar
// initialize-cluster-metadata` does, a config whose zookeeper section points at it (or at
// zkAddr, a proxy in front of it), and a worker of its own. before is its tree before the
// restore.
type target struct {
	zk      *testenv.ZooKeeper
	cfg     config.Config
	cfgPath string
	worker  func() // stops the worker
	creator []zookeeper.CreatorOptions
	before  map[string]znode.Record
}

func (f *restoreFixture) newTarget(t *testing.T, name string, proxy func(addr string) string, creator ...zookeeper.CreatorOptions) *target {
	t.Helper()
	tg := f.newBareTarget(t, name, proxy, creator...)
	tg.initCluster(t)
	return tg
}

// newSlowTarget is a target whose ZooKeeper the worker reaches over a link with latency on
// every reply, with small batches, so that an apply takes long enough to be caught midway.
func (f *restoreFixture) newSlowTarget(t *testing.T, name string, latency time.Duration) (*target, *slowLink) {
	t.Helper()
	var px *slowLink
	tg := f.newTarget(t, name, func(addr string) string {
		px = startSlowLink(t, addr, latency)
		return px.addr
	}, zookeeper.CreatorOptions{BatchOps: 20, InFlight: 2})
	return tg, px
}

// initCluster runs what `pulsar initialize-cluster-metadata` writes and takes the snapshot
// the restore is checked against.
func (tg *target) initCluster(t *testing.T) {
	t.Helper()
	restoretest.InitCluster(t, tg.zk.Addr)
	tg.snapshot(t)
}

func (tg *target) snapshot(t *testing.T) { tg.before = restoretest.ReadTree(t, tg.zk.Addr) }

// newBareTarget is a target whose ensemble is empty.
func (f *restoreFixture) newBareTarget(t *testing.T, name string, proxy func(addr string) string, creator ...zookeeper.CreatorOptions) *target {
	t.Helper()
	tg := &target{zk: testenv.StartZooKeeper(t), before: map[string]znode.Record{}}
	cfg := config.Default()
	cfg.ZooKeeper.Servers = tg.zk.Addr
	if proxy != nil {
		cfg.ZooKeeper.Servers = proxy(tg.zk.Addr)
	}
	cfg.ZooKeeper.Auth = restoretest.Auth
	cfg.Temporal.HostPort = f.tp.HostPort
	cfg.Temporal.TaskQueue = "tq-restore-" + name
	cfg.S3.Endpoint = f.minio.Endpoint
	cfg.S3.ForcePathStyle = true
	cfg.Backup.Bucket = "s3a://backups"
	cfg.Backup.BackupPrefix = "pulsar-backup"
	cfg.Backup.StagingDir = t.TempDir()
	tg.cfg, tg.cfgPath = cfg, filepath.Join(t.TempDir(), "config.yaml")
	saveConfig(t, tg.cfgPath, cfg)
	tg.creator = creator
	tg.worker = f.startWorker(t, cfg, creator...)
	return tg
}

// startWorker runs a worker with everything registered, as worker/main.go does (with other
// Creator batch sizes if given); the function it returns stops it (also done when the test
// ends).
func (f *restoreFixture) startWorker(t *testing.T, cfg config.Config, creator ...zookeeper.CreatorOptions) func() {
	t.Helper()
	w := worker.New(f.tp.Client(t), cfg.Temporal.TaskQueue, worker.Options{EnableSessionWorker: true})
	workflows.Register(w)
	activities.RegisterBackup(w, cfg, "")
	if len(creator) > 0 {
		w.RegisterActivity(&activities.Restore{Config: cfg, Creator: creator[0]})
	} else {
		activities.RegisterRestore(w, cfg, "")
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(w.Stop) }
	t.Cleanup(stop)
	return stop
}

// restoreCLI runs `starter --config F restore ...` and decodes its one line of JSON.
func (tg *target) restoreCLI(t *testing.T, args ...string) (workflows.RestoreReport, map[string]json.RawMessage, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"--config", tg.cfgPath, "restore"}, args...), &out)
	if err != nil {
		if out.Len() != 0 {
			t.Errorf("failed restore printed %q", out.String())
		}
		return workflows.RestoreReport{}, nil, err
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out.String())
	}
	var rep workflows.RestoreReport
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	return rep, fields, nil
}

// reportFields are the report's names operators and scripts rely on, exactly.
var reportFields = []string{"restorePoint", "restoreVersion", "dryRun", "alreadyRestored", "created", "skipped", "ledgersKept", "ledgersDropped", "cursorsReset", "topicsWithDataLoss", "durations",
	"ledgerIdFloor", "schemasToRegister", "compactionReset", "bookkeeperBoundSkipped", "staleCursors"}

func (f *restoreFixture) checkCounts(t *testing.T, rep workflows.RestoreReport) {
	t.Helper()
	want := restoretest.Expect(f.sum)
	got := slices.Clone(rep.TopicsWithDataLoss)
	slices.Sort(got)
	var bkBound int64
	for _, n := range rep.BookKeeperBoundSkipped {
		bkBound += n
	}
	if rep.LedgersKept != want.LedgersKept || rep.LedgersDropped != want.LedgersDropped || rep.CursorsReset != want.CursorsReset ||
		!slices.Equal(got, want.TopicsWithDataLoss) || rep.Plan == nil || rep.SchemasToRegister.Count != want.SchemasToRegister ||
		rep.CompactionReset.Count != want.CompactionReset || rep.StaleCursors.Count != want.StaleCursors || bkBound != want.BookKeeperBound ||
		rep.LedgerIDFloor.FirstID <= want.FloorAbove || rep.LedgerIDFloor.Path == "" {
		t.Fatalf("report counts: kept %d dropped %d reset %d lossy %d schemas %d compaction %d stale %d bookkeeper-bound %d floor %+v; want %+v",
			rep.LedgersKept, rep.LedgersDropped, rep.CursorsReset, len(rep.TopicsWithDataLoss), rep.SchemasToRegister.Count, rep.CompactionReset.Count,
			rep.StaleCursors.Count, bkBound, rep.LedgerIDFloor, want)
	}
	var bk, lb int64
	for p := range f.source {
		switch r, _ := restore.SkipReason(p); r {
		case restore.SkipBookKeeper:
			bk++
		case restore.SkipLoadStatistics:
			lb++
		}
	}
	if rep.Skipped[restore.SkipBookKeeper] != bk || rep.Skipped[restore.SkipLoadStatistics] != lb || rep.Skipped[restore.SkipRoot] != 1 {
		t.Fatalf("skipped %v, want bookkeeper %d, load-statistics %d", rep.Skipped, bk, lb)
	}
}

// assertNothingWritten fails if the target is not as it was before the restore.
func (tg *target) assertNothingWritten(t *testing.T) {
	t.Helper()
	tree := restoretest.ReadTree(t, tg.zk.Addr)
	for p, r := range tree {
		if b, ok := tg.before[p]; !ok || string(b.Data) != string(r.Data) {
			t.Fatalf("the target holds %s as it did not before (%d znodes in all, %d before) after a restore that must write nothing", p, len(tree), len(tg.before))
		}
	}
	if len(tree) != len(tg.before) {
		t.Fatalf("the target holds %d znodes, %d before a restore that must write nothing", len(tree), len(tg.before))
	}
}

// checkRestored checks the target against the source and loads it as a broker would.
func (f *restoreFixture) checkRestored(t *testing.T, tg *target) map[string]znode.Record {
	t.Helper()
	after := restoretest.ReadTree(t, tg.zk.Addr)
	restoretest.CheckRestored(t, f.source, tg.before, after, f.sum)
	restoretest.CheckBrokerLoad(t, after, f.sum, restore.DefaultManagedLedgerPath)
	return after
}

// TestRestore runs the restore issue's "Done when" list on real servers: a source and
// separate target ZooKeepers, MinIO and the Temporal dev server.
func TestRestore(t *testing.T) {
	f := newRestoreFixture(t)
	point := f.backup.URL

	t.Run("dry run, from the Temporal CLI, once per version", func(t *testing.T) {
		tg := f.newTarget(t, "main", nil)

		// Dry run: the plan, nothing written.
		rep, fields, err := tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1", "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range reportFields {
			if _, ok := fields[k]; !ok {
				t.Errorf("report lacks %q", k)
			}
		}
		if !rep.DryRun || rep.AlreadyRestored || rep.Created != 0 || rep.Plan == nil || rep.Plan.Create == 0 ||
			rep.Plan.CreateByTopLevel["/managed-ledgers"] == 0 || len(rep.Plan.Topics) == 0 || !strings.HasPrefix(rep.WorkflowID, workflows.RestoreDryRunIDPrefix) {
			t.Fatalf("dry run report %+v", rep)
		}
		f.checkCounts(t, rep)
		tg.assertNothingWritten(t)
		plan := *rep.Plan
		if plan.Existing == 0 || len(plan.InitReplaced) == 0 {
			t.Fatalf("dry run against an initialised cluster: %d existing, init znodes replaced %v", plan.Existing, plan.InitReplaced)
		}

		// The real restore, started with the Temporal CLI and an ID of the caller's choosing.
		input := fmt.Sprintf(`{"restorePoint":%q,"restoreVersion":"1"}`, point)
		cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "temporal"), "workflow", "start",
			"--type", result.RestoreWorkflowName, "--task-queue", tg.cfg.Temporal.TaskQueue,
			"--workflow-id", "operator-restore-1", "--input", input, "--address", f.tp.HostPort, "--namespace", "default")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("temporal workflow start: %v\n%s", err, out)
		}
		var cliRep workflows.RestoreReport
		if err := f.tp.Client(t).GetWorkflow(context.Background(), "operator-restore-1", "").Get(context.Background(), &cliRep); err != nil {
			t.Fatalf("restore started by the CLI: %s", workflows.Cause(err))
		}
		if cliRep.AlreadyRestored || cliRep.Created+cliRep.Existing+cliRep.InitReplaced != plan.Create || cliRep.Existing != plan.Existing ||
			cliRep.InitReplaced != int64(len(plan.InitReplaced)) || cliRep.Floor == nil || !cliRep.Floor.Created || cliRep.Marker == nil ||
			cliRep.Durations.Apply <= 0 || cliRep.Durations.Download <= 0 || cliRep.Durations.Validate <= 0 || cliRep.Durations.Total <= 0 {
			t.Fatalf("CLI restore report %+v (plan creates %d)", cliRep, plan.Create)
		}
		f.checkCounts(t, cliRep)
		// Both finished runs say what they did in their memo, read as `temporal workflow
		// describe` reads it, and the real one's worker is not needed for it.
		summary, details := runSummary(t, f.tp.Client(t), "operator-restore-1")
		if want := fmt.Sprintf("created %d znodes, kept %d ledgers, dropped %d", cliRep.Created, cliRep.LedgersKept, cliRep.LedgersDropped); summary != want ||
			cliRep.LedgersKept == 0 || cliRep.LedgersDropped == 0 || !strings.Contains(details, point) {
			t.Errorf("restore summary %q, want %q; details:\n%s", summary, want, details)
		}
		b := f.backup
		summary, details = runSummary(t, f.tp.Client(t), backupRunID(t, f.tp.Client(t), f.tp.Namespace, b.URL))
		if !strings.HasPrefix(summary, fmt.Sprintf("%d znodes, ", b.Znodes)) || !strings.HasSuffix(summary, " compressed: "+b.URL) || len(summary) > 200 {
			t.Errorf("backup summary %q, result: %d znodes at %s", summary, b.Znodes, b.URL)
		}
		for _, want := range []string{fmt.Sprintf("(%d bytes)", b.SizeCompressed), fmt.Sprintf("(%d bytes)", b.SizeNonCompressed), b.SHA256, b.ZxidEnd} {
			if !strings.Contains(details, want) {
				t.Errorf("backup details lack %q:\n%s", want, details)
			}
		}
		summary, _ = runSummary(t, f.tp.Client(t), rep.WorkflowID)
		if want := fmt.Sprintf("dry run: would restore %d znodes (%d there already), keep %d ledgers, drop %d", plan.Create, plan.Existing, plan.LedgersKept, plan.LedgersDropped); summary != want {
			t.Errorf("dry run summary %q, want %q", summary, want)
		}
		if got, want := staticSummary(t, f.tp.Client(t), rep.WorkflowID), "dry run of a restore "+point+" version 1"; got != want {
			t.Errorf("dry run static summary %q, want %q", got, want)
		}
		restored := f.checkRestored(t, tg)
		var marker restore.Marker
		if err := json.Unmarshal(restored[restore.MarkerPath].Data, &marker); err != nil {
			t.Fatal(err)
		}
		if marker.State != restore.StateComplete || marker.RestorePoint != point || marker.RestoreVersion != "1" || marker.WorkflowID != "operator-restore-1" ||
			marker.Archive.SHA256 != f.backup.SHA256 || marker.Archive.Znodes != f.backup.Znodes || marker.Created != cliRep.Created || marker.Tool != restore.ToolName {
			t.Fatalf("marker %+v", marker)
		}
		assertStagingEmpty(t, tg.cfgPath)

		// The same pair again through the starter: Temporal has no run of the derived ID,
		// the marker answers.
		rep, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err != nil {
			t.Fatal(err)
		}
		if !rep.AlreadyRestored || rep.Created != 0 || rep.Marker == nil || rep.Marker.WorkflowID != "operator-restore-1" {
			t.Fatalf("repeat report %+v", rep)
		}
		if !reflect.DeepEqual(restoretest.ReadTree(t, tg.zk.Addr), restored) {
			t.Fatal("a repeat changed the target")
		}
		// Once more: now Temporal has the derived ID's run; it is not run again.
		in := workflows.RestoreInput{RestorePoint: point, RestoreVersion: "1"}
		id := workflows.RestoreWorkflowID(in, tg.cfg.Temporal.TaskQueue, time.Now())
		rep, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err != nil || !rep.AlreadyRestored || rep.WorkflowID != id {
			t.Fatalf("second repeat: %+v, %v", rep, err)
		}
		// What a restarted worker with restore.enable does finds the run and starts nothing.
		c := f.tp.Client(t)
		run, already, err := launch.StartRestore(context.Background(), c, tg.cfg.Temporal.TaskQueue, in)
		if err != nil || !already || run.GetID() != id {
			t.Fatalf("worker restart: already %v, id %v, %v", already, run, err)
		}
		if n := countRuns(t, c, id); n != 1 {
			t.Fatalf("%d runs of %s, want 1", n, id)
		}

		// A new version restores again, on purpose, and says what it replaced.
		rep, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "2")
		if err != nil {
			t.Fatal(err)
		}
		if rep.AlreadyRestored || rep.Replaced == nil || rep.Replaced.RestoreVersion != "1" || rep.Clear == nil || rep.Clear.Deleted < plan.Create/2 ||
			rep.Created+rep.Existing+rep.InitReplaced != plan.Create || rep.Created < plan.Create/2 || rep.Floor == nil || rep.Floor.Created {
			t.Fatalf("new version report %+v, clear %+v", rep, rep.Clear)
		}
		restored = f.checkRestored(t, tg)
		if err := json.Unmarshal(restored[restore.MarkerPath].Data, &marker); err != nil || marker.RestoreVersion != "2" || marker.Replaced == nil {
			t.Fatalf("marker after version 2: %+v, %v", marker, err)
		}

		// Started by type name with a JSON map as input, as any SDK or CLI caller can.
		wr, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "by-type-name", TaskQueue: tg.cfg.Temporal.TaskQueue},
			"RestoreWorkflow", map[string]any{"restorePoint": point, "restoreVersion": "2"})
		if err != nil {
			t.Fatal(err)
		}
		if err := wr.Get(context.Background(), &rep); err != nil || !rep.AlreadyRestored {
			t.Fatalf("by type name: %+v, %v", rep, err)
		}
	})

	t.Run("refused with a live broker, then retried once it stopped", func(t *testing.T) {
		tg := f.newTarget(t, "broker", nil)
		broker, _, err := zk.Connect([]string{tg.zk.Addr}, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		defer broker.Close()
		for _, p := range []string{"/loadbalance", "/loadbalance/brokers"} {
			if _, err := broker.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := broker.Create("/loadbalance/brokers/10.1.2.3:8080", []byte("{}"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
		tg.snapshot(t)
		// The real binary: non-zero exit, the cause on stderr, nothing on stdout.
		bin := filepath.Join(t.TempDir(), "starter")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build starter: %v\n%s", err, out)
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "--config", tg.cfgPath, "restore", "--restore-point", point, "--restore-version", "1")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || stdout.Len() != 0 ||
			!strings.Contains(stderr.String(), "check: restore refused: the target cluster is running: 1 broker(s) registered under /loadbalance/brokers (10.1.2.3:8080)") ||
			strings.Count(stderr.String(), "\n") != 1 {
			t.Fatalf("starter: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
		}
		tg.assertNothingWritten(t)

		// Once the broker is gone the same pair may run again (the refused run failed).
		broker.Close()
		deadline := time.Now().Add(30 * time.Second)
		for {
			tree := restoretest.ReadTree(t, tg.zk.Addr)
			if _, ok := tree["/loadbalance/brokers/10.1.2.3:8080"]; !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the broker's ephemeral did not go")
			}
			time.Sleep(200 * time.Millisecond)
		}
		rep, _, err := tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err != nil || rep.AlreadyRestored || rep.Created == 0 {
			t.Fatalf("retry after the broker stopped: %+v, %v", rep, err)
		}
		// /loadbalance and /loadbalance/brokers were there already: identical to the archive's.
		delete(tg.before, "/loadbalance/brokers/10.1.2.3:8080")
		f.checkRestored(t, tg)
	})

	t.Run("restore before initialize-cluster-metadata is refused, then runs after it", func(t *testing.T) {
		tg := f.newBareTarget(t, "bare", nil)
		_, _, err := tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err == nil || !strings.Contains(err.Error(), "check: restore refused: the target has no BookKeeper cluster metadata (/ledgers/INSTANCEID is missing): run `bin/pulsar initialize-cluster-metadata` against it first") {
			t.Fatalf("restore into an uninitialised ensemble: %v", err)
		}
		tg.assertNothingWritten(t)
		// The step the refusal names, then the same pair again (the refused run failed).
		tg.initCluster(t)
		rep, _, err := tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err != nil || rep.AlreadyRestored || rep.Created == 0 || rep.Floor == nil || !rep.Floor.Created {
			t.Fatalf("restore after initialize-cluster-metadata: %+v, %v", rep, err)
		}
		f.checkRestored(t, tg)
	})

	t.Run("refused on a target with managed ledgers", func(t *testing.T) {
		tg := f.newTarget(t, "used", nil)
		conn, _, err := zk.Connect([]string{tg.zk.Addr}, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		used := []string{"/managed-ledgers", "/managed-ledgers/public", "/managed-ledgers/public/default", "/managed-ledgers/public/default/persistent",
			"/managed-ledgers/public/default/persistent/orders"}
		for _, p := range used {
			if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				t.Fatal(err)
			}
		}
		tg.snapshot(t)
		_, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1")
		if err == nil || !strings.Contains(err.Error(), "check: restore refused: the target already holds managed-ledger metadata under /managed-ledgers (/managed-ledgers/public)") {
			t.Fatalf("restore onto a used target: %v", err)
		}
		tg.assertNothingWritten(t)
		// A dry run is refused the same way.
		if _, _, err := tg.restoreCLI(t, "--restore-point", point, "--restore-version", "1", "--dry-run"); err == nil || !strings.Contains(err.Error(), "restore refused") {
			t.Fatalf("dry run onto a used target: %v", err)
		}
	})

	t.Run("hostile archives fail with nothing written", func(t *testing.T) {
		tg := f.newTarget(t, "hostile", nil)
		manifest, stream := untar(t, f.good)
		tampered := bytes.Clone(stream)
		i := bytes.Index(tampered, []byte(`"data":"ey`)) + len(`"data":"`)
		tampered[i] = 'f' // still valid base64 and JSON, same size: only the checksum can tell
		badVersion := bytes.Replace(manifest, []byte(`"formatVersion": 2`), []byte(`"formatVersion": 3`), 1)
		cases := []struct {
			name string
			body []byte
			want string
		}{
			{"corrupt", []byte("this is not a backup archive at all"), "download: s3a://backups/hostile-corrupt.tar.gz: corrupt archive: not gzip"},
			{"truncated", f.good[:len(f.good)/2], "validate: corrupt archive: unexpected EOF"},
			{"tampered", tarGz(t, tarEntry{archive.ManifestName, manifest}, tarEntry{archive.StreamName, tampered}), "does not match manifest"},
			{"entry traversal", tarGz(t, tarEntry{archive.ManifestName, manifest}, tarEntry{"../" + archive.StreamName, stream}), `corrupt archive: entry name "../znodes.jsonl" escapes the archive`},
			{"absolute entry", tarGz(t, tarEntry{"/etc/" + archive.ManifestName, manifest}), `corrupt archive: first entry is "/etc/manifest.json"`},
			{"znode path traversal", archiveOf(t, "/admin", "/admin/../../etc/passwd"), `corrupt archive: record 2: invalid znode path "/admin/../../etc/passwd": relative segment ".."`},
			{"child before parent", archiveOf(t, "/admin", "/zz/child"), "corrupt archive: record 2: /zz/child comes before its parent /zz"},
			{"oversized znode", archiveOf(t, "/admin", "/admin/big:"+fmt.Sprint(znode.MaxDataSize+1)), "1048577 bytes of data, over ZooKeeper's 1048576 limit"},
			{"wrong format version", tarGz(t, tarEntry{archive.ManifestName, badVersion}, tarEntry{archive.StreamName, stream}), "corrupt archive: format version 3, this tool reads 1 and 2"},
		}
		for _, tc := range cases {
			url := f.putObject(t, "hostile-"+strings.ReplaceAll(tc.name, " ", "-")+".tar.gz", tc.body)
			start := time.Now()
			_, _, err := tg.restoreCLI(t, "--restore-point", url, "--restore-version", "1")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v; want one line containing %q", tc.name, err, tc.want)
			}
			if d := time.Since(start); d > time.Minute {
				t.Errorf("%s: took %s; a bad archive must fail without retries", tc.name, d)
			}
			tg.assertNothingWritten(t)
		}
		assertStagingEmpty(t, tg.cfgPath)
	})

	t.Run("a second restore is refused while the first is applying, then replaces it", func(t *testing.T) {
		tg, px := f.newSlowTarget(t, "race", 500*time.Millisecond)
		c := f.tp.Client(t)
		first, _, err := launch.StartRestore(context.Background(), c, tg.cfg.Temporal.TaskQueue, workflows.RestoreInput{RestorePoint: point, RestoreVersion: "race-1"})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for applyProgress(t, c, first.GetID()).Records == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the first restore never reached apply")
			}
			time.Sleep(300 * time.Millisecond)
		}
		// The run view's current details say which stage it is in (a worker answers).
		if got := currentDetails(t, c, first.GetID()); !strings.HasPrefix(got, "apply: create ") {
			t.Errorf("current details while applying: %q", got)
		}
		_, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "race-2")
		if err == nil || !strings.Contains(err.Error(), "check: restore refused: restore of "+point+" version race-1 is still applying in run "+first.GetID()+"/"+first.GetRunID()) {
			t.Fatalf("second restore while the first applies: %v", err)
		}
		px.latency.Store(0)
		var rep workflows.RestoreReport
		if err := first.Get(context.Background(), &rep); err != nil {
			t.Fatalf("the first restore: %s", workflows.Cause(err))
		}
		// Once it is over, a new version replaces it.
		rep, _, err = tg.restoreCLI(t, "--restore-point", point, "--restore-version", "race-2")
		if err != nil || rep.Replaced == nil || rep.Replaced.RestoreVersion != "race-1" {
			t.Fatalf("second restore after the first ended: %+v, %v", rep, err)
		}
		f.checkRestored(t, tg)
	})

	t.Run("apply killed midway and retried ends with the same tree", func(t *testing.T) {
		// Small batches and a slow link, so that the worker stops with most of the tree
		// still to write (a Creator's requests in flight finish after it stops).
		tg, px := f.newSlowTarget(t, "crash", 800*time.Millisecond)
		c := f.tp.Client(t)
		in := workflows.RestoreInput{RestorePoint: point, RestoreVersion: "crash"}
		run, _, err := launch.StartRestore(context.Background(), c, tg.cfg.Temporal.TaskQueue, in)
		if err != nil {
			t.Fatal(err)
		}
		// Wait until apply's heartbeat shows progress, then stop the worker under it. (The
		// SDK sends a heartbeat at once, then at most every 80% of the heartbeat timeout: the
		// slow link keeps apply running well past the second one.)
		var progress restore.Progress
		deadline := time.Now().Add(2 * time.Minute)
		for progress.Records == 0 {
			if time.Now().After(deadline) {
				d, _ := c.DescribeWorkflowExecution(context.Background(), run.GetID(), "")
				var cause string
				if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					cause = workflows.Cause(run.Get(context.Background(), nil))
				}
				t.Fatalf("apply never reported progress: status %v (%s), pending %v, %d znodes in the target, activities %v",
					d.GetWorkflowExecutionInfo().GetStatus(), cause, d.GetPendingActivities(), len(restoretest.ReadTree(t, tg.zk.Addr)), scheduled(t, c, run.GetID()))
			}
			time.Sleep(500 * time.Millisecond)
			progress = applyProgress(t, c, run.GetID())
		}
		// Full speed from here on.
		px.latency.Store(0)
		tg.worker()
		midway := len(restoretest.ReadTree(t, tg.zk.Addr)) - len(tg.before)
		t.Logf("worker stopped during apply: heartbeat %+v, %d znodes in the target", progress, midway)
		if midway < 10 {
			t.Fatalf("only %d znodes written when the worker stopped: not midway", midway)
		}

		// A new worker takes over; the run finishes on a new session.
		f.startWorker(t, tg.cfg, tg.creator...)
		var rep workflows.RestoreReport
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := run.Get(ctx, &rep); err != nil {
			t.Fatalf("restore after the worker was replaced: %s", workflows.Cause(err))
		}
		if rep.Plan == nil || int64(midway)+100 > rep.Plan.Create {
			t.Fatalf("%d of %d znodes written when the worker stopped: not midway", midway, rep.Plan.Create)
		}
		if rep.Existing < int64(midway)-1 || rep.Created == 0 || rep.Created+rep.Existing+rep.InitReplaced != rep.Plan.Create {
			t.Fatalf("report %+v: want the retried apply to find the first one's znodes and create the rest", rep)
		}
		f.checkRestored(t, tg)
		if n := countRuns(t, c, run.GetID()); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
		// It went on in a new session: the archive was downloaded twice, planned once.
		if n := scheduled(t, c, run.GetID()); n["DownloadArchive"] != 2 || n["ValidateArchive"] != 1 || n["BeginRestore"] != 1 || n["ApplyArchive"] < 2 {
			t.Fatalf("activities scheduled %v", n)
		}
	})
}

// applyProgress is the last heartbeat of the run's pending ApplyArchive, if any.
func applyProgress(t *testing.T, c client.Client, id string) restore.Progress {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	var p restore.Progress
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() == "ApplyArchive" && pa.GetHeartbeatDetails() != nil {
			if err := converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

// scheduled counts the activities a run scheduled, by type.
func scheduled(t *testing.T, c client.Client, id string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, ev := range history(t, c, id) {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			n[a.GetActivityType().GetName()]++
		}
	}
	return n
}

// history is a run's whole history.
func history(t *testing.T, c client.Client, id string) []*historypb.HistoryEvent {
	t.Helper()
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// countRuns counts the runs of a workflow ID (visibility lags a little behind).
func countRuns(t *testing.T, c client.Client, id string) int {
	t.Helper()
	var n int
	for range 20 {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", id)})
		if err != nil {
			t.Fatal(err)
		}
		if n = len(resp.GetExecutions()); n > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return n
}

type tarEntry struct {
	name string
	body []byte
}

func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// untar returns an archive's manifest and stream, as stored.
func untar(t *testing.T, b []byte) (manifest, stream []byte) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for _, dst := range []*[]byte{&manifest, &stream} {
		if _, err := tr.Next(); err != nil {
			t.Fatal(err)
		}
		if *dst, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	return manifest, stream
}

// archiveOf builds a well-formed archive, checksums and all, of the given records: a
// path "p:N" gets N bytes of data. Only its content is hostile.
func archiveOf(t *testing.T, paths ...string) []byte {
	t.Helper()
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for _, p := range paths {
		r := znode.Record{Path: p, ACL: []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}, Mode: znode.ModePersistent}
		if path, size, ok := strings.Cut(p, ":"); ok {
			var n int
			fmt.Sscan(size, &n)
			r.Path, r.Data = path, bytes.Repeat([]byte{'x'}, n)
		}
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{ToolVersion: "x", ManagedLedgerPath: "/managed-ledgers", StartTime: time.Now().UTC(), EndTime: time.Now().UTC(),
		Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()}
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, bytes.NewReader(stream.Bytes()), int64(stream.Len())); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// slowLink is a TCP proxy that delays everything the server sends by latency (0: none), like
// a distant ensemble: a Creator with few requests in flight then writes slowly enough to be
// stopped midway, while a large request still goes through at full bandwidth.
type slowLink struct {
	addr    string
	latency atomic.Int64 // nanoseconds
}

func startSlowLink(t *testing.T, upstream string, latency time.Duration) *slowLink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &slowLink{addr: l.Addr().String()}
	p.latency.Store(int64(latency))
	type chunk struct {
		b   []byte
		due time.Time
	}
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			go func() {
				defer up.Close()
				defer down.Close()
				_, _ = io.Copy(up, down)
			}()
			q := make(chan chunk, 1024)
			go func() {
				defer close(q)
				for {
					buf := make([]byte, 32<<10)
					n, err := up.Read(buf)
					if n > 0 {
						q <- chunk{buf[:n], time.Now().Add(time.Duration(p.latency.Load()))}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer up.Close()
				defer down.Close()
				for c := range q {
					time.Sleep(time.Until(c.due))
					if _, err := down.Write(c.b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}
