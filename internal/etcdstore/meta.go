package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Meta is a Store behind metastore.Store, the interface the backup and restore pipeline
// uses, so the pipeline runs on etcd as on ZooKeeper. Where the two differ:
//
//   - Versions are Pulsar's (Stat.Version, etcd's per-key version − 1): ReadZnode reports
//     them, SetZnodeData and a Creator's Guard compare them.
//   - There are no ACLs: records carry WorldACL, Identity is "".
//   - Walk is a point in time (WalkStats.MaxZxid is the revision it read at); Position is
//     the store's current revision.
//   - Errors speak the metastore vocabulary: a create meeting other contents wraps
//     zk.ErrNodeExists, a guard that moved metastore.ErrGuardFailed, a lost
//     compare-and-set metastore.ErrVersionConflict, a missing node zk.ErrNoNode.
type Meta struct{ *Store }

var _ metastore.Store = Meta{}

// Walk is Store.Walk with the pipeline's options and stats.
func (m Meta) Walk(ctx context.Context, opts metastore.WalkOptions, emit func(znode.Record) error) (metastore.WalkStats, error) {
	eo := WalkOptions{Path: opts.Root, Skip: opts.Skip, ProgressInterval: opts.ProgressInterval}
	if opts.Progress != nil {
		eo.Progress = func(s WalkStats) { opts.Progress(walkStats(s)) }
	}
	s, err := m.Store.Walk(ctx, eo, emit)
	return walkStats(s), err
}

func walkStats(s WalkStats) metastore.WalkStats {
	return metastore.WalkStats{Znodes: s.Znodes, EphemeralSkipped: s.EphemeralSkipped, SkippedSubtrees: s.SkippedSubtrees, DataBytes: s.DataBytes, MaxZxid: s.Revision}
}

// ReadZnode is Read without the mod_revision.
func (m Meta) ReadZnode(ctx context.Context, path string) (znode.Record, bool, error) {
	rec, _, found, err := m.Read(ctx, path)
	return rec, found, err
}

// ListChildren lists the first segments of the keys below path, as Pulsar's
// EtcdMetadataStore GET_CHILDREN does, with one keys-only request per child and one to skip
// its subtree: the children of /managed-ledgers are listed without reading the ledgers'
// keys. found is true when the path has a key or keys below it.
func (m Meta) ListChildren(ctx context.Context, path string) ([]string, bool, error) {
	if err := znode.ValidatePath(path); err != nil {
		return nil, false, fmt.Errorf("list children: %w", err)
	}
	k := m.key(path)
	prefix, end := childPrefix(k), childEnd(k)
	from := prefix
	if k == "/" {
		from = "/\x00" // the key "/" itself is not a child
	}
	var names []string
	for {
		resp, err := m.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(1))
		if err != nil {
			return nil, false, fmt.Errorf("list children of %s: %w", path, err)
		}
		if len(resp.Kvs) == 0 {
			break
		}
		rest := strings.TrimPrefix(string(resp.Kvs[0].Key), prefix)
		name, _, below := strings.Cut(rest, "/")
		if len(names) == 0 || names[len(names)-1] != name {
			names = append(names, name)
		}
		if below {
			from = prefix + name + "0" // past every key of name/...
		} else {
			from = prefix + name + "\x00" // past name itself; name/... comes later
		}
	}
	if len(names) > 0 {
		return names, true, nil
	}
	resp, err := m.cli.Get(ctx, k, clientv3.WithCountOnly())
	if err != nil {
		return nil, false, fmt.Errorf("list children of %s: %w", path, err)
	}
	return nil, resp.Count > 0, nil
}

// CreateOne creates one record (CreateBatch of one).
func (m Meta) CreateOne(ctx context.Context, rec znode.Record) (bool, error) {
	n, err := m.CreateBatch(ctx, []znode.Record{rec}, nil)
	return n == 1, vocabulary(err)
}

// SetZnodeData writes data if the key's Pulsar version is still version (-1: any, but the
// key must exist), and returns the new version.
func (m Meta) SetZnodeData(ctx context.Context, path string, data []byte, version int32) (int32, error) {
	if err := znode.ValidatePath(path); err != nil {
		return 0, fmt.Errorf("set data: %w", err)
	}
	k := m.key(path)
	cmp := clientv3.Compare(clientv3.CreateRevision(k), ">", 0)
	if version >= 0 {
		cmp = clientv3.Compare(clientv3.Version(k), "=", int64(version)+1)
	}
	resp, err := m.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(data)), clientv3.OpGet(k)).Else(clientv3.OpGet(k, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return 0, fmt.Errorf("set data of %s: %w", path, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return 0, fmt.Errorf("set data of %s: %w", path, zk.ErrNoNode)
		}
		return 0, fmt.Errorf("set data of %s: %w", path, metastore.ErrVersionConflict)
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, fmt.Errorf("set data of %s: %w", path, zk.ErrNoNode)
	}
	return clampInt32(kvs[0].Version - 1), nil
}

// DeleteZnodes is Delete. etcd deletes a key whatever lies below it, so nothing is kept.
func (m Meta) DeleteZnodes(ctx context.Context, paths []string) (metastore.DeleteStats, error) {
	st, err := m.Delete(ctx, paths)
	return metastore.DeleteStats{Deleted: st.Deleted, Gone: st.Gone}, err
}

// Position is the store's current revision.
func (m Meta) Position(ctx context.Context) (int64, error) {
	resp, err := m.cli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd %s: revision: %w", m.endpoints, err)
	}
	return resp.Header.Revision, nil
}

// PointInTime is true: a walk reads every key at one revision.
func (m Meta) PointInTime() bool { return true }

// Identity is "": etcd keys carry no ACL to name it in.
func (m Meta) Identity() string { return "" }

// Close closes the client.
func (m Meta) Close() { _ = m.Store.Close() }

// batchSize is how many records a Creator hands to CreateBatch at once (which splits them
// into transactions under etcd's limits).
const batchSize = 1000

// Batch returns a Creator over CreateBatch that keeps the options' contract: a Guard on a
// node's Pulsar version, Replace (overwrite named nodes that differ) and KeepDiffering
// (leave and report them).
func (m Meta) Batch(ctx context.Context, opts metastore.CreatorOptions) metastore.Creator {
	return &creator{m: m, ctx: ctx, opts: opts}
}

type creator struct {
	m       Meta
	ctx     context.Context
	opts    metastore.CreatorOptions
	guard   *Guard
	guarded bool // guard resolved
	pending []znode.Record
	stats   metastore.CreatorStats
	err     error
}

func (c *creator) Add(rec znode.Record) error {
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, rec)
	if len(c.pending) >= batchSize {
		c.err = c.flush()
	}
	return c.err
}

func (c *creator) Close() (metastore.CreatorStats, error) {
	if c.err == nil {
		c.err = c.flush()
	}
	return c.stats, c.err
}

// resolveGuard turns the options' Guard (a Pulsar version) into CreateBatch's (the key's
// mod_revision now), once: a guard already moved fails at once.
func (c *creator) resolveGuard() error {
	if c.guarded || c.opts.Guard == nil {
		c.guarded = true
		return nil
	}
	c.guarded = true
	g := c.opts.Guard
	rec, rev, found, err := c.m.Read(c.ctx, g.Path)
	if err != nil {
		return err
	}
	if !found || rec.Stat.Version != g.Version {
		return fmt.Errorf("%w: %s is no longer at version %d", metastore.ErrGuardFailed, g.Path, g.Version)
	}
	c.guard = &Guard{Path: g.Path, Version: rev}
	return nil
}

func (c *creator) flush() error {
	recs := c.pending
	c.pending = nil
	if len(recs) == 0 {
		return nil
	}
	if err := c.resolveGuard(); err != nil {
		return err
	}
	n, err := c.m.CreateBatch(c.ctx, recs, c.guard)
	if err == nil {
		c.stats.Batches++
		c.account(recs, n)
		return nil
	}
	if !errors.Is(err, ErrExists) || c.opts.Replace == nil && c.opts.KeepDiffering == nil {
		return vocabulary(err)
	}
	// Some record differs from what is there: one at a time, each as the options say.
	c.stats.Recovered++
	for _, r := range recs {
		n, err := c.m.CreateBatch(c.ctx, []znode.Record{r}, c.guard)
		switch {
		case err == nil:
			c.account([]znode.Record{r}, n)
		case !errors.Is(err, ErrExists):
			return vocabulary(err)
		case c.opts.Replace != nil && c.opts.Replace(r.Path):
			if err := c.replace(r); err != nil {
				return err
			}
			c.stats.Replaced++
		case c.opts.KeepDiffering != nil:
			c.stats.Differing++
			c.opts.KeepDiffering(r.Path)
		default:
			return vocabulary(err)
		}
	}
	return nil
}

// replace overwrites a differing key with the record's data, under the guard.
func (c *creator) replace(r znode.Record) error {
	k := c.m.key(r.Path)
	txn := c.m.cli.Txn(c.ctx)
	if c.guard != nil {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(c.m.key(c.guard.Path)), "=", c.guard.Version))
	}
	resp, err := txn.Then(clientv3.OpPut(k, string(r.Data))).Commit()
	if err != nil {
		return fmt.Errorf("replace data of %s: %w", r.Path, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("replace data of %s: %w", r.Path, metastore.ErrGuardFailed)
	}
	return nil
}

// account counts n created of recs; the others CreateBatch wrote were there already, but
// "/" and implied records, which it never writes.
func (c *creator) account(recs []znode.Record, n int) {
	c.stats.Created += int64(n)
	writable := 0
	for _, r := range recs {
		if r.Path != "/" && !Implied(r) {
			writable++
		}
	}
	c.stats.Existing += int64(writable - n)
}

// vocabulary wraps the metastore sentinels beside etcdstore's own.
func vocabulary(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExists):
		return fmt.Errorf("%w (%w)", err, zk.ErrNodeExists)
	case errors.Is(err, ErrGuardFailed):
		return fmt.Errorf("%w (%w)", err, metastore.ErrGuardFailed)
	}
	return err
}
