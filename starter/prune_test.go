package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-zookeeper/zk"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/retention"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// The synthetic history the retention test puts in the bucket, as the backup workflow names
// archives (<prefix>-<unix millis>.tar.gz). 2024-03-04 and 2024-03-11 are Mondays: ISO weeks
// 10 and 11.
var history24 = map[string]string{
	"A1":  "2024-01-10 12:00:00",
	"A2":  "2024-02-05 09:00:00",
	"A3":  "2024-02-20 09:00:00",
	"A4":  "2024-03-04 08:00:00",
	"A5":  "2024-03-06 08:00:00",
	"A6":  "2024-03-11 08:00:00",
	"A7":  "2024-03-12 08:00:00",
	"A8":  "2024-03-12 20:00:00",
	"A9":  "2024-03-13 06:00:00",
	"A10": "2024-03-13 18:00:00",
	"A11": "2024-03-14 07:00:00",
}

func historyTime(t *testing.T, label string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.DateTime, history24[label])
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

// listKeys lists the bucket's keys.
func (s *stack) listKeys(t *testing.T) []string {
	t.Helper()
	out, err := s.minio.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("backups")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	sort.Strings(keys)
	return keys
}

func (s *stack) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := s.minio.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// setMarker writes the restore marker of the deployment's ensemble as a restore in state
// would: restorePoint names the archive.
func setMarker(t *testing.T, addr, point, state string) {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, _ := json.Marshal(restore.Marker{Tool: restore.ToolName, ToolVersion: "x", State: state, RestorePoint: point, RestoreVersion: "1",
		WorkflowID: "metadata-restore-test", RunID: "run-1", StartedAt: time.Now().UTC()})
	if _, st, err := conn.Get(restore.MarkerPath); err == nil {
		_, err = conn.Set(restore.MarkerPath, data, st.Version)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := conn.Create(restore.MarkerPath, data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
}

func pruneCLI(t *testing.T, cfgPath string, args ...string) result.Prune {
	t.Helper()
	var out bytes.Buffer
	if err := run(append([]string{"--config", cfgPath, "prune"}, args...), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out.String())
	}
	var p result.Prune
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// decisions renders a prune's decisions as "<name> <action> <rule>" with archive names
// replaced by their labels.
func decisions(p result.Prune, labels map[string]string) []string {
	var out []string
	for _, d := range p.Decisions {
		n := d.Name
		if l, ok := labels[n]; ok {
			n = l
		}
		out = append(out, n+" "+d.Action+" "+d.Rule)
	}
	return out
}

// Retention over a synthetic history of archives on real MinIO, ZooKeeper and Temporal:
// the dry run's decisions, a prune that deletes nothing while the restore marker cannot be
// read, the prune a real backup runs after its upload, and a prune once the restore is
// complete, each with its exact keep and delete sets and every never-delete case: the
// newest archive, the archive an applying restore marker names, objects that are not this
// tool's archives, and archives of a longer prefix that starts with this one.
func TestRetention(t *testing.T) {
	s := startStack(t)
	restoretest.Populate(t, s.zk.Addr, pulsartree.Options{Tenants: 1, NamespacesPerTenant: 1, TopicsPerNamespace: 2})
	policy := result.Retention{KeepLast: 2, KeepDaily: 3, KeepWeekly: 2, KeepMonthly: 2}
	cfgPath := s.config(t, func(c *config.Config) { c.Backup.Retention = policy })

	labels := map[string]string{}
	sizes := map[string]int64{}
	key := func(label string) string {
		return archive.ObjectName("pulsar-backup", historyTime(t, label).UnixMilli())
	}
	for l := range history24 {
		body := archiveOf(t, "/a", "/a/b:10")
		s.put(t, key(l), body)
		labels[key(l)], sizes[l] = l, int64(len(body))
	}
	// Not this tool's archives, though under the prefix (one named like an archive), and a
	// valid archive of a longer prefix and of a shorter one, all older than everything kept.
	old := historyTime(t, "A1").Add(-24 * time.Hour).UnixMilli()
	foreign := archive.ObjectName("pulsar-backup", old)
	s.put(t, foreign, []byte("StreamNative's tool wrote this, say"))
	s.put(t, "pulsar-backup-notes.txt", []byte("notes"))
	s.put(t, "pulsar-backup-copied.tar.gz", archiveOf(t, "/a"))
	longer := archive.ObjectName("pulsar-backup-eu", old)
	shorter := archive.ObjectName("pulsar", old)
	s.put(t, longer, archiveOf(t, "/a"))
	s.put(t, shorter, archiveOf(t, "/a"))
	labels[foreign] = "foreign"
	notOurs := []string{foreign, "pulsar-backup-notes.txt", "pulsar-backup-copied.tar.gz", longer, shorter}

	// A restore is applying A2, which the policy alone would delete.
	setMarker(t, s.zk.Addr, "s3://backups/"+key("A2"), restore.StateApplying)

	// 1. Dry run: every object's decision and its rule, nothing deleted.
	before := s.listKeys(t)
	p := pruneCLI(t, cfgPath, "--dry-run")
	want := []string{
		"A11 keep last", "A10 keep last", "A9 delete none", "A8 keep daily", "A7 delete none", "A6 delete none",
		"A5 keep weekly", "A4 delete none", "A3 keep monthly", "A2 keep restore-marker", "A1 delete none",
		"foreign keep foreign-manifest",
		"pulsar-backup-copied.tar.gz keep not-an-archive",
		longer + " keep other-prefix",
		"pulsar-backup-notes.txt keep not-an-archive",
	}
	if got := decisions(p, labels); !slices.Equal(got, want) {
		t.Fatalf("dry run decisions\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if a11 := p.Decisions[0]; !slices.Equal(a11.Matches, []string{"last", "daily", "weekly", "monthly"}) || a11.Time == nil || !a11.Time.Equal(historyTime(t, "A11")) {
		t.Fatalf("A11 %+v", a11)
	}
	if !p.DryRun || p.Deleted != 0 || p.Delete != 5 || p.Archives != 11 || p.Retained != 6 || p.Policy != policy || p.Skipped != "" {
		t.Fatalf("dry run %+v", p.PruneCounts)
	}
	if after := s.listKeys(t); !slices.Equal(after, before) {
		t.Fatalf("dry run deleted: %v -> %v", before, after)
	}

	// 2. The deployment's ZooKeeper cannot be reached, so the marker cannot be read: nothing
	// is deleted, since the restore it might describe could name any archive.
	deadZK := s.config(t, func(c *config.Config) {
		c.Backup.Retention = policy
		c.ZooKeeper.Servers = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		c.Temporal.TaskQueue += "-deadzk"
	})
	p = pruneCLI(t, deadZK)
	if p.Deleted != 0 || p.Delete != 0 || !strings.Contains(p.Skipped, "cannot read the restore marker") {
		t.Fatalf("prune without the marker: %+v skipped %q", p.PruneCounts, p.Skipped)
	}
	for _, d := range p.Decisions {
		if d.Action == result.ActionDelete || labels[d.Name] == "A9" && d.Rule != retention.RuleMarkerUnknown {
			t.Fatalf("decision %+v", d)
		}
	}
	if after := s.listKeys(t); !slices.Equal(after, before) {
		t.Fatalf("prune without the marker deleted: %v -> %v", before, after)
	}

	// 3. A real backup: after its upload, its own Prune activity applies the policy to the new
	// archive N and the history. N takes a slot of every rule.
	res := backupCLI(t, cfgPath)
	deleted := []string{"A9", "A8", "A7", "A6", "A5", "A4", "A3", "A1"}
	var wantDeleted []string
	var wantBytes int64
	for _, l := range deleted {
		wantDeleted = append(wantDeleted, key(l))
		wantBytes += sizes[l]
	}
	if pr := res.Prune; pr == nil || pr.Error != "" || pr.Deleted != 8 || pr.Retained != 4 || pr.Archives != 12 || len(pr.Decisions) != 0 ||
		!slices.Equal(pr.DeletedNames, wantDeleted) || pr.DeletedBytes != wantBytes {
		t.Fatalf("the backup's prune: %+v", pr)
	}
	if n := scheduled(t, s.tp.Client(t), workflowIDOf(t, s, res.Name)); n["Prune"] != 1 {
		t.Fatalf("the backup scheduled %v", n)
	}
	wantKeys := append([]string{res.Name, key("A11"), key("A10"), key("A2")}, notOurs...)
	sort.Strings(wantKeys)
	if after := s.listKeys(t); !slices.Equal(after, wantKeys) {
		t.Fatalf("after the backup's prune the bucket holds\n  %s\nwant\n  %s", strings.Join(after, "\n  "), strings.Join(wantKeys, "\n  "))
	}

	// 4. The restore completed: its archive is no longer protected.
	setMarker(t, s.zk.Addr, "s3://backups/"+key("A2"), restore.StateComplete)
	labels[res.Name] = "N"
	p = pruneCLI(t, cfgPath)
	want = []string{"N keep last", "A11 keep last", "A10 keep daily", "A2 delete none", "foreign keep foreign-manifest",
		"pulsar-backup-copied.tar.gz keep not-an-archive", longer + " keep other-prefix", "pulsar-backup-notes.txt keep not-an-archive"}
	if got := decisions(p, labels); !slices.Equal(got, want) || p.Deleted != 1 || !p.Decisions[3].Deleted {
		t.Fatalf("prune after the restore\n  %s\nwant\n  %s\n%+v", strings.Join(got, "\n  "), strings.Join(want, "\n  "), p.PruneCounts)
	}
	wantKeys = slices.DeleteFunc(wantKeys, func(k string) bool { return k == key("A2") })
	if after := s.listKeys(t); !slices.Equal(after, wantKeys) {
		t.Fatalf("bucket %v, want %v", after, wantKeys)
	}

	// 5. The newest archive stays whatever the policy: keepLast 1 with a newer object named like
	// an archive that is not this tool's.
	future := archive.ObjectName("pulsar-backup", time.Now().Add(48*time.Hour).UnixMilli())
	s.put(t, future, []byte("not an archive"))
	lastOne := s.config(t, func(c *config.Config) {
		c.Backup.Retention = result.Retention{KeepLast: 1}
		c.Temporal.TaskQueue += "-last1"
	})
	p = pruneCLI(t, lastOne)
	if p.Decisions[0].Name != res.Name || p.Decisions[0].Action != result.ActionKeep || p.Deleted != 2 {
		t.Fatalf("keepLast 1: %v", decisions(p, labels))
	}
	assertNoSecretsInHistory(t, s, s.minio.SecretKey, pulsartree.DefaultDigestPassword)
}

// workflowIDOf finds the BackupWorkflow run that wrote an archive, from visibility.
func workflowIDOf(t *testing.T, s *stack, name string) string {
	t.Helper()
	c := s.tp.Client(t)
	for range 40 {
		resp, err := c.ListWorkflow(context.Background(), listBackups())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			var r result.Backup
			if c.GetWorkflow(context.Background(), e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Get(context.Background(), &r) == nil && r.Name == name {
				return e.GetExecution().GetWorkflowId()
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no run wrote %s", name)
	return ""
}

func listBackups() *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = '" + result.BackupWorkflowName + "'"}
}
