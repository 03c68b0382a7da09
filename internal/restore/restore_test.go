package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive/archivetest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

var open = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}

func rec(path string, data []byte, children int32) znode.Record {
	return znode.Record{Path: path, Data: data, ACL: open, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: children}}
}

// buildArchive packs records as the backup does.
func buildArchive(t testing.TB, mlPath string, recs []znode.Record) []byte {
	t.Helper()
	return archivetest.V1(t, mlPath, recs)
}

func ledger(id, entries int64, complete bool) *mlpb.ManagedLedgerInfo_LedgerInfo {
	li := &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(id), Entries: proto.Int64(entries), Size: proto.Int64(entries * 10)}
	if complete {
		li.OffloadContext = &mlpb.OffloadContext{UidMsb: proto.Int64(id), UidLsb: proto.Int64(-id), Complete: proto.Bool(true),
			DriverMetadata: &mlpb.OffloadDriverMetadata{Name: proto.String("aws-s3")}}
	}
	return li
}

func mlPayload(t testing.TB, c mlpb.CompressionType, ledgers ...*mlpb.ManagedLedgerInfo_LedgerInfo) []byte {
	t.Helper()
	b, err := managedledger.Encode(&mlpb.ManagedLedgerInfo{LedgerInfo: ledgers}, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cursorPayload(t testing.TB, c mlpb.CompressionType, ledgerID, entryID int64) []byte {
	t.Helper()
	b, err := managedledger.Encode(&mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(99), MarkDeleteLedgerId: proto.Int64(ledgerID), MarkDeleteEntryId: proto.Int64(entryID)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSkipReason(t *testing.T) {
	for path, want := range map[string]string{
		"/":                                   SkipRoot,
		"/ledgers":                            SkipBookKeeper,
		"/ledgers/00/0000/L0001":              SkipBookKeeper,
		"/loadbalance/brokers":                SkipLiveBrokers,
		"/loadbalance/brokers/10.0.0.1:8080":  SkipLiveBrokers,
		"/loadbalance/leader":                 SkipLiveBrokers,
		"/loadbalance/bundle-data/a/b/0x0_0x": SkipLoadStatistics,
		"/loadbalance/broker-time-average/x":  SkipLoadStatistics,
		"/pulsar/functions":                   SkipBookKeeperBound,
		"/pulsar/functions/public/default/f":  SkipBookKeeperBound,
		"/pulsar/packages/function/a":         SkipBookKeeperBound,
		"/stream":                             SkipBookKeeperBound,
		"/stream/metadata":                    SkipBookKeeperBound,
		"/schemas/public/default/t":           SkipSchemaLocator,
		"/loadbalance/resource-quota":         "",
		"/loadbalance/resource-quota/default": "",
		"/pulsar":                             "",
		"/pulsar/functionsX":                  "",
		"/streams":                            "",
		"/schemas/public/default":             "",
		"/namespace/public/default":           SkipBundleOwnership,
		"/namespace/public/default/0x0_0xf":   SkipBundleOwnership,
		"/metadata-restore":                   SkipMarker,
		"/zookeeper/quota":                    SkipZooKeeper,
		"/loadbalance":                        "",
		"/namespace":                          "",
		"/ledgersX":                           "",
		"/admin/policies/public":              "",
		"/managed-ledgers/public/default":     "",
	} {
		got, skip := SkipReason(path)
		if got != want || skip != (want != "") {
			t.Errorf("SkipReason(%q) = %q, %v; want %q", path, got, skip, want)
		}
	}
}

func TestResolvePoint(t *testing.T) {
	for _, tc := range []struct{ point, bucket, want, err string }{
		{"s3a://bk1/dir/x.tar.gz", "", "s3a://bk1/dir/x.tar.gz", ""},
		{"file:///tmp/b/x.tar.gz", "s3a://other", "file:///tmp/b/x.tar.gz", ""},
		{"x.tar.gz", "s3a://bkt/prefix", "s3a://bkt/prefix/x.tar.gz", ""},
		{"x.tar.gz", "", "", "bare key"},
		{"", "s3a://bkt", "", "empty"},
		{"s3a://bkt/", "", "", "not an object"},
		{"../x.tar.gz", "s3a://bkt", "", ".."},
		{"s3a://user:secret@bkt/x", "", "", "credentials"},
	} {
		got, err := ResolvePoint(tc.point, tc.bucket)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidInput) || strings.Contains(err.Error(), "secret") {
				t.Errorf("ResolvePoint(%q, %q): err %v, want one containing %q", tc.point, tc.bucket, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolvePoint(%q, %q) = %q, %v; want %q", tc.point, tc.bucket, got, err, tc.want)
		}
	}
}

// Cursors of several topics interleave in a walk's output; each is rewritten with its own
// topic's kept ledgers, and the Rewriter forgets a topic once its cursors are all seen.
func TestRewriterInterleavedCursorsAndCompressedForms(t *testing.T) {
	restoredAt := time.UnixMilli(1_800_000_000_123)
	rw := NewRewriter("/managed-ledgers", restoredAt)
	a := "/managed-ledgers/t/ns/persistent/a"
	b := "/managed-ledgers/t/ns/persistent/b"
	items := []znode.Record{
		rec("/managed-ledgers/t/ns/persistent", nil, 2),
		rec(a, mlPayload(t, mlpb.CompressionType_ZSTD, ledger(1, 10, true), ledger(2, 5, false), ledger(3, 7, true), ledger(4, 0, false)), 2),
		rec(b, mlPayload(t, mlpb.CompressionType_NONE, ledger(5, 10, false), ledger(6, 3, true)), 1),
		rec(a+"/sub-1", cursorPayload(t, mlpb.CompressionType_LZ4, 2, 3), 0),    // dropped ledger 2 -> (1, 9)
		rec(b+"/sub-1", cursorPayload(t, mlpb.CompressionType_NONE, 5, 3), 0),   // dropped, none before -> (6, -1)
		rec(a+"/sub-2", cursorPayload(t, mlpb.CompressionType_SNAPPY, 3, 4), 0), // kept ledger -> stays
	}
	want := map[string]managedledger.Position{a + "/sub-1": {LedgerID: 1, EntryID: 9}, b + "/sub-1": {LedgerID: 6, EntryID: -1}, a + "/sub-2": {LedgerID: 3, EntryID: 4}}
	for _, r := range items {
		it, err := rw.Next(r)
		if err != nil {
			t.Fatal(err)
		}
		switch it.Kind {
		case KindManagedLedger:
			info, f, err := managedledger.Decode(it.Record.Data)
			if err != nil || f.Header {
				t.Fatalf("%s: rewritten payload %v, format %s", r.Path, err, f)
			}
			// The kept ledgers, then the tail: the highest id, with no offload context.
			last := info.LedgerInfo[len(info.LedgerInfo)-1]
			for _, li := range info.LedgerInfo[:len(info.LedgerInfo)-1] {
				if !li.GetOffloadContext().GetComplete() || !li.GetOffloadContext().GetBookkeeperDeleted() {
					t.Errorf("%s: kept ledger %d not complete+bookkeeperDeleted", r.Path, li.GetLedgerId())
				}
			}
			if last.OffloadContext != nil || last.GetEntries() != 0 || last.GetLedgerId() != it.Ledger.Tail {
				t.Errorf("%s: last entry %v is not the tail %d", r.Path, last, it.Ledger.Tail)
			}
			if r.Path == a && (!slices.Equal(it.Ledger.KeptIDs(), []int64{1, 3}) || !slices.Equal(it.Ledger.Dropped, []int64{2, 4}) || it.Ledger.Format.String() != "zstd" || it.Ledger.Tail != 4) {
				t.Errorf("a: %+v", it.Ledger)
			}
			if r.Path == b && it.Ledger.Tail != 7 { // the highest, 6, is kept
				t.Errorf("b: tail %d, want 7", it.Ledger.Tail)
			}
		case KindCursor:
			info, _, err := managedledger.DecodeCursor(it.Record.Data)
			if err != nil {
				t.Fatal(err)
			}
			got := managedledger.Position{LedgerID: info.GetMarkDeleteLedgerId(), EntryID: info.GetMarkDeleteEntryId()}
			if info.GetCursorsLedgerId() != -1 || got != want[r.Path] || info.GetLastActive() != restoredAt.UnixMilli() || !it.Cursor.Stale {
				t.Errorf("%s: cursorsLedgerId %d, position %s, lastActive %d; want -1, %s, %d", r.Path, info.GetCursorsLedgerId(), got, info.GetLastActive(), want[r.Path], restoredAt.UnixMilli())
			}
		default:
			if r.Path != "/managed-ledgers/t/ns/persistent" {
				t.Errorf("%s: kind %d", r.Path, it.Kind)
			}
		}
	}
	if rw.Pending() != 0 {
		t.Fatalf("%d topics still held after all their cursors", rw.Pending())
	}
	if _, err := rw.Next(rec("/managed-ledgers/t/ns/persistent/zz/sub", cursorPayload(t, 0, 1, 1), 0)); err == nil {
		t.Fatal("a cursor whose managed ledger never came was accepted")
	}
}

func TestRewriterV1LayoutAndNonTopics(t *testing.T) {
	rw := NewRewriter("/ml", time.Now())
	for path, kind := range map[string]Kind{
		"/ml/t/cluster/ns/persistent/topic":           KindManagedLedger,
		"/ml/t/ns/persistent/topic":                   KindManagedLedger,
		"/ml/t/ns/persistent":                         KindPlain,
		"/ml/t/ns/non-persistent/topic":               KindPlain,
		"/managed-ledgers/t/ns/persistent/x":          KindPlain,
		"/schemas/t/ns/topic":                         KindSchema,
		"/schemas/t/ns":                               KindPlain,
		"/admin/partitioned-topics/t/ns/persistent/x": KindPlain,
	} {
		data := []byte{}
		if kind == KindManagedLedger {
			data = mlPayload(t, 0, ledger(1, 1, true))
		}
		if kind == KindSchema {
			b, _ := proto.Marshal(&mlpb.SchemaLocator{Info: &mlpb.IndexEntry{Version: proto.Int64(0), Position: &mlpb.PositionInfo{LedgerId: proto.Int64(8), EntryId: proto.Int64(0)}}})
			data = b
		}
		it, err := rw.Next(rec(path, data, 0))
		if err != nil || it.Kind != kind {
			t.Errorf("%s: kind %d, err %v; want %d", path, it.Kind, err, kind)
		}
		if kind == KindSchema && (!slices.Equal(it.SchemaLedgers, []int64{8}) || it.Skip != SkipSchemaLocator) {
			t.Errorf("%s: schema ledgers %v, skip %q", path, it.SchemaLedgers, it.Skip)
		}
	}
	if _, err := rw.Next(rec("/ml/t/ns/persistent/bad", []byte{0xff, 0xff, 0xff}, 0)); err == nil || !strings.Contains(err.Error(), "/ml/t/ns/persistent/bad") {
		t.Fatalf("undecodable managed ledger: %v", err)
	}
}

const sampleML = "/managed-ledgers/public/default/persistent/t1"

func sampleTree(t testing.TB) []znode.Record {
	ml := sampleML
	compaction, err := managedledger.Encode(&mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1),
		MarkDeleteLedgerId: proto.Int64(1), MarkDeleteEntryId: proto.Int64(3),
		Properties: []*mlpb.LongProperty{{Name: proto.String(managedledger.CompactedTopicLedgerProperty), Value: proto.Int64(12)}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	locator, err := proto.Marshal(&mlpb.SchemaLocator{Info: &mlpb.IndexEntry{Version: proto.Int64(0), Position: &mlpb.PositionInfo{LedgerId: proto.Int64(8), EntryId: proto.Int64(0)}, Hash: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	return []znode.Record{
		rec("/", nil, 8),
		rec("/admin", nil, 2),
		rec("/admin/policies", []byte("{}"), 0),
		rec("/admin/clusters", nil, 1),
		rec("/admin/clusters/c1", []byte(`{"serviceUrl":"http://old"}`), 0),
		rec("/ledgers", nil, 2),
		rec("/ledgers/LAYOUT", []byte("2"), 0),
		rec("/ledgers/00", nil, 1),
		rec("/ledgers/00/0000", nil, 1),
		rec("/ledgers/00/0000/L0031", []byte("ledger metadata"), 0),
		rec("/loadbalance", nil, 3),
		rec("/loadbalance/brokers", nil, 0),
		rec("/loadbalance/bundle-data", nil, 0),
		rec("/loadbalance/resource-quota", nil, 1),
		rec("/loadbalance/resource-quota/default", []byte(`{"msgRateIn":40}`), 0),
		rec("/managed-ledgers", nil, 1),
		rec("/managed-ledgers/public", nil, 1),
		rec("/managed-ledgers/public/default", nil, 1),
		rec("/managed-ledgers/public/default/persistent", nil, 1),
		rec(ml, mlPayload(t, mlpb.CompressionType_ZLIB, ledger(1, 10, true), ledger(2, 10, false)), 2),
		rec(ml+"/sub", cursorPayload(t, 0, 2, 5), 0),
		rec(ml+"/"+managedledger.CompactionCursor, compaction, 0),
		rec("/namespace", nil, 1),
		rec("/namespace/public", nil, 0),
		rec("/pulsar", nil, 1),
		rec("/pulsar/functions", []byte("dlog metadata"), 1),
		rec("/pulsar/functions/public", nil, 0),
		rec("/schemas", nil, 1),
		rec("/schemas/public", nil, 1),
		rec("/schemas/public/default", nil, 1),
		rec("/schemas/public/default/t1", locator, 0),
		rec("/stream", nil, 0),
	}
}

func TestValidateAndPlan(t *testing.T) {
	ctx := context.Background()
	tree := sampleTree(t)
	good := buildArchive(t, "/managed-ledgers", tree)
	v, err := Validate(ctx, bytes.NewReader(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Manifest.Znodes != int64(len(tree)) {
		t.Fatalf("manifest %+v", v.Manifest)
	}
	// The highest ledger id named is 99, the cursor's own ledger (below the /ledgers
	// metadata's 31 and the schema's 8 and the compacted 12): the floor is HOB 1.
	wantFloor := LedgerIDFloor{Highest: 99, HOB: 1, Path: "/ledgers/idgen-long/HOB-0000000001", FirstID: 1 << 32}
	target := map[string]znode.Record{
		"/admin":             rec("/admin", nil, 0),                       // identical
		"/admin/clusters/c1": rec("/admin/clusters/c1", []byte("new"), 0), // initialize-cluster-metadata's: replaced
		"/pulsar":            rec("/pulsar", []byte("other"), 0),          // conflict
		"/extra":             rec("/extra", nil, 0),                       // not in the archive
	}
	p, err := MakePlan(ctx, bytes.NewReader(good), PlanInput{Target: target, TargetLedgers: map[int64]bool{1: true, 2: true, 8: true, 99: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{SkipRoot: 1, SkipBookKeeper: 5, SkipBookKeeperBound: 3, SkipSchemaLocator: 1, SkipLiveBrokers: 1,
		SkipLoadStatistics: 1, SkipBundleOwnership: 1, SkipZooKeeper: 0, SkipMarker: 0}
	var skipped int64
	for k, n := range want {
		skipped += n
		if p.Skipped[k] != n {
			t.Errorf("skipped[%s] = %d, want %d", k, p.Skipped[k], n)
		}
	}
	if p.Znodes != int64(len(tree)) || p.Create != int64(len(tree))-skipped || p.CreateByTopLevel["/managed-ledgers"] != 7 || p.CreateByTopLevel["/admin"] != 4 ||
		p.CreateByTopLevel["/loadbalance"] != 3 || p.CreateByTopLevel["/schemas"] != 3 ||
		p.LedgersKept != 1 || p.LedgersDropped != 1 || p.CursorsReset != 1 || p.ManagedLedgers != 1 || p.Cursors != 2 ||
		p.PayloadFormats["managed-ledger/zlib"] != 1 || p.PayloadFormats["cursor/plain"] != 2 ||
		!slices.Equal(p.TopicsWithDataLoss, []string{"persistent://public/default/t1"}) ||
		p.Existing != 1 || p.ConflictsCount != 1 || !slices.Equal(p.Conflicts, []string{"/pulsar"}) ||
		!slices.Equal(p.InitReplaced, []string{"/admin/clusters/c1"}) {
		t.Fatalf("plan %+v", p)
	}
	if p.LedgerIDFloor != wantFloor {
		t.Errorf("plan floor %+v, want %+v", p.LedgerIDFloor, wantFloor)
	}
	for name, got := range map[string]Listed{"schemas": p.SchemasToRegister, "compaction": p.CompactionReset, "stale": p.StaleCursors, "collisions": p.LedgerCollisions} {
		wantL := map[string]Listed{
			"schemas":    {1, []string{"public/default/t1"}},
			"compaction": {1, []string{"persistent://public/default/t1"}},
			"stale":      {1, []string{"persistent://public/default/t1 sub"}},
			// Kept ledger 1 and the tail, 2, are in the target's BookKeeper; ledgers the
			// restored tree does not list (the schema's 8, the cursor's own 99) do not count.
			"collisions": {2, []string{"persistent://public/default/t1 1", "persistent://public/default/t1 2"}},
		}[name]
		if got.Count != wantL.Count || !slices.Equal(got.First, wantL.First) {
			t.Errorf("%s: %+v, want %+v", name, got, wantL)
		}
	}
	if p.BookKeeperBoundSkipped["/pulsar/functions"] != 2 || p.BookKeeperBoundSkipped["/stream"] != 1 || p.BookKeeperBoundSkipped["/pulsar/packages"] != 0 {
		t.Errorf("bookkeeper-bound %v", p.BookKeeperBoundSkipped)
	}
	if len(p.Topics) != 1 || !slices.Equal(p.Topics[0].Kept, []int64{1}) || !slices.Equal(p.Topics[0].Dropped, []int64{2}) || p.Topics[0].Tail == nil || *p.Topics[0].Tail != 2 ||
		len(p.Topics[0].Cursors) != 1 || p.Topics[0].Cursors[0] != (CursorReset{Cursor: "sub", From: "2:5", To: "1:9"}) {
		t.Fatalf("topics %+v", p.Topics)
	}
}

func TestLedgerIDFloor(t *testing.T) {
	for path, want := range map[string]int64{
		"/ledgers/00/0000/L0031":                  31,
		"/ledgers/21/4748/L3647":                  2147483647,
		"/ledgers/000/0000/0021/4748/L3648":       2147483648,
		"/ledgers/922/3372/0368/5477/L5750":       9223372036854775750,
		"/ledgers/L0000000042":                    42,
		"/ledgers/idgen/ID-0000000077":            77,
		"/ledgers/idgen-long/HOB-0000000003":      3<<32 | 0xffffffff,
		"/ledgers/idgen-long/HOB-0000000003/ID-5": 3<<32 | 5,
	} {
		if got, ok := ledgerIDOfPath(path); !ok || got != want {
			t.Errorf("ledgerIDOfPath(%q) = %d, %v; want %d", path, got, ok, want)
		}
	}
	for _, path := range []string{"/ledgers", "/ledgers/LAYOUT", "/ledgers/INSTANCEID", "/ledgers/00/0000", "/ledgers/available/10.0.0.1:3181",
		"/ledgers/cookies/x", "/ledgers/idgen-long", "/ledgers/underreplication/ledgers/0000/L1", "/ledgersX/00/L1", "/ledgers/99/9999/L99999999999999999999"} {
		if got, ok := ledgerIDOfPath(path); ok {
			t.Errorf("ledgerIDOfPath(%q) = %d, want none", path, got)
		}
	}

	var ids ledgerIDs
	if f := ids.floor(); f != (LedgerIDFloor{}) {
		t.Errorf("no ids: %+v", f)
	}
	for _, tc := range []struct {
		id      int64
		hob     int64
		firstID int64
	}{
		{0, 1, 1 << 32},
		{1<<31 - 1, 1, 1 << 32},
		{1<<32 - 1, 1, 1 << 32},
		{1 << 32, 2, 2 << 32},
		{7<<32 | 0xffffffff, 8, 8 << 32},
	} {
		ids.add(tc.id)
		f := ids.floor()
		if f.Highest != tc.id || f.HOB != tc.hob || f.FirstID != tc.firstID || f.Path != HOBPath(tc.hob) || f.FirstID <= f.Highest {
			t.Errorf("after %d: %+v, want HOB %d", tc.id, f, tc.hob)
		}
	}
	ids.add(-1) // "none" in Pulsar's payloads
	if ids.floor().Highest != 7<<32|0xffffffff {
		t.Error("-1 counted as an id")
	}
}

func TestValidateRefusesBadArchives(t *testing.T) {
	ctx := context.Background()
	tree := sampleTree(t)
	orphan := append(slices.Clone(tree[:3]), rec("/x/y", nil, 0))
	dup := append(slices.Clone(tree), tree[2])
	badML := slices.Clone(tree)
	for i := range badML {
		if badML[i].Path == sampleML {
			badML[i].Data = []byte("not protobuf \xff\xff")
		}
	}
	good := buildArchive(t, "/managed-ledgers", tree)
	truncated := good[:len(good)/2]
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for name, tc := range map[string]struct {
		archive []byte
		want    string
		is      error
	}{
		"child before parent": {buildArchive(t, "", orphan), "/x/y comes before its parent /x", archive.ErrCorrupt},
		"duplicate":           {buildArchive(t, "", dup), "/admin/policies appears twice", archive.ErrCorrupt},
		"bad managed ledger":  {buildArchive(t, "", badML), "managed ledger /managed-ledgers/public/default/persistent/t1", ErrUnrestorable},
		"truncated":           {truncated, "corrupt archive", archive.ErrCorrupt},
		"bit flip":            {flipped, "corrupt archive", archive.ErrCorrupt},
	} {
		_, err := Validate(ctx, bytes.NewReader(tc.archive), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line containing %q wrapping %v", name, err, tc.want, tc.is)
		}
	}
}

func TestReadLinesBackward(t *testing.T) {
	for _, n := range []int{0, 1, 2, 1000, 50000} {
		var want []string
		var buf bytes.Buffer
		for i := range n {
			s := fmt.Sprintf("/p/%d/%s", i, strings.Repeat("x", i%97))
			want = append(want, s)
			buf.WriteString(s + "\n")
		}
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := readLinesBackward(f, func(s string) error { got = append(got, s); return nil }); err != nil {
			t.Fatal(err)
		}
		f.Close()
		slices.Reverse(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%d lines: got %d back, first difference somewhere", n, len(got))
		}
	}
}
