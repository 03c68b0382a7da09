package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/etcdstore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
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
	path := filepath.Join(t.TempDir(), "config.yaml")
	saveConfig(t, path, cfg)
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
		// Not a tenant `initialize-cluster-metadata` writes (public, pulsar): the new
		// cluster's init has it already, so the other cluster's version could not be seeded.
		var tenant string
		for p := range conf {
			if znode.Parent(p) == "/admin/policies" && !restore.ClusterInitPath(p) && (tenant == "" || p < tenant) {
				tenant = p
			}
		}
		if tenant == "" {
			t.Fatal("the archive has no tenant of its own")
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

	// Last, as it changes the source: inspect and diff read both stores of real archives.
	t.Run("inspect and diff read both stores", func(t *testing.T) {
		var sum inspect.Summary
		if err := json.Unmarshal([]byte(cli(t, "--config", cfgPath, "inspect", "--json", res.URL)), &sum); err != nil {
			t.Fatal(err)
		}
		total := func(pcs []inspect.PathCount) (n int64) {
			for _, pc := range pcs {
				n += pc.Znodes
			}
			return n
		}
		var tenants, namespaces int64
		var nsPath string
		for p, r := range conf {
			if _, ok := pulsarpath.IsTenant(p); ok {
				tenants++
			}
			if _, ok := pulsarpath.IsNamespace(p, r.Stat.NumChildren); ok {
				namespaces++
				if nsPath == "" || p < nsPath {
					nsPath = p
				}
			}
		}
		if c := sum.Configuration; c == nil || total(c.ByTopLevel) != res.Roles[1].Znodes || total(sum.ByTopLevel) != res.Roles[0].Znodes ||
			sum.TenantZnodes != tenants || sum.NamespaceZnodes != namespaces || c.Create+c.Skipped[restore.SkipRoot] != res.Roles[1].Znodes {
			t.Fatalf("inspect: configuration %+v, local top level %+v, tenants %d namespaces %d; want %d and %d", c, sum.ByTopLevel, sum.TenantZnodes, sum.NamespaceZnodes, tenants, namespaces)
		}

		// One namespace policy changes in the configuration store; the next backup's diff
		// names it there, and nothing else.
		conn, _, err := zk.Connect([]string{confZK.Addr}, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.AddAuth("digest", []byte(pulsartree.DefaultDigestUser+":"+pulsartree.DefaultDigestPassword)); err != nil {
			t.Fatal(err)
		}
		var policy map[string]any
		if err := json.Unmarshal(conf[nsPath].Data, &policy); err != nil {
			t.Fatalf("%s: %v", nsPath, err)
		}
		policy["message_ttl_in_seconds"] = 4242
		data, err := json.Marshal(policy)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Set("/conf"+nsPath, data, -1); err != nil {
			t.Fatal(err)
		}
		second := backupCLI(t, cfgPath)
		var d backupdiff.Result
		if err := json.Unmarshal([]byte(cli(t, "--config", cfgPath, "diff", "--json", res.URL, second.URL)), &d); err != nil {
			t.Fatal(err)
		}
		if d.Znodes.Changed != 1 || d.Znodes.Added+d.Znodes.Removed != 0 || d.Policies.Count != 1 || len(d.Policies.Changes) != 1 {
			t.Fatalf("diff: znodes %+v, policies %+v", d.Znodes, d.Policies)
		}
		ch := d.Policies.Changes[0]
		if ch.Role != archive.RoleConfiguration || ch.Path != nsPath || ch.Kind != "namespace" || len(ch.Patch) == 0 {
			t.Fatalf("policy change %+v, want namespace %s in the configuration store", ch, nsPath)
		}
		if text := cli(t, "--config", cfgPath, "diff", res.URL, second.URL); !strings.Contains(text, "configuration:"+nsPath) || !strings.Contains(text, "4242") {
			t.Errorf("diff text:\n%s", text)
		}
	})
}

// etcdTree reads every key of an etcd store as records (leased keys left out), "/" aside,
// through etcdstore's own walk. Paths with keys below them and none of their own (Pulsar
// creates no parent keys) are not keys: they are left out too.
func etcdTree(t *testing.T, endpoint string) map[string]znode.Record {
	t.Helper()
	s, err := etcdstore.Connect(context.Background(), etcdstore.Options{Endpoints: []string{endpoint}, AllowEmptyRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]znode.Record{}
	if _, err := s.Walk(context.Background(), etcdstore.WalkOptions{}, func(r znode.Record) error {
		if r.Path != "/" && !etcdstore.Implied(r) {
			out[r.Path] = r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// putRecords writes records into an etcd store; with a lease, as live ephemerals.
func putRecords(t *testing.T, endpoint string, recs []znode.Record, leased bool) {
	t.Helper()
	ctx := context.Background()
	if !leased {
		s, err := etcdstore.Connect(ctx, etcdstore.Options{Endpoints: []string{endpoint}, AllowEmptyRoot: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.CreateBatch(ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	lease, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := cli.Put(ctx, r.Path, string(r.Data), clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEtcdStore backs up a Pulsar cluster whose metadata store is etcd, with live brokers'
// leased keys, and restores it into a new etcd initialised as `initialize-cluster-metadata`
// does: the same pipeline, the same rules (skips, the managed-ledger rewrite, the gate), and
// a new cluster's broker loads it without losing offloaded data.
func TestEtcdStore(t *testing.T) {
	f := &restoreFixture{stack: startStack(t)}
	src := testenv.StartEtcd(t)
	var recs, live []znode.Record
	var err error
	f.sum, err = pulsartree.Records(pulsartree.Sized(2000), func(r znode.Record) bool {
		if r.Mode == znode.ModeEphemeral {
			live = append(live, r)
		} else {
			recs = append(recs, r)
		}
		return true
	})
	if err != nil || len(live) == 0 {
		t.Fatalf("records: %v (%d live)", err, len(live))
	}
	putRecords(t, src.Endpoint, recs, false)
	putRecords(t, src.Endpoint, live, true)
	f.source = etcdTree(t, src.Endpoint)

	var out bytes.Buffer
	cfgPath := f.config(t, func(c *config.Config) {
		c.ZooKeeper.Servers, c.ZooKeeper.Auth = "etcd:"+src.Endpoint, ""
	})
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &f.backup); err != nil {
		t.Fatal(err)
	}
	res := f.backup
	m, err := archive.VerifyRoles(bytes.NewReader(f.getObject(t, res.Name)), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := m.Local()
	if l.Store != "etcd" || l.Source != "etcd:"+src.Endpoint || !l.Consistency.PointInTime || l.Consistency.Revision <= 0 || l.Consistency.ZxidStart != "" ||
		l.EphemeralSkipped != int64(len(live)) || l.Znodes < int64(len(f.source)) || res.Znodes != l.Znodes {
		t.Fatalf("etcd role %+v (source %d keys, %d live)", l, len(f.source), len(live))
	}

	// The new cluster: its etcd holds what initialize-cluster-metadata writes.
	dst := testenv.StartEtcd(t)
	scratch := testenv.StartZooKeeper(t)
	restoretest.InitCluster(t, scratch.Addr)
	var initRecs []znode.Record
	for _, r := range restoretest.ReadTree(t, scratch.Addr) {
		initRecs = append(initRecs, r)
	}
	slices.SortFunc(initRecs, func(a, b znode.Record) int { return strings.Compare(a.Path, b.Path) })
	putRecords(t, dst.Endpoint, initRecs, false)
	before := etcdTree(t, dst.Endpoint)

	cfg := config.Default()
	cfg.ZooKeeper.Servers = "etcd:" + dst.Endpoint
	cfg.Temporal.HostPort, cfg.Temporal.TaskQueue = f.tp.HostPort, "tq-etcd-restore"
	cfg.RetryWindow = config.Duration(20 * time.Second) // a fault here is a bug: fail with its message
	cfg.S3.Endpoint, cfg.S3.ForcePathStyle = f.minio.Endpoint, true
	cfg.Backup.Bucket, cfg.Backup.BackupPrefix, cfg.Backup.StagingDir = "s3a://backups", "pulsar-backup", t.TempDir()
	tg := &target{cfg: cfg, cfgPath: filepath.Join(t.TempDir(), "config.yaml"), before: before}
	saveConfig(t, tg.cfgPath, cfg)
	tg.worker = f.startWorker(t, cfg)
	rep, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created == 0 || rep.LedgersKept == 0 || rep.Floor == nil {
		t.Fatalf("report %+v", rep)
	}
	after := etcdTree(t, dst.Endpoint)
	restoretest.CheckRestored(t, f.source, before, after, f.sum)
	restoretest.CheckBrokerLoad(t, after, f.sum, restore.DefaultManagedLedgerPath)

	// The same pair again is already restored; the gate refuses a running cluster.
	putRecords(t, dst.Endpoint, []znode.Record{{Path: restore.BrokersPath + "/10.0.0.99:8080", Data: []byte("{}")}}, true)
	if _, _, err := tg.restoreCLI(t, "--restore-point", res.URL, "--restore-version", "2"); err == nil || !strings.Contains(err.Error(), "the target cluster is running: 1 broker(s) registered under /loadbalance/brokers (10.0.0.99:8080)") {
		t.Fatalf("restore into a running etcd cluster: %v", err)
	}
}
