// Package etcdstore reads and writes the metadata of a Pulsar cluster whose metadata store is
// etcd (metadataStoreUrl=etcd:http://host:2379,...), in the znode.Record form the ZooKeeper
// side of the tool uses, so that the archive and the restore rules do not depend on the store.
//
// # How Pulsar lays out its metadata in etcd
//
// From EtcdMetadataStore (apache/pulsar, pulsar-metadata,
// org.apache.pulsar.metadata.impl.EtcdMetadataStore) and the classes it extends
// (AbstractBatchedMetadataStore, AbstractMetadataStore):
//
//   - Key: the metadata path itself, UTF-8 (batchOperation: ByteSequence.from(path)). The
//     URL is "etcd:" followed by comma-separated endpoints (newEtcdClient); it carries no
//     prefix or chroot, so a Pulsar cluster's keys are "/admin/...", "/managed-ledgers/...".
//     Options.Root is this tool's own addition, for an etcd shared by several clusters.
//   - Value: the node's data, byte for byte (Op.put with ByteSequence.from(data)).
//   - Ephemeral nodes: put with the store's lease (PutOption.withLeaseId, one lease per
//     store session, granted with the session timeout and kept alive: createLease), and a
//     read reports a node as ephemeral when its KeyValue.Lease != 0 (handleBatchOperationResult,
//     GET). A backup skips leased keys, as ZooKeeper ephemerals are skipped.
//   - Sequential nodes (storePut with CreateOption.Sequential): the parent key is put with an
//     empty value first, and the child's key is the path plus the version Pulsar's Stat
//     reports for that put (the parent's etcd version before it: 0 for a new parent), in
//     plain decimal with no zero padding. Once created the child is an ordinary key; the
//     counter is the parent's etcd version, which no restore can set (a key put anew starts
//     at version 1), so a restored sequence parent hands out low numbers again.
//   - Parents: never created. A put writes the one key (storePut → one OpPut), so
//     "/a/b" can exist with no "/a" key; exists("/a") is a count-only get of the exact key
//     (existsFromStore).
//   - Children: a keys-only range over the prefix path+"/" sorted by key, keeping each key's
//     first segment below the prefix, de-duplicated (GET_CHILDREN). A path has children when
//     keys lie below it, whether or not it has a key itself.
//   - Version: Pulsar's Stat version is KeyValue.Version − 1 (0 for a new key); a put with
//     expected version v compares CmpTarget.version(v+1), and expected version −1 (create)
//     compares createRevision == 0 (batchOperation).
//
// # The mapping to znode.Record
//
//   - Path: the key with Options.Root removed ("/" for the Root key itself).
//   - Data: the value ([]byte{} for an empty value). Mode: persistent. TTL: none.
//   - ACL: etcd keys have none (etcd's own auth is per user and key range, not per key), so
//     every record carries WorldACL, world:anyone with all rights: what a restore into
//     ZooKeeper should give Pulsar's nodes, and the format needs a non-empty ACL.
//   - Stat: Czxid = create_revision, Mzxid = mod_revision, Version = version − 1 (Pulsar's own
//     mapping), DataLength = len(value), NumChildren = the number of keys below it (see
//     Walk); Pzxid, Ctime, Mtime, Cversion, Aversion and EphemeralOwner are 0 (etcd keeps no
//     times and no per-directory revision).
//   - A path with keys below it but no key of its own (Pulsar creates no parents) is emitted
//     as an implied record: nil Data (not []byte{}) and an all-zero Stat apart from
//     NumChildren. Implied reports it. The archive needs every record's parent before it;
//     CreateBatch leaves implied records out, which recreates Pulsar's exact layout.
package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults and limits.
const (
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxResponseBytes caps one response the client accepts: a walk's page, which
	// bounds the walk's memory. A page over it is read again in smaller pages.
	DefaultMaxResponseBytes = 32 << 20
	// MaxTxnOps is etcd's default --max-txn-ops: the most compares, and the most
	// operations in either branch, of one transaction.
	MaxTxnOps = 128
	// MaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
	MaxRequestBytes = 1536 << 10
)

// WorldACL is the ACL of every record read from etcd.
var WorldACL = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}

// Options configure Connect.
type Options struct {
	// Endpoints are etcd client URLs (http://host:2379) or host:port pairs.
	Endpoints []string
	// Root is a key prefix every path lives under, like a ZooKeeper chroot ("/pulsar": the
	// path "/admin" is the key "/pulsar/admin"); "" or "/" for none, Pulsar's own layout.
	Root string
	// DialTimeout bounds Connect's first request (default 10s).
	DialTimeout time.Duration
	// Username and Password, when set, authenticate with etcd's auth. The password is never
	// logged nor put in errors.
	Username, Password string
	// MaxResponseBytes caps one response (default 32 MiB).
	MaxResponseBytes int
	// AllowEmptyRoot lets Connect succeed when no key lies at or below Root: a restore
	// target whose chroot is new.
	AllowEmptyRoot bool
	// MaxTxnOps and MaxRequestBytes are the server's --max-txn-ops and
	// --max-request-bytes, for servers run with other values than etcd's defaults.
	MaxTxnOps, MaxRequestBytes int
}

// Store is a connection to one etcd cluster, under one Root. Its methods are safe for
// concurrent use.
type Store struct {
	cli       *clientv3.Client
	root      string // "" or a valid path other than "/"
	endpoints string
	maxResp   int
	maxOps    int
	maxBytes  int
}

// ErrNotFound is wrapped when a Root or a walked path has no key, at or below it.
var ErrNotFound = errors.New("does not exist")

// Connect opens a client and makes one request, so that it fails with a one-line error when
// no endpoint answers within DialTimeout, the credentials are refused, or Root is set and
// no key lies at or below it ("etcd chroot /x does not exist"; see AllowEmptyRoot).
func Connect(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("connect to etcd: no endpoints given")
	}
	root := opts.Root
	if root == "/" {
		root = ""
	}
	if root != "" {
		if err := znode.ValidatePath(root); err != nil {
			return nil, fmt.Errorf("etcd chroot: %w", err)
		}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = MaxTxnOps
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = MaxRequestBytes
	}
	s := &Store{
		root:      root,
		endpoints: strings.Join(opts.Endpoints, ","),
		maxResp:   opts.MaxResponseBytes,
		maxOps:    opts.MaxTxnOps,
		maxBytes:  opts.MaxRequestBytes,
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          opts.Endpoints,
		DialTimeout:        opts.DialTimeout,
		Username:           opts.Username,
		Password:           opts.Password,
		MaxCallRecvMsgSize: opts.MaxResponseBytes,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		return nil, s.connectError(opts, err)
	}
	s.cli = cli
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	n, err := s.countUnder(pctx, "/", 0)
	if err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to etcd %s: %w", s.endpoints, ctx.Err())
		}
		return nil, s.connectError(opts, err)
	}
	if root != "" && n == 0 && !opts.AllowEmptyRoot {
		cli.Close()
		return nil, fmt.Errorf("etcd %s: chroot %s %w (no key at or below it)", s.endpoints, root, ErrNotFound)
	}
	return s, nil
}

func (s *Store) connectError(opts Options, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrInvalidAuthToken) || errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("connect to etcd %s: auth as user %q failed: %w", s.endpoints, opts.Username, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("connect to etcd %s: no endpoint reachable within %s", s.endpoints, opts.DialTimeout)
	}
	return fmt.Errorf("connect to etcd %s: %w", s.endpoints, err)
}

// Close closes the client. Operations still running fail.
func (s *Store) Close() error { return s.cli.Close() }

// Root is the key prefix of the store's paths, "" for none.
func (s *Store) Root() string { return s.root }

// key maps a path to its etcd key.
func (s *Store) key(path string) string {
	if path == "/" {
		if s.root == "" {
			return "/"
		}
		return s.root
	}
	return s.root + path
}

// path maps a key under Root back to its path.
func (s *Store) path(key string) string {
	if s.root == "" {
		return key
	}
	if key == s.root {
		return "/"
	}
	return key[len(s.root):]
}

// childPrefix is the prefix of the keys below key; childEnd the first key after them all.
func childPrefix(key string) string {
	if key == "/" {
		return "/"
	}
	return key + "/"
}

func childEnd(key string) string {
	if key == "/" {
		return "0" // '/'+1
	}
	return key + "0"
}

// belowOp counts the keys strictly below key at rev (0 for the latest).
func belowOp(key string, rev int64) clientv3.Op {
	start := childPrefix(key)
	if key == "/" {
		start = "/\x00"
	}
	return clientv3.OpGet(start, clientv3.WithRange(childEnd(key)), clientv3.WithCountOnly(), clientv3.WithRev(rev))
}

// countUnder counts the keys at or below path.
func (s *Store) countUnder(ctx context.Context, path string, rev int64) (int64, error) {
	k := s.key(path)
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(k, clientv3.WithCountOnly(), clientv3.WithRev(rev)),
		belowOp(k, rev),
	).Commit()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range resp.Responses {
		n += r.GetResponseRange().Count
	}
	return n, nil
}

// Implied reports whether rec stands for a path that has keys below it but none of its own
// (see the package documentation): Walk emits one so that every record's parent precedes
// it.
func Implied(rec znode.Record) bool {
	return rec.Data == nil && rec.Stat.Czxid == 0 && rec.Stat.Mzxid == 0
}

// record maps one key-value to a Record (numChildren aside).
func (s *Store) record(kv keyValue) znode.Record {
	data := kv.value
	if data == nil {
		data = []byte{}
	}
	mode := znode.ModePersistent
	if kv.lease != 0 {
		mode = znode.ModeEphemeral
	}
	return znode.Record{
		Path: s.path(kv.key),
		Data: data,
		ACL:  WorldACL,
		Mode: mode,
		Stat: znode.Stat{
			Czxid:      kv.createRev,
			Mzxid:      kv.modRev,
			Version:    clampInt32(kv.version - 1),
			DataLength: clampInt32(int64(len(data))),
		},
	}
}

func clampInt32(v int64) int32 {
	return int32(min(max(v, -1<<31), 1<<31-1))
}

// keyValue is the part of an etcd KeyValue a record needs.
type keyValue struct {
	key                        string
	value                      []byte
	createRev, modRev, version int64
	lease                      int64
}

// Read reads one path: its record (Mode ephemeral for a leased key; Stat.NumChildren the
// keys below it) and its mod_revision, the version Put and Guard compare. found is false,
// with a nil error, when the path has no key.
func (s *Store) Read(ctx context.Context, path string) (rec znode.Record, version int64, found bool, err error) {
	if err := znode.ValidatePath(path); err != nil {
		return znode.Record{}, 0, false, fmt.Errorf("read: %w", err)
	}
	k := s.key(path)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(k), belowOp(k, 0)).Commit()
	if err != nil {
		return znode.Record{}, 0, false, fmt.Errorf("read %s: %w", path, err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return znode.Record{}, 0, false, nil
	}
	kv := kvs[0]
	rec = s.record(keyValue{string(kv.Key), kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease})
	rec.Stat.NumChildren = clampInt32(resp.Responses[1].GetResponseRange().Count)
	return rec, kv.ModRevision, true, nil
}

// ErrVersionConflict is wrapped by Put when the key is not at the expected version.
var ErrVersionConflict = errors.New("etcd key changed concurrently")

// Put writes data at path if the key is still at expectedVersion, its mod_revision as Read
// returned it, or, with expectedVersion < 0, if it does not exist; it returns the new
// mod_revision. Otherwise it fails with an error wrapping ErrVersionConflict. mod_revision
// is unique across the store, so a key deleted and put again never matches an old version
// (etcd's per-key version would restart at 1).
func (s *Store) Put(ctx context.Context, path string, data []byte, expectedVersion int64) (int64, error) {
	if err := znode.ValidatePath(path); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	k := s.key(path)
	cmp := clientv3.Compare(clientv3.ModRevision(k), "=", expectedVersion)
	if expectedVersion < 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	}
	resp, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(data))).Commit()
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", path, err)
	}
	if !resp.Succeeded {
		if expectedVersion < 0 {
			return 0, fmt.Errorf("create %s: it exists: %w", path, ErrVersionConflict)
		}
		return 0, fmt.Errorf("put %s: not at version %d: %w", path, expectedVersion, ErrVersionConflict)
	}
	return resp.Header.Revision, nil
}

// DeleteStats counts what Delete did.
type DeleteStats struct {
	// Deleted counts keys deleted; Gone paths that had no key.
	Deleted, Gone int64
}

// Delete deletes the keys of paths, in transactions of up to MaxTxnOps deletes. Unlike
// ZooKeeper, etcd deletes a key whatever lies below it, so the order does not matter and
// nothing is kept for having children. "/" is deleted only under a Root (it is the Root's
// own key).
func (s *Store) Delete(ctx context.Context, paths []string) (DeleteStats, error) {
	var st DeleteStats
	for len(paths) > 0 {
		n, size := 0, 0
		for n < len(paths) && n < s.maxOps && (n == 0 || size+len(paths[n])+opOverhead < s.maxBytes/2) {
			size += len(paths[n]) + opOverhead
			n++
		}
		batch := paths[:n]
		paths = paths[n:]
		ops := make([]clientv3.Op, 0, len(batch))
		for _, p := range batch {
			if err := znode.ValidatePath(p); err != nil {
				return st, fmt.Errorf("delete: %w", err)
			}
			if p == "/" && s.root == "" {
				continue
			}
			ops = append(ops, clientv3.OpDelete(s.key(p)))
		}
		if len(ops) == 0 {
			continue
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return st, fmt.Errorf("delete %s (and %d more): %w", batch[0], len(batch)-1, err)
		}
		for _, r := range resp.Responses {
			if r.GetResponseDeleteRange().Deleted > 0 {
				st.Deleted++
			} else {
				st.Gone++
			}
		}
	}
	return st, nil
}

// opOverhead is a generous estimate of an operation's encoding besides its key and value.
const opOverhead = 32
