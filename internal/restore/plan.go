package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Limits on the lists of a Plan, which travels as a workflow result: counts are always
// complete, lists hold the first entries in archive order.
const (
	MaxListedTopics    = 500
	MaxListedNames     = 1000
	MaxListedConflicts = 100
)

// Plan is what a restore of an archive does: the dry run's output, and the counts of the
// report. Counts are exact; lists stop at the Max* limits (ListsTruncated says so).
type Plan struct {
	// Znodes is the number of records in the archive.
	Znodes int64 `json:"znodes"`
	// Create is the number of znodes the restore creates (or finds identical), and
	// CreateByTopLevel the same per top-level path ("/admin": 120, ...).
	Create           int64            `json:"create"`
	CreateByTopLevel map[string]int64 `json:"createByTopLevel"`
	// Skipped counts, per reason (SkipReasons), the records not restored.
	Skipped map[string]int64 `json:"skipped"`
	// ManagedLedgers and Cursors count the rewritten znodes; PayloadFormats counts them per
	// stored form ("managed-ledger/plain", "cursor/lz4", ...).
	ManagedLedgers int64            `json:"managedLedgers"`
	Cursors        int64            `json:"cursors"`
	PayloadFormats map[string]int64 `json:"payloadFormats"`
	// LedgersKept are ledgers fully offloaded to tiered storage, kept with bookkeeperDeleted
	// set; LedgersDropped the others, whose data stayed in the old BookKeeper.
	LedgersKept    int64 `json:"ledgersKept"`
	LedgersDropped int64 `json:"ledgersDropped"`
	// CursorsReset counts cursors whose mark-delete position moved back to a kept position;
	// every cursor gets cursorsLedgerId -1. CursorsWithoutKeptLedger counts cursors of
	// managed ledgers with no kept ledger, left at their position.
	CursorsReset             int64 `json:"cursorsReset"`
	CursorsWithoutKeptLedger int64 `json:"cursorsWithoutKeptLedger"`
	// Topics lists, per managed ledger, the ledgers kept and dropped and the cursors reset.
	Topics      []TopicPlan `json:"topics"`
	TopicsCount int64       `json:"topicsCount"`
	// TopicsWithDataLoss are the topics with at least one dropped ledger.
	TopicsWithDataLoss      []string `json:"topicsWithDataLoss"`
	TopicsWithDataLossCount int64    `json:"topicsWithDataLossCount"`
	// TerminatedClamped counts terminated topics whose terminatedPosition lay beyond the
	// last kept entry and was moved back to it.
	TerminatedClamped int64 `json:"terminatedClamped"`
	// LedgerIDFloor is the floor the restore sets under the new cluster's ledger ids.
	LedgerIDFloor LedgerIDFloor `json:"ledgerIdFloor"`
	// SchemasToRegister are the schemas (<tenant>/<ns>/<topic>) whose locators are left out:
	// their versions lived in BookKeeper ledgers of the old cluster. A producer registers
	// the schema again.
	SchemasToRegister Listed `json:"schemasToRegister"`
	// CompactionReset are the compacted topics whose compacted ledger (the __compaction
	// cursor's CompactedTopicLedger property) was removed: compact them again.
	CompactionReset Listed `json:"compactionReset"`
	// StaleCursors are the cursors that had their own ledger in the old BookKeeper
	// (cursorsLedgerId other than -1): acknowledgements newer than the znode's position lived
	// there, so those subscriptions may get messages again.
	StaleCursors Listed `json:"staleCursors"`
	// BookKeeperBoundSkipped counts, per root (BookKeeperBoundRoots), the znodes of
	// functions, packages and stream storage left out.
	BookKeeperBoundSkipped map[string]int64 `json:"bookkeeperBoundSkipped"`
	// LedgerCollisions are ledger ids a restored topic lists that the target's BookKeeper
	// already has ("<topic> <id>"): the restore refuses them.
	LedgerCollisions Listed `json:"ledgerCollisions"`
	// AuthMismatch are znodes whose ACL names zookeeper.auth's user with another password
	// than the configured one: the restore could not read back, or create children under,
	// what it creates there. The restore refuses them.
	AuthMismatch Listed `json:"authMismatch"`
	// Existing counts znodes the target already holds exactly as the restore would create
	// them; Conflicts names those it holds differently (the restore refuses to overwrite).
	// Both are only known when the plan was made against the target's contents.
	Existing       int64    `json:"existing"`
	Conflicts      []string `json:"conflicts"`
	ConflictsCount int64    `json:"conflictsCount"`
	// InitReplaced are the znodes `pulsar initialize-cluster-metadata` wrote in the target
	// that the archive holds with other contents (ClusterInitPath): the restore replaces
	// them with the archive's. All of them are listed.
	InitReplaced   []string `json:"initReplaced"`
	ListsTruncated bool     `json:"listsTruncated"`
	// Configuration is the plan of the archive's configuration role, restored into the
	// configuration store (PlanConfiguration); nil for archives of one store.
	Configuration *ConfigPlan `json:"configuration,omitempty"`
}

// Listed is an exact count and the first names counted (at most MaxListedNames).
type Listed struct {
	Count int64    `json:"count"`
	First []string `json:"first"`
}

func (l *Listed) add(name string) (truncated bool) {
	l.Count++
	if len(l.First) < MaxListedNames {
		l.First = append(l.First, name)
		return false
	}
	return true
}

// TopicPlan is one managed ledger's rewrite.
type TopicPlan struct {
	// Topic is persistent://<tenant>/<ns>/<topic>, Path its znode.
	Topic   string  `json:"topic"`
	Path    string  `json:"path"`
	Format  string  `json:"format"`
	Kept    []int64 `json:"kept"`
	Dropped []int64 `json:"dropped"`
	// Tail is the id appended after the kept ledgers for the broker's load to drop (see
	// managedledger.RewriteLedger); absent for a managed ledger without ledgers.
	Tail    *int64        `json:"tail,omitempty"`
	Cursors []CursorReset `json:"cursorsReset,omitempty"`
}

// CursorReset is a cursor whose mark-delete position moved.
type CursorReset struct {
	Cursor string `json:"cursor"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// planner accumulates a Plan from Items.
type planner struct {
	p      Plan
	layout pulsarpath.Layout
	topic  map[string]int // index in p.Topics of listed topics
	in     PlanInput
	ids    ledgerIDs
	// user is "<user>:" of in.Identity ("" without auth), for the AuthMismatch check.
	user string
}

func newPlanner(mlPath string, in PlanInput) *planner {
	pl := &planner{layout: pulsarpath.NewLayout(mlPath), topic: map[string]int{}, in: in}
	if user, _, ok := strings.Cut(in.Identity, ":"); ok {
		pl.user = user + ":"
	}
	pl.p.CreateByTopLevel = map[string]int64{}
	pl.p.Skipped = map[string]int64{}
	for _, r := range SkipReasons {
		pl.p.Skipped[r] = 0
	}
	pl.p.BookKeeperBoundSkipped = map[string]int64{}
	for _, r := range BookKeeperBoundRoots {
		pl.p.BookKeeperBoundSkipped[r] = 0
	}
	pl.p.PayloadFormats = map[string]int64{}
	pl.p.Topics = []TopicPlan{}
	pl.p.TopicsWithDataLoss = []string{}
	for _, l := range []*Listed{&pl.p.SchemasToRegister, &pl.p.CompactionReset, &pl.p.StaleCursors, &pl.p.LedgerCollisions, &pl.p.AuthMismatch} {
		l.First = []string{}
	}
	pl.p.Conflicts = []string{}
	pl.p.InitReplaced = []string{}
	return pl
}

func (pl *planner) list(l *Listed, name string) {
	if l.add(name) {
		pl.p.ListsTruncated = true
	}
}

// done finishes the plan once every record was added.
func (pl *planner) done() Plan {
	pl.p.LedgerIDFloor = pl.ids.floor()
	return pl.p
}

func (pl *planner) add(it Item) {
	p := &pl.p
	p.Znodes++
	pl.ids.addItem(it)
	if it.Skip != "" {
		p.Skipped[it.Skip]++
		switch it.Skip {
		case SkipBookKeeperBound:
			for _, r := range BookKeeperBoundRoots {
				if znode.Under(it.Record.Path, r) {
					p.BookKeeperBoundSkipped[r]++
				}
			}
		case SkipSchemaLocator:
			if it.Kind == KindSchema && (it.SchemaErr != nil || len(it.SchemaLedgers) > 0) {
				pl.list(&p.SchemasToRegister, strings.TrimPrefix(it.Record.Path, "/schemas/"))
			}
		}
		return
	}
	p.Create++
	p.CreateByTopLevel[pulsarpath.TopLevel(it.Record.Path)]++
	if pl.user != "" {
		for _, a := range it.Record.ACL {
			if a.Scheme == "digest" && strings.HasPrefix(a.ID, pl.user) && a.ID != pl.in.Identity {
				pl.list(&p.AuthMismatch, it.Record.Path)
				break
			}
		}
	}
	if pl.in.Target != nil {
		if have, ok := pl.in.Target[it.Record.Path]; ok {
			switch {
			case Same(have, it.Record):
				p.Existing++
			case replaceable(it.Record.Path, have.Mode, it.Record.Mode):
				p.InitReplaced = append(p.InitReplaced, it.Record.Path)
			default:
				p.ConflictsCount++
				if len(p.Conflicts) < MaxListedConflicts {
					p.Conflicts = append(p.Conflicts, it.Record.Path)
				} else {
					p.ListsTruncated = true
				}
			}
		}
	}
	switch it.Kind {
	case KindManagedLedger:
		lr := it.Ledger
		p.ManagedLedgers++
		p.PayloadFormats["managed-ledger/"+lr.Format.String()]++
		p.LedgersKept += int64(len(lr.Kept))
		p.LedgersDropped += int64(len(lr.Dropped))
		p.TopicsCount++
		name := pl.layout.TopicName(it.Record.Path)
		if lr.TerminatedTo != lr.TerminatedFrom {
			p.TerminatedClamped++
		}
		keptIDs := lr.KeptIDs()
		listed := keptIDs
		if lr.HasTail {
			listed = append(slices.Clip(keptIDs), lr.Tail)
		}
		for _, id := range listed {
			if pl.in.TargetLedgers[id] {
				pl.list(&p.LedgerCollisions, fmt.Sprintf("%s %d", name, id))
			}
		}
		if len(lr.Dropped) > 0 {
			p.TopicsWithDataLossCount++
			if len(p.TopicsWithDataLoss) < MaxListedNames {
				p.TopicsWithDataLoss = append(p.TopicsWithDataLoss, name)
			} else {
				p.ListsTruncated = true
			}
		}
		if len(p.Topics) < MaxListedTopics {
			pl.topic[it.Record.Path] = len(p.Topics)
			dropped := lr.Dropped
			if dropped == nil {
				dropped = []int64{}
			}
			tp := TopicPlan{Topic: name, Path: it.Record.Path, Format: lr.Format.String(), Kept: keptIDs, Dropped: dropped}
			if lr.HasTail {
				tp.Tail = &lr.Tail
			}
			p.Topics = append(p.Topics, tp)
		} else {
			p.ListsTruncated = true
		}
	case KindCursor:
		cr := it.Cursor
		p.Cursors++
		p.PayloadFormats["cursor/"+cr.Format.String()]++
		if cr.NoKeptLedger {
			p.CursorsWithoutKeptLedger++
		}
		name := znode.Base(it.Record.Path)
		// The topic's name only when a list takes it: most cursors are in none.
		if cr.Stale {
			pl.list(&p.StaleCursors, pl.layout.TopicName(znode.Parent(it.Record.Path))+" "+name)
		}
		if cr.HadCompactedLedger {
			pl.list(&p.CompactionReset, pl.layout.TopicName(znode.Parent(it.Record.Path)))
		}
		if cr.Moved {
			p.CursorsReset++
			if i, ok := pl.topic[znode.Parent(it.Record.Path)]; ok {
				t := &p.Topics[i]
				t.Cursors = append(t.Cursors, CursorReset{Cursor: name, From: cr.From.String(), To: cr.To.String()})
			}
		}
	}
}

// Same reports whether an existing znode equals a record as the restore would create it:
// mode (and TTL), data and ACL (as a set). An empty and a null data compare equal, as
// ZooKeeper's clients cannot tell them apart on create.
func Same(have, want znode.Record) bool {
	if have.Mode != want.Mode || want.Mode == znode.ModeTTL && have.TTL != want.TTL {
		return false
	}
	if string(have.Data) != string(want.Data) {
		return false
	}
	if len(have.ACL) != len(want.ACL) {
		return false
	}
next:
	for _, a := range want.ACL {
		for _, b := range have.ACL {
			if a == b {
				continue next
			}
		}
		return false
	}
	return true
}

// PlanInput is what MakePlan compares the archive with.
type PlanInput struct {
	// Target holds the target's znodes outside the skipped paths (ReadTarget); nil means
	// "not looked at": Existing, Conflicts and InitReplaced stay empty.
	Target map[string]znode.Record
	// TargetLedgers are the ledgers the target's BookKeeper has (ReadTargetLedgers).
	TargetLedgers map[int64]bool
	// RestoredAt is the cursors' new lastActive (see NewRewriter).
	RestoredAt time.Time
	// Identity is the target session's digest identity ("user:hash"), "" without auth.
	Identity string
}

// Planner makes a Plan from an archive's records, one at a time in archive order, with the
// rules of a restore: the Rewriter's, then the plan's counting. Its memory is the Rewriter's
// and the plan's bounded lists: it does not grow with the tree.
type Planner struct {
	rw *Rewriter
	pl *planner
}

// NewPlanner returns a Planner for an archive whose manifest names managedLedgerPath.
func NewPlanner(managedLedgerPath string, in PlanInput) *Planner {
	return &Planner{rw: NewRewriter(managedLedgerPath, in.RestoredAt), pl: newPlanner(managedLedgerPath, in)}
}

// Add takes the next record, fully decoded (archive.Reader.Next), and returns what the
// restore makes of it: the same Items MakePlan counts. An error means the archive cannot be
// restored (ErrUnrestorable).
func (p *Planner) Add(rec znode.Record) (Item, error) {
	it, err := p.rw.Next(rec)
	if err != nil {
		return Item{}, fmt.Errorf("%w: %w", ErrUnrestorable, err)
	}
	p.pl.add(it)
	return it, nil
}

// Plan is the plan of the records added so far; call it once, after the last.
func (p *Planner) Plan() Plan { return p.pl.done() }

// MakePlan reads an archive (verified again as it goes) and says what a restore of it into
// the target in would do.
func MakePlan(ctx context.Context, r io.Reader, in PlanInput, progress func(Progress)) (Plan, error) {
	ar, err := archive.NewReader(r)
	if err != nil {
		return Plan{}, err
	}
	m := ar.Manifest()
	rw := NewRewriter(m.ManagedLedgerPath, in.RestoredAt)
	pl := newPlanner(m.ManagedLedgerPath, in)
	tick := ticker{fn: progress}
	for {
		rec, skip, err := ar.NextUnless(skipUndecoded)
		if err == io.EOF {
			return pl.done(), nil
		}
		if err != nil {
			return Plan{}, err
		}
		if pl.p.Znodes%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Plan{}, err
			}
		}
		if skip {
			reason, _ := SkipReason(rec.Path)
			pl.add(Item{Record: rec, Skip: reason})
			continue
		}
		it, err := rw.Next(rec)
		if err != nil {
			return Plan{}, fmt.Errorf("%w: %w", ErrUnrestorable, err)
		}
		pl.add(it)
		tick.tick(Progress{Records: pl.p.Znodes, Path: rec.Path})
	}
}

// ErrTargetTooLarge is returned by ReadTarget when the target holds more than its limit.
var ErrTargetTooLarge = errors.New("target holds too many znodes to compare")

// ReadTarget reads every znode of the target outside the skipped paths, for MakePlan to
// compare with the archive. A new cluster's target holds few; more than limit fails with
// ErrTargetTooLarge.
func ReadTarget(ctx context.Context, c metastore.Store, limit int) (map[string]znode.Record, error) {
	out := map[string]znode.Record{}
	_, err := c.Walk(ctx, metastore.WalkOptions{Skip: func(p string) bool {
		_, skip := SkipReason(p)
		return skip && p != "/"
	}}, func(r znode.Record) error {
		if r.Path == "/" {
			return nil
		}
		if len(out) >= limit {
			return fmt.Errorf("%w: more than %d outside the skipped paths", ErrTargetTooLarge, limit)
		}
		out[r.Path] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the target: %w", err)
	}
	return out, nil
}
