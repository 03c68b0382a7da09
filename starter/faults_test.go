package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/launch"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// buildWorker builds bin/worker's code into a temporary file, once per test binary.
var buildWorker = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "worker-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

// workerProcess is bin/worker running as its own process.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder
}

func startWorkerProcess(t *testing.T, cfgPath string) *workerProcess {
	t.Helper()
	bin, err := buildWorker()
	if err != nil {
		t.Fatalf("build worker: %v", err)
	}
	w := &workerProcess{cmd: exec.Command(bin, "--config", cfgPath), done: make(chan struct{})}
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			w.mu.Lock()
			w.log.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if strings.Contains(sc.Text(), "worker started") {
				once.Do(func() { close(started) })
			}
		}
		w.cmd.Wait()
	}()
	t.Cleanup(func() { w.cmd.Process.Kill(); <-w.done })
	select {
	case <-started:
	case <-w.done:
		t.Fatalf("worker exited:\n%s", w.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("worker did not start:\n%s", w.output())
	}
	return w
}

func (w *workerProcess) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// waitPending waits until the run has a started pending activity of type name; log, if set,
// says more when it does not come.
func waitPending(t *testing.T, c client.Client, id, name string, within time.Duration, log func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !pendingStarted(t, c, id, name) {
		if time.Now().After(deadline) {
			more := ""
			if log != nil {
				more = "\n" + log()
			}
			t.Fatalf("%s never started%s", name, more)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pendingStarted tells whether the run has a started pending activity of type name.
func pendingStarted(t *testing.T, c client.Client, id, name string) bool {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() == name && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			return true
		}
	}
	return false
}

// A backup whose worker is killed with -9 in the middle of the dump starts over on a new
// session on another worker and completes; the new worker's start-up removes what the dead
// one staged.
func TestBackupSurvivesItsWorkerKilledMidDump(t *testing.T) {
	s := startStack(t)
	_, sum := restoretest.Populate(t, s.zk.Addr, pulsartree.Sized(3000))
	// The first worker reaches ZooKeeper over a slow link, so its dump is still running when
	// it is killed.
	slow := startSlowLink(t, s.zk.Addr, 300*time.Millisecond)
	root := t.TempDir()
	cfgPath, cfg := s.writeConfig(t, func(c *config.Config) {
		c.ZooKeeper.Servers = slow.addr
		c.Backup.StagingDir = root
	})
	first := startWorkerProcess(t, cfgPath)

	c := s.tp.Client(t)
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: "backup-kill-mid-dump", TaskQueue: cfg.Temporal.TaskQueue, WorkflowExecutionTimeout: 10 * time.Minute,
	}, result.BackupWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, run.GetID(), "Dump", time.Minute, first.output)
	time.Sleep(2 * time.Second) // well into the dump
	dead, err := os.ReadDir(root)
	if err != nil || len(dead) != 2 { // worker-<token> and its lock
		t.Fatalf("staging root before the kill: %v, %v", dead, err)
	}
	// The dead worker had staged the backup (its dump file may still be empty: buffered).
	if inside, _ := os.ReadDir(filepath.Join(root, dead[0].Name())); len(inside) != 1 {
		t.Fatalf("the worker's directory holds %v before the kill, want the backup's", inside)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	var staged int64
	_ = filepath.Walk(root, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			staged += info.Size()
		}
		return nil
	})
	t.Logf("killed the worker mid-dump, %d bytes staged", staged)

	// Another worker, on the same host, at full speed.
	slow.latency.Store(0)
	second := startWorkerProcess(t, cfgPath)
	if !strings.Contains(second.output(), "removed what stopped workers left in the staging root") {
		t.Errorf("the new worker did not sweep the dead one's staging:\n%s", second.output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var res result.Backup
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("backup after its worker was killed: %s\n%s", workflows.Cause(err), second.output())
	}
	if res.Znodes != int64(sum.Persistent)+1 {
		t.Fatalf("result %+v: want the whole tree, %d znodes", res, sum.Persistent+1)
	}
	if n := scheduled(t, c, run.GetID()); n["Prepare"] != 2 || n["Upload"] != 1 {
		t.Fatalf("activities scheduled %v: want the backup prepared again on a new session", n)
	}
	// Both sessions prepared the same object key.
	var keys []string
	for _, ev := range history(t, c, run.GetID()) {
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			var prep activities.PrepareResult
			for _, p := range a.GetResult().GetPayloads() { // activities without a result have none
				if json.Unmarshal(p.GetData(), &prep) == nil && prep.Key != "" {
					keys = append(keys, prep.Key)
				}
			}
		}
	}
	if len(keys) != 2 || keys[0] != res.Name || keys[1] != res.Name {
		t.Fatalf("prepared keys %v, the object is %s", keys, res.Name)
	}
	obj := s.getObject(t, res.Name)
	if int64(len(obj)) != res.SizeCompressed {
		t.Fatalf("object has %d bytes, result says %d", len(obj), res.SizeCompressed)
	}
	// Nothing of the dead worker is left; the live one holds an empty directory.
	left, _ := os.ReadDir(root)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
		if e.Name() == dead[0].Name() || e.Name() == dead[1].Name() {
			t.Errorf("the killed worker's %s is still in the staging root", e.Name())
		}
		if e.IsDir() {
			if inside, _ := os.ReadDir(filepath.Join(root, e.Name())); len(inside) != 0 {
				t.Errorf("%s holds %v after the backup", e.Name(), inside)
			}
		}
	}
	if len(left) != 2 {
		t.Errorf("staging root holds %v", names)
	}
	raw, _ := json.Marshal(res)
	t.Logf("result %s", raw)
}

// S3 down for 20 s when a backup starts, and again during its upload: the stages retry
// through both outages and the backup succeeds.
func TestBackupSurvivesS3Outages(t *testing.T) {
	s := startStack(t)
	restoretest.Populate(t, s.zk.Addr, pulsartree.Sized(2000))
	cfgPath := s.config(t, nil)
	s.minio.Stop()
	restart := time.AfterFunc(20*time.Second, s.minio.Restart)
	defer restart.Stop()
	start := time.Now()
	var out strings.Builder
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatalf("backup through a 20 s S3 outage at its start: %v", err)
	}
	if d := time.Since(start); d < 20*time.Second {
		t.Fatalf("the backup ended after %s, before S3 came back", d)
	}

	// During the upload: S3 goes down once the bucket was checked (the dump has started), so
	// the upload starts into the outage and must retry through the rest of it. (Stopping it
	// once the upload has started races a small upload that is already done.)
	c := s.tp.Client(t)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "backup-s3-down-upload", TaskQueue: cfg.Temporal.TaskQueue}, result.BackupWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, wr.GetID(), "Dump", 2*time.Minute, nil)
	s.minio.Stop()
	time.AfterFunc(20*time.Second, s.minio.Restart)
	var res result.Backup
	if err := wr.Get(context.Background(), &res); err != nil {
		t.Fatalf("backup through a 20 s S3 outage during its upload: %s", workflows.Cause(err))
	}
	if n := attempts(t, c, wr.GetID(), "Upload"); n < 2 {
		t.Fatalf("the upload ran %d time(s): the outage was not noticed, the test proves nothing", n)
	}
	if obj := s.getObject(t, res.Name); int64(len(obj)) != res.SizeCompressed {
		t.Fatalf("object has %d bytes, result says %d", len(obj), res.SizeCompressed)
	}
}

// slowDump is a backup of a 3,000-znode tree read over a slow link, already dumping: the
// stage a fault is injected into. The link's latency goes to 0 with fast().
type slowDump struct {
	s    *stack
	c    client.Client
	run  client.WorkflowRun
	sum  pulsartree.Summary
	slow *slowLink
}

func startSlowDump(t *testing.T, id string) *slowDump {
	t.Helper()
	d := &slowDump{s: startStack(t)}
	_, d.sum = restoretest.Populate(t, d.s.zk.Addr, pulsartree.Sized(3000))
	d.slow = startSlowLink(t, d.s.zk.Addr, 200*time.Millisecond)
	cfgPath := d.s.config(t, func(c *config.Config) { c.ZooKeeper.Servers = d.slow.addr })
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d.c = d.s.tp.Client(t)
	if d.run, err = d.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue}, result.BackupWorkflowName); err != nil {
		t.Fatal(err)
	}
	waitPending(t, d.c, id, "Dump", time.Minute, nil)
	return d
}

// result waits for the backup and checks it holds the whole tree.
func (d *slowDump) result(t *testing.T, fault string) result.Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res result.Backup
	if err := d.c.GetWorkflow(ctx, d.run.GetID(), "").Get(ctx, &res); err != nil {
		t.Fatalf("backup through %s: %s", fault, workflows.Cause(err))
	}
	if res.Znodes != int64(d.sum.Persistent)+1 {
		t.Fatalf("result %+v: want the whole tree, %d znodes", res, d.sum.Persistent+1)
	}
	return res
}

// ZooKeeper down for 16 s in the middle of a dump: the backup rides it out.
func TestBackupSurvivesZooKeeperDownMidDump(t *testing.T) {
	d := startSlowDump(t, "backup-zk-down")
	time.Sleep(time.Second)
	d.s.zk.Stop()
	time.Sleep(16 * time.Second)
	d.slow.latency.Store(0)
	d.s.zk.Restart()
	res := d.result(t, "ZooKeeper down for 16 s")
	// The dump was running through the outage (its ZooKeeper sessions outlive 16 s and
	// reconnect; a dump that fails starts over).
	if res.Durations.Dump < 16 {
		t.Fatalf("the dump took %.1f s: it did not run through the outage, the test proves nothing", res.Durations.Dump)
	}
	t.Logf("dump attempts %d, %.1f s", attempts(t, d.c, d.run.GetID(), "Dump"), res.Durations.Dump)
}

// Temporal restarted in the middle of a backup: the worker reconnects, the run goes on from
// its history and completes.
func TestBackupSurvivesTemporalRestartMidDump(t *testing.T) {
	d := startSlowDump(t, "backup-temporal-restart")
	d.s.tp.Restart()
	d.slow.latency.Store(0)
	d.result(t, "a Temporal restart")
}

// attempts is the attempt number of the last start of the run's activity of type name.
func attempts(t *testing.T, c client.Client, id, name string) int32 {
	t.Helper()
	types := map[int64]string{}
	var n int32
	for _, ev := range history(t, c, id) {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && types[a.GetScheduledEventId()] == name {
			n = a.GetAttempt()
		}
	}
	return n
}

// A restore whose worker is killed with -9 while it applies starts over on a new session on
// another worker, and ends with the same tree.
func TestRestoreSurvivesItsWorkerKilledMidApply(t *testing.T) {
	f := newRestoreFixture(t)
	tg, slow := f.newSlowTarget(t, "killed", time.Second)
	tg.worker() // the in-process one; this test runs worker processes
	first := startWorkerProcess(t, tg.cfgPath)
	c := f.tp.Client(t)
	run, _, err := launch.StartRestore(context.Background(), c, tg.cfg.Temporal.TaskQueue, workflows.RestoreInput{RestorePoint: f.backup.URL, RestoreVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, run.GetID(), "ApplyArchive", 3*time.Minute, first.output)
	time.Sleep(1500 * time.Millisecond)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	slow.latency.Store(0)
	second := startWorkerProcess(t, tg.cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var rep workflows.RestoreReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatalf("restore after its worker was killed: %s\n%s", workflows.Cause(err), second.output())
	}
	if n := scheduled(t, c, run.GetID()); n["DownloadArchive"] != 2 || n["ValidateArchive"] != 1 || n["PlanRestore"] != 1 || n["ApplyArchive"] != 2 {
		t.Fatalf("activities scheduled %v: want validate and plan once, download and apply again on a new session", n)
	}
	f.checkRestored(t, tg)
}
