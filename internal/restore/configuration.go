package restore

// The configuration store's role (archive.RoleConfiguration): Pulsar's
// configurationMetadataStoreUrl, when it is a store apart from the local one. It holds
// tenants (/admin/policies/<tenant>), clusters (/admin/clusters), namespace policies,
// partitioned-topic metadata and resource groups: the PulsarResources constructor
// (pulsar-broker-common, PulsarResources(MetadataStore, MetadataStore, int)) builds
// TenantResources, ClusterResources, NamespaceResources and ResourceGroupResources on the
// configuration store, and LocalPoliciesResources, LoadManagerReportResources,
// BookieResources and TopicResources on the local one. The same skip rules apply to it as to the local store.
//
// Geo-replicated clusters share one configuration store. A restore must then never clear
// nor overwrite what the other clusters have there: it is additive (ConfigShared). A
// configuration store this cluster uses alone is restored like the local store
// (ConfigExclusive).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Configuration store restore modes.
const (
	// ConfigExclusive: the target configuration store holds no cluster and no tenant the
	// archive lacks. It is restored like the local store: existing znodes that differ are
	// refused (but those `initialize-cluster-metadata` wrote, which are replaced), and a new
	// restoreVersion clears it first.
	ConfigExclusive = "exclusive"
	// ConfigShared: it holds another cluster under /admin/clusters or a tenant the archive
	// lacks. Missing znodes are created; existing ones are left as they are, those that
	// differ reported as conflicts; a new restoreVersion deletes only the znodes the earlier
	// restore created (its journal, ConfigJournalPath).
	ConfigShared = "shared"
)

// Paths in the configuration store whose children tell who uses it.
const (
	ClustersPath = "/admin/clusters"
	TenantsPath  = "/admin/policies"
)

// ConfigJournalPath holds, in the local store under the marker, the paths a shared-mode
// restore creates in the configuration store: chunk znodes of newline-separated paths, in
// creation (parents first) order. It is written before the first create, so that a later
// restoreVersion deletes exactly those (and the marker's subtree is never restored nor
// cleared: SkipMarker).
const ConfigJournalPath = MarkerPath + "/configuration-created"

// configJournalChunk bounds one journal znode, well under jute.maxbuffer.
const configJournalChunk = 512 << 10

// RefusedConfigurationShape: the archive and the target disagree on whether the
// configuration store is apart from the local one.
const RefusedConfigurationShape = "ConfigurationStoreMismatch"

// ConfigPlan is what restoring the configuration role does.
type ConfigPlan struct {
	// Mode is ConfigExclusive or ConfigShared; SharedBecause names the clusters and tenants
	// of the target the archive does not have (first MaxListedNames).
	Mode          string `json:"mode"`
	SharedBecause Listed `json:"sharedBecause"`
	// Znodes are the role's records; Create those restored (created or found identical);
	// Skipped the others per reason.
	Znodes  int64            `json:"znodes"`
	Create  int64            `json:"create"`
	Skipped map[string]int64 `json:"skipped"`
	// Existing are znodes the target holds as the archive does; Conflicts those it holds
	// otherwise (refused when exclusive, kept and reported when shared); InitReplaced those
	// of `initialize-cluster-metadata` replaced (exclusive only).
	Existing     int64  `json:"existing"`
	Conflicts    Listed `json:"conflicts"`
	InitReplaced Listed `json:"initReplaced"`
	// Compared is false when the target was too large to read whole: Existing and
	// Conflicts are then unknown until apply.
	Compared bool `json:"compared"`
}

// PlanConfiguration reads the configuration role of an archive and the target configuration
// store, and says how the role is restored. Reading the target is bounded by limit znodes;
// beyond it only /admin/clusters and /admin/policies are read to choose the mode.
func PlanConfiguration(ctx context.Context, c metastore.Store, r io.Reader, limit int, progress func(Progress)) (ConfigPlan, error) {
	p := ConfigPlan{Skipped: map[string]int64{}}
	target, err := ReadTarget(ctx, c, limit)
	switch {
	case errors.Is(err, ErrTargetTooLarge):
		target = nil
	case err != nil:
		return p, fmt.Errorf("configuration store: %w", err)
	default:
		p.Compared = true
	}
	ar, err := archive.NewRoleReader(r, archive.RoleConfiguration)
	if err != nil {
		return p, err
	}
	clusters, tenants := map[string]bool{}, map[string]bool{}
	var conflicts []string
	tick := ticker{fn: progress}
	for {
		rec, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return p, err
		}
		p.Znodes++
		tick.tick(Progress{Records: p.Znodes, Path: rec.Path})
		switch znode.Parent(rec.Path) {
		case ClustersPath:
			clusters[znode.Base(rec.Path)] = true
		case TenantsPath:
			tenants[znode.Base(rec.Path)] = true
		}
		if reason, skip := SkipReason(rec.Path); skip {
			p.Skipped[reason]++
			continue
		}
		p.Create++
		have, ok := target[rec.Path]
		switch {
		case !ok:
		case Same(have, rec):
			p.Existing++
		case replaceable(rec.Path, have.Mode, rec.Mode):
			p.InitReplaced.add(rec.Path)
		default:
			conflicts = append(conflicts, rec.Path)
		}
	}
	for _, parent := range []struct {
		path string
		have map[string]bool
	}{{ClustersPath, clusters}, {TenantsPath, tenants}} {
		names, _, err := c.ListChildren(ctx, parent.path)
		if err != nil {
			return p, fmt.Errorf("configuration store: %w", err)
		}
		for _, n := range names {
			child := znode.Join(parent.path, n)
			if !parent.have[n] && !initDefault(child) {
				p.SharedBecause.add(child)
			}
		}
	}
	p.Mode = ConfigExclusive
	if p.SharedBecause.Count > 0 {
		p.Mode = ConfigShared
		// Shared: nothing is replaced; what init wrote is another cluster's now.
		conflicts = append(conflicts, p.InitReplaced.First...)
		p.InitReplaced = Listed{}
	}
	for _, c := range conflicts {
		p.Conflicts.add(c)
	}
	return p, nil
}

// initDefault tells the cluster and tenants every configuration store has once
// `pulsar initialize-cluster-metadata` ran, whoever uses it: the "global" pseudo-cluster and
// the tenants "public" and "pulsar" (PulsarClusterMetadataSetup.initializeCluster:
// createTenantIfAbsent, and the global cluster's ClusterData). They do not make a store
// shared. The new cluster's own name does, when it is not the archive's: initialise the new
// cluster with the old one's name (its policies name it), or the restore is additive.
func initDefault(p string) bool {
	return p == "/admin/clusters/global" || p == "/admin/policies/public" || p == "/admin/policies/pulsar"
}

// Refusal of an exclusive configuration plan with conflicts, as the local plan's.
func (p ConfigPlan) Refusal() error {
	if p.Mode != ConfigExclusive || p.Conflicts.Count == 0 {
		return nil
	}
	return &Refusal{Kind: RefusedConflicts, Msg: fmt.Sprintf(
		"the configuration store holds %d znode(s) the archive has with other contents (%s); it is used by this cluster alone, so the restore would overwrite them: remove them first",
		p.Conflicts.Count, strings.Join(p.Conflicts.First[:min(5, len(p.Conflicts.First))], ", "))}
}

// ConfigApplyInput is what ApplyConfiguration needs besides the stores and the archive.
type ConfigApplyInput struct {
	// Owner is the run the local store's marker must name.
	Owner Owner
	// Mode is the plan's.
	Mode string
	// Creator tunes the batches.
	Creator metastore.CreatorOptions
	// Limit bounds the target znodes read to write the journal (shared mode).
	Limit int
}

// ConfigStats counts what ApplyConfiguration did.
type ConfigStats struct {
	Mode    string `json:"mode"`
	Records int64  `json:"records"`
	Skipped int64  `json:"skipped"`
	// Created, Existing and InitReplaced as in ApplyStats; Conflicts are existing znodes
	// left as they were (shared mode), Journaled the paths recorded as this restore's.
	Created      int64  `json:"created"`
	Existing     int64  `json:"existing"`
	InitReplaced int64  `json:"initReplaced"`
	Conflicts    Listed `json:"conflicts"`
	Journaled    int64  `json:"journaled"`
}

// ApplyConfiguration streams the archive's configuration role into the configuration store
// target, after checking that the local store's marker names the owner. The marker cannot
// guard writes to another ensemble, so this check is made once, at the start; the local
// store's apply that follows is guarded batch by batch. It is idempotent like Apply.
func ApplyConfiguration(ctx context.Context, local, target metastore.Store, open func() (io.ReadCloser, error), in ConfigApplyInput, progress func(Progress)) (ConfigStats, error) {
	st := ConfigStats{Mode: in.Mode}
	if _, _, err := checkOwner(ctx, local, in.Owner); err != nil {
		return st, err
	}
	opts := in.Creator
	switch in.Mode {
	case ConfigExclusive:
		opts.Replace = ClusterInitPath
	case ConfigShared:
		n, err := writeJournal(ctx, local, target, open, in.Limit)
		if err != nil {
			return st, err
		}
		st.Journaled = n
		opts.KeepDiffering = func(p string) { st.Conflicts.add(p) }
	default:
		return st, fmt.Errorf("%w: configuration mode %q", ErrInvalidInput, in.Mode)
	}
	f, err := open()
	if err != nil {
		return st, err
	}
	defer f.Close()
	ar, err := archive.NewRoleReader(f, archive.RoleConfiguration)
	if err != nil {
		return st, err
	}
	cr := target.Batch(ctx, opts)
	tick := ticker{fn: progress}
	for {
		rec, skip, err := ar.NextUnless(skipped)
		if err == io.EOF {
			break
		}
		if err != nil {
			_, _ = cr.Close()
			return st, err
		}
		st.Records++
		if skip {
			st.Skipped++
			continue
		}
		if err := cr.Add(rec); err != nil {
			_, _ = cr.Close()
			return st, fmt.Errorf("configuration store: %w", err)
		}
		tick.tick(Progress{Records: st.Records, Written: st.Records - st.Skipped, Path: rec.Path})
	}
	cs, err := cr.Close()
	st.Created, st.Existing, st.InitReplaced = cs.Created, cs.Existing, cs.Replaced
	if err != nil {
		return st, fmt.Errorf("configuration store: %w", err)
	}
	return st, nil
}

// writeJournal records, before anything is created, the archive's paths the target lacks,
// adding them to what an interrupted earlier try of the same restore journaled (which the
// target now holds: they were created then). It returns the journal's size.
func writeJournal(ctx context.Context, local, target metastore.Store, open func() (io.ReadCloser, error), limit int) (int64, error) {
	have := map[string]struct{}{}
	_, err := target.Walk(ctx, metastore.WalkOptions{Skip: func(p string) bool {
		_, skip := SkipReason(p)
		return skip && p != "/"
	}}, func(r znode.Record) error {
		if len(have) >= limit {
			return fmt.Errorf("%w: more than %d znodes, too many to journal what the restore creates", ErrTargetTooLarge, limit)
		}
		have[r.Path] = struct{}{}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("configuration store: read it to journal: %w", err)
	}
	journaled, err := ReadConfigJournal(ctx, local)
	if err != nil {
		return 0, err
	}
	known := make(map[string]struct{}, len(journaled))
	for _, p := range journaled {
		known[p] = struct{}{}
	}
	f, err := open()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ar, err := archive.NewRoleReader(f, archive.RoleConfiguration)
	if err != nil {
		return 0, err
	}
	add := journaled
	for {
		rec, skip, err := ar.NextUnless(skipped)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if skip {
			continue
		}
		_, there := have[rec.Path]
		_, already := known[rec.Path]
		if !there && !already {
			add = append(add, rec.Path)
		}
	}
	if err := putJournal(ctx, local, add); err != nil {
		return 0, err
	}
	return int64(len(add)), nil
}

// putJournal writes the journal's chunks (replacing those there: the paths given include
// them, in the same order first).
func putJournal(ctx context.Context, local metastore.Store, paths []string) error {
	root, _, err := local.ReadZnode(ctx, MarkerPath)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	acl := root.ACL
	if _, err := local.CreateOne(ctx, znode.Record{Path: ConfigJournalPath, Data: []byte{}, ACL: acl, Mode: znode.ModePersistent}); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var chunk strings.Builder
	n := 0
	flush := func() error {
		if chunk.Len() == 0 {
			return nil
		}
		p := fmt.Sprintf("%s/%06d", ConfigJournalPath, n)
		data := []byte(chunk.String())
		_, err := local.CreateOne(ctx, znode.Record{Path: p, Data: data, ACL: acl, Mode: znode.ModePersistent})
		if errors.Is(err, zk.ErrNodeExists) { // a chunk of an earlier try, with fewer paths
			_, err = local.SetZnodeData(ctx, p, data, -1)
		}
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		n++
		chunk.Reset()
		return nil
	}
	for _, p := range paths {
		if chunk.Len()+len(p)+1 > configJournalChunk {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk.WriteString(p)
		chunk.WriteByte('\n')
	}
	return flush()
}

// ReadConfigJournal returns the paths a shared-mode restore journaled, in creation order;
// none without a journal.
func ReadConfigJournal(ctx context.Context, local metastore.Store) ([]string, error) {
	names, found, err := local.ListChildren(ctx, ConfigJournalPath)
	if err != nil || !found {
		return nil, err
	}
	var out []string
	for _, n := range names { // sorted: %06d
		rec, ok, err := local.ReadZnode(ctx, znode.Join(ConfigJournalPath, n))
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		if !ok {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(rec.Data)))
		sc.Buffer(nil, configJournalChunk+1)
		for sc.Scan() {
			if p := sc.Text(); znode.ValidatePath(p) == nil {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ConfigClearStats counts what ClearConfiguration did.
type ConfigClearStats struct {
	Mode string `json:"mode"`
	ClearStats
}

// ClearConfiguration removes an earlier restore's znodes from the configuration store,
// before a restore of another pair: all of them outside the skipped paths when the store is
// this cluster's alone (Clear), only the journaled ones, deepest first, when it is shared.
// Journaled znodes that gained children since (another cluster's) are kept. The journal is
// removed last, so an interrupted clear runs again.
func ClearConfiguration(ctx context.Context, local, target metastore.Store, mode, tempDir string, progress func(Progress)) (ConfigClearStats, error) {
	st := ConfigClearStats{Mode: mode}
	var err error
	switch mode {
	case ConfigExclusive:
		st.ClearStats, err = Clear(ctx, target, tempDir, progress)
		if err != nil {
			return st, fmt.Errorf("configuration store: %w", err)
		}
	case ConfigShared:
		paths, err := ReadConfigJournal(ctx, local)
		if err != nil {
			return st, err
		}
		slices.Reverse(paths)
		ds, err := target.DeleteZnodes(ctx, paths)
		if err != nil {
			return st, fmt.Errorf("configuration store: %w", err)
		}
		st.Deleted, st.Kept, st.Denied = ds.Deleted, ds.Kept, ds.Denied
	default:
		return st, fmt.Errorf("%w: configuration mode %q", ErrInvalidInput, mode)
	}
	return st, dropJournal(ctx, local)
}

func dropJournal(ctx context.Context, local metastore.Store) error {
	names, found, err := local.ListChildren(ctx, ConfigJournalPath)
	if err != nil || !found {
		return err
	}
	paths := make([]string, 0, len(names)+1)
	for _, n := range names {
		paths = append(paths, znode.Join(ConfigJournalPath, n))
	}
	paths = append(paths, ConfigJournalPath)
	if _, err := local.DeleteZnodes(ctx, paths); err != nil {
		return fmt.Errorf("drop journal: %w", err)
	}
	return nil
}
