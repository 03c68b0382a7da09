package restoretest

import (
	"cmp"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/brokerload"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// CheckBrokerLoad loads a restored tree (after, the whole target) the way a broker of the new
// cluster does (brokerload), at the restore's time with subscriptions expiring after a day,
// and checks what the restore promises, against the source's Summary:
//
//   - nothing the broker does fails or takes a ledger of the new cluster: no ledger read
//     from BookKeeper, no schema or compacted ledger opened, no subscription expired;
//   - every offloaded ledger is still listed after the load, complete and
//     bookkeeperDeleted, and the topic's new ledger sorts above them all;
//   - every ledger id the new cluster hands out is above every id the archive names;
//   - on a topic that keeps ledgers, every cursor's position is the Summary's Restored one
//     and no kept entry after its old position is skipped (a topic without kept ledgers has
//     nothing to skip; CheckRestored checks its cursors' znodes);
//   - a terminated topic ends at its last kept entry.
func CheckBrokerLoad(t testing.TB, after map[string]znode.Record, sum pulsartree.Summary, mlPath string) {
	t.Helper()
	var marker restore.Marker
	if err := json.Unmarshal(after[restore.MarkerPath].Data, &marker); err != nil {
		t.Fatalf("marker: %v", err)
	}
	res, err := brokerload.Load(after, brokerload.Options{ManagedLedgerPath: mlPath, Now: marker.StartedAt.Add(time.Minute), ExpireAfter: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 30 {
			t.Errorf(format, args...)
		}
	}
	for _, p := range res.Problems {
		fail("broker load: %s", p)
	}
	if res.NextLedgerID <= sum.HighestLedgerID {
		fail("the new cluster's next ledger id %d is not above the archive's highest %d", res.NextLedgerID, sum.HighestLedgerID)
	}
	for i := range sum.Topics {
		tp := &sum.Topics[i]
		lt := res.Topics[tp.Path]
		if lt == nil {
			fail("%s: not loaded", tp.Path)
			continue
		}
		listed := map[int64]brokerload.Ledger{}
		for _, l := range lt.Ledgers {
			listed[l.ID] = l
		}
		for _, k := range tp.Kept {
			l, ok := listed[k.ID]
			if !ok || !l.Complete || !l.BookKeeperDeleted || l.Entries != k.Entries {
				fail("%s: offloaded ledger %d is lost by the load (listed %v: %+v)", tp.Path, k.ID, ok, l)
			}
		}
		if tp.Terminated == nil {
			if lt.Current <= sum.HighestLedgerID || lt.Ledgers[len(lt.Ledgers)-1].ID != lt.Current {
				fail("%s: the new ledger %d does not sort above every restored one (%d)", tp.Path, lt.Current, sum.HighestLedgerID)
			}
		} else if last, ok := lastKept(tp); ok && lt.LastConfirmed != earlier(last, *tp.Terminated) {
			fail("%s: terminated at %v after the load, want the last kept entry %v", tp.Path, lt.LastConfirmed, last)
		}
		for _, c := range tp.Cursors {
			got, ok := lt.Cursors[znode.Base(c.Path)]
			switch {
			case !ok:
				fail("%s: not loaded", c.Path)
			case len(tp.Kept) > 0 && got.MarkDelete != c.Restored:
				fail("%s: position %v after the load, want %v", c.Path, got.MarkDelete, c.Restored)
			}
			if next, ok := firstKeptAfter(tp, c.MarkDelete); ok && !got.MarkDelete.Less(next) {
				fail("%s: position %v after the load skips kept entry %v", c.Path, got.MarkDelete, next)
			}
		}
	}
	if errs > 30 {
		t.Errorf("... and %d more", errs-30)
	}
}

func earlier(a, b managedledger.Position) managedledger.Position {
	if b.Less(a) {
		return b
	}
	return a
}

// firstKeptAfter is the first entry of a kept ledger after p.
func firstKeptAfter(tp *pulsartree.Topic, p managedledger.Position) (managedledger.Position, bool) {
	kept := slices.Clone(tp.Kept)
	slices.SortFunc(kept, func(a, b managedledger.KeptLedger) int { return cmp.Compare(a.ID, b.ID) })
	for _, k := range kept {
		switch {
		case k.ID == p.LedgerID && p.EntryID+1 < k.Entries:
			return managedledger.Position{LedgerID: k.ID, EntryID: p.EntryID + 1}, true
		case k.ID > p.LedgerID && k.Entries > 0:
			return managedledger.Position{LedgerID: k.ID, EntryID: 0}, true
		}
	}
	return managedledger.Position{}, false
}
