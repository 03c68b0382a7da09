// Package pulsartree writes a realistic Apache Pulsar metadata tree into ZooKeeper, for
// integration tests, benchmarks and the `make dev` demo seed: tenants, namespaces and
// partitioned-topic metadata under /admin, managed ledgers with cursors (protobuf, plain and
// compressed), BookKeeper's /ledgers, schemas, load-balancer data, and the live state a
// running cluster has (ephemeral brokers, bookies and bundle owners). With Options.Awkward
// it adds the cases a backup and restore get wrong first: digest ACLs, binary and empty
// data, a 1 MB znode, unicode names, a deep path, sequential, container and TTL nodes, and
// every compression codec.
//
// The tree is a function of the Options alone (a seeded RNG, fixed timestamps), so two runs
// with the same Options write the same znodes with the same data; only sequential-node
// suffixes and Stat fields depend on the server.
package pulsartree

import (
	"errors"
	"fmt"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Options shape the tree. Zero counts are allowed (no tenants gives only the cluster-wide
// nodes); negative ones are not.
type Options struct {
	// Tenants, each with NamespacesPerTenant namespaces of TopicsPerNamespace persistent
	// topics (managed ledgers; some are the partitions of a partitioned topic). Each topic
	// has SubscriptionsPerTopic cursors and LedgersPerTopic ledgers, the last one open.
	Tenants, NamespacesPerTenant, TopicsPerNamespace, SubscriptionsPerTopic, LedgersPerTopic int
	// Brokers is the number of live brokers: each has an ephemeral
	// /loadbalance/brokers/<host:port> and a bookie with an ephemeral
	// /ledgers/available/<host:3181>, one of them holds the ephemeral /loadbalance/leader,
	// and every namespace's bundle is owned (an ephemeral
	// /namespace/<tenant>/<ns>/0x00000000_0xffffffff). Ephemerals belong to the session of
	// the connection given to Populate; they vanish when it closes. With no brokers the
	// cluster is stopped: no ephemerals, and the persistent state (cookies of one bookie)
	// stays.
	Brokers int
	// Awkward adds the awkward cases listed in Special.
	Awkward bool
	// ManagedLedgerPath is the broker's managedLedgerPath; "" means "/managed-ledgers".
	ManagedLedgerPath string
	// Compression, when not NONE, is the codec every third managed ledger is written with
	// (brokers with managedLedgerInfoCompressionType set). With Awkward, those topics cycle
	// through all codecs instead, and a dedicated tenant holds one topic per codec.
	Compression mlpb.CompressionType
	// LongLedgerIDs makes the source a cluster whose ledger-id generator moved to 63-bit
	// ids: /ledgers/idgen-long/HOB-<SourceHOB> exists and every ledger id is
	// (SourceHOB << 32) + n, its metadata under BookKeeper's long hierarchical layout.
	LongLedgerIDs bool
	// DigestUser and DigestPassword own the digest-ACL nodes Awkward adds; "" means
	// DefaultDigestUser and DefaultDigestPassword.
	DigestUser, DigestPassword string
	// Seed seeds the generator; 0 means 1.
	Seed uint64
}

// Defaults for the digest-ACL nodes.
const (
	DefaultDigestUser     = "pulsar-admin"
	DefaultDigestPassword = "pulsar-admin-secret"
)

// SourceHOB is the idgen-long child of a tree with Options.LongLedgerIDs.
const SourceHOB = 5

// LargeSize is the size of the large znode Awkward adds: close to ZooKeeper's default
// jute.maxbuffer (1 MiB less one byte), which bounds a request including its path and ACL.
const LargeSize = 1_000_000

// TTL is the time-to-live of the TTL node Awkward adds. The server removes a TTL node that
// has no children and was not modified for that long, so a long-lived demo loses it.
const TTL = 24 * time.Hour

// Sized returns Options whose tree has roughly n znodes (persistent and ephemeral), with
// three brokers and otherwise the shape of a small production cluster. Add Awkward or
// Compression as needed; Awkward adds about a hundred znodes.
func Sized(n int) Options {
	o := Options{NamespacesPerTenant: 2, TopicsPerNamespace: 5, SubscriptionsPerTopic: 2, LedgersPerTopic: 4, Brokers: 3}
	count := func(tenants int) int {
		o.Tenants = tenants
		p, err := buildPlan(o)
		if err != nil {
			panic(err) // the options above are valid
		}
		return p.persistent + p.ephemeral
	}
	one, two := count(1), count(2)
	tenants := 1
	if per := two - one; n > one && per > 0 {
		tenants = 1 + (n-one+per/2)/per
	}
	o.Tenants = tenants
	return o
}

func (o Options) withDefaults() Options {
	if o.ManagedLedgerPath == "" {
		o.ManagedLedgerPath = "/managed-ledgers"
	}
	if o.DigestUser == "" {
		o.DigestUser = DefaultDigestUser
	}
	if o.DigestPassword == "" {
		o.DigestPassword = DefaultDigestPassword
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

func (o Options) validate() error {
	for name, v := range map[string]int{
		"Tenants": o.Tenants, "NamespacesPerTenant": o.NamespacesPerTenant, "TopicsPerNamespace": o.TopicsPerNamespace,
		"SubscriptionsPerTopic": o.SubscriptionsPerTopic, "LedgersPerTopic": o.LedgersPerTopic, "Brokers": o.Brokers,
	} {
		if v < 0 {
			return fmt.Errorf("pulsartree: %s is negative (%d)", name, v)
		}
	}
	if _, ok := mlpb.CompressionType_name[int32(o.Compression)]; !ok {
		return fmt.Errorf("pulsartree: unknown compression type %d", int32(o.Compression))
	}
	if err := znode.ValidatePath(o.ManagedLedgerPath); err != nil || o.ManagedLedgerPath == "/" {
		return fmt.Errorf("pulsartree: ManagedLedgerPath %q is not a znode path below /", o.ManagedLedgerPath)
	}
	return nil
}

// Summary is what Populate created.
type Summary struct {
	// Persistent counts the persistent, sequential, container and TTL znodes created,
	// parents such as /admin included; "/" and /zookeeper are not.
	Persistent int
	// Ephemeral counts the ephemeral znodes created, all owned by the connection's session.
	Ephemeral int
	// Special locates the awkward cases (empty without Options.Awkward).
	Special Special
	// Topics are the managed ledgers, each with the outcome the restore rewrite must have.
	Topics []Topic
	// Schemas are the schema locators and the BookKeeper ledgers they point into.
	Schemas []Schema
	// HighestLedgerID is at least every ledger id the tree names, and the highest id the
	// source's generator may have handed out ((SourceHOB << 32) | 0xffffffff with
	// Options.LongLedgerIDs).
	HighestLedgerID int64
	// BookKeeperBound are the znodes of /pulsar/functions, /pulsar/packages and /stream:
	// DistributedLog and stream-storage metadata bound to the source's BookKeeper.
	BookKeeperBound []string
	// Quotas are the resource quotas under /loadbalance/resource-quota, set by admins.
	Quotas []string
}

// Special holds the paths of the awkward cases.
type Special struct {
	// Digest are znodes whose ACL grants everything to the digest user and nothing to anyone
	// else: reading them needs AddAuth("digest", "<user>:<password>") (or the super user).
	// Populate adds that auth to the connection it is given.
	Digest []string
	// Locked is a znode with a world READ-only ACL, set after its child LockedChild was
	// created: a restore must create the child before it restores the parent's ACL.
	Locked, LockedChild string
	// Binary holds bytes 0..255 twice, NUL bytes included.
	Binary string
	// Large holds LargeSize pseudo-random bytes.
	Large string
	// Empty are znodes with zero-length data (many parents are empty too).
	Empty []string
	// Unicode are znodes with non-ASCII names. (Pulsar itself allows only [-=:.\w] in
	// tenant and namespace names; these test ZooKeeper paths, not Pulsar.)
	Unicode []string
	// Deep is a znode 40 levels below the root.
	Deep string
	// Sequential are znodes created with zk.FlagSequence, as the server named them.
	Sequential []string
	// Container is a container node; ContainerChild keeps the server from reaping it.
	//
	// A client cannot tell container and TTL nodes from persistent ones: ZooKeeper reports
	// ephemeralOwner 0 for both (DataNode.copyStat); only the server's transaction log and
	// snapshots record the mode.
	Container, ContainerChild string
	// TTLNode is a TTL node (see TTL); the server needs extendedTypesEnabled=true.
	TTLNode string
	// Compressed maps each managed-ledger format the tree holds besides plain protobuf (all
	// five with Awkward) to one managed ledger written in it.
	Compressed map[managedledger.Format]string
	// CompressedCursor is a cursor written in the compressed form.
	CompressedCursor string
	// OneKept is a topic with exactly one offloaded ledger and its open ledger;
	// AllOffloaded a terminated topic whose every ledger is offloaded (its highest ledger is
	// kept); NoLedgers a topic whose ManagedLedgerInfo lists no ledger.
	OneKept, AllOffloaded, NoLedgers string
}

// Topic is one managed ledger and what a restore must turn it into.
type Topic struct {
	// Name is the topic, persistent://<tenant>/<ns>/<local name>.
	Name string
	// Path is its managed-ledger znode.
	Path   string
	Format managedledger.Format
	// Ledgers are all ledger ids in the ManagedLedgerInfo, in order.
	Ledgers []int64
	// Kept are the ledgers fully offloaded (offloadContext.complete), which a restore keeps;
	// Dropped are the others.
	Kept    []managedledger.KeptLedger
	Dropped []int64
	// Terminated is the terminatedPosition, nil for a topic that is not terminated.
	Terminated *managedledger.Position
	// CompactedLedger is the compacted ledger its __compaction cursor names (0: none).
	CompactedLedger int64
	Cursors         []Cursor
}

// Cursor is one subscription's cursor znode.
type Cursor struct {
	Path   string
	Format managedledger.Format
	// CursorsLedgerID is the cursor's own BookKeeper ledger, or -1 when the broker kept its
	// position in the znode only (a restore sets it to -1).
	CursorsLedgerID int64
	// MarkDelete is the position as written; Restored is where a restore must move it.
	MarkDelete, Restored managedledger.Position
}

// Schema is one schema locator.
type Schema struct {
	Path    string
	Ledgers []int64
}

// ErrNotEmpty wraps the error Populate returns when a znode it would create exists.
var ErrNotEmpty = errors.New("pulsartree: the tree is not empty")
