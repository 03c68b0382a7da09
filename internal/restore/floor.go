package restore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// BookKeeper's metadata in the ensemble, as Pulsar lays it out (its bookkeeper metadata
// service URL is metadata-store:<url>/ledgers unless bookkeeperMetadataServiceUri says
// otherwise: ServiceConfiguration.getBookkeeperMetadataStoreUrl).
const (
	LedgersRoot = "/ledgers"
	// InstanceIDPath exists once BookKeeper's cluster metadata is formatted
	// (BookKeeperAdmin.format, which `pulsar initialize-cluster-metadata` runs while /ledgers
	// does not exist yet; PulsarRegistrationManager.initNewCluster refuses once it exists).
	InstanceIDPath = LedgersRoot + "/INSTANCEID"
	// IDGenLongPath holds the high-order halves of 63-bit ledger ids: while it exists,
	// PulsarLedgerIdGenerator.generateLedgerId hands out (highest HOB-n child << 32) | seq,
	// seq the suffix of a sequential child of that HOB node, which ZooKeeper numbers from the
	// parent's cversion, so from 0 under a new HOB node (PrepRequestProcessor.
	// pRequest2TxnCreate). BookKeeper's own LongZkLedgerIdGenerator uses the same layout.
	IDGenLongPath = LedgersRoot + "/idgen-long"
	hobPrefix     = "HOB-"
)

// HOBPath is the znode that makes PulsarLedgerIdGenerator hand out ids from hob << 32 up
// (PulsarLedgerIdGenerator.formatHalfId: "HOB-%010d").
func HOBPath(hob int64) string { return fmt.Sprintf("%s/%s%010d", IDGenLongPath, hobPrefix, hob) }

// LedgerIDFloor is the floor a restore puts under the new cluster's ledger ids: every id it
// hands out afterwards is at least FirstID, above every ledger id the archive names. Without
// it a new BookKeeper numbers its ledgers from 0, so a new ledger of a restored topic sorts
// below the restored ones (ManagedLedgerImpl takes the highest id as the current ledger)
// and an id a restored topic still lists may name a stranger's ledger.
type LedgerIDFloor struct {
	// Highest is the highest ledger id the archive names: in managed ledgers (kept,
	// dropped and the tail), cursors, schema locators, compacted-topic properties and
	// BookKeeper's own metadata, the source's id generator included.
	Highest int64 `json:"highestLedgerId"`
	// HOB is the idgen-long child the target needs (Highest >> 32) + 1, Path its znode, and
	// FirstID (HOB << 32) the lowest id the new cluster can hand out afterwards. HOB 0 means
	// the archive names no ledger: there is no floor to set.
	HOB     int64  `json:"hob"`
	Path    string `json:"path,omitempty"`
	FirstID int64  `json:"firstNewLedgerId"`
}

// ledgerIDs accumulates the ledger ids an archive names, for the floor.
type ledgerIDs struct {
	max int64
	any bool
}

func (l *ledgerIDs) add(id int64) {
	if id < 0 {
		return // -1 means "none" in Pulsar's payloads
	}
	if !l.any || id > l.max {
		l.max, l.any = id, true
	}
}

// addItem takes the ids an item names: a managed ledger's (and its tail), a cursor's own
// ledger and compacted ledger, a schema locator's ledgers, and the ids in BookKeeper's
// metadata paths (ledger znodes, and the source's id generator, whose HOB-n means ids up to
// (n << 32) | 0xffffffff may exist).
func (l *ledgerIDs) addItem(it Item) {
	switch {
	case it.Ledger != nil:
		if it.Ledger.HasIDs {
			l.add(it.Ledger.MaxID)
		}
		if it.Ledger.HasTail {
			l.add(it.Ledger.Tail)
		}
	case it.Cursor != nil:
		if it.Cursor.Stale {
			l.add(it.Cursor.CursorsLedgerID)
		}
		if it.Cursor.HadCompactedLedger {
			l.add(it.Cursor.CompactedLedger)
		}
	}
	for _, id := range it.SchemaLedgers {
		l.add(id)
	}
	if it.Skip == SkipBookKeeper {
		if id, ok := ledgerIDOfPath(it.Record.Path); ok {
			l.add(id)
		}
	}
}

func (l *ledgerIDs) floor() LedgerIDFloor {
	if !l.any {
		return LedgerIDFloor{}
	}
	hob := l.max>>32 + 1
	return LedgerIDFloor{Highest: l.max, HOB: hob, Path: HOBPath(hob), FirstID: hob << 32}
}

// ledgerIDOfPath reads the ledger id a path under /ledgers stands for:
//
//   - a ledger's metadata znode: the digits of the path segments below /ledgers, the last one
//     prefixed with L, as BookKeeper's hierarchical ledger managers lay them out
//     (StringUtils.getHybridHierarchicalLedgerPath: 00/0000/L0001 below Integer.MAX_VALUE,
//     else the long 000/0000/0000/0000/L0001); a single L<digits> segment parses too;
//   - idgen/ID-n: the 31-bit id n;
//   - idgen-long/HOB-n: (n << 32) | 0xffffffff, the highest id that generator state may have
//     handed out; idgen-long/HOB-n/ID-m: (n << 32) | m.
func ledgerIDOfPath(path string) (int64, bool) {
	rest, ok := strings.CutPrefix(path, LedgersRoot+"/")
	if !ok {
		return 0, false
	}
	first, below, nested := strings.Cut(rest, "/")
	switch first {
	case "idgen":
		if !nested || strings.Contains(below, "/") {
			return 0, false
		}
		return digits(strings.TrimPrefix(below, "ID-"))
	case "idgen-long":
		hobSeg, idSeg, hasID := strings.Cut(below, "/")
		hob, ok := digits(strings.TrimPrefix(hobSeg, hobPrefix))
		if !nested || !ok || hob > 0x7fffffff || strings.Contains(idSeg, "/") {
			return 0, false
		}
		if !hasID {
			return hob<<32 | 0xffffffff, true
		}
		low, ok := digits(strings.TrimPrefix(idSeg, "ID-"))
		if !ok || low > 0xffffffff {
			return 0, false
		}
		return hob<<32 | low, true
	}
	// A ledger's znode: its segments' digits run on as one number, without building the
	// string (every /ledgers record of a plan passes here).
	var id int64
	for {
		seg, more, nested := strings.Cut(rest, "/")
		if !nested {
			if seg, ok = strings.CutPrefix(seg, "L"); !ok {
				return 0, false
			}
		}
		v, ok := digits(seg)
		if !ok {
			return 0, false
		}
		for range len(seg) {
			if id > math.MaxInt64/10 {
				return 0, false
			}
			id *= 10
		}
		if id > math.MaxInt64-v {
			return 0, false
		}
		id += v
		if !nested {
			return id, true
		}
		rest = more
	}
}

// digits parses a non-empty string of decimal digits that fits an int64.
func digits(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// FloorResult is what SetLedgerIDFloor found and did.
type FloorResult struct {
	// Created is true when this call created the HOB znode; otherwise the target's highest
	// HOB (Present) was already at or above the floor.
	Created bool  `json:"created"`
	Present int64 `json:"presentHob"`
}

// SetLedgerIDFloor makes the target's ledger-id generator hand out ids from f.FirstID up:
// it creates /ledgers/idgen-long (if missing) and /ledgers/idgen-long/HOB-<f.HOB>, empty and
// persistent as PulsarLedgerIdGenerator.createHOBPathAndGenerateId creates them, with the ACL
// of /ledgers. A target whose highest HOB child is already at least f.HOB is left alone. It
// is idempotent. /ledgers must exist (Check refuses a target without BookKeeper metadata).
//
// A generator that is running while the floor is set may not see it: BookKeeper's
// LongZkLedgerIdGenerator caches whether idgen-long exists, and its HOB list, per client.
// Whatever creates ledgers (bookies' stream storage, function workers) must restart after the
// restore; brokers do not run during one.
func SetLedgerIDFloor(ctx context.Context, c metastore.Store, f LedgerIDFloor) (FloorResult, error) {
	var res FloorResult
	if f.HOB == 0 {
		return res, nil
	}
	root, found, err := c.ReadZnode(ctx, LedgersRoot)
	if err != nil {
		return res, fmt.Errorf("ledger-id floor: %w", err)
	}
	if !found {
		// Pulsar's etcd store creates no parent keys (EtcdMetadataStore.batchOperation puts
		// the one key of each PUT), so there /ledgers may exist only as the prefix of its
		// children. idgen-long itself must be a key: existsFromStore, which
		// PulsarLedgerIdGenerator.ledgerIdGenPathPresent calls, counts the exact key.
		_, below, err := c.ListChildren(ctx, LedgersRoot)
		if err != nil {
			return res, fmt.Errorf("ledger-id floor: %w", err)
		}
		if !below {
			return res, fmt.Errorf("ledger-id floor: %s does not exist", LedgersRoot)
		}
		root.ACL = openACL
	}
	hobs, _, err := c.ListChildren(ctx, IDGenLongPath)
	if err != nil {
		return res, fmt.Errorf("ledger-id floor: %w", err)
	}
	res.Present = highestHOB(hobs)
	if res.Present >= f.HOB {
		return res, nil
	}
	for _, p := range []string{IDGenLongPath, HOBPath(f.HOB)} {
		// Empty data, as PulsarLedgerIdGenerator.createHOBPathAndGenerateId writes them
		// (new byte[0]).
		created, err := c.CreateOne(ctx, znode.Record{Path: p, Data: []byte{}, ACL: root.ACL, Mode: znode.ModePersistent})
		// Existing with other data or ACL is fine: the generator only looks at names.
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return res, fmt.Errorf("ledger-id floor: %w", err)
		}
		res.Created = res.Created || created && p != IDGenLongPath
	}
	return res, nil
}

// highestHOB is the highest n of the HOB-n names, as PulsarLedgerIdGenerator.
// generateLongLedgerId picks it (names that do not parse are ignored); 0 when there is none.
func highestHOB(names []string) int64 {
	var max int64
	for _, n := range names {
		if v, ok := digits(strings.TrimPrefix(n, hobPrefix)); ok && strings.HasPrefix(n, hobPrefix) && v > max {
			max = v
		}
	}
	return max
}

// ReadTargetLedgers returns the ids of the ledgers the target's BookKeeper already has (its
// ledger metadata znodes under /ledgers): a restored topic must not list one of them, or
// the broker would open and fence that ledger as its own.
func ReadTargetLedgers(ctx context.Context, c metastore.Store) (map[int64]bool, error) {
	out := map[int64]bool{}
	_, found, err := c.ReadZnode(ctx, LedgersRoot)
	if err != nil || !found {
		return out, err
	}
	_, err = c.Walk(ctx, metastore.WalkOptions{Root: LedgersRoot, Skip: func(p string) bool {
		// Only ledger metadata names ledgers that exist; the rest is bookie and generator state.
		rest := strings.TrimPrefix(p, LedgersRoot+"/")
		top, _, _ := strings.Cut(rest, "/")
		_, isDigits := digits(top)
		return p != LedgersRoot && !isDigits && !strings.HasPrefix(top, "L")
	}}, func(r znode.Record) error {
		if id, ok := ledgerIDOfPath(r.Path); ok {
			out[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the target's ledgers: %w", err)
	}
	return out, nil
}
