package pulsartree

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Batches stay well below jute.maxbuffer (1 MiB), which bounds a whole multi request.
const (
	maxBatchOps   = 1000
	maxBatchBytes = 512 << 10
)

// Populate writes the tree o describes into the ZooKeeper conn is connected to and reports
// what it wrote. Parents are created before children, in zk.Multi batches of at most
// maxBatchOps znodes and maxBatchBytes; the large znode, container and TTL nodes and ACL
// changes go alone.
//
// The server must not hold any of the paths yet (a fresh server does not): an existing znode
// fails the batch it is in with an error wrapping ErrNotEmpty and zk.ErrNodeExists, leaving
// the earlier batches in place. Ephemeral znodes belong to conn's session, so the caller keeps
// conn open for as long as they should exist. With o.Awkward, Populate first adds the digest
// credentials of o.DigestUser to conn (conn.AddAuth), which it needs to create children under
// the digest-protected znodes and which lets conn read them back; the TTL node needs a server
// with extendedTypesEnabled=true.
//
// ctx is checked between requests. On any error Populate returns an empty Summary and leaves
// what it created so far in place.
func Populate(ctx context.Context, conn *zk.Conn, o Options) (Summary, error) {
	p, err := buildPlan(o)
	if err != nil {
		return Summary{}, err
	}
	o = p.o
	if o.Awkward {
		if err := conn.AddAuth("digest", []byte(o.DigestUser+":"+o.DigestPassword)); err != nil {
			return Summary{}, fmt.Errorf("pulsartree: add digest auth for %s: %w", o.DigestUser, err)
		}
	}
	sum := p.sum
	sum.Persistent, sum.Ephemeral = p.persistent, p.ephemeral

	var (
		batch      []any
		batchOps   []op
		batchBytes int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pulsartree: %w", err)
		}
		res, err := conn.Multi(batch...)
		if err != nil {
			return batchError(batchOps, res, err)
		}
		for i, r := range res {
			if batchOps[i].flags == zk.FlagSequence {
				sum.Special.Sequential = append(sum.Special.Sequential, r.String)
			}
		}
		batch, batchOps, batchBytes = batch[:0], batchOps[:0], 0
		return nil
	}

	for _, o := range p.ops {
		if o.kind == opCreate {
			size := opSize(o)
			if len(batch) == maxBatchOps || batchBytes+size > maxBatchBytes {
				if err := flush(); err != nil {
					return Summary{}, err
				}
			}
			batch = append(batch, &zk.CreateRequest{Path: o.path, Data: o.data, Acl: o.acl, Flags: o.flags})
			batchOps = append(batchOps, o)
			batchBytes += size
			continue
		}
		if err := flush(); err != nil {
			return Summary{}, err
		}
		if err := ctx.Err(); err != nil {
			return Summary{}, fmt.Errorf("pulsartree: %w", err)
		}
		var err error
		switch o.kind {
		case opLarge:
			_, err = conn.Create(o.path, o.data, o.flags, o.acl)
		case opContainer:
			_, err = conn.CreateContainer(o.path, o.data, o.flags, o.acl)
		case opTTL:
			_, err = conn.CreateTTL(o.path, o.data, o.flags, o.acl, TTL)
		case opSetACL:
			if _, err = conn.SetACL(o.path, o.acl, -1); err != nil {
				return Summary{}, fmt.Errorf("pulsartree: set ACL of %s: %w", o.path, err)
			}
			continue
		}
		if err != nil {
			return Summary{}, createError(o.path, err)
		}
	}
	if err := flush(); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// opSize is an upper bound of an op's share of a multi request.
func opSize(o op) int {
	n := 32 + len(o.path) + len(o.data)
	for _, a := range o.acl {
		n += 12 + len(a.Scheme) + len(a.ID)
	}
	return n
}

// batchError names the znode that failed a multi: the server answers the failing op with
// the multi's error and the others with a generic one.
func batchError(ops []op, res []zk.MultiResponse, err error) error {
	for i, r := range res {
		if i < len(ops) && r.Error != nil && errors.Is(r.Error, err) {
			return createError(ops[i].path, err)
		}
	}
	return fmt.Errorf("pulsartree: create %d znodes from %s: %w", len(ops), ops[0].path, err)
}

func createError(path string, err error) error {
	if errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("%w: create %s: %w", ErrNotEmpty, path, err)
	}
	return fmt.Errorf("pulsartree: create %s: %w", path, err)
}
