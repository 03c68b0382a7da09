package managedledger

import (
	"fmt"
	"math"
	"slices"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
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
	// Tail is the id of the entry appended after the kept ledgers (see RewriteLedger);
	// HasTail is false when the payload listed no ledger at all.
	Tail    int64
	HasTail bool
	// MaxID is the highest ledger id the payload names (its ledgers, its terminated
	// position), before the rewrite; Tail may be one above it. HasIDs is false when it
	// names none.
	MaxID  int64
	HasIDs bool
	// Terminated is set when the payload has a terminatedPosition; TerminatedFrom and
	// TerminatedTo are it before and after the rewrite (see RewriteLedger).
	Terminated                   bool
	TerminatedFrom, TerminatedTo Position
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

// LastKept is the position of the last entry of the kept ledger with the highest id; ok is
// false when none is kept.
func (r LedgerRewrite) LastKept() (p Position, ok bool) {
	for _, k := range r.Kept {
		if !ok || k.ID > p.LedgerID {
			p, ok = k.LastEntry(), true
		}
	}
	return p, ok
}

// RewriteLedger rewrites a ManagedLedgerInfo payload for a cluster with a new, empty
// BookKeeper, so that a broker loading it keeps every ledger fully offloaded to tiered
// storage:
//
//   - Only the ledgers whose offloadContext.complete is true are kept, with
//     offloadContext.bookkeeperDeleted set so the broker reads them from tiered storage
//     whatever its read priority (ManagedLedgerImpl.getLedgerHandle); every other ledger is
//     dropped.
//   - One entry is appended after them, the tail: the payload's highest ledger id (one
//     above it when that ledger is itself kept), with 0 entries and no offload context. A
//     broker loading a managed ledger opens the ledger with the highest id in BookKeeper,
//     whatever its offload state, and on NoSuchLedgerExists removes that entry from the list
//     (ManagedLedgerImpl.initialize); entries with 0 entries are removed too
//     (ManagedLedgerImpl.initializeBookKeeper). The tail is what that load removes; without
//     it the broker would remove the newest kept ledger, and its offloaded data with it.
//     The tail id must not exist in the new BookKeeper: the restore's ledger-id floor keeps
//     every new id above it. A payload with no ledger gets no tail.
//   - A terminatedPosition beyond the last entry of the last kept ledger is clamped to it: a
//     terminated managed ledger takes it as its last confirmed entry on load
//     (ManagedLedgerImpl.initialize) and creates no new ledger, so it must name data that
//     still exists. With no kept ledger it stays as it is.
//
// All other fields, unknown ones and properties included, stay as they are. The new payload
// is plain protobuf whatever the input's format (brokers read both). Unknown fields keep
// their bytes but are written after the known fields of their message, as every protobuf
// runtime writes them.
func RewriteLedger(payload []byte) ([]byte, LedgerRewrite, error) {
	info, f, err := Decode(payload)
	if err != nil {
		return nil, LedgerRewrite{Format: f}, err
	}
	r := LedgerRewrite{Format: f}
	name := func(id int64) {
		if !r.HasIDs || id > r.MaxID {
			r.MaxID, r.HasIDs = id, true
		}
	}
	kept := info.LedgerInfo[:0]
	for _, li := range info.LedgerInfo {
		id := li.GetLedgerId()
		name(id)
		if !li.GetOffloadContext().GetComplete() {
			r.Dropped = append(r.Dropped, id)
			continue
		}
		li.OffloadContext.BookkeeperDeleted = proto.Bool(true)
		kept = append(kept, li)
		r.Kept = append(r.Kept, KeptLedger{ID: id, Entries: li.GetEntries()})
	}
	info.LedgerInfo = kept
	if len(r.Kept)+len(r.Dropped) > 0 {
		r.Tail, r.HasTail = r.MaxID, true
		if last, ok := r.LastKept(); ok && last.LedgerID == r.MaxID {
			if r.MaxID == math.MaxInt64 {
				return nil, r, fmt.Errorf("%s: ledger id %d leaves no id for the tail", ledgerWhat, r.MaxID)
			}
			r.Tail = r.MaxID + 1
		}
		info.LedgerInfo = append(info.LedgerInfo, &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(r.Tail), Entries: proto.Int64(0)})
	}
	if tp := info.TerminatedPosition; tp != nil {
		r.Terminated = true
		r.TerminatedFrom = Position{tp.GetLedgerId(), tp.GetEntryId()}
		r.TerminatedTo = r.TerminatedFrom
		name(tp.GetLedgerId())
		if last, ok := r.LastKept(); ok && last.Less(r.TerminatedFrom) {
			r.TerminatedTo = last
			tp.LedgerId, tp.EntryId = proto.Int64(last.LedgerID), proto.Int64(last.EntryID)
		}
	}
	out, err := marshalOpts.Marshal(info)
	if err != nil {
		return nil, r, fmt.Errorf("%s: encode: %w", ledgerWhat, err)
	}
	return out, r, nil
}

// CompactionCursor is the name of the cursor Pulsar's compactor keeps on a compacted topic,
// and CompactedTopicLedgerProperty the LongProperty on it naming the compacted ledger
// (Compactor.COMPACTION_SUBSCRIPTION and COMPACTED_TOPIC_LEDGER_PROPERTY).
const (
	CompactionCursor             = "__compaction"
	CompactedTopicLedgerProperty = "CompactedTopicLedger"
)

// CursorOptions say what RewriteCursor changes beyond the position.
type CursorOptions struct {
	// LastActive, when not zero, replaces lastActive (Unix milliseconds).
	LastActive int64
	// Compaction is set for the compactor's cursor (CompactionCursor): its
	// CompactedTopicLedgerProperty is removed.
	Compaction bool
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
	// Stale is set when the cursor had its own ledger (cursorsLedgerId other than -1), whose
	// ledger is gone: acknowledgements newer than the znode's position lived there, so the
	// restored position may be older than the subscription's last one. CursorsLedgerID is
	// that ledger's id.
	Stale           bool
	CursorsLedgerID int64
	// CompactedLedger is the compacted ledger the removed CompactedTopicLedgerProperty
	// named; HadCompactedLedger says there was one.
	CompactedLedger    int64
	HadCompactedLedger bool
	// Format is how the input was stored; the output is always plain.
	Format Format
}

// RewriteCursor rewrites a ManagedCursorInfo payload to go with its managed ledger's
// RewriteLedger, whose Kept it takes (in any order):
//
//   - cursorsLedgerId becomes -1: the cursor's own ledger is gone with the old BookKeeper, and
//     -1 makes the broker take the position from this znode (ManagedCursorImpl.recover).
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
//   - lastActive becomes opts.LastActive when set: the broker deletes a subscription whose
//     lastActive is older than the expiration time (PersistentTopic.checkInactiveSubscriptions),
//     and a backup's value would make that happen at once.
//   - With opts.Compaction, the CompactedTopicLedger property is removed: the compactor opens
//     the ledger it names when the topic loads (PulsarCompactorSubscription), which the new
//     BookKeeper does not have. Without it the topic reads as not compacted yet.
//
// Every other field, unknown ones included, stays as it is.
func RewriteCursor(payload []byte, kept []KeptLedger, opts CursorOptions) ([]byte, CursorRewrite, error) {
	info, f, err := DecodeCursor(payload)
	if err != nil {
		return nil, CursorRewrite{Format: f}, err
	}
	r := CursorRewrite{Format: f}
	sorted := slices.Clone(kept)
	slices.SortFunc(sorted, func(a, b KeptLedger) int { return cmpInt64(a.ID, b.ID) })

	if info.CursorsLedgerId != nil && info.GetCursorsLedgerId() != -1 {
		r.Stale, r.CursorsLedgerID = true, info.GetCursorsLedgerId()
	}
	info.CursorsLedgerId = proto.Int64(-1)
	if opts.LastActive != 0 {
		info.LastActive = proto.Int64(opts.LastActive)
	}
	if opts.Compaction {
		info.Properties = slices.DeleteFunc(info.Properties, func(p *mlpb.LongProperty) bool {
			if p.GetName() != CompactedTopicLedgerProperty {
				return false
			}
			r.CompactedLedger, r.HadCompactedLedger = p.GetValue(), true
			return true
		})
	}

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
