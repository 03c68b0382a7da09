// Package brokerload models what an Apache Pulsar broker does with a metadata tree when it
// loads it on a BookKeeper that does not have the old cluster's ledgers: which ledgers a
// managed ledger still lists afterwards, where its cursors end up, which ledger id it takes
// next, and what it would try to open in BookKeeper and fail to find (or find, and take from
// another owner). Tests run it over restored trees as an oracle written from Pulsar's
// source, independent of the restore's own rewrite rules.
//
// Each rule names the Pulsar file and method it models (Pulsar 3.x; docs/RESTORE.md, "What a
// broker does with restored metadata", sums them up). Only the parts a restore can get wrong
// are modelled: no reads of entry data, no trimming, no offloading. Names Pulsar fixes are
// spelled out here rather than taken from the code under test.
package brokerload

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Position is a managed-ledger position.
type Position = managedledger.Position

// Ledger is a LedgerInfo entry of a loaded managed ledger.
type Ledger struct {
	ID      int64
	Entries int64
	// Complete and BookKeeperDeleted are the entry's offloadContext flags.
	Complete, BookKeeperDeleted bool
	// New is the ledger the load created.
	New bool
}

// Topic is one managed ledger after the load.
type Topic struct {
	Path string
	// Ledgers is the list after the load, by id (the broker keeps a sorted map).
	Ledgers []Ledger
	// Removed are the ids the load took out of the list: the last ledger when BookKeeper
	// had no such ledger, and ledgers without entries.
	Removed []int64
	// Current is the ledger the load created (0 for a terminated one, which creates none);
	// LastConfirmed is the managed ledger's last confirmed entry.
	Current       int64
	LastConfirmed Position
	Terminated    bool
	Cursors       map[string]Cursor
}

// Cursor is one subscription after the load.
type Cursor struct {
	// MarkDelete is the recovered mark-delete position.
	MarkDelete Position
	// LastActive is the cursor's lastActive (Unix ms) after the load.
	LastActive int64
}

// Result is the whole load.
type Result struct {
	Topics map[string]*Topic
	// NextLedgerID is the id the generator hands out after the load's own.
	NextLedgerID int64
	// Problems are what a broker would fail on or do wrong, one line each: a ledger read
	// from BookKeeper that is not there, a ledger id that names a ledger of the new cluster,
	// a schema or compacted ledger that cannot be opened.
	Problems []string
}

// Options describe the broker's configuration.
type Options struct {
	// ManagedLedgerPath is the broker's managedLedgerPath ("" means /managed-ledgers).
	ManagedLedgerPath string
	// Now is when the broker loads; ExpireAfter its subscriptionExpirationTimeMinutes (0:
	// never). A subscription whose lastActive is older than that is deleted.
	Now         time.Time
	ExpireAfter time.Duration
}

// Load loads every managed ledger of tree (a whole ensemble's persistent znodes by path,
// /ledgers included: the new cluster's BookKeeper is whatever ledgers are there), then
// opens the schemas, as a broker on that cluster does when its topics are first used.
func Load(tree map[string]znode.Record, o Options) (*Result, error) {
	if o.ManagedLedgerPath == "" {
		o.ManagedLedgerPath = "/managed-ledgers"
	}
	bk := bookKeeper(tree)
	gen, err := newGenerator(tree)
	if err != nil {
		return nil, err
	}
	res := &Result{Topics: map[string]*Topic{}}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }

	for _, p := range slices.Sorted(maps.Keys(tree)) {
		if !isManagedLedger(p, o.ManagedLedgerPath) {
			continue
		}
		t, err := loadTopic(tree, p, bk, gen, o, problem)
		if err != nil {
			return nil, err
		}
		res.Topics[p] = t
	}
	for _, p := range slices.Sorted(maps.Keys(tree)) {
		rest, ok := strings.CutPrefix(p, "/schemas/")
		if !ok || strings.Count(rest, "/") != 2 || len(tree[p].Data) == 0 {
			continue
		}
		// BookkeeperSchemaStorage.getAll and getSchema open every ledger the locator's
		// index names (readSchemaEntry -> asyncOpenLedger); SchemaRegistryServiceImpl.
		// putSchemaIfAbsent reads them all when a producer connects.
		ids, err := managedledger.SchemaLedgers(tree[p].Data)
		if err != nil {
			problem("schema %s: %v", p, err)
			continue
		}
		for _, id := range ids {
			problem("schema %s: opens ledger %d in BookKeeper (%s)", p, id, bkState(bk, id))
		}
	}
	res.NextLedgerID = gen.next()
	return res, nil
}

func bkState(bk map[int64]bool, id int64) string {
	if bk[id] {
		return "a ledger of the new cluster"
	}
	return "no such ledger"
}

// isManagedLedger: <mlPath>/<tenant>/<ns>/persistent/<topic> (the v1 layout's extra cluster
// segment aside, which the restore tests do not generate).
func isManagedLedger(p, mlPath string) bool {
	rest, ok := strings.CutPrefix(p, mlPath+"/")
	if !ok {
		return false
	}
	s := strings.Split(rest, "/")
	return len(s) == 4 && s[2] == "persistent"
}

// loadTopic models ManagedLedgerImpl.initialize, initializeBookKeeper and initializeCursors.
func loadTopic(tree map[string]znode.Record, path string, bk map[int64]bool, gen *generator, o Options, problem func(string, ...any)) (*Topic, error) {
	info, _, err := managedledger.Decode(tree[path].Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &Topic{Path: path, Cursors: map[string]Cursor{}}
	ledgers := map[int64]*Ledger{}
	for _, li := range info.GetLedgerInfo() {
		oc := li.GetOffloadContext()
		ledgers[li.GetLedgerId()] = &Ledger{ID: li.GetLedgerId(), Entries: li.GetEntries(), Complete: oc.GetComplete(), BookKeeperDeleted: oc.GetBookkeeperDeleted()}
	}
	ids := func() []int64 { return slices.Sorted(maps.Keys(ledgers)) }

	// initialize: a terminatedPosition makes the managed ledger Terminated, with it as the
	// last confirmed entry.
	if tp := info.TerminatedPosition; tp != nil {
		t.Terminated = true
		t.LastConfirmed = Position{LedgerID: tp.GetLedgerId(), EntryID: tp.GetEntryId()}
	}
	// initialize: the ledger with the highest id is opened in BookKeeper whatever its
	// offload state. NoSuchLedgerExists removes it from the list; a ledger that opens is
	// the broker's from then on (its entry is rebuilt from BookKeeper, offloadContext gone).
	if l := ids(); len(l) > 0 {
		last := l[len(l)-1]
		if bk[last] {
			problem("%s: opens and fences ledger %d, a ledger of the new cluster, as its last ledger", path, last)
			*ledgers[last] = Ledger{ID: last}
		} else {
			delete(ledgers, last)
			t.Removed = append(t.Removed, last)
		}
	}
	// initializeBookKeeper: every ledger without entries is removed from the list.
	for _, id := range ids() {
		if ledgers[id].Entries <= 0 {
			delete(ledgers, id)
			t.Removed = append(t.Removed, id)
		}
	}
	// initializeBookKeeper: unless terminated, a new ledger is created; the last confirmed
	// entry starts at (new, -1) and walks back over lower ledgers while its entry is -1
	// (ledgers.lowerEntry), landing on the last entry of the last lower ledger with entries.
	if !t.Terminated {
		id := gen.next()
		if bk[id] {
			problem("%s: the new ledger id %d already exists in BookKeeper", path, id)
		}
		bk[id] = true
		t.Current = id
		t.LastConfirmed = Position{LedgerID: id, EntryID: -1}
		l := ids()
		for i := len(l) - 1; i >= 0 && t.LastConfirmed.EntryID == -1; i-- {
			if l[i] < id {
				t.LastConfirmed = Position{LedgerID: l[i], EntryID: ledgers[l[i]].Entries - 1}
			}
		}
		ledgers[id] = &Ledger{ID: id, New: true}
	}
	for _, id := range ids() {
		t.Ledgers = append(t.Ledgers, *ledgers[id])
		// getLedgerHandle: a ledger other than the current one is read from tiered storage
		// when its offload is complete and bookkeeperDeleted is set (whatever the read
		// priority), otherwise from BookKeeper.
		l := ledgers[id]
		if l.New || l.Complete && l.BookKeeperDeleted {
			continue
		}
		if !bk[id] {
			problem("%s: ledger %d is read from BookKeeper, which has no such ledger", path, id)
		} else if id != t.Current {
			problem("%s: ledger %d is read from BookKeeper, where it is a ledger of the new cluster", path, id)
		}
	}

	for _, name := range children(tree, path) {
		c, err := loadCursor(tree, path+"/"+name, t, ledgers, bk, o, problem)
		if err != nil {
			return nil, err
		}
		t.Cursors[name] = c
	}
	return t, nil
}

// loadCursor models ManagedCursorImpl.recover and recoveredCursor.
func loadCursor(tree map[string]znode.Record, path string, t *Topic, ledgers map[int64]*Ledger, bk map[int64]bool, o Options, problem func(string, ...any)) (Cursor, error) {
	info, _, err := managedledger.DecodeCursor(tree[path].Data)
	if err != nil {
		return Cursor{}, fmt.Errorf("%s: %w", path, err)
	}
	ids := slices.Sorted(maps.Keys(ledgers))
	pos := Position{LedgerID: info.GetMarkDeleteLedgerId(), EntryID: info.GetMarkDeleteEntryId()}
	if id := info.GetCursorsLedgerId(); id != -1 {
		// recoverFromLedger: the position comes from the cursor's own ledger. A missing one
		// falls back to getRollbackPosition: the znode's position, or the managed ledger's
		// first position when it is earlier.
		if bk[id] {
			problem("%s: reads its position from ledger %d, a ledger of the new cluster", path, id)
		}
		if len(ids) > 0 {
			if first := (Position{LedgerID: ids[0], EntryID: -1}); pos.Less(first) {
				pos = first
			}
		}
	}
	// recoveredCursor: a position at the start (-1) of a ledger that is not listed moves to
	// the start of the next listed one; a position beyond the last confirmed entry is
	// clamped to it.
	if pos.EntryID == -1 && ledgers[pos.LedgerID] == nil {
		for _, id := range ids {
			if id > pos.LedgerID {
				pos = Position{LedgerID: id, EntryID: -1}
				break
			}
		}
	}
	if t.LastConfirmed.Less(pos) {
		pos = t.LastConfirmed
	}
	c := Cursor{MarkDelete: pos, LastActive: o.Now.UnixMilli()}
	// recover: lastActive is taken from the znode when set.
	if la := info.GetLastActive(); la != 0 {
		c.LastActive = la
	}
	// PersistentTopic.checkInactiveSubscriptions deletes a subscription inactive for longer
	// than the expiration time.
	if o.ExpireAfter > 0 && o.Now.UnixMilli()-c.LastActive > o.ExpireAfter.Milliseconds() {
		problem("%s: lastActive %s is older than the subscription expiration: the subscription is deleted", path, time.UnixMilli(c.LastActive).UTC().Format(time.RFC3339))
	}
	// PulsarCompactorSubscription opens the compacted ledger its cursor's
	// CompactedTopicLedger property names (CompactedTopicImpl.newCompactedLedger).
	// Compactor.COMPACTION_SUBSCRIPTION and COMPACTED_TOPIC_LEDGER_PROPERTY.
	if znode.Base(path) == "__compaction" {
		for _, p := range info.GetProperties() {
			if p.GetName() == "CompactedTopicLedger" {
				problem("%s: the compactor opens compacted ledger %d (%s)", path, p.GetValue(), bkState(bk, p.GetValue()))
			}
		}
	}
	return c, nil
}

func children(tree map[string]znode.Record, parent string) []string {
	var out []string
	for p := range tree {
		if znode.Parent(p) == parent {
			out = append(out, znode.Base(p))
		}
	}
	slices.Sort(out)
	return out
}

// bookKeeper is the set of ledgers the tree's BookKeeper has: its ledger metadata znodes
// under /ledgers, in the layouts of StringUtils.getHybridHierarchicalLedgerPath (2/4/4, and
// 3/4/4/4/4 for ids from Integer.MAX_VALUE) or flat. Parsed here, not with the restore's own
// parser, so that the two check each other.
func bookKeeper(tree map[string]znode.Record) map[int64]bool {
	out := map[int64]bool{}
	for p := range tree {
		rest, ok := strings.CutPrefix(p, "/ledgers/")
		if !ok {
			continue
		}
		seg := strings.Split(rest, "/")
		last := seg[len(seg)-1]
		if !strings.HasPrefix(last, "L") || !(len(seg) == 1 || len(seg) == 3 || len(seg) == 5) {
			continue
		}
		digits := strings.Join(seg[:len(seg)-1], "") + last[1:]
		if id, err := strconv.ParseInt(digits, 10, 64); err == nil && strings.Trim(digits, "0123456789") == "" {
			out[id] = true
		}
	}
	return out
}

// generator models PulsarLedgerIdGenerator.generateLedgerId: with /ledgers/idgen-long, ids
// are (highest HOB-n child << 32) | seq (generateLongLedgerId), seq counting from the HOB
// znode's cversion (ZooKeeper numbers sequential children from the parent's cversion,
// PrepRequestProcessor.pRequest2TxnCreate); without it, 31-bit ids from the sequential
// children of /ledgers/idgen (generateShortLedgerId).
type generator struct {
	long bool
	hob  int64
	seq  int64
}

func newGenerator(tree map[string]znode.Record) (*generator, error) {
	g := &generator{}
	if _, ok := tree["/ledgers/idgen-long"]; ok {
		g.long = true
		g.hob = -1
		for p, r := range tree {
			name, ok := strings.CutPrefix(p, "/ledgers/idgen-long/HOB-")
			if !ok || strings.Contains(name, "/") {
				continue
			}
			if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > g.hob {
				g.hob, g.seq = n, int64(r.Stat.Cversion)
			}
		}
		if g.hob < 0 {
			g.hob, g.seq = 1, 0 // createHOBPathAndGenerateId(prefix, 1)
		}
		return g, nil
	}
	if r, ok := tree["/ledgers/idgen"]; ok {
		g.seq = int64(r.Stat.Cversion)
	}
	return g, nil
}

func (g *generator) next() int64 {
	id := g.seq
	g.seq++
	if g.long {
		return g.hob<<32 | id
	}
	return id
}
