// Package restoretest holds what the restore's tests share: reading a whole ZooKeeper tree,
// initialising a target as `pulsar initialize-cluster-metadata` does, checking a restored
// tree against its source, field by field for the rewritten managed ledgers and cursors,
// with the expectations pulsartree's Summary states independently of the restore code, and
// loading it the way a broker does (brokerload). Which paths a restore skips is the one rule
// taken from the code under test (restore.SkipReason); TestSkipReason's table pins it.
package restoretest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Auth is the zookeeper.auth the tests' workers use: pulsartree's digest user, which may
// read and create the digest-protected znodes.
const Auth = "digest:" + pulsartree.DefaultDigestUser + ":" + pulsartree.DefaultDigestPassword

// Populate writes a pulsartree into the server at addr. The connection stays open until the
// test ends, so the tree's ephemerals (live brokers) live as long.
func Populate(t testing.TB, addr string, o pulsartree.Options) (*zk.Conn, pulsartree.Summary) {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	sum, err := pulsartree.Populate(context.Background(), conn, o)
	if err != nil {
		t.Fatal(err)
	}
	return conn, sum
}

// ReadTree reads every persistent znode below / except /zookeeper, as the super user, one
// request at a time (independent of the code under test).
func ReadTree(t testing.TB, addr string) map[string]znode.Record {
	t.Helper()
	conn := testenv.SuperConn(t, addr)
	defer conn.Close()
	out := map[string]znode.Record{}
	var walk func(p string)
	walk = func(p string) {
		children, _, err := conn.Children(p)
		if err != nil {
			t.Fatalf("children %s: %v", p, err)
		}
		for _, c := range children {
			cp := znode.Join(p, c)
			if cp == "/zookeeper" {
				continue
			}
			data, st, err := conn.Get(cp)
			if err != nil {
				t.Fatalf("get %s: %v", cp, err)
			}
			acl, _, err := conn.GetACL(cp)
			if err != nil {
				t.Fatalf("acl %s: %v", cp, err)
			}
			mode, ttl := znode.ModeOf(st.EphemeralOwner)
			if mode != znode.ModeEphemeral {
				r := znode.Record{Path: cp, Data: data, Mode: mode, TTL: ttl, Stat: znode.Stat{NumChildren: st.NumChildren, Cversion: st.Cversion}}
				for _, a := range acl {
					r.ACL = append(r.ACL, znode.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID})
				}
				out[cp] = r
			}
			walk(cp)
		}
	}
	walk("/")
	return out
}

// InitCluster runs what `pulsar initialize-cluster-metadata` writes against the server at
// addr (pulsartree.InitClusterMetadata, cluster pulsartree.ClusterName): the order a restore
// supports, BookKeeper formatted first.
func InitCluster(t testing.TB, addr string) {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pulsartree.InitClusterMetadata(context.Background(), conn, pulsartree.ClusterName); err != nil {
		t.Fatal(err)
	}
}

// Counts are what a restore of a pulsartree must report, from its Summary.
type Counts struct {
	LedgersKept, LedgersDropped, CursorsReset int64
	TopicsWithDataLoss                        []string
	// SchemasToRegister counts schema locators with ledgers; CompactionReset the compacted
	// topics; StaleCursors the cursors with their own ledger; BookKeeperBound the znodes of
	// functions, packages and stream storage.
	SchemasToRegister, CompactionReset, StaleCursors, BookKeeperBound int64
	// FloorAbove is an id every ledger id the archive names is at most: the new cluster's
	// next id must be above it.
	FloorAbove int64
}

// Expect derives the report's counts from a Summary.
func Expect(sum pulsartree.Summary) Counts {
	var c Counts
	c.TopicsWithDataLoss = []string{}
	for _, tp := range sum.Topics {
		c.LedgersKept += int64(len(tp.Kept))
		c.LedgersDropped += int64(len(tp.Dropped))
		if len(tp.Dropped) > 0 {
			c.TopicsWithDataLoss = append(c.TopicsWithDataLoss, tp.Name)
		}
		if tp.CompactedLedger != 0 {
			c.CompactionReset++
		}
		for _, cu := range tp.Cursors {
			if cu.Restored != cu.MarkDelete {
				c.CursorsReset++
			}
			if cu.CursorsLedgerID != -1 {
				c.StaleCursors++
			}
		}
	}
	for _, s := range sum.Schemas {
		if len(s.Ledgers) > 0 {
			c.SchemasToRegister++
		}
	}
	c.BookKeeperBound = int64(len(sum.BookKeeperBound))
	c.FloorAbove = sum.HighestLedgerID
	slices.Sort(c.TopicsWithDataLoss)
	return c
}

// tail is the id a restored managed ledger must list after its kept ones, worked out from
// the Summary: its highest ledger id, or one above when that ledger is kept (none without
// ledgers).
func tail(tp *pulsartree.Topic) (int64, bool) {
	if len(tp.Ledgers) == 0 {
		return 0, false
	}
	high := slices.Max(tp.Ledgers)
	for _, k := range tp.Kept {
		if k.ID == high {
			return high + 1, true
		}
	}
	return high, true
}

// lastKept is the last entry of the kept ledger with the highest id.
func lastKept(tp *pulsartree.Topic) (managedledger.Position, bool) {
	var p managedledger.Position
	ok := false
	for _, k := range tp.Kept {
		if !ok || k.ID > p.LedgerID {
			p, ok = managedledger.Position{LedgerID: k.ID, EntryID: k.Entries - 1}, true
		}
	}
	return p, ok
}

// CheckRestored checks a restored tree (after) against the source it was backed up from
// and the target before the restore:
//
//   - every skipped znode (restore.SkipReason) is as it was in the target before: absent,
//     or the target's own, never the source's; the ledger-id floor aside;
//   - every other one is there with the source's mode, TTL and ACL;
//   - its data is the source's, except managed ledgers and cursors, checked field by field
//     against the Summary: a managed ledger keeps exactly the Summary's Kept ledgers, in
//     order, each with bookkeeperDeleted set, then the tail (see tail), and every other field
//     (unknown ones included) as in the source but a terminatedPosition beyond the last kept
//     entry, clamped to it; it is written plain whatever its source form. A cursor has
//     cursorsLedgerId -1, the Summary's Restored mark-delete position, lastActive the
//     marker's startedAt, no CompactedTopicLedger property on the compactor's cursor, and
//     the rest as in the source minus ranges and batch indexes wholly in dropped ledgers;
//   - nothing else is in the target but the marker, the floor and what it held before.
func CheckRestored(t testing.TB, source, before, after map[string]znode.Record, sum pulsartree.Summary) {
	t.Helper()
	topics := map[string]*pulsartree.Topic{}
	cursors := map[string]pulsartree.Cursor{}
	cursorTopic := map[string]*pulsartree.Topic{}
	for i := range sum.Topics {
		tp := &sum.Topics[i]
		topics[tp.Path] = tp
		for _, c := range tp.Cursors {
			cursors[c.Path] = c
			cursorTopic[c.Path] = tp
		}
	}
	var marker restore.Marker
	if err := json.Unmarshal(after[restore.MarkerPath].Data, &marker); err != nil {
		t.Fatalf("marker: %v", err)
	}
	restoredAt := marker.StartedAt.UnixMilli()
	floor := func(p string) bool { return znode.Under(p, restore.IDGenLongPath) }
	checkedML, checkedCursors, errs := 0, 0, 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 30 {
			t.Errorf(format, args...)
		}
	}
	for p, src := range source {
		if _, skip := restore.SkipReason(p); skip {
			dst, ok := after[p]
			was, had := before[p]
			if p != "/" && !floor(p) && (ok != had || ok && string(dst.Data) != string(was.Data)) {
				fail("%s: skipped path changed by the restore", p)
			}
			continue
		}
		dst, ok := after[p]
		if !ok {
			fail("%s: missing from the target", p)
			continue
		}
		if dst.Mode != src.Mode || src.Mode == znode.ModeTTL && dst.TTL != src.TTL {
			fail("%s: mode %s/%d, source %s/%d", p, dst.Mode, dst.TTL, src.Mode, src.TTL)
		}
		if !sameACL(dst.ACL, src.ACL) {
			fail("%s: ACL %v, source %v", p, dst.ACL, src.ACL)
		}
		switch {
		case topics[p] != nil:
			checkedML++
			if err := checkLedger(src.Data, dst.Data, topics[p]); err != "" {
				fail("%s: %s", p, err)
			}
		case cursorTopic[p] != nil:
			checkedCursors++
			if err := checkCursor(src.Data, dst.Data, cursors[p], cursorTopic[p], restoredAt); err != "" {
				fail("%s: %s", p, err)
			}
		default:
			if string(dst.Data) != string(src.Data) {
				fail("%s: data differs (%d bytes, source %d)", p, len(dst.Data), len(src.Data))
			}
		}
	}
	for p := range after {
		if _, ok := source[p]; !ok && p != restore.MarkerPath && !floor(p) {
			if _, had := before[p]; !had {
				fail("%s: in the target but neither in the source nor there before", p)
			}
		}
	}
	wantCursors := 0
	for _, tp := range sum.Topics {
		wantCursors += len(tp.Cursors)
	}
	if checkedML != len(sum.Topics) || checkedCursors != wantCursors {
		fail("checked %d managed ledgers and %d cursors, the tree has %d and %d", checkedML, checkedCursors, len(sum.Topics), wantCursors)
	}
	for f, p := range sum.Special.Compressed {
		if !f.Header {
			continue
		}
		if _, got, err := managedledger.Decode(after[p].Data); err != nil || got.Header {
			fail("%s (%s in the source): restored as %s, %v; want plain", p, f, got, err)
		}
	}
	if p := sum.Special.CompressedCursor; p != "" {
		if _, got, err := managedledger.DecodeCursor(after[p].Data); err != nil || got.Header {
			fail("%s (compressed cursor): restored as %s, %v; want plain", p, got, err)
		}
	}
	for _, q := range sum.Quotas {
		if r, ok := after[q]; !ok || string(r.Data) != string(source[q].Data) {
			fail("resource quota %s not restored", q)
		}
	}
	if errs > 30 {
		t.Errorf("... and %d more differences", errs-30)
	}
}

func checkLedger(src, dst []byte, tp *pulsartree.Topic) string {
	in, inFmt, err := managedledger.Decode(src)
	if err != nil {
		return "source: " + err.Error()
	}
	if inFmt != tp.Format {
		return "source format " + inFmt.String() + ", summary says " + tp.Format.String()
	}
	got, gotFmt, err := managedledger.Decode(dst)
	if err != nil {
		return "restored: " + err.Error()
	}
	if gotFmt.Header {
		return "restored payload is " + gotFmt.String() + ", want plain"
	}
	want := proto.Clone(in).(*mlpb.ManagedLedgerInfo)
	want.LedgerInfo = nil
	for _, k := range tp.Kept {
		for _, li := range in.LedgerInfo {
			if li.GetLedgerId() == k.ID {
				li = proto.Clone(li).(*mlpb.ManagedLedgerInfo_LedgerInfo)
				li.OffloadContext.BookkeeperDeleted = proto.Bool(true)
				want.LedgerInfo = append(want.LedgerInfo, li)
			}
		}
	}
	id, hasTail := tail(tp)
	if hasTail {
		want.LedgerInfo = append(want.LedgerInfo, &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(id), Entries: proto.Int64(0)})
	}
	if last, ok := lastKept(tp); ok && tp.Terminated != nil && last.Less(*tp.Terminated) {
		want.TerminatedPosition = &mlpb.NestedPositionInfo{LedgerId: proto.Int64(last.LedgerID), EntryId: proto.Int64(last.EntryID)}
	}
	if len(got.LedgerInfo) != len(want.LedgerInfo) {
		return fmt.Sprintf("%d ledgers listed, want the summary's %d kept and the tail", len(got.LedgerInfo), len(tp.Kept))
	}
	for i, li := range got.LedgerInfo[:len(tp.Kept)] {
		oc := li.GetOffloadContext()
		if li.GetLedgerId() != tp.Kept[i].ID || li.GetEntries() != tp.Kept[i].Entries || !oc.GetComplete() || !oc.GetBookkeeperDeleted() {
			return "kept ledger " + li.String() + " is not the summary's, complete and bookkeeperDeleted"
		}
	}
	if !proto.Equal(want, got) {
		return "fields other than the dropped ledgers, the tail, bookkeeperDeleted and terminatedPosition changed"
	}
	return ""
}

func checkCursor(src, dst []byte, c pulsartree.Cursor, tp *pulsartree.Topic, restoredAt int64) string {
	in, inFmt, err := managedledger.DecodeCursor(src)
	if err != nil {
		return "source: " + err.Error()
	}
	if inFmt != c.Format {
		return "source format " + inFmt.String() + ", summary says " + c.Format.String()
	}
	got, gotFmt, err := managedledger.DecodeCursor(dst)
	if err != nil {
		return "restored: " + err.Error()
	}
	if gotFmt.Header {
		return "restored payload is " + gotFmt.String() + ", want plain"
	}
	pos := managedledger.Position{LedgerID: got.GetMarkDeleteLedgerId(), EntryID: got.GetMarkDeleteEntryId()}
	if got.GetCursorsLedgerId() != -1 || pos != c.Restored {
		return fmt.Sprintf("cursorsLedgerId %d and mark-delete %s: want -1 and %s", got.GetCursorsLedgerId(), pos, c.Restored)
	}
	kept := func(lo, hi int64) bool {
		for _, k := range tp.Kept {
			if k.ID >= lo && k.ID <= hi {
				return true
			}
		}
		return false
	}
	want := proto.Clone(in).(*mlpb.ManagedCursorInfo)
	want.CursorsLedgerId = proto.Int64(-1)
	want.LastActive = proto.Int64(restoredAt)
	if znode.Base(c.Path) == "__compaction" { // Compactor.COMPACTION_SUBSCRIPTION
		want.Properties = slices.DeleteFunc(want.Properties, func(p *mlpb.LongProperty) bool { return p.GetName() == "CompactedTopicLedger" })
	}
	if c.Restored != c.MarkDelete {
		want.MarkDeleteLedgerId, want.MarkDeleteEntryId = proto.Int64(c.Restored.LedgerID), proto.Int64(c.Restored.EntryID)
	}
	want.IndividualDeletedMessages = slices.DeleteFunc(want.IndividualDeletedMessages, func(r *mlpb.MessageRange) bool {
		return !kept(r.GetLowerEndpoint().GetLedgerId(), r.GetUpperEndpoint().GetLedgerId())
	})
	want.BatchedEntryDeletionIndexInfo = slices.DeleteFunc(want.BatchedEntryDeletionIndexInfo, func(b *mlpb.BatchedEntryDeletionIndexInfo) bool {
		return !kept(b.GetPosition().GetLedgerId(), b.GetPosition().GetLedgerId())
	})
	if !proto.Equal(want, got) {
		return "fields other than cursorsLedgerId, the position, lastActive, the compacted ledger and dropped ranges changed"
	}
	return ""
}

// sameACL compares ACLs as sets, independently of the restore code's own comparison, so a
// restore that got ACLs wrong cannot pass by sharing the bug.
func sameACL(a, b []znode.ACL) bool {
	if len(a) != len(b) {
		return false
	}
	have := map[znode.ACL]int{}
	for _, x := range a {
		have[x]++
	}
	for _, x := range b {
		if have[x] == 0 {
			return false
		}
		have[x]--
	}
	return true
}
