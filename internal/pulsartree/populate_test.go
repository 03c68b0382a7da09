package pulsartree

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func connect(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

type walked struct {
	path string
	data []byte
	stat *zk.Stat
}

// walk reads every znode below / except /zookeeper, one request at a time: simple enough to
// trust as the reference count.
func walk(t *testing.T, conn *zk.Conn) []walked {
	t.Helper()
	var out []walked
	var visit func(p string)
	visit = func(p string) {
		children, _, err := conn.Children(p)
		if err != nil {
			t.Fatalf("children of %s: %v", p, err)
		}
		slices.Sort(children)
		for _, c := range children {
			cp := znode.Join(p, c)
			if cp == "/zookeeper" {
				continue
			}
			data, stat, err := conn.Get(cp)
			if err != nil {
				t.Fatalf("get %s: %v", cp, err)
			}
			out = append(out, walked{cp, data, stat})
			visit(cp)
		}
	}
	visit("/")
	return out
}

func TestPopulateSizedAwkward(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	conn := connect(t, z.Addr)
	super := connect(t, z.Addr)
	if err := super.AddAuth("digest", []byte("super:"+testenv.SuperPassword)); err != nil {
		t.Fatal(err)
	}

	o := Sized(2000)
	o.Awkward = true
	o.Compression = mlpb.CompressionType_ZSTD
	start := time.Now()
	sum, err := Populate(context.Background(), conn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Populate(%+v): %d persistent, %d ephemeral, %d topics in %s", o, sum.Persistent, sum.Ephemeral, len(sum.Topics), time.Since(start))

	nodes := walk(t, super)
	byPath := map[string]walked{}
	persistent, ephemeral := 0, 0
	for _, n := range nodes {
		byPath[n.path] = n
		switch mode, _ := znode.ModeOf(n.stat.EphemeralOwner); {
		case mode != znode.ModeEphemeral:
			persistent++
		case n.stat.EphemeralOwner == conn.SessionID():
			ephemeral++
		default:
			t.Errorf("%s is ephemeral for session %#x, not Populate's", n.path, n.stat.EphemeralOwner)
		}
	}
	if persistent != sum.Persistent || ephemeral != sum.Ephemeral {
		t.Errorf("walk found %d persistent and %d ephemeral znodes, Summary says %d and %d", persistent, ephemeral, sum.Persistent, sum.Ephemeral)
	}
	if total := persistent + ephemeral; total < 1800 || total > 2400 {
		t.Errorf("Sized(2000) with Awkward gave %d znodes", total)
	}
	wantEphemeral := 2*o.Brokers + 1 + o.Tenants*o.NamespacesPerTenant + 3 // brokers, bookies, leader, bundles (+3 awkward namespaces)
	if sum.Ephemeral != wantEphemeral {
		t.Errorf("%d ephemerals, want %d", sum.Ephemeral, wantEphemeral)
	}

	get := func(p string) walked {
		t.Helper()
		n, ok := byPath[p]
		if !ok {
			t.Fatalf("%s missing", p)
		}
		return n
	}
	sp := sum.Special

	t.Run("special data and modes", func(t *testing.T) {
		if n := get(sp.Binary); !bytes.Equal(n.data, binaryData()) || !bytes.Contains(n.data, []byte{0, 0}[:1]) {
			t.Errorf("binary data % x", n.data[:16])
		}
		if n := get(sp.Large); len(n.data) != LargeSize || !bytes.Equal(n.data, largeData(1)) {
			t.Errorf("large znode has %d bytes", len(n.data))
		}
		for _, p := range sp.Empty {
			if n := get(p); len(n.data) != 0 || n.stat.DataLength != 0 {
				t.Errorf("%s holds %d bytes", p, len(n.data))
			}
		}
		if d := strings.Count(sp.Deep, "/"); d != deepLevels {
			t.Errorf("deep path %s has %d levels", sp.Deep, d)
		}
		get(sp.Deep)
		if len(sp.Sequential) != sequentialNodes {
			t.Errorf("sequential %v", sp.Sequential)
		}
		for i, p := range sp.Sequential {
			if want := awkwardRoot + "/sequential/item-" + []string{"0000000000", "0000000001", "0000000002"}[i]; p != want {
				t.Errorf("sequential %d is %s, want %s", i, p, want)
			}
			get(p)
		}
		// The server reports container and TTL nodes as persistent; its log knows better.
		for _, p := range []string{sp.Container, sp.TTLNode} {
			if owner := get(p).stat.EphemeralOwner; owner != 0 {
				t.Errorf("%s: ephemeralOwner %#x; ZooKeeper was expected to hide the mode", p, owner)
			}
		}
		get(sp.ContainerChild)
		logged := extendedCreates(t, filepath.Join(z.Dir, "data"))
		if c := logged[sp.Container]; c.txnType != txnCreateContainer {
			t.Errorf("%s logged as %+v, want a container create", sp.Container, c)
		}
		if c := logged[sp.TTLNode]; c.txnType != txnCreateTTL || c.ttl != TTL.Milliseconds() {
			t.Errorf("%s logged as %+v, want a TTL create of %d ms", sp.TTLNode, c, TTL.Milliseconds())
		}
		if len(logged) != 2 {
			t.Errorf("container and TTL creates in the log: %v", logged)
		}
		for _, p := range sp.Unicode {
			get(p)
		}
		get(sp.LockedChild)
		if acl, _, err := super.GetACL(sp.Locked); err != nil || len(acl) != 1 || acl[0] != zk.WorldACL(zk.PermRead)[0] {
			t.Errorf("locked ACL %v, %v", acl, err)
		}
	})

	t.Run("digest ACL", func(t *testing.T) {
		anon := connect(t, z.Addr)
		want := zk.DigestACL(zk.PermAll, DefaultDigestUser, DefaultDigestPassword)
		for _, p := range sp.Digest {
			if _, _, err := anon.Get(p); !errors.Is(err, zk.ErrNoAuth) {
				t.Errorf("unauthenticated get %s: %v, want ErrNoAuth", p, err)
			}
			if _, _, err := conn.Get(p); err != nil {
				t.Errorf("Populate's conn cannot read %s: %v", p, err)
			}
			if acl, _, err := super.GetACL(p); err != nil || !slices.Equal(acl, want) {
				t.Errorf("ACL of %s = %v, %v", p, acl, err)
			}
		}
	})

	t.Run("managed ledgers decode and rewrite as summarised", func(t *testing.T) {
		formats := map[managedledger.Format]int{}
		moved, kept, dropped, stale0, compacted, terminated := 0, 0, 0, 0, 0, 0
		for _, top := range sum.Topics {
			n := get(top.Path)
			info, f, err := managedledger.Decode(n.data)
			if err != nil {
				t.Fatalf("%s: %v", top.Path, err)
			}
			formats[f]++
			if f != top.Format {
				t.Errorf("%s: format %v, summary says %v", top.Path, f, top.Format)
			}
			var ids []int64
			for _, li := range info.GetLedgerInfo() {
				ids = append(ids, li.GetLedgerId())
				if oc := li.GetOffloadContext(); oc != nil && oc.GetDriverMetadata().GetName() != "aws-s3" {
					t.Errorf("%s: offload driver %q", top.Path, oc.GetDriverMetadata().GetName())
				}
			}
			if !slices.Equal(ids, top.Ledgers) {
				t.Errorf("%s: ledgers %v, summary %v", top.Path, ids, top.Ledgers)
			}
			_, rw, err := managedledger.RewriteLedger(n.data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rw.Kept, top.Kept) || !slices.Equal(rw.Dropped, top.Dropped) {
				t.Errorf("%s: rewrite keeps %v drops %v, summary %v and %v", top.Path, rw.Kept, rw.Dropped, top.Kept, top.Dropped)
			}
			kept += len(rw.Kept)
			dropped += len(rw.Dropped)
			if (top.Terminated != nil) != rw.Terminated || top.Terminated != nil && *top.Terminated != rw.TerminatedFrom {
				t.Errorf("%s: terminated %v, summary %v", top.Path, rw.TerminatedFrom, top.Terminated)
			}
			if top.Terminated != nil {
				terminated++
			}
			for _, id := range top.Ledgers {
				if id > sum.HighestLedgerID {
					t.Errorf("%s: ledger %d above the summary's highest %d", top.Path, id, sum.HighestLedgerID)
				}
			}
			for _, l := range top.Dropped {
				if _, ok := byPath[ledgerPath(l)]; !ok {
					t.Errorf("%s: dropped ledger %d has no BookKeeper metadata", top.Path, l)
				}
			}
			if len(top.Cursors) < o.SubscriptionsPerTopic {
				t.Errorf("%s: %d cursors", top.Path, len(top.Cursors))
			}
			for _, c := range top.Cursors {
				cn := get(c.Path)
				ci, cf, err := managedledger.DecodeCursor(cn.data)
				if err != nil {
					t.Fatalf("%s: %v", c.Path, err)
				}
				if cf != c.Format || ci.GetCursorsLedgerId() != c.CursorsLedgerID || c.CursorsLedgerID == 0 || c.CursorsLedgerID < -1 {
					t.Errorf("%s: format %v ledger %d, summary %v %d", c.Path, cf, ci.GetCursorsLedgerId(), c.Format, c.CursorsLedgerID)
				}
				if c.CursorsLedgerID == -1 {
					stale0++
				} else {
					get(ledgerPath(c.CursorsLedgerID))
				}
				compaction := znode.Base(c.Path) == managedledger.CompactionCursor
				if compaction && top.CompactedLedger == 0 {
					t.Errorf("%s: a compaction cursor on a topic without compacted ledger", c.Path)
				}
				_, crw, err := managedledger.RewriteCursor(cn.data, rw.Kept, managedledger.CursorOptions{Compaction: compaction})
				if compaction && (!crw.HadCompactedLedger || crw.CompactedLedger != top.CompactedLedger) {
					t.Errorf("%s: compacted ledger %d, summary %d", c.Path, crw.CompactedLedger, top.CompactedLedger)
				}
				if compaction {
					compacted++
					get(ledgerPath(top.CompactedLedger))
				}
				if err != nil {
					t.Fatal(err)
				}
				if crw.From != c.MarkDelete || crw.To != c.Restored {
					t.Errorf("%s: rewrite %v -> %v, summary %v -> %v", c.Path, crw.From, crw.To, c.MarkDelete, c.Restored)
				}
				if crw.Moved {
					moved++
				}
			}
		}
		t.Logf("formats %v; %d ledgers kept, %d dropped; %d cursors move", formats, kept, dropped, moved)
		if len(formats) != 6 || len(sp.Compressed) != 5 {
			t.Errorf("formats seen %v, Special.Compressed %v", formats, sp.Compressed)
		}
		for f, p := range sp.Compressed {
			if _, got, _ := managedledger.Decode(get(p).data); got != f {
				t.Errorf("Special.Compressed[%v] = %s holds %v", f, p, got)
			}
		}
		if _, f, _ := managedledger.DecodeCursor(get(sp.CompressedCursor).data); !f.Header {
			t.Errorf("compressed cursor is %v", f)
		}
		if kept == 0 || dropped == 0 || moved == 0 || stale0 == 0 || compacted == 0 || terminated == 0 {
			t.Errorf("no mix: %d kept, %d dropped, %d moved, %d cursors without ledger, %d compacted, %d terminated", kept, dropped, moved, stale0, compacted, terminated)
		}
	})

	t.Run("schemas", func(t *testing.T) {
		if len(sum.Schemas) == 0 {
			t.Fatal("no schemas")
		}
		for _, s := range sum.Schemas {
			ids, err := managedledger.SchemaLedgers(get(s.Path).data)
			if err != nil || !slices.Equal(ids, s.Ledgers) {
				t.Errorf("%s: %v, %v; summary %v", s.Path, ids, err, s.Ledgers)
			}
			for _, l := range s.Ledgers {
				get(ledgerPath(l))
			}
		}
	})

	t.Run("cluster-wide nodes", func(t *testing.T) {
		for _, p := range []string{"/admin/clusters/" + clusterName, "/ledgers/LAYOUT", "/ledgers/INSTANCEID",
			"/ledgers/available", "/ledgers/cookies/10.0.1.10:3181", "/loadbalance/brokers/10.0.0.10:8080",
			"/loadbalance/bundle-data/public/default/" + bundle, "/namespace/public/default/" + bundle,
			"/admin/partitioned-topics/public/default/persistent/events", "/counters/producer-name", "/stream", "/pulsar", "/bookies"} {
			get(p)
		}
		for _, p := range append(append([]string{}, sum.BookKeeperBound...), sum.Quotas...) {
			get(p)
		}
		if len(sum.BookKeeperBound) == 0 || len(sum.Quotas) == 0 {
			t.Errorf("summary lists %d functions/packages/stream znodes and %d quotas", len(sum.BookKeeperBound), len(sum.Quotas))
		}
	})

	t.Run("a second run refuses the non-empty tree", func(t *testing.T) {
		_, err := Populate(context.Background(), conn, Options{Tenants: 1, NamespacesPerTenant: 1})
		if !errors.Is(err, ErrNotEmpty) || !errors.Is(err, zk.ErrNodeExists) {
			t.Errorf("second Populate: %v", err)
		}
	})

	t.Run("ephemerals end with the session", func(t *testing.T) {
		conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := 0
			for _, n := range walk(t, super) {
				if n.stat.EphemeralOwner == conn.SessionID() {
					left++
				}
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d ephemerals outlive the session", left)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestPopulateStoppedClusterCustomPathOneCodec(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	conn := connect(t, z.Addr)
	o := Options{Tenants: 2, NamespacesPerTenant: 1, TopicsPerNamespace: 3, SubscriptionsPerTopic: 1, LedgersPerTopic: 3,
		ManagedLedgerPath: "/pulsar/ml", Compression: mlpb.CompressionType_SNAPPY}
	sum, err := Populate(context.Background(), conn, o)
	if err != nil {
		t.Fatal(err)
	}
	nodes := walk(t, conn)
	if sum.Ephemeral != 0 || len(nodes) != sum.Persistent {
		t.Errorf("walk found %d znodes; Summary says %d persistent, %d ephemeral", len(nodes), sum.Persistent, sum.Ephemeral)
	}
	snappy := managedledger.Format{Header: true, Compression: mlpb.CompressionType_SNAPPY}
	for i, top := range sum.Topics {
		want := managedledger.Plain
		if i%3 == 0 {
			want = snappy
		}
		if top.Format != want || !strings.HasPrefix(top.Path, "/pulsar/ml/") {
			t.Errorf("topic %d %s: %v", i, top.Path, top.Format)
		}
		for _, c := range top.Cursors {
			if c.Format != managedledger.Plain {
				t.Errorf("%s: %v", c.Path, c.Format)
			}
		}
	}
	sp := sum.Special
	if len(sp.Compressed) != 1 || sp.Compressed[snappy] == "" || sp.Binary != "" || sp.Digest != nil || sp.Sequential != nil {
		t.Errorf("special cases without Awkward: %+v", sp)
	}
	for _, n := range nodes {
		if strings.HasPrefix(n.path, "/managed-ledgers") || strings.HasPrefix(n.path, awkwardRoot) {
			t.Errorf("unexpected %s", n.path)
		}
	}
}
