package managedledger

import (
	"slices"
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/proto"
)

func TestRewriteLedgerKeepsOnlyCompleteOffloads(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			in := sampleLedger()
			payload, err := Encode(in, c)
			if err != nil {
				t.Fatal(err)
			}
			out, r, err := RewriteLedger(payload)
			if err != nil {
				t.Fatal(err)
			}
			if want := []int64{10, 30}; !slices.Equal(r.KeptIDs(), want) {
				t.Errorf("kept %v, want %v", r.KeptIDs(), want)
			}
			if want := []KeptLedger{{10, 100}, {30, 50}}; !slices.Equal(r.Kept, want) {
				t.Errorf("kept %v, want %v", r.Kept, want)
			}
			if want := []int64{20, 40, 50}; !slices.Equal(r.Dropped, want) {
				t.Errorf("dropped %v, want %v", r.Dropped, want)
			}
			if r.Format.Compression != c || r.Format.Header != (c != mlpb.CompressionType_NONE) {
				t.Errorf("format %v", r.Format)
			}
			got, f, err := Decode(out)
			if err != nil || f != Plain {
				t.Fatalf("output: %v, %v", f, err)
			}
			if !r.HasTail || r.Tail != 50 || r.MaxID != 50 {
				t.Errorf("tail %d (%v), max id %d: want the highest id, 50", r.Tail, r.HasTail, r.MaxID)
			}
			// terminatedPosition 40:24 lies in a dropped ledger beyond the last kept entry.
			if !r.Terminated || r.TerminatedFrom != (Position{40, 24}) || r.TerminatedTo != (Position{30, 49}) {
				t.Errorf("terminated %v -> %v", r.TerminatedFrom, r.TerminatedTo)
			}
			want := sampleLedger()
			want.LedgerInfo = []*mlpb.ManagedLedgerInfo_LedgerInfo{want.LedgerInfo[0], want.LedgerInfo[2], {LedgerId: proto.Int64(50), Entries: proto.Int64(0)}}
			for _, li := range want.LedgerInfo[:2] {
				li.OffloadContext.BookkeeperDeleted = proto.Bool(true)
			}
			want.TerminatedPosition = pos(30, 49)
			if !proto.Equal(got, want) {
				t.Errorf("rewritten\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestRewriteLedgerEdgeCases(t *testing.T) {
	t.Run("empty payload", func(t *testing.T) {
		out, r, err := RewriteLedger(nil)
		if err != nil || len(out) != 0 || len(r.Kept)+len(r.Dropped) != 0 || r.HasTail || r.HasIDs {
			t.Errorf("%x %+v %v", out, r, err)
		}
	})
	t.Run("nothing offloaded", func(t *testing.T) {
		payload, _ := Encode(&mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{inBookKeeper(1, 5), inBookKeeper(2, 0)}}, 0)
		out, r, err := RewriteLedger(payload)
		if err != nil || len(r.Kept) != 0 || !slices.Equal(r.Dropped, []int64{1, 2}) || r.Tail != 2 {
			t.Fatalf("%+v %v", r, err)
		}
		// Only the tail is left, which the broker's load drops for a new ledger.
		if got, _, _ := Decode(out); len(got.LedgerInfo) != 1 || got.LedgerInfo[0].GetLedgerId() != 2 || got.LedgerInfo[0].OffloadContext != nil {
			t.Errorf("ledgers left: %v", got.LedgerInfo)
		}
	})
	t.Run("highest ledger kept: the tail is one above", func(t *testing.T) {
		// A terminated topic offloaded to its end: every ledger is kept.
		li := offloaded(5, 10, true)
		li.OffloadContext.BookkeeperDeleted = proto.Bool(true)
		in := &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{offloaded(3, 4, true), li}, TerminatedPosition: pos(5, 9)}
		payload, _ := Encode(in, 0)
		out, r, err := RewriteLedger(payload)
		if err != nil || !slices.Equal(r.KeptIDs(), []int64{3, 5}) || r.Tail != 6 || r.MaxID != 5 || r.TerminatedTo != r.TerminatedFrom {
			t.Fatalf("%+v %v", r, err)
		}
		got, _, _ := Decode(out)
		want := proto.Clone(in).(*mlpb.ManagedLedgerInfo)
		want.LedgerInfo[0].OffloadContext.BookkeeperDeleted = proto.Bool(true)
		want.LedgerInfo = append(want.LedgerInfo, &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(6), Entries: proto.Int64(0)})
		if !proto.Equal(got, want) {
			t.Errorf("rewritten\n%v\nwant\n%v", got, want)
		}
	})
	t.Run("terminated with nothing kept stays", func(t *testing.T) {
		payload, _ := Encode(&mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{inBookKeeper(7, 5)}, TerminatedPosition: pos(7, 4)}, 0)
		out, r, err := RewriteLedger(payload)
		if err != nil || r.TerminatedTo != (Position{7, 4}) || r.Tail != 7 {
			t.Errorf("%+v %v", r, err)
		}
		if got, _, err := Decode(out); err != nil || got.GetTerminatedPosition().GetLedgerId() != 7 || got.GetTerminatedPosition().GetEntryId() != 4 {
			t.Errorf("written terminatedPosition %v, %v; want 7:4", got.GetTerminatedPosition(), err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if _, _, err := RewriteLedger([]byte{0xff, 0xff}); err == nil || !strings.HasPrefix(err.Error(), "managed-ledger info: ") {
			t.Errorf("error %v", err)
		}
	})
}

func TestRewriteCursorMarkDelete(t *testing.T) {
	kept := []KeptLedger{{ID: 30, Entries: 50}, {ID: 10, Entries: 100}} // any order
	cases := []struct {
		name     string
		kept     []KeptLedger
		from, to Position
		noKept   bool
		moved    bool
	}{
		{name: "inside a kept ledger stays", kept: kept, from: Position{10, 5}, to: Position{10, 5}},
		{name: "before a kept ledger's first entry stays", kept: kept, from: Position{30, -1}, to: Position{30, -1}},
		{name: "dropped between kept ledgers goes to the previous one's last entry", kept: kept, from: Position{20, 7}, to: Position{10, 99}, moved: true},
		{name: "dropped after all kept goes to the last one's last entry", kept: kept, from: Position{40, 3}, to: Position{30, 49}, moved: true},
		{name: "dropped at its start still moves", kept: kept, from: Position{40, -1}, to: Position{30, 49}, moved: true},
		{name: "none kept before goes to the first kept ledger, -1", kept: kept, from: Position{5, 3}, to: Position{10, -1}, moved: true},
		{name: "previous kept ledger without entries", kept: []KeptLedger{{ID: 10, Entries: 0}}, from: Position{20, 1}, to: Position{10, -1}, moved: true},
		{name: "all dropped leaves the position", kept: nil, from: Position{20, 7}, to: Position{20, 7}, noKept: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := sampleCursor()
			in.MarkDeleteLedgerId, in.MarkDeleteEntryId = proto.Int64(tc.from.LedgerID), proto.Int64(tc.from.EntryID)
			in.IndividualDeletedMessages = nil
			payload, _ := Encode(in, 0)
			out, r, err := RewriteCursor(payload, tc.kept, CursorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.From != tc.from || r.To != tc.to || r.Moved != tc.moved || r.NoKeptLedger != tc.noKept || r.NoMarkDelete || !r.Stale || r.CursorsLedgerID != 77 {
				t.Errorf("got %+v, want %v -> %v moved=%v noKept=%v", r, tc.from, tc.to, tc.moved, tc.noKept)
			}
			got, _, err := DecodeCursor(out)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetCursorsLedgerId() != -1 {
				t.Errorf("cursorsLedgerId %d", got.GetCursorsLedgerId())
			}
			if p := (Position{got.GetMarkDeleteLedgerId(), got.GetMarkDeleteEntryId()}); p != tc.to {
				t.Errorf("written position %v, want %v", p, tc.to)
			}
			want := proto.Clone(in).(*mlpb.ManagedCursorInfo)
			want.CursorsLedgerId = proto.Int64(-1)
			want.MarkDeleteLedgerId, want.MarkDeleteEntryId = proto.Int64(tc.to.LedgerID), proto.Int64(tc.to.EntryID)
			if !proto.Equal(got, want) {
				t.Errorf("other fields changed:\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestRewriteCursorLastActiveCompactionAndStaleness(t *testing.T) {
	in := sampleCursor()
	in.Properties = append(in.Properties, &mlpb.LongProperty{Name: proto.String(CompactedTopicLedgerProperty), Value: proto.Int64(4242)})
	payload, _ := Encode(in, 0)

	// An ordinary cursor keeps a property of that name: only the compactor's is removed.
	out, r, err := RewriteCursor(payload, []KeptLedger{{30, 50}}, CursorOptions{LastActive: 1_800_000_000_000})
	if err != nil || r.HadCompactedLedger {
		t.Fatalf("%+v %v", r, err)
	}
	got, _, _ := DecodeCursor(out)
	if got.GetLastActive() != 1_800_000_000_000 || len(got.Properties) != 2 {
		t.Errorf("lastActive %d, properties %v", got.GetLastActive(), got.Properties)
	}

	out, r, err = RewriteCursor(payload, []KeptLedger{{30, 50}}, CursorOptions{Compaction: true})
	if err != nil || !r.HadCompactedLedger || r.CompactedLedger != 4242 || !r.Stale {
		t.Fatalf("%+v %v", r, err)
	}
	got, _, _ = DecodeCursor(out)
	want := proto.Clone(in).(*mlpb.ManagedCursorInfo)
	want.CursorsLedgerId = proto.Int64(-1)
	want.Properties = want.Properties[:1]
	if !proto.Equal(got, want) {
		t.Errorf("rewritten\n%v\nwant\n%v", got, want)
	}

	// A cursor persisted to the metadata store only (-1) is not stale.
	in.CursorsLedgerId = proto.Int64(-1)
	payload, _ = Encode(in, 0)
	if _, r, err := RewriteCursor(payload, nil, CursorOptions{}); err != nil || r.Stale {
		t.Errorf("%+v %v", r, err)
	}
}

func TestRewriteCursorWithoutMarkDelete(t *testing.T) {
	payload, _ := Encode(&mlpb.ManagedCursorInfo{CursorsLedgerId: proto.Int64(3)}, 0)
	out, r, err := RewriteCursor(payload, []KeptLedger{{1, 1}}, CursorOptions{})
	if err != nil || !r.NoMarkDelete || r.Moved {
		t.Fatalf("%+v %v", r, err)
	}
	got, _, _ := DecodeCursor(out)
	if got.MarkDeleteLedgerId != nil || got.GetCursorsLedgerId() != -1 {
		t.Errorf("%v", got)
	}
}

func TestRewriteCursorDeletedRangesAndBatchIndexes(t *testing.T) {
	kept := []KeptLedger{{10, 100}, {30, 50}}
	rng := func(l1, e1, l2, e2 int64) *mlpb.MessageRange {
		return &mlpb.MessageRange{LowerEndpoint: pos(l1, e1), UpperEndpoint: pos(l2, e2)}
	}
	batch := func(l, e int64) *mlpb.BatchedEntryDeletionIndexInfo {
		return &mlpb.BatchedEntryDeletionIndexInfo{Position: pos(l, e), DeleteSet: []int64{3}}
	}
	in := sampleCursor()
	in.MarkDeleteLedgerId, in.MarkDeleteEntryId = proto.Int64(10), proto.Int64(1)
	in.IndividualDeletedMessages = []*mlpb.MessageRange{
		rng(10, 3, 10, 6),   // in a kept ledger
		rng(20, 1, 20, 9),   // wholly in a dropped ledger
		rng(20, 9, 30, 2),   // from a dropped into a kept ledger
		rng(40, 0, 45, 3),   // across dropped ledgers only
		rng(10, 99, 20, 4),  // from the end of a kept ledger into a dropped one
		rng(5, 1, 40, 1),    // spanning kept ledgers from dropped ends
		rng(21, 0, 29, 100), // between kept ledgers, touching neither
	}
	in.BatchedEntryDeletionIndexInfo = []*mlpb.BatchedEntryDeletionIndexInfo{batch(10, 7), batch(20, 2), batch(30, 4), batch(40, 0)}
	payload, _ := Encode(in, mlpb.CompressionType_SNAPPY)
	out, r, err := RewriteCursor(payload, kept, CursorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.DroppedRanges != 3 || r.DroppedBatchIndexes != 2 || r.Moved {
		t.Errorf("report %+v", r)
	}
	got, _, _ := DecodeCursor(out)
	wantRanges := []*mlpb.MessageRange{in.IndividualDeletedMessages[0], in.IndividualDeletedMessages[2], in.IndividualDeletedMessages[4], in.IndividualDeletedMessages[5]}
	if len(got.IndividualDeletedMessages) != len(wantRanges) {
		t.Fatalf("ranges %v", got.IndividualDeletedMessages)
	}
	for i := range wantRanges {
		if !proto.Equal(got.IndividualDeletedMessages[i], wantRanges[i]) {
			t.Errorf("range %d: %v, want %v", i, got.IndividualDeletedMessages[i], wantRanges[i])
		}
	}
	if len(got.BatchedEntryDeletionIndexInfo) != 2 || got.BatchedEntryDeletionIndexInfo[0].GetPosition().GetLedgerId() != 10 || got.BatchedEntryDeletionIndexInfo[1].GetPosition().GetLedgerId() != 30 {
		t.Errorf("batch indexes %v", got.BatchedEntryDeletionIndexInfo)
	}
}

func TestRewriteCursorErrors(t *testing.T) {
	if _, _, err := RewriteCursor(append(header(4, 100), 1, 2, 3), nil, CursorOptions{}); err == nil || !strings.HasPrefix(err.Error(), "managed-cursor info: snappy block: ") {
		t.Errorf("error %v", err)
	}
}

func TestPositionOrder(t *testing.T) {
	if !(Position{1, 5}).Less(Position{2, -1}) || !(Position{2, -1}).Less(Position{2, 0}) || (Position{2, 0}).Less(Position{2, 0}) {
		t.Error("order")
	}
	if s := (Position{12, -1}).String(); s != "12:-1" {
		t.Error(s)
	}
}
