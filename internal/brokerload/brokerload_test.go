package brokerload

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

const ml = "/managed-ledgers/t/ns/persistent/topic"

func offloaded(id, entries int64) *mlpb.ManagedLedgerInfo_LedgerInfo {
	return &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(id), Entries: proto.Int64(entries),
		OffloadContext: &mlpb.OffloadContext{Complete: proto.Bool(true), BookkeeperDeleted: proto.Bool(true)}}
}

func plain(id, entries int64) *mlpb.ManagedLedgerInfo_LedgerInfo {
	return &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(id), Entries: proto.Int64(entries)}
}

type tree map[string]znode.Record

func (tr tree) put(path string, data []byte) tree {
	tr[path] = znode.Record{Path: path, Data: data}
	return tr
}

func (tr tree) ledger(t *testing.T, info *mlpb.ManagedLedgerInfo) tree {
	b, err := proto.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return tr.put(ml, b)
}

func (tr tree) cursor(t *testing.T, name string, info *mlpb.ManagedCursorInfo) tree {
	b, err := proto.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return tr.put(ml+"/"+name, b)
}

// floor is what a restore sets: ids from HOB 1 up, HOB znode fresh (cversion 0).
func (tr tree) floor() tree {
	return tr.put("/ledgers/idgen-long", nil).put("/ledgers/idgen-long/HOB-0000000001", nil)
}

func load(t *testing.T, tr tree, o Options) *Result {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = time.UnixMilli(1_800_000_000_000)
	}
	r, err := Load(tr, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(ls []Ledger) []int64 {
	var out []int64
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

// The broker opens the highest listed ledger whatever its offload state: without an entry
// above the kept ledgers, a topic loses its newest offloaded ledger.
func TestHighestLedgerIsOpenedAndDroppedWhenMissing(t *testing.T) {
	r := load(t, tree{}.floor().ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(3, 10), offloaded(7, 5)}}), Options{})
	tp := r.Topics[ml]
	if !slices.Equal(tp.Removed, []int64{7}) || !slices.Equal(ids(tp.Ledgers), []int64{3, 1 << 32}) {
		t.Fatalf("removed %v, ledgers %v", tp.Removed, ids(tp.Ledgers))
	}
	// With a tail (no entries, no offload context) above them, both survive.
	r = load(t, tree{}.floor().ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(3, 10), offloaded(7, 5), plain(9, 0)}}), Options{})
	tp = r.Topics[ml]
	if !slices.Equal(tp.Removed, []int64{9}) || !slices.Equal(ids(tp.Ledgers), []int64{3, 7, 1 << 32}) || tp.LastConfirmed != (Position{LedgerID: 7, EntryID: 4}) {
		t.Fatalf("removed %v, ledgers %v, last confirmed %v", tp.Removed, ids(tp.Ledgers), tp.LastConfirmed)
	}
	if len(r.Problems) != 0 || r.NextLedgerID != 1<<32+1 {
		t.Errorf("problems %v, next id %d", r.Problems, r.NextLedgerID)
	}
}

// Without a floor a new BookKeeper hands out ids from 0: the new ledger sorts below the
// restored ones, the last confirmed entry is (new, -1), and cursors are clamped to it.
func TestWithoutFloorNewLedgerSortsBelowAndCursorsAreClamped(t *testing.T) {
	tr := tree{}.ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(30, 10), plain(40, 0)}}).
		cursor(t, "sub", &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1), MarkDeleteLedgerId: proto.Int64(30), MarkDeleteEntryId: proto.Int64(2)})
	tp := load(t, tr, Options{}).Topics[ml]
	if tp.Current != 0 || tp.LastConfirmed != (Position{LedgerID: 0, EntryID: -1}) || tp.Cursors["sub"].MarkDelete != (Position{LedgerID: 0, EntryID: -1}) {
		t.Fatalf("current %d, last confirmed %v, cursor %v", tp.Current, tp.LastConfirmed, tp.Cursors["sub"])
	}
	tp = load(t, tr.floor(), Options{}).Topics[ml]
	if tp.Current != 1<<32 || tp.Cursors["sub"].MarkDelete != (Position{LedgerID: 30, EntryID: 2}) {
		t.Fatalf("with the floor: current %d, cursor %v", tp.Current, tp.Cursors["sub"])
	}
}

func TestProblems(t *testing.T) {
	locator, _ := proto.Marshal(&mlpb.SchemaLocator{Info: &mlpb.IndexEntry{Position: &mlpb.PositionInfo{LedgerId: proto.Int64(12), EntryId: proto.Int64(0)}}})
	tr := tree{}.floor().
		// The new cluster's BookKeeper already has ledger 7.
		put("/ledgers/00/0000/L0007", []byte("metadata")).
		ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{plain(5, 3), offloaded(6, 2), offloaded(7, 1)}}).
		cursor(t, managedledger.CompactionCursor, &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1), LastActive: proto.Int64(1_700_000_000_000),
			Properties: []*mlpb.LongProperty{{Name: proto.String(managedledger.CompactedTopicLedgerProperty), Value: proto.Int64(8)}}}).
		put("/schemas/t/ns/topic", locator)
	r := load(t, tr, Options{ExpireAfter: 24 * time.Hour})
	want := []string{
		"opens and fences ledger 7",
		"ledger 5 is read from BookKeeper, which has no such ledger",
		"lastActive 2023-11-14T22:13:20Z is older than the subscription expiration",
		"the compactor opens compacted ledger 8 (no such ledger)",
		"schema /schemas/t/ns/topic: opens ledger 12",
	}
	if len(r.Problems) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(r.Problems, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(r.Problems[i], w) {
			t.Errorf("problem %d: %q, want one containing %q", i, r.Problems[i], w)
		}
	}
}

// A ledger of the new cluster in the long hierarchical layout (ids from Integer.MAX_VALUE)
// is one too: a topic listing its id as its highest fences it.
func TestLongLayoutLedgersAreTheNewClusters(t *testing.T) {
	id := int64(5<<32 | 1)
	tr := tree{}.floor().put("/ledgers/000/0000/0214/7483/L6481", []byte("metadata")).
		ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(3, 1), plain(id, 0)}})
	r := load(t, tr, Options{})
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "opens and fences ledger 21474836481") {
		t.Fatalf("problems %v", r.Problems)
	}
}

func TestCursorRecovery(t *testing.T) {
	tr := tree{}.floor().ledger(t, &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(10, 5), offloaded(20, 5), plain(30, 0)}}).
		// Its own ledger is gone: the znode's position, raised to the first position.
		cursor(t, "from-ledger", &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(99), MarkDeleteLedgerId: proto.Int64(4), MarkDeleteEntryId: proto.Int64(1)}).
		// At the start of a ledger no longer listed: the start of the next one.
		cursor(t, "at-start", &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1), MarkDeleteLedgerId: proto.Int64(15), MarkDeleteEntryId: proto.Int64(-1)}).
		// Beyond the last confirmed entry: clamped to it.
		cursor(t, "beyond", &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1), MarkDeleteLedgerId: proto.Int64(30), MarkDeleteEntryId: proto.Int64(8)}).
		cursor(t, "inside", &mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(-1), MarkDeleteLedgerId: proto.Int64(20), MarkDeleteEntryId: proto.Int64(1), LastActive: proto.Int64(5)})
	now := time.UnixMilli(1_800_000_000_000)
	tp := load(t, tr, Options{Now: now}).Topics[ml]
	for name, want := range map[string]Position{
		"from-ledger": {LedgerID: 10, EntryID: -1},
		"at-start":    {LedgerID: 20, EntryID: -1},
		"beyond":      {LedgerID: 20, EntryID: 4},
		"inside":      {LedgerID: 20, EntryID: 1},
	} {
		if got := tp.Cursors[name].MarkDelete; got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if tp.Cursors["inside"].LastActive != 5 || tp.Cursors["beyond"].LastActive != now.UnixMilli() {
		t.Errorf("lastActive %d, %d", tp.Cursors["inside"].LastActive, tp.Cursors["beyond"].LastActive)
	}
}

func TestTerminatedTopicCreatesNoLedger(t *testing.T) {
	tr := tree{}.floor().ledger(t, &mlpb.ManagedLedgerInfo{
		LedgerInfo:         []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(10, 5), plain(11, 0)},
		TerminatedPosition: &mlpb.NestedPositionInfo{LedgerId: proto.Int64(10), EntryId: proto.Int64(4)},
	})
	r := load(t, tr, Options{})
	tp := r.Topics[ml]
	if !tp.Terminated || tp.Current != 0 || !slices.Equal(ids(tp.Ledgers), []int64{10}) || tp.LastConfirmed != (Position{LedgerID: 10, EntryID: 4}) || r.NextLedgerID != 1<<32 {
		t.Fatalf("%+v, next %d", tp, r.NextLedgerID)
	}
}

func TestGenerator(t *testing.T) {
	for name, tc := range map[string]struct {
		tr   tree
		want int64
	}{
		"short, fresh":            {tree{}, 0},
		"short, counter at 41":    {tree{"/ledgers/idgen": {Stat: znode.Stat{Cversion: 41}}}, 41},
		"long without HOB":        {tree{}.put("/ledgers/idgen-long", nil), 1 << 32},
		"highest HOB and its seq": {tree{}.put("/ledgers/idgen-long", nil).put("/ledgers/idgen-long/HOB-0000000002", nil).put("/ledgers/idgen-long/HOB-0000000009", nil).put("/ledgers/idgen-long/HOB-0000000009/x", nil), 9 << 32},
	} {
		if r := load(t, tc.tr, Options{}); r.NextLedgerID != tc.want {
			t.Errorf("%s: next id %d, want %d", name, r.NextLedgerID, tc.want)
		}
	}
}
