// Package backupdiff says what changed between two backup archives: tenants, namespaces and
// topics added or removed, policy documents changed (as RFC 6902 JSON Patches), znodes
// changed per subtree, and managed ledgers that gained or lost offloaded ledgers.
//
// # Order and memory
//
// An archive's records come parents before children, in the order the backup's walk
// received its replies (zookeeper.Client.Walk: hundreds of reads in flight, emitted as they
// complete). That order is neither sorted nor the same for two backups of the same tree, so
// it cannot drive a merge join. Each archive is therefore read once, each record reduced to
// an entry (its path, hashes of its data and of its ACL, mode and TTL, and the little the
// reports need), and the entries sorted by path with an external sort: sorted runs of at
// most Options.Budget bytes go to unlinked temporary files and are merged back (sort.go).
// The two sorted streams are then merge-joined. Memory is the two arenas, a read buffer per
// run, and the reports' capped lists; it does not grow with the archives. Disk use is about
// the size of the entries (a path and 30 bytes per znode, plus the /admin documents).
//
// Paths are ordered segment by segment (comparePaths), so that each subtree's paths are
// contiguous in the merged stream.
//
// # Roles
//
// An archive of a cluster with a configuration store apart holds two stores' trees (roles
// local and configuration). Both are read and compared, each with its own store's: an
// entry's key is its role and its path, the local store's entries sort first, and results
// name the configuration store's subtrees and policy documents with their Role. That store
// is where tenants, namespaces and their policies are in such a cluster (the
// PulsarResources constructor gives TenantResources, ClusterResources and
// NamespaceResources the configuration store), so a diff of the local role alone would miss
// them.
package backupdiff

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/wI2L/jsondiff"
	"golang.org/x/sync/errgroup"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
)

// Caps on what a Result lists; counts are always exact, and Truncated says a list stopped.
const (
	MaxListed          = 1000
	MaxPolicyChanges   = 1000
	MaxPatchBytes      = 4 << 20 // patches of all listed policy changes together
	MaxLedgerChanges   = 1000
	MaxLedgerIDs       = 100 // per managed ledger and direction
	MaxSubtrees        = 10000
	OtherSubtree       = "(other)"
	subtreeDepthListed = 2
)

// Input is one archive to compare.
type Input struct {
	// Name says which archive an error is about and goes into Side.URL.
	Name string
	R    io.Reader
}

// Options tune Diff.
type Options struct {
	// TempDir holds the sort's temporary files; "" is the OS's temporary directory.
	TempDir string
	// Budget is the memory the sort of each archive takes, in bytes (default 8 MiB).
	Budget int
}

// Result is what changed from one archive to the other.
type Result struct {
	From Side `json:"from"`
	To   Side `json:"to"`
	// Tenants and Namespaces are added or removed when their policies znode under
	// /admin/policies is (pulsarpath.IsTenant, IsNamespace).
	Tenants    AddedRemoved `json:"tenants"`
	Namespaces AddedRemoved `json:"namespaces"`
	// Topics are managed ledgers (persistent topics and partitions) added or removed;
	// PartitionedTopics the partitioned-topic metadata under /admin/partitioned-topics.
	Topics            AddedRemoved `json:"topics"`
	PartitionedTopics AddedRemoved `json:"partitionedTopics"`
	// Policies are the documents under /admin whose data changed.
	Policies Policies `json:"policies"`
	// Znodes counts every znode; BySubtree the same for each top-level path and each path
	// one level below, where something changed.
	Znodes    Changes          `json:"znodes"`
	BySubtree []SubtreeChanges `json:"bySubtree"`
	// ManagedLedgers are the managed ledgers in both archives whose offloaded ledgers (the
	// ones a restore keeps) differ.
	ManagedLedgers LedgerChanges `json:"managedLedgers"`
	// Truncated says a list stopped at its cap.
	Truncated bool `json:"truncated"`
}

// Side is one of the archives.
type Side struct {
	URL      string           `json:"url,omitempty"`
	Manifest archive.Manifest `json:"manifest"`
}

// Names is an exact count and the first names counted, in path order.
type Names struct {
	Count int64    `json:"count"`
	First []string `json:"first"`
}

// AddedRemoved are the names added and removed.
type AddedRemoved struct {
	Added   Names `json:"added"`
	Removed Names `json:"removed"`
}

// Changes count znodes. Changed counts znodes in both archives that differ in data, ACL,
// mode or TTL (Stat is not compared); DataChanged and ACLChanged split it, and may both
// count one znode. ACLChanged includes mode and TTL changes.
type Changes struct {
	Added       int64 `json:"added"`
	Removed     int64 `json:"removed"`
	Changed     int64 `json:"changed"`
	DataChanged int64 `json:"dataChanged"`
	ACLChanged  int64 `json:"aclChanged"`
	Unchanged   int64 `json:"unchanged,omitempty"`
}

// SubtreeChanges are the changes at and below one path of one store.
type SubtreeChanges struct {
	// Role is the store ("configuration"); empty for the local store, the only one of a
	// one-store archive.
	Role string `json:"role,omitempty"`
	Path string `json:"path"`
	Changes
}

// Policies are the changed documents under /admin.
type Policies struct {
	Count   int64          `json:"count"`
	Changes []PolicyChange `json:"changes"`
}

// PolicyChange is one changed document.
type PolicyChange struct {
	// Role is the store the document is in ("configuration"); empty for the local store.
	Role string `json:"role,omitempty"`
	Path string `json:"path"`
	// Kind is cluster, tenant, namespace, local-policies, partitioned-topic or other; Name
	// the cluster, tenant, namespace or topic.
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	// Patch turns the old document into the new one (RFC 6902). Each replace and remove is
	// preceded by a test of the old value, so the patch says what was there and applies
	// only to the document it was made from. An empty patch means the same JSON in other
	// bytes (key order, spacing).
	Patch jsondiff.Patch `json:"patch"`
	// NotJSON is set when either side is not a JSON document: there is no patch.
	NotJSON bool `json:"notJson,omitempty"`
	// PatchOmitted is set when the listed patches reached MaxPatchBytes.
	PatchOmitted bool `json:"patchOmitted,omitempty"`
}

// LedgerChanges are the managed ledgers whose offloaded ledgers changed.
type LedgerChanges struct {
	Count int64 `json:"count"`
	// Gained and Lost add up the ledger ids over all of them.
	Gained  int64          `json:"gained"`
	Lost    int64          `json:"lost"`
	Changes []LedgerChange `json:"changes"`
	// Undecodable are managed ledgers whose payload did not decode in either archive.
	Undecodable Names `json:"undecodable"`
}

// LedgerChange is one managed ledger's offloaded ledgers gained and lost: ids of ledgers
// offloaded in To and not in From, and the other way round.
type LedgerChange struct {
	Topic       string  `json:"topic"`
	Path        string  `json:"path"`
	Gained      []int64 `json:"gained"`
	Lost        []int64 `json:"lost"`
	GainedCount int64   `json:"gainedCount"`
	LostCount   int64   `json:"lostCount"`
}

// Diff reads both archives once, verifying each as archive.Reader does, and compares them.
// Errors name the Input they are about; corrupt archives wrap archive.ErrCorrupt. Nothing
// is reported before both archives have been read and checked.
func Diff(ctx context.Context, from, to Input, opts Options) (Result, error) {
	sides := [2]*sideState{{in: from}, {in: to}}
	defer func() {
		for _, s := range sides {
			if s.sorter != nil {
				s.sorter.close()
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range sides {
		s.sorter = newSorter(opts.TempDir, opts.Budget)
		g.Go(func() error { return s.read(gctx) })
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	j := newJoiner(sides[0], sides[1])
	if err := j.run(ctx); err != nil {
		return Result{}, err
	}
	return j.result(), nil
}

type sideState struct {
	in       Input
	manifest archive.Manifest
	layout   pulsarpath.Layout
	sorter   *sorter
}

func (s *sideState) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", s.in.Name, fmt.Errorf(format, args...))
}

// read reads the archive into the sorter.
func (s *sideState) read(ctx context.Context) error {
	ar, err := archive.NewAllReader(s.in.R)
	if err != nil {
		return s.errorf("%w", err)
	}
	s.manifest = ar.Manifest()
	s.layout = pulsarpath.NewLayout(s.manifest.ManagedLedgerPath)
	for n := int64(1); ; n++ {
		rec, err := ar.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.errorf("%w", err)
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := newEntry(rec, roleOf(ar.Role()), s.layout)
		if err := s.sorter.add(&e); err != nil {
			return err
		}
	}
}

// joiner merge-joins the two sorted streams and builds the Result.
type joiner struct {
	from, to   *sideState
	res        Result
	subtrees   map[subtreeKey]*Changes
	patchBytes int
}

// subtreeKey is a subtree of one role's store.
type subtreeKey struct {
	role uint8
	path string
}

func newJoiner(from, to *sideState) *joiner {
	j := &joiner{from: from, to: to, subtrees: map[subtreeKey]*Changes{}}
	j.res.From = Side{URL: from.in.Name, Manifest: from.manifest}
	j.res.To = Side{URL: to.in.Name, Manifest: to.manifest}
	for _, n := range []*Names{
		&j.res.Tenants.Added, &j.res.Tenants.Removed, &j.res.Namespaces.Added, &j.res.Namespaces.Removed,
		&j.res.Topics.Added, &j.res.Topics.Removed, &j.res.PartitionedTopics.Added, &j.res.PartitionedTopics.Removed,
		&j.res.ManagedLedgers.Undecodable,
	} {
		n.First = []string{}
	}
	j.res.Policies.Changes = []PolicyChange{}
	j.res.ManagedLedgers.Changes = []LedgerChange{}
	return j
}

// cursor walks one side's sorted stream and refuses a path that appears twice.
type cursor struct {
	side *sideState
	it   entryIter
	cur  entry
	done bool
	prev entry
	have bool
}

func (c *cursor) advance() error {
	e, err := c.it.next()
	if err == io.EOF {
		c.done = true
		return nil
	}
	if err != nil {
		return err
	}
	if c.have && compareEntries(&e, &c.prev) == 0 {
		return c.side.errorf("%w: %s appears twice in role %s", archive.ErrCorrupt, e.path, roleName(e.role))
	}
	c.cur, c.have = e, true
	c.prev = entry{role: e.role, path: e.path}
	return nil
}

func (j *joiner) run(ctx context.Context) error {
	var cs [2]*cursor
	for i, s := range []*sideState{j.from, j.to} {
		it, err := s.sorter.sorted()
		if err != nil {
			return err
		}
		cs[i] = &cursor{side: s, it: it}
		if err := cs[i].advance(); err != nil {
			return err
		}
	}
	a, b := cs[0], cs[1]
	for n := 0; !a.done || !b.done; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c := 0
		switch {
		case a.done:
			c = 1
		case b.done:
			c = -1
		default:
			c = compareEntries(&a.cur, &b.cur)
		}
		var err error
		switch {
		case c < 0:
			j.removed(&a.cur)
			err = a.advance()
		case c > 0:
			j.added(&b.cur)
			err = b.advance()
		default:
			j.both(&a.cur, &b.cur)
			if err = a.advance(); err == nil {
				err = b.advance()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (j *joiner) list(n *Names, name string) {
	n.Count++
	if len(n.First) < MaxListed {
		n.First = append(n.First, name)
	} else {
		j.res.Truncated = true
	}
}

// count adds to the totals and to the entry's subtrees.
func (j *joiner) count(e *entry, fn func(*Changes)) {
	fn(&j.res.Znodes)
	for _, path := range subtreesOf(e.path) {
		s := subtreeKey{e.role, path}
		c, ok := j.subtrees[s]
		if !ok {
			if len(j.subtrees) >= MaxSubtrees {
				j.res.Truncated = true
				s = subtreeKey{roleLocal, OtherSubtree}
				c = j.subtrees[s]
			}
			if c == nil {
				c = &Changes{}
				j.subtrees[s] = c
			}
		}
		fn(c)
	}
}

// subtreesOf are the paths whose subtree path is counted in: its top-level path and the
// path one level below ("/" for the root itself).
func subtreesOf(path string) []string {
	if path == "/" {
		return []string{"/"}
	}
	out := make([]string, 0, subtreeDepthListed)
	for i := 1; i <= len(path) && len(out) < subtreeDepthListed; i++ {
		if i == len(path) || path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	return out
}

// names lists e under each of its kinds' lists of ar.
func (j *joiner) names(e *entry, s *sideState, pick func(*AddedRemoved) *Names) {
	if e.kind&kindTenant != 0 {
		t, _ := pulsarpath.IsTenant(e.path)
		j.list(pick(&j.res.Tenants), t)
	}
	if e.kind&kindNamespace != 0 {
		j.list(pick(&j.res.Namespaces), strings.TrimPrefix(e.path, pulsarpath.PoliciesRoot+"/"))
	}
	if e.kind&kindManagedLedger != 0 {
		j.list(pick(&j.res.Topics), s.layout.TopicName(e.path))
	}
	if e.kind&kindPartitionedTopic != 0 {
		t, _ := pulsarpath.IsPartitionedTopic(e.path)
		j.list(pick(&j.res.PartitionedTopics), t)
	}
}

func (j *joiner) removed(e *entry) {
	j.count(e, func(c *Changes) { c.Removed++ })
	j.names(e, j.from, func(ar *AddedRemoved) *Names { return &ar.Removed })
}

func (j *joiner) added(e *entry) {
	j.count(e, func(c *Changes) { c.Added++ })
	j.names(e, j.to, func(ar *AddedRemoved) *Names { return &ar.Added })
}

func (j *joiner) both(a, b *entry) {
	dataChanged, aclChanged := a.data != b.data, a.meta != b.meta
	if (a.kind|b.kind)&kindUndecodable != 0 && (a.kind&b.kind)&kindManagedLedger != 0 {
		j.list(&j.res.ManagedLedgers.Undecodable, b.path)
	}
	if !dataChanged && !aclChanged {
		j.res.Znodes.Unchanged++
		return
	}
	j.count(a, func(c *Changes) {
		c.Changed++
		if dataChanged {
			c.DataChanged++
		}
		if aclChanged {
			c.ACLChanged++
		}
	})
	if !dataChanged {
		return
	}
	if a.kind&b.kind&kindPolicyDoc != 0 {
		j.policy(a, b)
	}
	if a.kind&b.kind&kindManagedLedger != 0 && (a.kind|b.kind)&kindUndecodable == 0 {
		j.ledgers(a, b)
	}
}

func (j *joiner) policy(a, b *entry) {
	p := &j.res.Policies
	p.Count++
	if len(p.Changes) >= MaxPolicyChanges {
		j.res.Truncated = true
		return
	}
	ch := PolicyChange{Role: roleLabel(b.role), Path: b.path, Patch: jsondiff.Patch{}}
	ch.Kind, ch.Name = policyKind(b)
	patch, err := jsondiff.CompareJSON(jsonDoc(a.doc), jsonDoc(b.doc), jsondiff.Invertible(), jsondiff.UnmarshalFunc(unmarshalNumbers))
	switch {
	case err != nil:
		ch.NotJSON = true
		ch.Patch = nil
	case j.patchBytes >= MaxPatchBytes:
		ch.PatchOmitted, ch.Patch = true, nil
		j.res.Truncated = true
	default:
		if patch != nil {
			ch.Patch = patch
		}
		if raw, err := json.Marshal(patch); err == nil {
			j.patchBytes += len(raw)
		}
	}
	p.Changes = append(p.Changes, ch)
}

// jsonDoc takes empty data for JSON null: a znode Pulsar has not written a document to.
func jsonDoc(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("null")
	}
	return b
}

// unmarshalNumbers keeps numbers as written: policy documents hold 64-bit values (sizes,
// timestamps) that float64 would round.
func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON document")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON document")
	}
	return nil
}

// policyKind names the document at e.path.
func policyKind(e *entry) (kind, name string) {
	switch {
	case e.kind&kindTenant != 0:
		t, _ := pulsarpath.IsTenant(e.path)
		return "tenant", t
	case e.kind&kindNamespace != 0:
		return "namespace", strings.TrimPrefix(e.path, pulsarpath.PoliciesRoot+"/")
	case e.kind&kindPartitionedTopic != 0:
		t, _ := pulsarpath.IsPartitionedTopic(e.path)
		return "partitioned-topic", t
	}
	if rest, ok := strings.CutPrefix(e.path, pulsarpath.LocalPoliciesRoot+"/"); ok {
		return "local-policies", rest
	}
	if rest, ok := strings.CutPrefix(e.path, "/admin/clusters/"); ok && !strings.Contains(rest, "/") {
		return "cluster", rest
	}
	return "other", ""
}

func (j *joiner) ledgers(a, b *entry) {
	gained, lost := setDiff(b.kept, a.kept), setDiff(a.kept, b.kept)
	if len(gained) == 0 && len(lost) == 0 {
		return
	}
	lc := &j.res.ManagedLedgers
	lc.Count++
	lc.Gained += int64(len(gained))
	lc.Lost += int64(len(lost))
	if len(lc.Changes) >= MaxLedgerChanges {
		j.res.Truncated = true
		return
	}
	if len(gained) > MaxLedgerIDs || len(lost) > MaxLedgerIDs {
		j.res.Truncated = true
	}
	lc.Changes = append(lc.Changes, LedgerChange{
		Topic: j.to.layout.TopicName(b.path), Path: b.path,
		Gained: gained[:min(len(gained), MaxLedgerIDs)], Lost: lost[:min(len(lost), MaxLedgerIDs)],
		GainedCount: int64(len(gained)), LostCount: int64(len(lost)),
	})
}

// setDiff returns the ids of sorted x that are not in sorted y, never nil.
func setDiff(x, y []int64) []int64 {
	out := []int64{}
	i := 0
	for _, id := range x {
		for i < len(y) && y[i] < id {
			i++
		}
		if i < len(y) && y[i] == id {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != id {
			out = append(out, id)
		}
	}
	return out
}

// roleLabel is how results name an entry role: the local store goes unnamed, so one-store
// archives' results read as before there were roles.
func roleLabel(r uint8) string {
	if r == roleLocal {
		return ""
	}
	return roleName(r)
}

func (j *joiner) result() Result {
	keys := slices.SortedFunc(maps.Keys(j.subtrees), func(a, b subtreeKey) int {
		return cmp.Or(cmp.Compare(a.role, b.role), comparePaths(a.path, b.path))
	})
	j.res.BySubtree = make([]SubtreeChanges, 0, len(keys))
	for _, k := range keys {
		j.res.BySubtree = append(j.res.BySubtree, SubtreeChanges{Role: roleLabel(k.role), Path: k.path, Changes: *j.subtrees[k]})
	}
	return j.res
}
