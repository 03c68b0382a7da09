package inspect

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func pack(t *testing.T, recs ...znode.Record) []byte {
	t.Helper()
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for _, r := range recs {
		r.ACL = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
		r.Mode = znode.ModePersistent
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{ManagedLedgerPath: "/managed-ledgers", StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0),
		Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()}
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, &stream, m.StreamBytes); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
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
