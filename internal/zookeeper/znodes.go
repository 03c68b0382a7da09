package zookeeper

// Single-znode reads and writes, and batched deletes, for the restore's gate checks, its
// marker znode and the clearing of an earlier restore.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ReadZnode reads one znode: data, ACL, mode and Stat. found is false, with a nil error, when
// it does not exist. Ephemeral znodes are read too (Mode is ModeEphemeral).
func (c *Client) ReadZnode(ctx context.Context, path string) (rec znode.Record, found bool, err error) {
	conn := c.conns[0]
	var data []byte
	var st *zk.Stat
	err = c.retry(ctx, func() (err error) {
		data, st, err = conn.Get(c.abs(path))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return znode.Record{}, false, nil
	}
	if err != nil {
		return znode.Record{}, false, opError("read", path, err)
	}
	var acl []zk.ACL
	err = c.retry(ctx, func() (err error) {
		acl, _, err = conn.GetACL(c.abs(path))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return znode.Record{}, false, nil
	}
	if err != nil {
		return znode.Record{}, false, opError("read ACL of", path, err)
	}
	mode, ttl := znode.ModeOf(st.EphemeralOwner)
	return znode.Record{Path: path, Data: data, ACL: fromZKACL(acl), Mode: mode, TTL: ttl, Stat: fromZKStat(st)}, true, nil
}

// ListChildren returns the names of path's children, sorted. found is false, with a nil
// error, when path does not exist.
func (c *Client) ListChildren(ctx context.Context, path string) (names []string, found bool, err error) {
	conn := c.conns[0]
	err = c.retry(ctx, func() (err error) {
		names, _, err = conn.Children(c.abs(path))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, opError("list children of", path, err)
	}
	slices.Sort(names)
	return names, true, nil
}

// ErrVersionConflict is wrapped by SetZnodeData when the znode changed since it was read.
var ErrVersionConflict = metastore.ErrVersionConflict

// SetZnodeData replaces the data of an existing znode if its data version still equals
// version (-1 for any), and returns the new version. A version mismatch fails with an error
// wrapping ErrVersionConflict. A lost connection is retried, so a write whose reply was lost
// may report a conflict although it was applied: callers that must know read it back.
func (c *Client) SetZnodeData(ctx context.Context, path string, data []byte, version int32) (int32, error) {
	conn := c.conns[0]
	var st *zk.Stat
	err := c.retry(ctx, func() (err error) {
		st, err = conn.Set(c.abs(path), data, version)
		return err
	})
	if errors.Is(err, zk.ErrBadVersion) {
		return 0, fmt.Errorf("set data of %s: %w", path, ErrVersionConflict)
	}
	if err != nil {
		return 0, opError("set data of", path, err)
	}
	return st.Version, nil
}

// DeleteStats is the metastore package's.
type DeleteStats = metastore.DeleteStats

// A multi of deletes is bounded like one of creates, well under jute.maxbuffer.
const (
	deleteBatchOps   = DefaultBatchOps
	deleteBatchBytes = DefaultBatchBytes
)

// DeleteZnodes deletes paths in the order given, so a child must come before its parent. It
// sends multi requests of up to 1,000 deletes; when one fails (a znode already gone, one
// that still has children, or one we may not delete) that batch is redone znode by znode,
// counting absent znodes as Gone, non-empty ones as Kept and forbidden ones as Denied. Any
// other error stops it. "/" is never deleted.
func (c *Client) DeleteZnodes(ctx context.Context, paths []string) (DeleteStats, error) {
	var st DeleteStats
	conn := c.conns[0]
	for len(paths) > 0 {
		n, size := 0, 0
		for n < len(paths) && n < deleteBatchOps && size+len(paths[n]) < deleteBatchBytes {
			size += len(paths[n]) + 16
			n++
		}
		batch := paths[:n]
		paths = paths[n:]
		ops := make([]any, 0, len(batch))
		for _, p := range batch {
			if p == "/" {
				st.Kept++
				continue
			}
			ops = append(ops, &zk.DeleteRequest{Path: c.abs(p), Version: -1})
		}
		if len(ops) == 0 {
			continue
		}
		err := c.retry(ctx, func() error {
			_, err := conn.Multi(ops...)
			return err
		})
		if err == nil {
			st.Deleted += int64(len(ops))
			continue
		}
		if !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrNotEmpty) && !errors.Is(err, zk.ErrNoAuth) {
			return st, opError("delete", ops[0].(*zk.DeleteRequest).Path, err)
		}
		for _, op := range ops {
			p := op.(*zk.DeleteRequest).Path // on the server
			err := c.retry(ctx, func() error { return conn.Delete(p, -1) })
			switch {
			case err == nil:
				st.Deleted++
			case errors.Is(err, zk.ErrNoNode):
				st.Gone++
			case errors.Is(err, zk.ErrNotEmpty):
				st.Kept++
			case errors.Is(err, zk.ErrNoAuth):
				st.Denied++
			default:
				return st, opError("delete", p, err)
			}
		}
	}
	return st, nil
}
