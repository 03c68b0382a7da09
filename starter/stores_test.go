package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// decoy is a znode outside every chroot of the test: a backup must not read it, a restore
// must not touch it.
var decoy = map[string]znode.Record{"/decoy": {Path: "/decoy", Data: []byte("outside the chroot"), ACL: []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}, Mode: znode.ModePersistent}}

// storeTarget is a restore target of two stores: a local store under /pulsar-b of one
// ensemble (beside a decoy) and a configuration store at the top of another, initialised
// as `pulsar initialize-cluster-metadata` splits them.
type storeTarget struct {
	*target
	local, conf *testenv.ZooKeeper
	beforeConf  map[string]znode.Record
}

const targetRoot = "/pulsar-b"

func newStoreTarget(t *testing.T, f *restoreFixture, name string, seedConf map[string]znode.Record) *storeTarget {
	t.Helper()
	scratch := testenv.StartZooKeeper(t)
	restoretest.InitCluster(t, scratch.Addr)
	initLocal, initConf := restoretest.Split(restoretest.ReadTree(t, scratch.Addr))
	st := &storeTarget{local: testenv.StartZooKeeper(t), conf: testenv.StartZooKeeper(t)}
	restoretest.CopyTree(t, st.local.Addr, decoy, "")
	restoretest.CopyTree(t, st.local.Addr, initLocal, targetRoot)
	restoretest.CopyTree(t, st.conf.Addr, initConf, "")
	restoretest.CopyTree(t, st.conf.Addr, seedConf, "")
	st.beforeConf = restoretest.ReadTree(t, st.conf.Addr)
	cfg := config.Default()
	cfg.ZooKeeper.Servers = "zk:" + st.local.Addr + targetRoot
	cfg.ZooKeeper.Auth = restoretest.Auth
	cfg.ConfigurationStore.Servers = st.conf.Addr
	cfg.ConfigurationStore.Auth = restoretest.Auth
	cfg.Temporal.HostPort = f.tp.HostPort
	cfg.Temporal.TaskQueue = "tq-stores-" + name
	cfg.S3.Endpoint, cfg.S3.ForcePathStyle = f.minio.Endpoint, true
	cfg.Backup.Bucket, cfg.Backup.BackupPrefix, cfg.Backup.StagingDir = "s3a://backups", "pulsar-backup", t.TempDir()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	st.target = &target{zk: st.local, cfg: cfg, cfgPath: path}
	st.before = restoretest.Union(t, restoretest.Under(restoretest.ReadTree(t, st.local.Addr), targetRoot), st.beforeConf)
	st.worker = f.startWorker(t, cfg)
	return st
}

// after is both stores, relative to their roots, as one tree; the local ensemble must hold
// nothing outside its chroot but the decoy, unchanged.
func (st *storeTarget) after(t *testing.T) (all, local, conf map[string]znode.Record) {
	t.Helper()
	top := restoretest.ReadTree(t, st.local.Addr)
	for p, r := range top {
		if p != targetRoot && !znode.Under(p, targetRoot) && (p != "/decoy" || string(r.Data) != string(decoy["/decoy"].Data)) {
			t.Fatalf("the local ensemble holds %s outside the chroot %s", p, targetRoot)
		}
	}
	local, conf = restoretest.Under(top, targetRoot), restoretest.ReadTree(t, st.conf.Addr)
	return restoretest.Union(t, local, conf), local, conf
}

// TestTwoStoresAndChroots backs up a Pulsar cluster whose configuration store is apart (a
// local store under the chroot /pulsar-a, a configuration store under /conf of another
// ensemble) into one archive, and restores it into two new ensembles (/pulsar-b, and the top
// of the other): one used by the new cluster alone, one shared with another cluster.
func TestTwoStoresAndChroots(t *testing.T) {
	f := &restoreFixture{stack: startStack(t)}
	scratch := testenv.StartZooKeeper(t)
	o := pulsartree.Sized(2000)
	o.Awkward = true
	_, f.sum = restoretest.Populate(t, scratch.Addr, o)
	full := restoretest.ReadTree(t, scratch.Addr)
	local, conf := restoretest.Split(full)
	if len(conf) < 50 || len(local) < 500 {
		t.Fatalf("split %d local, %d configuration znodes", len(local), len(conf))
	}
	confZK := testenv.StartZooKeeper(t)
	restoretest.CopyTree(t, f.zk.Addr, decoy, "")
	restoretest.CopyTree(t, f.zk.Addr, local, "/pulsar-a")
	restoretest.CopyTree(t, confZK.Addr, conf, "/conf")
	f.source = restoretest.Union(t, local, conf)

	var out bytes.Buffer
	cfgPath := f.config(t, func(c *config.Config) {
		c.ZooKeeper.Servers = "zk:" + f.zk.Addr + "/pulsar-a"
		c.ConfigurationStore.Servers = "metadata-store:zk:" + confZK.Addr + "/conf"
		c.ConfigurationStore.Auth = c.ZooKeeper.Auth
	})
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &f.backup); err != nil {
		t.Fatal(err)
	}
	res := f.backup

	t.Run("one archive holds both stores, relative to their chroots", func(t *testing.T) {
		// Each role holds its chroot's root ("/") besides the tree below it.
		if len(res.Roles) != 2 || res.Roles[0].Role != archive.RoleLocal || res.Roles[1].Role != archive.RoleConfiguration ||
			res.Roles[0].Znodes != int64(len(local))+1 || res.Roles[1].Znodes != int64(len(conf))+1 || res.Znodes != res.Roles[0].Znodes+res.Roles[1].Znodes {
			t.Fatalf("result roles %+v, znodes %d; want %d local and %d configuration", res.Roles, res.Znodes, len(local)+1, len(conf)+1)
		}
		body := f.getObject(t, res.Name)
		got := map[string]map[string]znode.Record{archive.RoleLocal: {}, archive.RoleConfiguration: {}}
		m, err := archive.VerifyRoles(bytes.NewReader(body), func(role string, r znode.Record) error {
			got[role][r.Path] = r
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if m.FormatVersion != archive.FormatVersion || len(m.Roles) != 2 {
			t.Fatalf("manifest %+v", m)
		}
		l, c := m.Roles[0], m.Roles[1]
		if l.Source != "zk:"+f.zk.Addr+"/pulsar-a" || l.Root != "/pulsar-a" || c.Source != "zk:"+confZK.Addr+"/conf" || c.Root != "/conf" ||
			l.Consistency.ZxidStart == "" || l.Consistency.ZxidEnd == "" || c.Consistency.ZxidStart == "" || l.Consistency.PointInTime || c.Stream != archive.ConfigurationStreamName {
			t.Fatalf("manifest roles %+v / %+v", l, c)
		}
		for role, want := range map[string]map[string]znode.Record{archive.RoleLocal: local, archive.RoleConfiguration: conf} {
			for p, r := range want {
				g, ok := got[role][p]
				if !ok || string(g.Data) != string(r.Data) {
					t.Fatalf("%s role: %s missing or different", role, p)
				}
			}
			if _, leaked := got[role]["/decoy"]; leaked || len(got[role]) != len(want)+1 {
				t.Fatalf("%s role holds %d records, want %d", role, len(got[role]), len(want)+1)
			}
		}
	})

	t.Run("restored into two new stores, the configuration one this cluster's alone", func(t *testing.T) {
		tg := newStoreTarget(t, f, "alone", nil)
		rep, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "1")
		if err != nil {
			t.Fatal(err)
		}
		c := rep.Configuration
		if c == nil || c.Mode != restore.ConfigExclusive || c.Created == 0 || c.Conflicts.Count != 0 || c.Journaled != 0 || rep.ConfigurationTarget != "zk:"+tg.conf.Addr {
			t.Fatalf("configuration report %+v, target %q", c, rep.ConfigurationTarget)
		}
		if summary, _ := runSummary(t, f.tp.Client(t), rep.WorkflowID); !strings.HasSuffix(summary, fmt.Sprintf("; configuration (%s): created %d", c.Mode, c.Created)) {
			t.Errorf("summary %q lacks the configuration store's mode and created %d", summary, c.Created)
		}
		if rep.Plan == nil || rep.Plan.Configuration == nil || len(rep.Plan.Configuration.InitReplaced.First) == 0 {
			t.Fatalf("plan of the configuration role: %+v", rep.Plan)
		}
		all, _, _ := tg.after(t)
		restoretest.CheckRestored(t, f.source, tg.before, all, f.sum)
		restoretest.CheckBrokerLoad(t, all, f.sum, restore.DefaultManagedLedgerPath)
	})

	t.Run("a configuration store shared with another cluster is restored additively", func(t *testing.T) {
		// Another cluster's cluster and tenant, and a tenant of the archive's that the other
		// cluster holds with its own policies.
		var tenant string
		for p := range conf {
			if znode.Parent(p) == "/admin/policies" {
				tenant = p
				break
			}
		}
		open := []znode.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}}
		theirs := map[string]znode.Record{
			"/admin/clusters/other-cluster":   {Data: []byte(`{"serviceUrl":"http://other:8080"}`), ACL: open},
			"/admin/policies/other-tenant":    {Data: []byte(`{"allowedClusters":["other-cluster"]}`), ACL: open},
			"/admin/policies/other-tenant/ns": {Data: []byte(`{"retention":1}`), ACL: open},
			tenant:                            {Data: []byte(`{"allowedClusters":["other-cluster"],"theirs":true}`), ACL: open},
		}
		tg := newStoreTarget(t, f, "shared", theirs)
		rep, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "1")
		if err != nil {
			t.Fatal(err)
		}
		// Conflicts: the other cluster's version of the tenant, and what the new cluster's
		// `initialize-cluster-metadata` wrote that the archive has otherwise (in a shared store
		// nothing is overwritten, not even those).
		c := rep.Configuration
		if c == nil || c.Mode != restore.ConfigShared || !slices.Contains(c.Conflicts.First, tenant) || c.Created == 0 || c.Journaled != c.Created {
			t.Fatalf("configuration report %+v", c)
		}
		for _, p := range c.Conflicts.First {
			if p != tenant && !restore.ClusterInitPath(p) {
				t.Fatalf("conflict %s: neither the other cluster's nor init's", p)
			}
		}
		if sb := rep.Plan.Configuration.SharedBecause; sb.Count < 2 || !strings.Contains(strings.Join(sb.First, ","), "/admin/clusters/other-cluster") {
			t.Fatalf("plan says shared because %+v", sb)
		}
		_, _, confAfter := tg.after(t)
		checkTheirs := func(tree map[string]znode.Record) {
			t.Helper()
			for p, r := range theirs {
				if string(tree[p].Data) != string(r.Data) {
					t.Fatalf("%s is %q, the other cluster's %q", p, tree[p].Data, r.Data)
				}
			}
			for p, r := range conf {
				if _, ok := tree[p]; !ok {
					t.Fatalf("%s of the archive was not restored", p)
				}
				if p != tenant && !znode.Under(znode.Parent(p), "/admin/clusters") && string(tree[p].Data) != string(r.Data) && !restore.ClusterInitPath(p) {
					t.Fatalf("%s restored as %q, archive has %q", p, tree[p].Data, r.Data)
				}
			}
		}
		checkTheirs(confAfter)

		// A new restoreVersion clears only what the first one created (its journal), then
		// restores again: the other cluster's znodes are untouched throughout.
		rep2, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "2")
		if err != nil {
			t.Fatal(err)
		}
		if rep2.Clear == nil || rep2.Clear.Configuration == nil || rep2.Clear.Configuration.Deleted != c.Journaled || rep2.Configuration.Created != c.Created {
			t.Fatalf("second restore: clear %+v, configuration %+v; first journaled %d", rep2.Clear, rep2.Configuration, c.Journaled)
		}
		_, _, conf2 := tg.after(t)
		checkTheirs(conf2)
		if len(conf2) != len(confAfter) {
			t.Fatalf("configuration store holds %d znodes after the second restore, %d after the first", len(conf2), len(confAfter))
		}
	})

	t.Run("an archive of two stores is refused by a worker with one", func(t *testing.T) {
		tg := f.newTarget(t, "one-store", nil)
		_, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "1")
		if err == nil || !strings.Contains(err.Error(), restore.RefusedConfigurationShape) && !strings.Contains(err.Error(), "set configurationStore.servers") {
			t.Fatalf("err = %v", err)
		}
		tg.assertNothingWritten(t)
	})
}
