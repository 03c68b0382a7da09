package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// stack is one real ZooKeeper, MinIO and Temporal dev server for a test.
type stack struct {
	zk    *testenv.ZooKeeper
	minio *testenv.MinIO
	tp    *testenv.Temporal
}

func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{zk: testenv.StartZooKeeper(t), minio: testenv.StartMinIO(t), tp: testenv.StartTemporal(t, workflows.SearchAttributes...)}
	s.minio.MakeBucket("backups")
	s.minio.SetEnv(t)
	return s
}

// config returns a config for this stack with its own task queue, and runs a worker for it
// in-process until the test ends. edit may break the config on purpose.
func (s *stack) config(t *testing.T, edit func(*config.Config)) string {
	t.Helper()
	path, cfg := s.writeConfig(t, edit)
	w := worker.New(s.tp.Client(t), cfg.Temporal.TaskQueue, worker.Options{EnableSessionWorker: true})
	workflows.Register(w)
	activities.RegisterBackup(w, cfg, "")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return path
}

// writeConfig writes a config for this stack with its own task queue, and runs no worker.
func (s *stack) writeConfig(t *testing.T, edit func(*config.Config)) (string, config.Config) {
	t.Helper()
	cfg := config.Default()
	cfg.ZooKeeper.Servers = s.zk.Addr
	cfg.ZooKeeper.Auth = "digest:" + pulsartree.DefaultDigestUser + ":" + pulsartree.DefaultDigestPassword
	cfg.Temporal.HostPort = s.tp.HostPort
	cfg.Temporal.TaskQueue = "tq-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	cfg.S3.Endpoint = s.minio.Endpoint
	cfg.S3.ForcePathStyle = true
	cfg.Backup.Bucket = "s3a://backups"
	cfg.Backup.BackupPrefix = "pulsar-backup"
	cfg.Backup.StagingDir = t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	saveConfig(t, path, cfg)
	return path, cfg
}

// saveConfig writes cfg as the YAML config file at path.
func saveConfig(t *testing.T, path string, cfg config.Config) {
	t.Helper()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBackupCommandPrintsResultAndArchiveHoldsEveryZnode(t *testing.T) {
	s := startStack(t)
	o := pulsartree.Sized(3000)
	o.Awkward = true
	_, sum := restoretest.Populate(t, s.zk.Addr, o)
	cfgPath := s.config(t, nil)

	var out bytes.Buffer
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out.String())
	}
	// The field names operators script against, exactly.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"url", "znodes", "ephemeralSkipped", "sizeNonCompressed", "sizeCompressed", "zxidStart", "zxidEnd", "durations"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("result lacks %q: %s", f, out.String())
		}
	}
	var res workflows.BackupResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.URL, "s3a://backups/pulsar-backup-") || !strings.HasSuffix(res.URL, ".tar.gz") {
		t.Fatalf("url %q", res.URL)
	}
	if ms, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(res.Name, "pulsar-backup-"), ".tar.gz"), 10, 64); err != nil || ms != res.Time.UnixMilli() {
		t.Fatalf("name %q does not carry the start time %v in unix millis", res.Name, res.Time)
	}
	// The root is in the backup too (its data and ACL), besides what the generator made.
	if res.AuthUnused {
		t.Error("authUnused with digest-protected znodes read")
	}
	if res.Znodes != int64(sum.Persistent)+1 || res.EphemeralSkipped != int64(sum.Ephemeral) {
		t.Fatalf("znodes %d ephemeralSkipped %d, generator made %d persistent and %d ephemeral", res.Znodes, res.EphemeralSkipped, sum.Persistent, sum.Ephemeral)
	}
	zs, _ := strconv.ParseInt(strings.TrimPrefix(res.ZxidStart, "0x"), 16, 64)
	ze, _ := strconv.ParseInt(strings.TrimPrefix(res.ZxidEnd, "0x"), 16, 64)
	if zs <= 0 || ze < zs {
		t.Fatalf("zxid range %s..%s", res.ZxidStart, res.ZxidEnd)
	}
	d := res.Durations
	if d.Prepare <= 0 || d.Dump <= 0 || d.Compression <= 0 || d.Upload <= 0 || d.Total < d.Prepare+d.Dump+d.Compression+d.Upload-0.01 {
		t.Fatalf("durations %+v", d)
	}

	// The object is in the bucket, its size is the reported one, and it verifies.
	obj, err := s.minio.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String(res.Name)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	if aws.ToInt64(obj.ContentLength) != res.SizeCompressed {
		t.Fatalf("object is %d bytes, result says %d", aws.ToInt64(obj.ContentLength), res.SizeCompressed)
	}
	got := map[string]znode.Record{}
	m, err := archive.Verify(obj.Body, func(r znode.Record) error {
		if _, dup := got[r.Path]; dup {
			return fmt.Errorf("%s twice", r.Path)
		}
		if r.Path != "/" {
			if _, ok := got[znode.Parent(r.Path)]; !ok && znode.Parent(r.Path) != "/" {
				return fmt.Errorf("%s before its parent", r.Path)
			}
		}
		got[r.Path] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l := m.Local()
	if m.Znodes != res.Znodes || l.Consistency.ZxidStart != res.ZxidStart || l.Consistency.ZxidEnd != res.ZxidEnd || m.EphemeralSkipped != res.EphemeralSkipped ||
		m.FormatVersion != archive.FormatVersion || len(m.Roles) != 1 || l.Znodes != m.Znodes || l.Source != "zk:"+s.zk.Addr || len(res.Roles) != 1 || res.Roles[0].Znodes != res.Znodes {
		t.Fatalf("manifest %+v disagrees with result %+v", m, res)
	}

	// Round trip: every persistent znode's path, data, ACL and mode are in the archive exactly.
	want := restoretest.ReadTree(t, s.zk.Addr)
	if _, ok := got["/"]; !ok {
		t.Error("root missing from archive")
	}
	delete(got, "/")
	if len(got) != len(want) {
		t.Errorf("archive has %d znodes, tree has %d", len(got), len(want))
	}
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s missing from archive", p)
			continue
		}
		if !bytes.Equal(g.Data, w.Data) || !reflect.DeepEqual(g.ACL, w.ACL) || g.Mode != w.Mode {
			t.Errorf("%s differs: data %d/%d bytes, acl %v/%v, mode %s/%s", p, len(g.Data), len(w.Data), g.ACL, w.ACL, g.Mode, w.Mode)
		}
	}
	sp := sum.Special
	for _, p := range append([]string{sp.Binary, sp.Large, sp.Deep, sp.Container, sp.TTLNode, sp.Locked}, append(sp.Digest, sp.Unicode...)...) {
		if _, ok := got[p]; !ok {
			t.Errorf("awkward case %s not in archive", p)
		}
	}
	// ZooKeeper reports ephemeralOwner 0 to clients for container and TTL nodes
	// (DataNode.getClientEphemeralOwner), so through the client API they look persistent;
	// docs/FORMAT.md says so. What must hold is that they are backed up, not skipped as
	// ephemerals.
	if got[sp.Container].Mode == znode.ModeEphemeral || got[sp.TTLNode].Mode == znode.ModeEphemeral {
		t.Errorf("modes: container %s, ttl %s", got[sp.Container].Mode, got[sp.TTLNode].Mode)
	}
	assertStagingEmpty(t, cfgPath)
	assertNoSecretsInHistory(t, s, s.minio.SecretKey, pulsartree.DefaultDigestPassword)
}

// assertNoSecretsInHistory scans the whole history of every workflow in the namespace.
func assertNoSecretsInHistory(t *testing.T, s *stack, secrets ...string) {
	t.Helper()
	c := s.tp.Client(t)
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.tp.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Executions) == 0 {
		t.Fatal("no workflows to check")
	}
	sawKnown := false
	for _, ex := range resp.Executions {
		it := c.GetWorkflowHistory(ctx, ex.Execution.WorkflowId, ex.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			// Binary protobuf keeps payloads' bytes verbatim (JSON would base64 them).
			raw, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			sawKnown = sawKnown || bytes.Contains(raw, []byte(`"stagingDir"`))
			for _, secret := range secrets {
				if bytes.Contains(raw, []byte(secret)) {
					t.Fatalf("workflow %s history event %d holds a secret", ex.Execution.WorkflowId, ev.EventId)
				}
			}
		}
	}
	if !sawKnown {
		t.Fatal("the scan found no activity payload: it would not find a secret either")
	}
}

// getObject reads an object of the test bucket.
func (s *stack) getObject(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := s.minio.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertStagingEmpty(t *testing.T, cfgPath string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.Backup.StagingDir))
	if len(entries) != 0 {
		t.Fatalf("staging files left behind: %v", entries)
	}
}

// Each bad setting fails the backup with one line naming the cause, and leaves nothing in
// the bucket or the staging directory.
func TestBackupCommandFailuresNameTheCause(t *testing.T) {
	s := startStack(t)
	restoretest.Populate(t, s.zk.Addr, pulsartree.Options{Tenants: 1, NamespacesPerTenant: 1, TopicsPerNamespace: 1, Awkward: true})
	cases := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"missing bucket", func(c *config.Config) { c.Backup.Bucket = "s3a://no-such-bucket" }, "bucket does not exist"},
		{"wrong digest password", func(c *config.Config) {
			c.ZooKeeper.Auth = "digest:" + pulsartree.DefaultDigestUser + ":wrong-password"
		}, "not authorized"},
		// Unreachable may be an outage: retried for the retry window, then it fails naming it.
		{"unreachable zookeeper", func(c *config.Config) {
			c.ZooKeeper.Servers = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			c.RetryWindow = config.Duration(15 * time.Second)
		}, "127.0.0.1"},
		// A configuration store apart that does not answer fails the backup: no archive of
		// the local store alone is uploaded as if it were whole.
		{"unreachable configuration store", func(c *config.Config) {
			c.ConfigurationStore.Servers = fmt.Sprintf("zk:127.0.0.1:%d/conf", testenv.FreePort(t))
			c.RetryWindow = config.Duration(15 * time.Second)
		}, "configuration store: connect to zookeeper 127.0.0.1"},
		{"missing chroot", func(c *config.Config) { c.ZooKeeper.Servers = s.zk.Addr + "/no-such-chroot" }, "chroot /no-such-chroot does not exist on zookeeper " + s.zk.Addr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := s.config(t, tc.edit)
			start := time.Now()
			err := run([]string{"--config", cfgPath, "backup"}, io.Discard)
			if err == nil {
				t.Fatal("backup succeeded")
			}
			msg := err.Error()
			t.Logf("%s", msg)
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "wrong-password") || strings.Contains(msg, s.minio.SecretKey) {
				t.Fatalf("error %q: want one line containing %q and no secrets", msg, tc.want)
			}
			if time.Since(start) > 90*time.Second {
				t.Fatalf("took %s: a cause retrying cannot fix must fail fast", time.Since(start))
			}
			assertStagingEmpty(t, cfgPath)
		})
	}
	assertNoSecretsInHistory(t, s, s.minio.SecretKey, pulsartree.DefaultDigestPassword, "wrong-password")
	list, err := s.minio.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("backups")})
	if err != nil || len(list.Contents) != 0 {
		t.Fatalf("bucket holds %d objects after failed backups (%v)", len(list.Contents), err)
	}
}

// ZooKeeper accepts any digest at login, so a wrong password goes unnoticed while nothing
// read needs it: the result says the credentials were not proven.
func TestBackupSaysWhenAuthWasNeverUsed(t *testing.T) {
	s := startStack(t)
	restoretest.Populate(t, s.zk.Addr, pulsartree.Options{Tenants: 1, NamespacesPerTenant: 1, TopicsPerNamespace: 2})
	cfgPath := s.config(t, func(c *config.Config) {
		c.ZooKeeper.Auth = "digest:" + pulsartree.DefaultDigestUser + ":wrong-password"
	})
	var out bytes.Buffer
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	var res workflows.BackupResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.AuthUnused || !strings.Contains(out.String(), `"authUnused":true`) {
		t.Fatalf("result %s (%v): want authUnused", out.String(), err)
	}
	// Without auth configured there is nothing to prove.
	cfgPath = s.config(t, func(c *config.Config) { c.ZooKeeper.Auth, c.Temporal.TaskQueue = "", c.Temporal.TaskQueue+"-noauth" })
	out.Reset()
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil || strings.Contains(out.String(), "authUnused") {
		t.Fatalf("without auth: %s, %v", out.String(), err)
	}
}
