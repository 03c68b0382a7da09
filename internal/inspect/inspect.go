// Package inspect says what is in a backup archive without unpacking it: its manifest, its
// znodes counted by top-level path and by Pulsar tenant and namespace, its topics,
// subscriptions and ledgers, and what a restore of it would keep and drop. The restore's own
// planner (restore.Planner) decides the last part, so inspect and a dry run agree.
//
// An archive is read once, as a stream: memory holds counters per top-level path, tenant and
// namespace (each capped), and the planner's bounded state, never the records.
package inspect

import (
	"cmp"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
)

// Caps on the keys counted separately; the rest are added up under Other.
const (
	MaxTopLevel   = 1000
	MaxTenants    = 10000
	MaxNamespaces = 100000
)

// Other is the name counts beyond a cap are added up under.
const Other = "(other)"

// Summary is what an archive holds.
type Summary struct {
	// URL is where the archive was read from, when the caller says.
	URL      string           `json:"url,omitempty"`
	Manifest archive.Manifest `json:"manifest"`
	// ByTopLevel counts znodes per top-level path ("/" is the root itself), sorted by path.
	ByTopLevel []PathCount `json:"byTopLevel"`
	// Tenants are the tenants that own znodes (pulsarpath.OwnerOf), sorted by name, each
	// with its namespaces. TenantZnodes and NamespaceZnodes count the tenants' and
	// namespaces' own policies znodes under /admin/policies.
	Tenants         []Tenant `json:"tenants"`
	TenantZnodes    int64    `json:"tenantZnodes"`
	NamespaceZnodes int64    `json:"namespaceZnodes"`
	// Topics counts managed ledgers (persistent topics and partitions),
	// PartitionedTopics the partitioned-topic metadata znodes, Subscriptions the cursors.
	Topics            int64 `json:"topics"`
	PartitionedTopics int64 `json:"partitionedTopics"`
	Subscriptions     int64 `json:"subscriptions"`
	// LedgersOffloaded are the ledgers fully offloaded to tiered storage, which a restore
	// keeps; LedgersBookKeeperOnly the others, whose data is only in the old BookKeeper.
	LedgersOffloaded      int64 `json:"ledgersOffloaded"`
	LedgersBookKeeperOnly int64 `json:"ledgersBookKeeperOnly"`
	// Restore is what a restore of the archive's local store would do, as its dry run
	// reports it (with no target to compare with).
	Restore restore.Plan `json:"restore"`
	// Configuration is the configuration store's part of an archive of a cluster with one
	// apart; nil for one store. Its znodes count in Tenants and the totals above too.
	Configuration *ConfigurationSummary `json:"configuration,omitempty"`
	// Truncated says some keys went over a cap and are counted under Other.
	Truncated bool `json:"truncated"`
}

// ConfigurationSummary is what an archive holds of a configuration store apart, and what a
// restore does with it before it sees the target (restore.PlanConfiguration decides the rest
// against the target: shared or exclusive, conflicts).
type ConfigurationSummary struct {
	// Source is the store backed up, as the manifest's role names it.
	Source string `json:"source"`
	// ByTopLevel counts the store's znodes per top-level path, sorted by path.
	ByTopLevel []PathCount `json:"byTopLevel"`
	// Create are the znodes a restore creates (or finds identical); Skipped the others per
	// reason (restore.SkipReason).
	Create  int64            `json:"create"`
	Skipped map[string]int64 `json:"skipped"`
}

// PathCount is the znodes below one path.
type PathCount struct {
	Path string `json:"path"`
	Count
}

// Count is a number of znodes and the bytes of their data.
type Count struct {
	Znodes    int64 `json:"znodes"`
	DataBytes int64 `json:"dataBytes"`
}

// Tenant is one tenant's share of the archive.
type Tenant struct {
	Name string `json:"name"`
	// Count covers every znode the tenant owns, its namespaces' included.
	Count
	Namespaces []Namespace `json:"namespaces"`
}

// Namespace is one namespace's share of the archive.
type Namespace struct {
	// Name is <tenant>/<ns>.
	Name string `json:"name"`
	Count
	Topics                int64 `json:"topics"`
	PartitionedTopics     int64 `json:"partitionedTopics"`
	Subscriptions         int64 `json:"subscriptions"`
	LedgersOffloaded      int64 `json:"ledgersOffloaded"`
	LedgersBookKeeperOnly int64 `json:"ledgersBookKeeperOnly"`
}

// capped counts per key, up to max keys; later keys go to Other.
type capped[T any] struct {
	m         map[string]*T
	max       int
	truncated *bool
}

func newCapped[T any](max int, truncated *bool) capped[T] {
	return capped[T]{m: map[string]*T{}, max: max, truncated: truncated}
}

func (c capped[T]) get(key string) *T {
	if v, ok := c.m[key]; ok {
		return v
	}
	if len(c.m) >= c.max {
		*c.truncated = true
		key = Other
		if v, ok := c.m[key]; ok {
			return v
		}
	}
	v := new(T)
	c.m[key] = v
	return v
}

// Read reads a whole archive, verifying it as it goes (archive.Reader), and summarizes it:
// every store it holds (its roles), the configuration store's apart where it has one.
// Errors are the archive's (wrapping archive.ErrCorrupt), the restore's
// (restore.ErrUnrestorable: a managed-ledger or cursor payload a restore could not rewrite),
// or I/O errors; nothing is returned before the whole archive has been checked.
func Read(ctx context.Context, r io.Reader) (Summary, error) {
	ar, err := archive.NewAllReader(r)
	if err != nil {
		return Summary{}, err
	}
	var s Summary
	s.Manifest = ar.Manifest()
	var confTop capped[Count]
	if role, ok := s.Manifest.Role(archive.RoleConfiguration); ok {
		s.Configuration = &ConfigurationSummary{Source: role.Source, ByTopLevel: []PathCount{}, Skipped: map[string]int64{}}
		confTop = newCapped[Count](MaxTopLevel, &s.Truncated)
	}
	layout := pulsarpath.NewLayout(s.Manifest.ManagedLedgerPath)
	planner := restore.NewPlanner(s.Manifest.ManagedLedgerPath, restore.PlanInput{RestoredAt: time.Now()})
	top := newCapped[Count](MaxTopLevel, &s.Truncated)
	tenants := newCapped[Count](MaxTenants, &s.Truncated)
	namespaces := newCapped[Namespace](MaxNamespaces, &s.Truncated)
	for n := int64(1); ; n++ {
		rec, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Summary{}, err
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Summary{}, err
			}
		}
		size := int64(len(rec.Data))
		add := func(c *Count) { c.Znodes++; c.DataBytes += size }
		// The configuration store's records: no managed ledgers there (PulsarService.start
		// gives the managed-ledger storage the local store), and its restore only skips
		// (restore.SkipReason) or creates.
		var it restore.Item
		if ar.Role() == archive.RoleConfiguration {
			add(confTop.get(pulsarpath.TopLevel(rec.Path)))
			if reason, skip := restore.SkipReason(rec.Path); skip {
				s.Configuration.Skipped[reason]++
			} else {
				s.Configuration.Create++
			}
		} else {
			if it, err = planner.Add(rec); err != nil {
				return Summary{}, err
			}
			add(top.get(pulsarpath.TopLevel(rec.Path)))
		}
		if _, ok := pulsarpath.IsTenant(rec.Path); ok {
			s.TenantZnodes++
		}
		if _, ok := pulsarpath.IsNamespace(rec.Path, rec.Stat.NumChildren); ok {
			s.NamespaceZnodes++
		}
		_, partitioned := pulsarpath.IsPartitionedTopic(rec.Path)
		if partitioned {
			s.PartitionedTopics++
		}
		var kept, dropped int64
		switch it.Kind {
		case restore.KindManagedLedger:
			s.Topics++
			kept, dropped = int64(len(it.Ledger.Kept)), int64(len(it.Ledger.Dropped))
			s.LedgersOffloaded += kept
			s.LedgersBookKeeperOnly += dropped
		case restore.KindCursor:
			s.Subscriptions++
		}
		owner := layout.OwnerOf(rec.Path)
		if owner.Tenant == "" {
			continue
		}
		add(tenants.get(owner.Tenant))
		if owner.Namespace == "" {
			continue
		}
		ns := namespaces.get(owner.Namespace)
		add(&ns.Count)
		if partitioned {
			ns.PartitionedTopics++
		}
		switch it.Kind {
		case restore.KindManagedLedger:
			ns.Topics++
			ns.LedgersOffloaded += kept
			ns.LedgersBookKeeperOnly += dropped
		case restore.KindCursor:
			ns.Subscriptions++
		}
	}
	s.Restore = planner.Plan()
	s.ByTopLevel = byPath(top)
	if s.Configuration != nil {
		s.Configuration.ByTopLevel = byPath(confTop)
	}
	s.Tenants = group(tenants.m, namespaces.m)
	return s, nil
}

// byPath lists counts per path, sorted by path.
func byPath(c capped[Count]) []PathCount {
	out := []PathCount{}
	for _, p := range slices.Sorted(maps.Keys(c.m)) {
		out = append(out, PathCount{Path: p, Count: *c.m[p]})
	}
	return out
}

// group puts each namespace under its tenant, both sorted by name. A namespace whose tenant
// went over the tenants' cap, or the namespaces over theirs, is listed under Other.
func group(tenants map[string]*Count, namespaces map[string]*Namespace) []Tenant {
	byName := map[string]*Tenant{}
	for name, c := range tenants {
		byName[name] = &Tenant{Name: name, Count: *c, Namespaces: []Namespace{}}
	}
	for name, ns := range namespaces {
		ns.Name = name
		tenant, _, _ := strings.Cut(name, "/")
		t, ok := byName[tenant]
		if !ok {
			t = byName[Other]
			if t == nil {
				t = &Tenant{Name: Other, Namespaces: []Namespace{}}
				byName[Other] = t
			}
		}
		t.Namespaces = append(t.Namespaces, *ns)
	}
	out := make([]Tenant, 0, len(byName))
	for _, t := range byName {
		slices.SortFunc(t.Namespaces, func(a, b Namespace) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tenant) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
