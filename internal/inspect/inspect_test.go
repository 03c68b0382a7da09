package inspect

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive/archivetest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// pack writes a version-1 archive of recs, each persistent and open to anyone.
func pack(t *testing.T, recs ...znode.Record) []byte {
	t.Helper()
	for i := range recs {
		recs[i].ACL = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
		recs[i].Mode = znode.ModePersistent
	}
	return archivetest.V1(t, "/managed-ledgers", recs)
}

func TestReadCountsByPathTenantAndNamespace(t *testing.T) {
	a := pack(t,
		znode.Record{Path: "/"},
		znode.Record{Path: "/admin"},
		znode.Record{Path: "/admin/policies"},
		znode.Record{Path: "/admin/policies/t", Data: []byte("{}"), Stat: znode.Stat{NumChildren: 1}},
		znode.Record{Path: "/admin/policies/t/ns", Data: []byte(`{"a":1}`)},
		znode.Record{Path: "/admin/partitioned-topics/t/ns/persistent/p", Data: []byte(`{"partitions":2}`)},
		znode.Record{Path: "/managed-ledgers"},
		znode.Record{Path: "/managed-ledgers/t/ns/persistent/x", Stat: znode.Stat{NumChildren: 1}},
		znode.Record{Path: "/managed-ledgers/t/ns/persistent/x/sub"},
		znode.Record{Path: "/ledgers/00/0000/L0001", Data: []byte("12345")},
	)
	s, err := Read(context.Background(), bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	want := []PathCount{{"/", Count{1, 0}}, {"/admin", Count{5, 25}}, {"/ledgers", Count{1, 5}}, {"/managed-ledgers", Count{3, 0}}}
	if len(s.ByTopLevel) != len(want) {
		t.Fatalf("by top level %+v", s.ByTopLevel)
	}
	for i := range want {
		if s.ByTopLevel[i] != want[i] {
			t.Errorf("by top level %+v, want %+v", s.ByTopLevel[i], want[i])
		}
	}
	if len(s.Tenants) != 1 || s.Tenants[0].Name != "t" || s.Tenants[0].Znodes != 5 || len(s.Tenants[0].Namespaces) != 1 {
		t.Fatalf("tenants %+v", s.Tenants)
	}
	ns := s.Tenants[0].Namespaces[0]
	if ns.Name != "t/ns" || ns.Znodes != 4 || ns.Topics != 1 || ns.Subscriptions != 1 || ns.PartitionedTopics != 1 {
		t.Errorf("namespace %+v", ns)
	}
	if s.TenantZnodes != 1 || s.NamespaceZnodes != 1 || s.Topics != 1 || s.Subscriptions != 1 || s.PartitionedTopics != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.Restore.Create != 8 || s.Restore.Skipped[restore.SkipBookKeeper] != 1 || s.Restore.Skipped[restore.SkipRoot] != 1 {
		t.Errorf("restore plan: create %d, skipped %v", s.Restore.Create, s.Restore.Skipped)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"  t/ns", "create 8 znodes", "bookkeeper 1"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
}

func TestReadRefusesBadArchivesWithOneLine(t *testing.T) {
	good := pack(t, znode.Record{Path: "/a"})
	badML := pack(t, znode.Record{Path: "/managed-ledgers/t/ns/persistent/x", Data: []byte{0xff, 0xff}})
	for name, c := range map[string]struct {
		data []byte
		is   error
	}{
		"not gzip":               {[]byte("text"), archive.ErrCorrupt},
		"truncated":              {good[:len(good)-10], archive.ErrCorrupt},
		"undecodable ML payload": {badML, restore.ErrUnrestorable},
	} {
		_, err := Read(context.Background(), bytes.NewReader(c.data))
		if !errors.Is(err, c.is) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line wrapping %v", name, err, c.is)
		}
	}
}

// TestReadTwoStores summarizes an archive of a cluster with a configuration store apart:
// tenants and namespaces are counted from the configuration store, topics from the local
// one, and the configuration store's own paths and restore are said apart.
func TestReadTwoStores(t *testing.T) {
	open := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	r := func(path, data string, children int32) znode.Record {
		return znode.Record{Path: path, Data: []byte(data), ACL: open, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: children}}
	}
	local := []znode.Record{
		r("/", "", 2), r("/admin", "", 1), r("/admin/local-policies/t/ns", "{}", 0),
		r("/managed-ledgers", "", 1), r("/managed-ledgers/t/ns/persistent/x", "", 1), r("/managed-ledgers/t/ns/persistent/x/sub", "", 0),
	}
	conf := []znode.Record{
		r("/", "", 1), r("/admin", "", 3), r("/admin/clusters", "", 1), r("/admin/clusters/c1", `{"serviceUrl":"http://a"}`, 0),
		r("/admin/policies", "", 1), r("/admin/policies/t", "{}", 1), r("/admin/policies/t/ns", `{"a":1}`, 0),
		r("/admin/partitioned-topics/t/ns/persistent/p", `{"partitions":2}`, 0),
	}
	s, err := Read(context.Background(), bytes.NewReader(archivetest.Roles(t, local, conf)))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Configuration
	if c == nil || c.Source != "zk:127.0.0.1:2181/configuration" {
		t.Fatalf("configuration %+v", c)
	}
	wantConf := []PathCount{{"/", Count{1, 0}}, {"/admin", Count{7, 50}}}
	if len(c.ByTopLevel) != len(wantConf) || c.ByTopLevel[0] != wantConf[0] || c.ByTopLevel[1] != wantConf[1] {
		t.Errorf("configuration by top level %+v, want %+v", c.ByTopLevel, wantConf)
	}
	if c.Create != 7 || c.Skipped[restore.SkipRoot] != 1 {
		t.Errorf("configuration restore: create %d, skipped %v", c.Create, c.Skipped)
	}
	wantLocal := []PathCount{{"/", Count{1, 0}}, {"/admin", Count{2, 2}}, {"/managed-ledgers", Count{3, 0}}}
	if len(s.ByTopLevel) != len(wantLocal) || s.ByTopLevel[0] != wantLocal[0] || s.ByTopLevel[1] != wantLocal[1] || s.ByTopLevel[2] != wantLocal[2] {
		t.Errorf("local by top level %+v, want %+v", s.ByTopLevel, wantLocal)
	}
	// The local store's plan holds only its own znodes.
	if s.Restore.Znodes != int64(len(local)) || s.Restore.ManagedLedgers != 1 {
		t.Errorf("local restore plan: %d znodes, %d managed ledgers", s.Restore.Znodes, s.Restore.ManagedLedgers)
	}
	if s.TenantZnodes != 1 || s.NamespaceZnodes != 1 || s.Topics != 1 || s.Subscriptions != 1 || s.PartitionedTopics != 1 {
		t.Errorf("summary %+v", s)
	}
	// Tenant t owns its policies (configuration), its namespace's and partitioned topic's,
	// and its local policies and managed ledger with its cursor (local).
	if len(s.Tenants) != 1 || s.Tenants[0].Znodes != 6 || len(s.Tenants[0].Namespaces) != 1 {
		t.Fatalf("tenants %+v", s.Tenants)
	}
	if ns := s.Tenants[0].Namespaces[0]; ns.Znodes != 5 || ns.Topics != 1 || ns.PartitionedTopics != 1 {
		t.Errorf("namespace %+v", ns)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"top-level path (local store)", "top-level path (configuration store zk:127.0.0.1:2181/configuration)",
		"and in the configuration store create 7 znodes and leave out 1: root 1"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
