package restore

import (
	"fmt"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Kind is what a znode of the archive is to the restore.
type Kind int

const (
	KindPlain Kind = iota
	// KindManagedLedger: <managedLedgerPath>/<tenant>/<ns>/persistent/<topic> (also the v1
	// layout <tenant>/<cluster>/<ns>/persistent/<topic>), payload ManagedLedgerInfo.
	KindManagedLedger
	// KindCursor: a child of a managed ledger, payload ManagedCursorInfo.
	KindCursor
	// KindSchema: /schemas/<tenant>/<ns>/<topic> with data, payload SchemaLocator; skipped
	// (SkipSchemaLocator), decoded for its ledger ids.
	KindSchema
)

// Item is one record of the archive as the restore sees it.
type Item struct {
	// Record is what to create: the archive's record, with Data rewritten for managed ledgers
	// and cursors.
	Record znode.Record
	// Skip is the reason the record is not restored, "" if it is.
	Skip string
	Kind Kind
	// Ledger is set for KindManagedLedger, Cursor for KindCursor.
	Ledger *managedledger.LedgerRewrite
	Cursor *managedledger.CursorRewrite
	// SchemaLedgers are the BookKeeper ledgers a KindSchema locator points into; SchemaErr
	// is set when the locator does not decode.
	SchemaLedgers []int64
	SchemaErr     error
}

// recentTopics is how many finished managed ledgers a Rewriter remembers (see Rewriter).
const recentTopics = 4096

// Rewriter turns archive records into Items, one at a time, in archive order. Its memory
// does not grow with the tree:
//
// A cursor's rewrite needs the kept ledgers of its managed ledger, which comes earlier in the
// archive (parents first) but not necessarily just before it: the backup's walk has many
// reads in flight, so the cursors of several topics interleave. The Rewriter keeps the kept
// ledgers of each managed ledger until it has seen as many cursors as the managed ledger's
// Stat.NumChildren says it had, then in a ring of the last 4,096 finished ones, in case a
// cursor was added during the backup's walk. A cursor whose managed ledger is in neither
// fails: the archive is not in an order a restore can stream.
type Rewriter struct {
	layout     pulsarpath.Layout
	lastActive int64
	pending    map[string]*topicState
	ring       []ringEntry
	ringAt     int
}

type topicState struct {
	kept      []managedledger.KeptLedger
	remaining int32
}

type ringEntry struct {
	path string
	kept []managedledger.KeptLedger
}

// NewRewriter returns a Rewriter for an archive whose managed ledgers are under
// managedLedgerPath ("" means /managed-ledgers). restoredAt becomes every cursor's
// lastActive (see managedledger.RewriteCursor); a restore uses one value for all its runs,
// so that a repeated apply writes the same bytes.
func NewRewriter(managedLedgerPath string, restoredAt time.Time) *Rewriter {
	rw := &Rewriter{layout: pulsarpath.NewLayout(managedLedgerPath), pending: map[string]*topicState{}}
	if !restoredAt.IsZero() {
		rw.lastActive = restoredAt.UnixMilli()
	}
	return rw
}

// Next classifies and, for managed ledgers and cursors, rewrites one record. Errors name the
// znode; they mean the archive cannot be restored as it is.
func (rw *Rewriter) Next(rec znode.Record) (Item, error) {
	it := Item{Record: rec}
	if reason, skip := SkipReason(rec.Path); skip {
		it.Skip = reason
		if reason == SkipSchemaLocator && len(rec.Data) > 0 {
			it.Kind = KindSchema
			it.SchemaLedgers, it.SchemaErr = managedledger.SchemaLedgers(rec.Data)
		}
		return it, nil
	}
	return rw.rewrite(rec)
}

// rewrite is Next for a record the restore does not skip.
func (rw *Rewriter) rewrite(rec znode.Record) (Item, error) {
	it := Item{Record: rec}
	switch {
	case rw.layout.IsManagedLedger(rec.Path):
		out, lr, err := managedledger.RewriteLedger(rec.Data)
		if err != nil {
			return it, fmt.Errorf("managed ledger %s: %w", rec.Path, err)
		}
		out, err = fit(out, lr.Format)
		if err != nil {
			return it, fmt.Errorf("managed ledger %s: %w", rec.Path, err)
		}
		it.Kind, it.Ledger = KindManagedLedger, &lr
		it.Record.Data = out
		rw.remember(rec.Path, lr.Kept, rec.Stat.NumChildren)
	case rw.layout.IsCursor(rec.Path):
		kept, err := rw.keptOf(znode.Parent(rec.Path))
		if err != nil {
			return it, fmt.Errorf("cursor %s: %w", rec.Path, err)
		}
		opts := managedledger.CursorOptions{LastActive: rw.lastActive, Compaction: znode.Base(rec.Path) == managedledger.CompactionCursor}
		out, cr, err := managedledger.RewriteCursor(rec.Data, kept, opts)
		if err != nil {
			return it, fmt.Errorf("cursor %s: %w", rec.Path, err)
		}
		out, err = fit(out, cr.Format)
		if err != nil {
			return it, fmt.Errorf("cursor %s: %w", rec.Path, err)
		}
		it.Kind, it.Cursor = KindCursor, &cr
		it.Record.Data = out
	}
	return it, nil
}

// fit keeps a rewritten payload within ZooKeeper's limit: the rewrite writes plain protobuf,
// which for a payload the broker had compressed may be larger than the limit; it is then
// compressed again with the broker's codec.
func fit(out []byte, f managedledger.Format) ([]byte, error) {
	if len(out) <= znode.MaxDataSize {
		return out, nil
	}
	if f.Header {
		c, err := managedledger.Compress(out, f.Compression)
		if err != nil {
			return nil, err
		}
		if len(c) <= znode.MaxDataSize {
			return c, nil
		}
	}
	return nil, fmt.Errorf("rewritten payload is %d bytes, over ZooKeeper's %d limit", len(out), znode.MaxDataSize)
}

func isSchema(path string) bool {
	rest, ok := strings.CutPrefix(path, "/schemas/")
	return ok && strings.Count(rest, "/") == 2
}

func (rw *Rewriter) remember(path string, kept []managedledger.KeptLedger, children int32) {
	if children > 0 {
		rw.pending[path] = &topicState{kept: kept, remaining: children}
		return
	}
	rw.retire(path, kept)
}

func (rw *Rewriter) retire(path string, kept []managedledger.KeptLedger) {
	if len(rw.ring) < recentTopics {
		rw.ring = append(rw.ring, ringEntry{path, kept})
		return
	}
	rw.ring[rw.ringAt] = ringEntry{path, kept}
	rw.ringAt = (rw.ringAt + 1) % recentTopics
}

func (rw *Rewriter) keptOf(ml string) ([]managedledger.KeptLedger, error) {
	if t, ok := rw.pending[ml]; ok {
		if t.remaining--; t.remaining <= 0 {
			delete(rw.pending, ml)
			rw.retire(ml, t.kept)
		}
		return t.kept, nil
	}
	for i := len(rw.ring) - 1; i >= 0; i-- {
		if rw.ring[i].path == ml {
			return rw.ring[i].kept, nil
		}
	}
	return nil, fmt.Errorf("its managed ledger %s is not among the last %d seen (the archive is not parents-first)", ml, recentTopics)
}

// Pending is the number of managed ledgers whose cursors are still expected; it says how
// much the Rewriter holds.
func (rw *Rewriter) Pending() int { return len(rw.pending) }
