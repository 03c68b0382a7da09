// Package metastore is the one small interface the backup and restore pipeline talks to a
// Pulsar metadata store through, whichever store it is: ZooKeeper (internal/zookeeper, whose
// *Client implements Store) or etcd (internal/etcdstore). Above it nothing knows which store
// it has. Paths are the store's own, relative to its root (chroot); records are
// znode.Records.
//
// Errors use one vocabulary whatever the store: a create of an existing node with other
// contents wraps zk.ErrNodeExists, a missing parent zk.ErrNoNode, a guarded write after the
// guard changed ErrGuardFailed, a compare-and-set that lost ErrVersionConflict.
package metastore

import (
	"context"
	"errors"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Store is a metadata store.
type Store interface {
	// Walk streams every persistent node under opts.Root to emit, a parent before its
	// children, skipping ephemeral ones (counted); see zookeeper.Client.Walk for the full
	// contract every store keeps.
	Walk(ctx context.Context, opts WalkOptions, emit func(znode.Record) error) (WalkStats, error)
	// ReadZnode reads one node; found is false, with a nil error, when it does not exist.
	ReadZnode(ctx context.Context, path string) (rec znode.Record, found bool, err error)
	// ListChildren returns the names of a node's children, sorted; found as ReadZnode.
	ListChildren(ctx context.Context, path string) (names []string, found bool, err error)
	// CreateOne creates one node; an identical one already there is not an error
	// (created false), one with other contents is (wrapping zk.ErrNodeExists).
	CreateOne(ctx context.Context, rec znode.Record) (created bool, err error)
	// SetZnodeData replaces a node's data if its version is still version (-1: any), and
	// returns the new version; a mismatch wraps ErrVersionConflict.
	SetZnodeData(ctx context.Context, path string, data []byte, version int32) (int32, error)
	// DeleteZnodes deletes paths in the order given (children before parents), in batches.
	DeleteZnodes(ctx context.Context, paths []string) (DeleteStats, error)
	// Batch returns a Creator that creates records in batches, parents first.
	Batch(ctx context.Context, opts CreatorOptions) Creator
	// Position is the store's current point in its history: the last zxid after a sync
	// for ZooKeeper, the revision for etcd.
	Position(ctx context.Context) (int64, error)
	// PointInTime tells whether Walk reads the tree at one moment (etcd: one revision,
	// reported in WalkStats.MaxZxid) or not (ZooKeeper: a fuzzy walk).
	PointInTime() bool
	// Identity is the ACL id the store's session authenticates as ("" without auth).
	Identity() string
	Close()
}

// Creator creates records (see Store.Batch): Add queues one and may send a batch, Close
// sends the rest, waits, and returns what was done.
type Creator interface {
	Add(rec znode.Record) error
	Close() (CreatorStats, error)
}

// ErrGuardFailed is wrapped when a Guard's node no longer has its version.
var ErrGuardFailed = errors.New("the guarding znode changed")

// ErrVersionConflict is wrapped by SetZnodeData when the node changed since it was read.
var ErrVersionConflict = errors.New("znode changed concurrently")

// CreatorOptions configure a Creator (Store.Batch).
type CreatorOptions struct {
	// BatchBytes bounds the encoded size of one multi request (default 256 KiB, at most
	// MaxRequestBytes). A znode too large for a batch is created on its own. Servers keep
	// their last 500 write requests in memory (zookeeper.commitLogCount) for followers that
	// fall behind, so this also bounds that: 500 × 256 KiB = 125 MiB of the server's heap.
	BatchBytes int
	// BatchOps bounds the creates in one multi request (default 1,000).
	BatchOps int
	// InFlight is the number of requests (batches or single creates) sent and not yet
	// answered (default 8).
	InFlight int
	// Replace, if set, names persistent znodes that may already exist with other data or
	// ACL: such a znode gets the record's data and ACL (counted as Replaced) instead of
	// failing the Creator. A znode of another mode still fails.
	Replace func(path string) bool
	// KeepDiffering, if set, leaves a znode found with other contents than the record's as
	// it is, and reports its path here (counted as Differing) instead of failing the
	// Creator: for additive restores into a store other writers share. Replace goes first.
	KeepDiffering func(path string)
	// Guard, if set, makes every write conditional on a znode's version: each multi request
	// carries a check of it, so a batch sent after the znode changed (another writer took
	// over) fails whole, and the Creator stops with an error wrapping ErrGuardFailed.
	// Container and TTL znodes, which a multi cannot carry, are created after a separate
	// check.
	Guard *Guard
}

// Guard is a znode's data version that writes are conditional on.
type Guard struct {
	Path    string
	Version int32
}

// CreatorStats counts what a Creator did.
type CreatorStats struct {
	// Created counts znodes created; Existing those found already there with the same mode,
	// data and ACL.
	Created  int64
	Existing int64
	// Replaced counts znodes found with other contents and overwritten (CreatorOptions.Replace);
	// Differing those found with other contents and left (CreatorOptions.KeepDiffering).
	Replaced  int64
	Differing int64
	// DataBytes is the data of the znodes created.
	DataBytes int64
	// Batches counts multi requests that committed; Singles the znodes created on their own
	// (container and TTL znodes, which multi cannot carry in go-zookeeper, and znodes too
	// large for a batch).
	Batches int64
	Singles int64
	// Recovered counts requests that failed (a znode already there, a lost connection) and
	// were redone znode by znode.
	Recovered int64
	// DeferredACLs counts parents created with a temporary ACL and given their own after
	// their children.
	DeferredACLs int64
}

// WalkOptions configure Walk.
type WalkOptions struct {
	// Root is where the walk starts ("/" when empty); it is emitted too, and its absence is
	// an error.
	Root string
	// Skip, when it returns true for a path, leaves out that znode and its subtree. /zookeeper
	// (the server's own) is always left out. It is called from the goroutine that called Walk,
	// before the znode is read.
	Skip func(path string) bool
	// InFlight is the number of requests outstanding at once, spread over the pool's
	// connections (default 256).
	InFlight int
	// MaxBytesInFlight caps the data being read and not yet emitted (default 16 MiB). Each
	// znode's ACL is read first, and its reply's Stat tells the data size, so a tree of 1 MB
	// znodes is read 16 at a time rather than InFlight at a time: that bounds our memory and,
	// as much, the server's, which holds every reply it has not sent yet.
	MaxBytesInFlight int
	// Progress, if set, is called with the counts so far from the goroutine that called Walk,
	// every ProgressInterval (default 10s) and once at the end of a walk that succeeds.
	Progress         func(WalkStats)
	ProgressInterval time.Duration
}

// WalkStats counts what a walk saw.
type WalkStats struct {
	// Znodes is the number of records emitted.
	Znodes int64
	// EphemeralSkipped counts ephemeral znodes, which are live state and never emitted.
	EphemeralSkipped int64
	// Vanished counts znodes deleted between being listed and being read.
	Vanished int64
	// SkippedSubtrees counts subtrees left out by Skip or because they are /zookeeper.
	SkippedSubtrees int64
	// DataBytes is the data emitted.
	DataBytes int64
	// MaxZxid is the largest czxid, mzxid or pzxid seen: no change after it is in the dump.
	MaxZxid int64
}

// DeleteStats counts what DeleteZnodes did.
type DeleteStats struct {
	// Deleted counts znodes deleted; Gone those already absent.
	Deleted, Gone int64
	// Kept counts znodes left because they still have children (ones not in the list, such
	// as ephemerals or a subtree the caller keeps); Denied those whose parent's ACL does not
	// let us delete them.
	Kept, Denied int64
}
