package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/activities"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/drill"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

// drillWorkers runs what worker/main.go runs for a deployment with verify.zookeeper: every
// activity on the task queue, and the restore bound to the scratch ensemble on its own.
func drillWorkers(t *testing.T, s *stack, cfg config.Config) {
	t.Helper()
	for tq, bind := range map[string]func(worker.Worker){
		cfg.Temporal.TaskQueue: func(w worker.Worker) {
			activities.RegisterBackup(w, cfg, "")
			activities.RegisterRestore(w, cfg, "")
			activities.RegisterVerify(w, cfg)
		},
		result.ScratchTaskQueue(cfg.Temporal.TaskQueue): func(w worker.Worker) {
			activities.RegisterRestore(w, cfg.ScratchConfig(), "")
		},
	} {
		w := worker.New(s.tp.Client(t), tq, worker.Options{EnableSessionWorker: true})
		workflows.Register(w)
		bind(w)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
}

func verifyCLI(t *testing.T, cfgPath string, args ...string) (result.Verify, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"--config", cfgPath, "verify"}, args...), &out)
	var v result.Verify
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &v); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return v, err
}

// repack rewrites an archive with one record's data changed and the manifest's checksum and
// sizes made to match: an archive consistent in itself, other than the one backed up.
func repack(t *testing.T, good []byte, path string) []byte {
	t.Helper()
	ar, err := archive.NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	changed := false
	for {
		r, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Path == path {
			r.Data, changed = []byte(`{"tampered":true}`), true
		}
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatalf("%s not in the archive", path)
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := ar.Manifest()
	m.StreamBytes, m.StreamSHA256, m.DataBytes = sw.Bytes(), sw.SHA256(), sw.DataBytes()
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, &stream, m.StreamBytes); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func scratchCreate(t *testing.T, addr, path string, data []byte) {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create(path, data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// The restore drill on real servers: a backup verified whole and restored into a scratch
// ensemble by the real restore, read back equal and cleared; then each thing the drill
// must catch: a scratch ensemble whose tree reads back with a znode the archive lacks, one
// holding a conflicting znode, an archive changed consistently in itself after its backup,
// and a corrupt one.
func TestRestoreDrill(t *testing.T) {
	s := startStack(t)
	o := pulsartree.Options{Tenants: 2, NamespacesPerTenant: 2, TopicsPerNamespace: 4}
	restoretest.Populate(t, s.zk.Addr, o)
	scratch := testenv.StartZooKeeper(t)
	cfgPath, cfg := s.writeConfig(t, func(c *config.Config) { c.Verify.ZooKeeper = scratch.Addr })
	drillWorkers(t, s, cfg)

	backup := backupCLI(t, cfgPath)

	// 1. A good archive: verified and restored, read back equal, the scratch cleared.
	v, err := verifyCLI(t, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := v.Drill
	if v.Method != result.VerifyRestoreDrill || v.Name != backup.Name || v.SHA256 != backup.SHA256 || v.RecordedSHA256 != backup.SHA256 ||
		v.Znodes != backup.Znodes || d == nil || d.Compared == 0 || d.Compared != d.Created || d.Compared+d.Skipped != backup.Znodes ||
		d.Cleared < d.Created || v.VerifiedAt.IsZero() || v.Seconds <= 0 {
		t.Fatalf("verification %+v drill %+v", v, d)
	}
	left := restoretest.ReadTree(t, scratch.Addr)
	if _, ok := left[drill.ClaimPath]; !ok || len(left) != 1 {
		t.Fatalf("the scratch ensemble holds %d znodes after the drill, want only %s", len(left), drill.ClaimPath)
	}

	// 2. The tree read back holds a znode the archive does not: the drill names it.
	scratchCreate(t, scratch.Addr, "/rogue", []byte("x"))
	_, err = verifyCLI(t, cfgPath)
	if err == nil || !strings.Contains(err.Error(), "differs from the archive at 1 znode(s): /rogue (extra: not in the archive)") {
		t.Fatalf("a scratch with an extra znode: %v", err)
	}
	if left := restoretest.ReadTree(t, scratch.Addr); len(left) != 1 {
		t.Fatalf("the failed drill left %d znodes", len(left))
	}

	// 3. A conflicting znode where the archive has one (a tenant's policies; its parents are
	// among what initialize-cluster-metadata writes, which a restore replaces): the restore
	// refuses, naming it.
	var victim string
	for p := range restoretest.ReadTree(t, s.zk.Addr) {
		if tenant, ok := strings.CutPrefix(p, "/admin/policies/"); ok && !strings.Contains(tenant, "/") && tenant != "public" && tenant != "pulsar" {
			victim = p
			break
		}
	}
	for _, p := range []string{"/admin", "/admin/policies", victim} {
		scratchCreate(t, scratch.Addr, p, []byte("not the archive's"))
	}
	_, err = verifyCLI(t, cfgPath)
	if err == nil || !strings.Contains(err.Error(), "restore into the scratch ensemble failed") || !strings.Contains(err.Error(), "("+victim+")") {
		t.Fatalf("a scratch with a conflicting znode at %s: %v", victim, err)
	}

	// 4. The archive changed after its backup, consistently in itself (checksums redone): only
	// the SHA-256 its backup recorded tells.
	good := s.getObject(t, backup.Name)
	s.put(t, backup.Name, repack(t, good, victim))
	_, err = verifyCLI(t, cfgPath)
	if err == nil || !strings.Contains(err.Error(), "but its backup recorded "+backup.SHA256) {
		t.Fatalf("a repacked archive: %v", err)
	}

	// 5. A corrupt archive (a byte flipped), with no run to vouch for it: validation fails.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	corrupt := strings.Replace(backup.Name, "pulsar-backup-", "pulsar-backup-9", 1)
	s.put(t, corrupt, bad)
	_, err = verifyCLI(t, cfgPath, "s3a://backups/"+corrupt)
	if err == nil || !strings.Contains(err.Error(), "validate:") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a corrupt archive: %v", err)
	}
	assertNoSecretsInHistory(t, s, s.minio.SecretKey, pulsartree.DefaultDigestPassword)

}

// The restore drill of a deployment with a configuration store apart: one scratch ensemble
// takes both stores (the configuration one under result.ScratchConfigurationRoot), the real
// restore writes both, both are read back equal, and a difference in the configuration
// store is named there. (The tree is not pulsartree's awkward one: its parent locked to
// READ over a child is a znode no drill can clear without a super user.)
func TestRestoreDrillOfTwoStores(t *testing.T) {
	s := startStack(t)
	src := testenv.StartZooKeeper(t)
	restoretest.Populate(t, src.Addr, pulsartree.Options{Tenants: 2, NamespacesPerTenant: 2, TopicsPerNamespace: 4})
	local, conf := restoretest.Split(restoretest.ReadTree(t, src.Addr))
	confZK := testenv.StartZooKeeper(t)
	restoretest.CopyTree(t, s.zk.Addr, local, "")
	restoretest.CopyTree(t, confZK.Addr, conf, "")
	scratch := testenv.StartZooKeeper(t)
	cfgPath, cfg := s.writeConfig(t, func(c *config.Config) {
		c.ConfigurationStore.Servers, c.ConfigurationStore.Auth = confZK.Addr, c.ZooKeeper.Auth
		c.Verify.ZooKeeper = scratch.Addr
	})
	drillWorkers(t, s, cfg)
	backup := backupCLI(t, cfgPath)
	if len(backup.Roles) != 2 {
		t.Fatalf("backup roles %+v", backup.Roles)
	}

	v, err := verifyCLI(t, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Both stores were restored and compared: what the restore's rules create of each.
	var want int64
	for _, tree := range []map[string]znode.Record{local, conf} {
		for p := range tree {
			if _, skip := restore.SkipReason(p); !skip {
				want++
			}
		}
	}
	d := v.Drill
	if v.Method != result.VerifyRestoreDrill || v.Name != backup.Name || d == nil || d.Compared != d.Created || d.Compared+d.Skipped != backup.Znodes ||
		d.Created != want || d.Cleared < d.Created {
		t.Fatalf("verification %+v drill %+v (want %d created; archive: %d local, %d configuration znodes)", v, d, want, backup.Roles[0].Znodes, backup.Roles[1].Znodes)
	}
	left := restoretest.ReadTree(t, scratch.Addr)
	if _, ok := left[drill.ClaimPath]; !ok || len(left) != 1 {
		t.Fatalf("the scratch ensemble holds %d znodes after the drill, want only %s", len(left), drill.ClaimPath)
	}

	// A znode the configuration store read back holds and the archive lacks is named in
	// that store.
	scratchCreate(t, scratch.Addr, result.ScratchConfigurationRoot, nil)
	scratchCreate(t, scratch.Addr, result.ScratchConfigurationRoot+"/rogue", []byte("x"))
	_, err = verifyCLI(t, cfgPath)
	if err == nil || !strings.Contains(err.Error(), "differs from the archive at 1 znode(s): configuration:/rogue (extra: not in the archive)") {
		t.Fatalf("a scratch configuration store with an extra znode: %v", err)
	}
	if left := restoretest.ReadTree(t, scratch.Addr); len(left) != 1 {
		t.Fatalf("the failed drill left %d znodes", len(left))
	}
}
