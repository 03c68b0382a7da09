package managedledger

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
)

// KeptLedger is a ledger that survives the restore rewrite, with its entry count.
type KeptLedger struct {
	ID      int64
	Entries int64
}

// LastEntry is the position of the ledger's last entry ((ID, -1) when it has none).
func (k KeptLedger) LastEntry() Position { return Position{k.ID, k.Entries - 1} }

// LedgerRewrite reports what RewriteLedger did to one managed ledger.
type LedgerRewrite struct {
	// Kept are the ledgers fully offloaded to tiered storage, in the payload's order.
	Kept []KeptLedger
	// Dropped are the ids of all other ledgers: their data lived only in BookKeeper.
	Dropped []int64
	// Format is how the input was stored; the output is always plain.
	Format Format
}

// KeptIDs returns the ids of r.Kept.
func (r LedgerRewrite) KeptIDs() []int64 {
	ids := make([]int64, len(r.Kept))
	for i, k := range r.Kept {
		ids[i] = k.ID
	}
	return ids
}

// RewriteLedger rewrites a ManagedLedgerInfo payload for a cluster with a new, empty
// BookKeeper. It keeps only the ledgers whose offloadContext.complete is true and sets
// offloadContext.bookkeeperDeleted on them, so the broker reads them from tiered storage
// whatever its read priority; every other ledger is dropped. All other fields, unknown ones,
// terminatedPosition and properties included, stay as they are.
//
// The new payload is plain protobuf whatever the input's format (brokers read both). Unknown
// fields keep their bytes but are written after the known fields of their message, as every
// protobuf runtime writes them.
func RewriteLedger(payload []byte) ([]byte, LedgerRewrite, error) {
	info, f, err := Decode(payload)
	if err != nil {
		return nil, LedgerRewrite{Format: f}, err
	}
	r := LedgerRewrite{Format: f}
	kept := info.LedgerInfo[:0]
	for _, li := range info.LedgerInfo {
		oc := li.GetOffloadContext()
		if !oc.GetComplete() {
			r.Dropped = append(r.Dropped, li.GetLedgerId())
			continue
		}
		oc.BookkeeperDeleted = proto.Bool(true)
		kept = append(kept, li)
		r.Kept = append(r.Kept, KeptLedger{ID: li.GetLedgerId(), Entries: li.GetEntries()})
	}
	info.LedgerInfo = kept
	out, err := marshalOpts.Marshal(info)
	if err != nil {
		return nil, r, fmt.Errorf("%s: encode: %w", ledgerWhat, err)
	}
	return out, r, nil
}

// CursorRewrite reports what RewriteCursor did to one cursor.
type CursorRewrite struct {
	// From and To are the mark-delete position before and after; equal unless Moved.
	From, To Position
	Moved    bool
	// NoMarkDelete is set when the cursor had no mark-delete position; it stays without one.
	NoMarkDelete bool
	// NoKeptLedger is set when the managed ledger keeps no ledger at all: the position is left
	// as it was (see RewriteCursor).
	NoKeptLedger bool
	// DroppedRanges and DroppedBatchIndexes count the individually deleted ranges and batch
	// deletion indexes removed because they lay wholly in ledgers that are gone.
	DroppedRanges       int
	DroppedBatchIndexes int
	// Format is how the input was stored; the output is always plain.
	Format Format
}

// RewriteCursor rewrites a ManagedCursorInfo payload to go with its managed ledger's
// RewriteLedger, whose Kept it takes (in any order):
//
//   - cursorsLedgerId becomes -1: the cursor's own ledger is gone with the old BookKeeper, and
//     -1 makes the broker take the position from this znode.
//   - A mark-delete position inside a kept ledger stays. Any other one moves to the nearest
//     kept position at or before it: the last entry of the last kept ledger with a smaller
//     id, or, when there is none, (first kept ledger, -1). Either way the next entry a
//     subscriber receives is the first surviving entry after its old position, which is what
//     the broker itself does for a position in a missing ledger.
//   - When no ledger is kept, the position stays as it was and NoKeptLedger is reported:
//     there is no surviving position to move to, the new ledger the broker creates has an id
//     not known yet, and the broker clamps a position beyond its last one to that last one.
//   - An individually deleted range (lower, upper] is dropped when no kept ledger id lies in
//     [lower.ledgerId, upper.ledgerId]: it can only name entries that are gone. A range that
//     may still cover kept entries is kept whole. A batch deletion index is dropped when its
//     ledger is not kept.
//
// Every other field, unknown ones included, stays as it is.
func RewriteCursor(payload []byte, kept []KeptLedger) ([]byte, CursorRewrite, error) {
	info, f, err := DecodeCursor(payload)
	if err != nil {
		return nil, CursorRewrite{Format: f}, err
	}
	r := CursorRewrite{Format: f}
	sorted := slices.Clone(kept)
	slices.SortFunc(sorted, func(a, b KeptLedger) int { return cmpInt64(a.ID, b.ID) })

	info.CursorsLedgerId = proto.Int64(-1)

	if info.MarkDeleteLedgerId == nil && info.MarkDeleteEntryId == nil {
		r.NoMarkDelete = true
	} else {
		r.From = Position{info.GetMarkDeleteLedgerId(), info.GetMarkDeleteEntryId()}
		r.To = r.From
		if len(sorted) == 0 {
			r.NoKeptLedger = true
		} else {
			r.To = anchor(r.From, sorted)
		}
		if r.To != r.From {
			r.Moved = true
			info.MarkDeleteLedgerId = proto.Int64(r.To.LedgerID)
			info.MarkDeleteEntryId = proto.Int64(r.To.EntryID)
		}
	}

	ranges := info.IndividualDeletedMessages[:0]
	for _, mr := range info.IndividualDeletedMessages {
		lo, hi := mr.GetLowerEndpoint().GetLedgerId(), mr.GetUpperEndpoint().GetLedgerId()
		if keptBetween(sorted, lo, hi) {
			ranges = append(ranges, mr)
		} else {
			r.DroppedRanges++
		}
	}
	info.IndividualDeletedMessages = ranges

	batches := info.BatchedEntryDeletionIndexInfo[:0]
	for _, b := range info.BatchedEntryDeletionIndexInfo {
		id := b.GetPosition().GetLedgerId()
		if keptBetween(sorted, id, id) {
			batches = append(batches, b)
		} else {
			r.DroppedBatchIndexes++
		}
	}
	info.BatchedEntryDeletionIndexInfo = batches

	out, err := marshalOpts.Marshal(info)
	if err != nil {
		return nil, r, fmt.Errorf("%s: encode: %w", cursorWhat, err)
	}
	return out, r, nil
}

// anchor is the nearest kept position at or before p (see RewriteCursor); kept is sorted by
// id and not empty.
func anchor(p Position, kept []KeptLedger) Position {
	i, found := slices.BinarySearchFunc(kept, p.LedgerID, func(k KeptLedger, id int64) int { return cmpInt64(k.ID, id) })
	if found {
		return p
	}
	if i == 0 {
		return Position{kept[0].ID, -1}
	}
	return kept[i-1].LastEntry()
}

// keptBetween reports whether a kept ledger id lies in [lo, hi]; kept is sorted by id.
func keptBetween(kept []KeptLedger, lo, hi int64) bool {
	i, _ := slices.BinarySearchFunc(kept, lo, func(k KeptLedger, id int64) int { return cmpInt64(k.ID, id) })
	return i < len(kept) && kept[i].ID <= hi
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
