package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Guard is a key's mod_revision (as Read returns it) that writes are conditional on.
type Guard struct {
	Path    string
	Version int64
}

// ErrGuardFailed is wrapped when a Guard's key no longer has its version (or is gone):
// another writer took over.
var ErrGuardFailed = errors.New("the guarding key changed")

// ErrExists is wrapped when a record's key exists with other contents.
var ErrExists = errors.New("key exists")

// CreateBatch creates recs' keys, none of which may exist yet, in transactions. Its
// contract mirrors the ZooKeeper Creator's:
//
//   - Each transaction compares every key's create_revision with 0 (absent) and, with a
//     guard, the guard key's mod_revision with guard.Version, then puts the keys. It holds
//     at most MaxTxnOps compares (the guard's included) and stays under MaxRequestBytes; a
//     record too large to share one goes alone, and one too large for any fails naming its
//     path. Transactions are sent one after the other, in recs' order.
//   - Idempotent: when a transaction's compares fail, its other branch reads every key. A
//     key found with the record's data and no lease counts as existing and is left alone
//     (a resumed restore); one with other data, or leased (a live ephemeral), fails with
//     "create <path>: key exists with different data" (or "leased") wrapping ErrExists. The
//     missing keys are sent again in a new transaction.
//   - A failed guard fails with an error wrapping ErrGuardFailed, before any key of that
//     transaction is written.
//   - created counts the keys this call wrote; the other records written existed already.
//     Keys written by earlier transactions stay when a later one fails.
//   - Implied records (see Implied) are not written, so a walk restored elsewhere has
//     Pulsar's layout again: no key where the source had none. Nor is "/": like ZooKeeper's
//     root it is taken to exist (without Root, a "/" key would show up in Pulsar's
//     getChildren("/") as a child with an empty name). Neither counts as created.
//   - Other records are written as they are: nil Data as an empty value, container and TTL
//     records as plain keys (etcd has neither). Ephemeral records, and one path given twice,
//     are refused before anything is written.
func (s *Store) CreateBatch(ctx context.Context, recs []znode.Record, guard *Guard) (created int, err error) {
	seen := make(map[string]struct{}, len(recs))
	kept := make([]znode.Record, 0, len(recs))
	for _, r := range recs {
		if err := znode.ValidatePath(r.Path); err != nil {
			return 0, fmt.Errorf("create: %w", err)
		}
		if r.Mode == znode.ModeEphemeral {
			return 0, fmt.Errorf("create %s: ephemeral records are live state and never restored", r.Path)
		}
		if _, dup := seen[r.Path]; dup {
			return 0, fmt.Errorf("create %s: path given twice", r.Path)
		}
		seen[r.Path] = struct{}{}
		if r.Path != "/" && !Implied(r) {
			kept = append(kept, r)
		}
	}
	seen = nil
	recs = kept
	maxOps := s.maxOps
	budget := s.maxBytes - 4<<10 // headroom for the request's own framing
	if guard != nil {
		maxOps--
		budget -= len(s.key(guard.Path)) + opOverhead
	}
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < maxOps {
			sz := recordSize(s.key(recs[n].Path), recs[n].Data)
			if n > 0 && size+sz > budget/2 {
				break
			}
			size += sz
			n++
		}
		if size > budget {
			return created, fmt.Errorf("create %s: %d bytes exceed etcd's request limit (%d, --max-request-bytes)", recs[0].Path, size, s.maxBytes)
		}
		c, err := s.createTxn(ctx, recs[:n], guard)
		created += c
		if err != nil {
			return created, err
		}
		recs = recs[n:]
	}
	return created, nil
}

// recordSize estimates a record's share of a transaction: its key in the compare, the put
// and the read-back, and its value.
func recordSize(key string, data []byte) int {
	return 3*(len(key)+opOverhead) + len(data)
}

// createTxn creates recs in one transaction, and on a failed compare sorts them into
// existing (equal), conflicting (an error) and missing, which it sends again.
func (s *Store) createTxn(ctx context.Context, recs []znode.Record, guard *Guard) (int, error) {
	for {
		cmps := make([]clientv3.Cmp, 0, len(recs)+1)
		puts := make([]clientv3.Op, 0, len(recs))
		reads := make([]clientv3.Op, 0, len(recs)+1)
		for _, r := range recs {
			k := s.key(r.Path)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
			puts = append(puts, clientv3.OpPut(k, string(r.Data)))
			reads = append(reads, clientv3.OpGet(k))
		}
		if guard != nil {
			gk := s.key(guard.Path)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(gk), "=", guard.Version))
			reads = append(reads, clientv3.OpGet(gk, clientv3.WithKeysOnly()))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Else(reads...).Commit()
		if err != nil {
			return 0, fmt.Errorf("create %s (and %d more): %w", recs[0].Path, len(recs)-1, err)
		}
		if resp.Succeeded {
			return len(recs), nil
		}
		if guard != nil {
			g := resp.Responses[len(recs)].GetResponseRange().Kvs
			if len(g) == 0 {
				return 0, fmt.Errorf("%w: %s is gone (expected version %d)", ErrGuardFailed, guard.Path, guard.Version)
			}
			if g[0].ModRevision != guard.Version {
				return 0, fmt.Errorf("%w: %s is at version %d, not %d", ErrGuardFailed, guard.Path, g[0].ModRevision, guard.Version)
			}
		}
		missing := recs[:0:0]
		for i, r := range recs {
			kvs := resp.Responses[i].GetResponseRange().Kvs
			switch {
			case len(kvs) == 0:
				missing = append(missing, r)
			case kvs[0].Lease != 0:
				return 0, fmt.Errorf("create %s: %w, leased (a live ephemeral)", r.Path, ErrExists)
			case !bytes.Equal(kvs[0].Value, r.Data):
				return 0, fmt.Errorf("create %s: %w with different data", r.Path, ErrExists)
			}
		}
		if len(missing) == 0 {
			return 0, nil
		}
		// Every failed round finds at least one key present, so this ends.
		if len(missing) == len(recs) {
			return 0, fmt.Errorf("create %s (and %d more): the transaction's compares failed yet no key exists", recs[0].Path, len(recs)-1)
		}
		recs = missing
	}
}
