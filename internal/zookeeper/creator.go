package zookeeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Defaults and limits for CreatorOptions.
const (
	DefaultBatchBytes      = 256 << 10
	DefaultBatchOps        = 1000
	DefaultBatchesInFlight = 8
	// MaxRequestBytes is the largest request the server reads: jute.maxbuffer's default
	// (0xfffff). A larger one makes it drop the connection.
	MaxRequestBytes = 1<<20 - 1
)

// Sizes of the wire encoding, to keep a batch under BatchBytes without encoding it twice.
const (
	requestOverhead = 4 + 8     // length prefix, RequestHeader{xid, type}
	multiOverhead   = 9         // the closing multi header {type, done, err}
	multiOpOverhead = 9         // each operation's multi header
	createFixed     = 4 + 4 + 4 // path, data and ACL length prefixes
	createFlags     = 4
	createTTLField  = 8
	aclFixed        = 4 + 4 + 4 // perms, scheme and id length prefixes
)

// CreatorOptions, Guard and CreatorStats are the metastore package's (shared with every
// store); see there.
type (
	CreatorOptions = metastore.CreatorOptions
	Guard          = metastore.Guard
	CreatorStats   = metastore.CreatorStats
)

// ErrGuardFailed is wrapped when a Guard's znode no longer has its version.
var ErrGuardFailed = metastore.ErrGuardFailed

func guardOp(c *Client, g *Guard) *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: c.abs(g.Path), Version: g.Version}
}

func guardFailed(g *Guard, err error) error {
	return fmt.Errorf("%w: %s is no longer at version %d (%w)", ErrGuardFailed, g.Path, g.Version, err)
}

// Creator creates znodes from records in batched multi requests, many in flight. See
// NewCreator.
type Creator struct {
	c    *Client
	ctx  context.Context
	conn *zk.Conn
	opts CreatorOptions

	open     *createBatch
	inflight []*createBatch
	deferred []deferredACL
	stats    CreatorStats
	err      error
	closed   bool
}

type createBatch struct {
	items  []*createItem
	bytes  int
	single bool
	done   chan struct{}
	err    error // of the request, set before done is closed
}

// createItem is one znode to create, ready for the wire.
type createItem struct {
	path  string // as the caller named it, relative to the client's root
	zpath string // on the server (Client.abs)
	data  []byte
	acl   []zk.ACL // as created: the real ACL, or a temporary one
	mode  znode.Mode
	ttl   int64
	// deferred indexes Creator.deferred when the real ACL is set at Close, else -1.
	deferred int
}

type deferredACL struct {
	path  string
	zpath string
	acl   []zk.ACL
	// done when the znode was found with its real ACL already.
	done bool
}

// NewCreator returns a Creator that restores records through c. Its contract:
//
//   - Records are fed with Add by one goroutine, parents before children (the order a Walk
//     emits, or any order in which a znode's parent comes first). Close must be called: it
//     sends what is left, waits for everything, sets deferred ACLs and returns the counts.
//   - Persistent znodes go in multi requests of at most BatchOps creates and BatchBytes
//     bytes; container and TTL znodes, and znodes too large for a batch, in single creates.
//   - Order: every request goes on one connection, and each is handed to the socket before
//     the next is sent. ZooKeeper executes one session's requests in the order received, so a
//     batch holding a child is executed after the batch holding its parent, with no waiting
//     for replies in between. A multi is atomic: if one fails, none of its znodes exist, and
//     the later batches that held their children fail too; the Creator then waits for every
//     request in flight and redoes the failed ones in order, znode by znode (see below).
//   - Idempotent: a znode that already exists with the same mode, data and ACL is counted as
//     Existing and left alone; one that differs fails with "create <path>: exists with
//     different data" (or mode, or ACL). Telling requires reading the existing znode, so
//     applying records again over digest-protected znodes needs an Auth that may read them
//     (their digest user, or the super user).
//   - Locked parents: creating a child needs CREATE on its parent. A record with children
//     (Stat.NumChildren > 0) whose ACL grants CREATE neither to world:anyone nor to our
//     digest identity is created with its ACL plus one entry for us (our digest identity
//     with CREATE|READ|ADMIN, or without auth world:anyone with CREATE|ADMIN), and its real
//     ACL is set at Close, deepest first, once its children exist. The list of these is kept
//     until Close: memory grows with the number of locked parents, not with the tree. A
//     locked record without children is created with its real ACL at once.
//   - "/" always exists: its record is compared like an existing znode, never created.
//   - The Creator keeps each record's Data until its request is answered; do not modify it.
//   - The first error stops the Creator: Add and Close return it. Once ctx is done, they
//     return ctx.Err() and requests in flight finish in the background.
func (c *Client) NewCreator(ctx context.Context, opts CreatorOptions) *Creator {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	opts.BatchBytes = min(opts.BatchBytes, MaxRequestBytes)
	if opts.BatchOps <= 0 {
		opts.BatchOps = DefaultBatchOps
	}
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultBatchesInFlight
	}
	return &Creator{c: c, ctx: ctx, conn: c.conns[0], opts: opts}
}

// Add queues one record for creation and sends a batch when one is full. It may block while
// InFlight requests are outstanding.
func (cr *Creator) Add(rec znode.Record) error {
	if cr.err != nil {
		return cr.err
	}
	if cr.closed {
		return errors.New("create: creator closed")
	}
	if err := cr.ctx.Err(); err != nil {
		return cr.fail(err)
	}
	if rec.Path == "/" {
		return cr.fail(cr.compareRoot(rec))
	}
	it, err := cr.c.newItem(rec)
	if err != nil {
		return cr.fail(err)
	}
	if rec.Stat.NumChildren > 0 && !grantsCreate(it.acl, cr.c.identity) {
		it.deferred = len(cr.deferred)
		cr.deferred = append(cr.deferred, deferredACL{path: it.path, zpath: it.zpath, acl: it.acl})
		it.acl = temporaryACL(it.acl, cr.c.identity)
		cr.stats.DeferredACLs++
	}

	size := it.size()
	if it.mode != znode.ModePersistent || requestOverhead+size+multiOverhead > cr.opts.BatchBytes {
		if requestOverhead+size > MaxRequestBytes {
			return cr.fail(fmt.Errorf("create %s: request of %d bytes exceeds jute.maxbuffer (%d)", it.path, requestOverhead+size, MaxRequestBytes))
		}
		cr.flush()
		cr.launch(&createBatch{items: []*createItem{it}, single: true})
		return cr.err
	}
	if b := cr.open; b != nil && requestOverhead+b.bytes+size+multiOverhead > cr.opts.BatchBytes {
		cr.flush()
	}
	if cr.open == nil {
		cr.open = &createBatch{items: make([]*createItem, 0, min(cr.opts.BatchOps, 1024))}
	}
	cr.open.items = append(cr.open.items, it)
	cr.open.bytes += size
	if len(cr.open.items) >= cr.opts.BatchOps {
		cr.flush()
	}
	return cr.err
}

// Close sends what is queued, waits for every request, sets the deferred ACLs and returns the
// counts. It returns the first error of the Creator, if any.
func (cr *Creator) Close() (CreatorStats, error) {
	if cr.closed {
		return cr.stats, cr.err
	}
	cr.closed = true
	if cr.err == nil {
		cr.flush()
	}
	for cr.err == nil && len(cr.inflight) > 0 {
		cr.reapOldest()
	}
	if cr.err == nil {
		cr.fail(cr.applyDeferred())
	}
	return cr.stats, cr.err
}

func (cr *Creator) fail(err error) error {
	if err != nil && cr.err == nil {
		cr.err = err
	}
	return cr.err
}

func (cr *Creator) flush() {
	if b := cr.open; b != nil {
		cr.open = nil
		cr.launch(b)
	}
}

// launch sends b once fewer than InFlight requests are outstanding, and returns once the
// request is on the socket (or answered), so that the next one goes after it.
func (cr *Creator) launch(b *createBatch) {
	for cr.err == nil && len(cr.inflight) > 0 && isDone(cr.inflight[0]) {
		cr.reapOldest()
	}
	for cr.err == nil && len(cr.inflight) >= cr.opts.InFlight {
		cr.reapOldest()
	}
	if cr.err != nil {
		return
	}
	b.done = make(chan struct{})
	key := b.items[0].zpath // the wire carries the server's path
	written := cr.c.expectWrite(key)
	go func() {
		b.err = cr.send(b)
		close(b.done)
	}()
	select {
	case <-written:
	case <-b.done:
	case <-cr.ctx.Done():
		cr.fail(cr.ctx.Err())
	}
	cr.c.forgetWrite(key)
	cr.inflight = append(cr.inflight, b)
}

func isDone(b *createBatch) bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// send makes one attempt: failures are handled in order by reapOldest, never retried here,
// since a retry would overtake requests sent after it.
func (cr *Creator) send(b *createBatch) error {
	if err := cr.c.Err(); err != nil {
		return err
	}
	var err error
	if b.single && (cr.opts.Guard == nil || b.items[0].mode != znode.ModePersistent) {
		if err := cr.checkGuard(); err != nil {
			return err
		}
		err = createRaw(cr.conn, b.items[0])
	} else {
		err = cr.multiCreate(b.items)
	}
	if err == nil {
		err = cr.c.Err()
	}
	return err
}

// multiCreate creates persistent items in one multi request, guarded if the Creator is. The
// check goes last: a multi is atomic whatever its order, and the first operation must be a
// create for the connection to tell when the request is on its way (expectWrite).
func (cr *Creator) multiCreate(items []*createItem) error {
	ops := make([]any, 0, len(items)+1)
	for _, it := range items {
		ops = append(ops, &zk.CreateRequest{Path: it.zpath, Data: it.data, Acl: it.acl, Flags: zk.FlagPersistent})
	}
	g := cr.opts.Guard
	if g != nil {
		ops = append(ops, guardOp(cr.c, g))
	}
	res, err := cr.conn.Multi(ops...)
	if g != nil && err != nil && len(res) == len(ops) {
		if e := res[len(res)-1].Error; errors.Is(e, zk.ErrBadVersion) || errors.Is(e, zk.ErrNoNode) {
			return guardFailed(g, e)
		}
	}
	return err
}

// checkGuard checks the Guard on its own, for the creates a multi cannot carry.
func (cr *Creator) checkGuard() error {
	g := cr.opts.Guard
	if g == nil {
		return nil
	}
	_, err := cr.conn.Multi(guardOp(cr.c, g))
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return guardFailed(g, err)
	}
	return err
}

// reapOldest waits for the oldest request and accounts for it. When it failed, every request
// sent after it may have failed because of it, so all are awaited and the failed ones redone
// in the order they were sent.
func (cr *Creator) reapOldest() {
	b := cr.inflight[0]
	select {
	case <-b.done:
	case <-cr.ctx.Done():
		cr.fail(cr.ctx.Err())
		return
	}
	if b.err == nil {
		cr.inflight = cr.inflight[1:]
		cr.account(b)
		return
	}
	for _, later := range cr.inflight {
		select {
		case <-later.done:
		case <-cr.ctx.Done():
			cr.fail(cr.ctx.Err())
			return
		}
	}
	all := cr.inflight
	cr.inflight = nil
	for _, b := range all {
		if b.err == nil {
			cr.account(b)
			continue
		}
		if errors.Is(b.err, ErrGuardFailed) {
			cr.fail(b.err)
			return
		}
		if errors.Is(b.err, ErrSessionExpired) || errors.Is(b.err, errClientClosed) {
			cr.fail(opError("create", b.items[0].path, b.err))
			return
		}
		cr.stats.Recovered++
		if err := cr.recover(b); err != nil {
			cr.fail(err)
			return
		}
	}
}

func (cr *Creator) account(b *createBatch) {
	if b.single {
		cr.stats.Singles++
	} else {
		cr.stats.Batches++
	}
	cr.stats.Created += int64(len(b.items))
	for _, it := range b.items {
		cr.stats.DataBytes += int64(len(it.data))
	}
}

// recover redoes a failed request znode by znode: it reads every znode of it (concurrently,
// reads need no order), counts those already there and identical as Existing, and creates
// the missing ones in order: in one multi if it was a batch, else, or if that fails too, one
// by one.
func (cr *Creator) recover(b *createBatch) error {
	found := cr.c.readBack(cr.ctx, b.items)
	var missing []*createItem
	for i, it := range b.items {
		f := found[i]
		if f.err != nil {
			return fmt.Errorf("create %s: compare with the existing znode: %w", it.path, f.err)
		}
		if !f.exists {
			missing = append(missing, it)
			continue
		}
		if err := cr.settle(it, f); err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !b.single && len(missing) > 1 {
		err := cr.c.retry(cr.ctx, func() error { return cr.multiCreate(missing) })
		if err == nil {
			cr.account(&createBatch{items: missing})
			return nil
		}
		if errors.Is(err, ErrGuardFailed) {
			return err
		}
		if errors.Is(err, ErrSessionExpired) || cr.ctx.Err() != nil {
			return opError("create", missing[0].path, err)
		}
	}
	for _, it := range missing {
		created, f, err := cr.createGuarded(it)
		if err != nil {
			return err
		}
		if created {
			cr.account(&createBatch{items: []*createItem{it}, single: true})
			continue
		}
		if err := cr.settle(it, f); err != nil {
			return err
		}
	}
	return nil
}

// createGuarded creates one item as createOne does, under the Creator's Guard: persistent
// items in a multi with the check, others after a check.
func (cr *Creator) createGuarded(it *createItem) (bool, existing, error) {
	if cr.opts.Guard == nil {
		return cr.c.createOne(cr.ctx, cr.conn, it)
	}
	if it.mode != znode.ModePersistent {
		if err := cr.c.retry(cr.ctx, cr.checkGuard); err != nil {
			return false, existing{}, err
		}
		return cr.c.createOne(cr.ctx, cr.conn, it)
	}
	return cr.c.createWith(cr.ctx, it, func() error { return cr.multiCreate([]*createItem{it}) })
}

// settle accounts for an item found existing: identical is Existing; different is an error,
// unless CreatorOptions.Replace names it, persistent on both sides: then its data and ACL are
// overwritten.
func (cr *Creator) settle(it *createItem, f existing) error {
	err := cr.compare(it, f)
	if err == nil {
		cr.stats.Existing++
		return nil
	}
	mode, _ := znode.ModeOf(f.stat.EphemeralOwner)
	if cr.opts.Replace == nil || !cr.opts.Replace(it.path) || it.mode != znode.ModePersistent || mode != znode.ModePersistent {
		if cr.opts.KeepDiffering != nil && errors.Is(err, zk.ErrNodeExists) {
			if it.deferred >= 0 {
				cr.deferred[it.deferred].done = true // not ours: its ACL stays as found
			}
			cr.stats.Differing++
			cr.opts.KeepDiffering(it.path)
			return nil
		}
		return err
	}
	conn := cr.conn
	if err := cr.c.retry(cr.ctx, func() error {
		_, err := conn.Set(it.zpath, it.data, -1)
		return err
	}); err != nil {
		return opError("replace data of", it.path, err)
	}
	if err := cr.c.retry(cr.ctx, func() error {
		_, err := conn.SetACL(it.zpath, it.acl, -1)
		return err
	}); err != nil {
		return opError("replace ACL of", it.path, err)
	}
	cr.stats.Replaced++
	return nil
}

// compare checks an existing znode against the item; a deferred parent may carry either its
// temporary ACL (a restore stopped before Close) or its real one.
func (cr *Creator) compare(it *createItem, f existing) error {
	want := it.acl
	if it.deferred >= 0 {
		d := &cr.deferred[it.deferred]
		want = d.acl
		if sameACL(f.acl, d.acl) {
			d.done = true
		} else if sameACL(f.acl, it.acl) {
			want = it.acl
		}
	}
	return compareExisting(it, f, want)
}

func (cr *Creator) compareRoot(rec znode.Record) error {
	it := &createItem{path: "/", zpath: cr.c.abs("/"), data: rec.Data, acl: toZKACL(rec.ACL), mode: znode.ModePersistent, deferred: -1}
	f := cr.c.readBack(cr.ctx, []*createItem{it})[0]
	if f.err != nil {
		return fmt.Errorf("create /: compare with the existing znode: %w", f.err)
	}
	if err := compareExisting(it, f, it.acl); err != nil {
		return err
	}
	cr.stats.Existing++
	return nil
}

// applyDeferred sets the real ACL of the locked parents, deepest first (the reverse of the
// order they were added), several at a time.
func (cr *Creator) applyDeferred() error {
	const parallel = 32
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := len(cr.deferred) - 1; i >= 0; i-- {
		d := cr.deferred[i]
		if d.done {
			continue
		}
		sem <- struct{}{}
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
		conn := cr.c.conns[i%len(cr.c.conns)]
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := cr.c.retry(cr.ctx, func() error {
				_, err := conn.SetACL(d.zpath, d.acl, -1)
				return err
			})
			if err != nil {
				mu.Lock()
				if first == nil {
					first = opError("set ACL of", d.path, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// CreateOne creates one znode with its data, ACL and mode in its own request, the way a
// restore would without batching (the benchmarks' baseline). Like a Creator it counts an
// identical existing znode as not created and fails on a different one; unlike a Creator it
// does not defer the ACL of locked parents.
func (c *Client) CreateOne(ctx context.Context, rec znode.Record) (created bool, err error) {
	it, err := c.newItem(rec)
	if err != nil {
		return false, err
	}
	created, f, err := c.createOne(ctx, c.conns[0], it)
	if err != nil || created {
		return created, err
	}
	return false, compareExisting(it, f, it.acl)
}

func (c *Client) newItem(rec znode.Record) (*createItem, error) {
	if err := znode.ValidatePath(rec.Path); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if rec.Path == "/" {
		return nil, errors.New("create /: the root always exists")
	}
	switch rec.Mode {
	case znode.ModePersistent, znode.ModeContainer:
	case znode.ModeTTL:
		if rec.TTL <= 0 {
			return nil, fmt.Errorf("create %s: TTL znode without a TTL", rec.Path)
		}
	default:
		return nil, fmt.Errorf("create %s: mode %q cannot be created", rec.Path, rec.Mode)
	}
	if len(rec.ACL) == 0 {
		return nil, fmt.Errorf("create %s: empty ACL", rec.Path)
	}
	return &createItem{path: rec.Path, zpath: c.abs(rec.Path), data: rec.Data, acl: toZKACL(rec.ACL), mode: rec.Mode, ttl: rec.TTL, deferred: -1}, nil
}

// size is the encoded size of the item as a multi operation, or as a single create's body.
func (it *createItem) size() int {
	n := multiOpOverhead + createFixed + len(it.zpath) + len(it.data) + createFlags
	if it.mode == znode.ModeTTL {
		n += createTTLField
	}
	for _, a := range it.acl {
		n += aclFixed + len(a.Scheme) + len(a.ID)
	}
	return n
}

// createRaw sends the create that fits the item's mode.
func createRaw(conn *zk.Conn, it *createItem) error {
	var err error
	switch it.mode {
	case znode.ModeContainer:
		_, err = conn.CreateContainer(it.zpath, it.data, zk.FlagContainer, it.acl)
	case znode.ModeTTL:
		_, err = conn.CreateTTL(it.zpath, it.data, zk.FlagTTL, it.acl, msDuration(it.ttl))
	default:
		_, err = conn.Create(it.zpath, it.data, zk.FlagPersistent, it.acl)
	}
	return err
}

// createOne creates the item, retrying a lost connection; when the znode exists (perhaps
// created by a try whose reply was lost) it reads it back for the caller to compare.
func (c *Client) createOne(ctx context.Context, conn *zk.Conn, it *createItem) (bool, existing, error) {
	return c.createWith(ctx, it, func() error { return createRaw(conn, it) })
}

// createWith runs create (retrying a lost connection) and sorts out its outcome as createOne
// says; a Guard's failure is returned as it is.
func (c *Client) createWith(ctx context.Context, it *createItem, create func() error) (bool, existing, error) {
	err := c.retry(ctx, create)
	switch {
	case err == nil:
		return true, existing{}, nil
	case errors.Is(err, ErrGuardFailed):
		return false, existing{}, err
	case errors.Is(err, zk.ErrNodeExists):
		f := c.readBack(ctx, []*createItem{it})[0]
		if f.err != nil {
			return false, f, fmt.Errorf("create %s: compare with the existing znode: %w", it.path, f.err)
		}
		if !f.exists {
			return false, f, fmt.Errorf("create %s: exists, then vanished", it.path)
		}
		return false, f, nil
	case errors.Is(err, zk.ErrNoNode):
		return false, existing{}, &pathError{"create", it.path, "parent " + znode.Parent(it.path) + " does not exist", err}
	default:
		return false, existing{}, opError("create", it.path, err)
	}
}

// existing is a znode as read back for comparison.
type existing struct {
	exists bool
	data   []byte
	stat   *zk.Stat
	acl    []zk.ACL
	err    error
}

// readBack reads the items' znodes concurrently over the pool.
func (c *Client) readBack(ctx context.Context, items []*createItem) []existing {
	out := make([]existing, len(items))
	const parallel = 64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, it := range items {
		conn := c.conns[i%len(c.conns)]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f := &out[i]
			err := c.retry(ctx, func() (err error) {
				f.data, f.stat, err = conn.Get(it.zpath)
				return err
			})
			if err == nil {
				err = c.retry(ctx, func() (err error) {
					f.acl, _, err = conn.GetACL(it.zpath)
					return err
				})
			}
			switch {
			case err == nil:
				f.exists = true
			case errors.Is(err, zk.ErrNoNode):
			default:
				f.err = opError("read", it.path, err)
			}
		}()
	}
	wg.Wait()
	return out
}

func compareExisting(it *createItem, f existing, wantACL []zk.ACL) error {
	mode, ttl := znode.ModeOf(f.stat.EphemeralOwner)
	// Servers report container and TTL znodes as persistent (ephemeralOwner 0) to clients, so
	// a persistent reading is no evidence of a different mode.
	masked := mode == znode.ModePersistent && (it.mode == znode.ModeContainer || it.mode == znode.ModeTTL)
	if !masked && (mode != it.mode || mode == znode.ModeTTL && ttl != it.ttl) {
		return &pathError{"create", it.path, fmt.Sprintf("exists with different mode (%s, want %s)", mode, it.mode), zk.ErrNodeExists}
	}
	if !bytes.Equal(f.data, it.data) {
		return &pathError{"create", it.path, "exists with different data", zk.ErrNodeExists}
	}
	if !sameACL(f.acl, wantACL) {
		return &pathError{"create", it.path, "exists with different ACL", zk.ErrNodeExists}
	}
	return nil
}
