package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Defaults for WalkOptions.
const (
	DefaultInFlight         = 256
	DefaultMaxBytesInFlight = 16 << 20
	DefaultProgressInterval = 10 * time.Second
)

// WalkOptions and WalkStats are the metastore package's; see there.
type (
	WalkOptions = metastore.WalkOptions
	WalkStats   = metastore.WalkStats
)

// Walk streams every znode under opts.Root to emit, depth first, with many requests in
// flight. Its contract:
//
//   - emit is called from the goroutine that called Walk, one record at a time, and a parent
//     always before its children. The record is emit's to keep.
//   - Persistent znodes are emitted, each with its data (nil when the znode's data is null,
//     as opposed to empty), ACL and Stat; so are container and TTL znodes, which ZooKeeper
//     reports to clients as persistent (ephemeralOwner 0), so their Mode is persistent too.
//     Ephemeral znodes are counted in EphemeralSkipped. A znode that is deleted while the
//     walk runs is counted in Vanished, its subtree left out, and the walk goes on.
//   - Per znode it sends GetACL (whose Stat tells an ephemeral, and the data size), Get, and
//     Children only if the znode has children: two requests for a leaf.
//   - The result is fuzzy, like ZooKeeper's own snapshots: every znode reflects some moment
//     during the walk. MaxZxid bounds the changes it may contain.
//   - Memory does not grow with the tree: only the lists of not yet visited children along
//     the current paths and the replies in flight (at most MaxBytesInFlight of data) are
//     held.
//   - A znode we may not read fails the walk with "read <path>: not authorized (set
//     zookeeper.auth)". An error from emit stops the walk and is returned as is; so is
//     ctx.Err() once ctx is done. Requests still in flight then finish in the background.
func (c *Client) Walk(ctx context.Context, opts WalkOptions, emit func(znode.Record) error) (WalkStats, error) {
	var stats WalkStats
	root := opts.Root
	if root == "" {
		root = "/"
	}
	if err := znode.ValidatePath(root); err != nil {
		return stats, fmt.Errorf("walk: %w", err)
	}
	inFlight := opts.InFlight
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	maxBytes := opts.MaxBytesInFlight
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytesInFlight
	}
	if err := c.Err(); err != nil {
		return stats, fmt.Errorf("walk %s: %w", root, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	budget := newByteBudget(int64(maxBytes))
	defer budget.close()
	// Both channels hold every request that can be outstanding, so no worker ever blocks on
	// them and none is left behind when Walk returns early.
	tasks := make(chan string, inFlight)
	results := make(chan walkResult, inFlight)
	for i := range inFlight {
		conn := c.conns[i%len(c.conns)]
		go func() {
			for {
				select {
				case path := <-tasks:
					results <- c.fetch(ctx, conn, budget, path)
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	var tick <-chan time.Time
	if opts.Progress != nil {
		interval := opts.ProgressInterval
		if interval <= 0 {
			interval = DefaultProgressInterval
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}

	// The stack holds, per znode being expanded, its sorted children not visited yet; taking
	// from the top frame makes the walk depth first, which keeps the stack as small as the
	// tree is deep (times the fan-out along the current paths).
	stack := []walkFrame{{names: []string{root}}}
	next := func() (string, bool) {
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(top.names) {
				stack[len(stack)-1] = walkFrame{}
				stack = stack[:len(stack)-1]
				continue
			}
			name := top.names[top.next]
			top.next++
			path := name
			if top.parent != "" {
				path = znode.Join(top.parent, name)
			}
			if znode.Under(path, "/zookeeper") || opts.Skip != nil && opts.Skip(path) {
				stats.SkippedSubtrees++
				continue
			}
			return path, true
		}
		return "", false
	}

	outstanding := 0
	for {
		for outstanding < inFlight {
			path, ok := next()
			if !ok {
				break
			}
			tasks <- path
			outstanding++
		}
		if outstanding == 0 {
			break
		}
		var r walkResult
		select {
		case r = <-results:
		case <-tick:
			opts.Progress(stats)
			continue
		case <-ctx.Done():
			return stats, ctx.Err()
		}
		outstanding--
		budget.release(r.budget)
		if r.maxZxid > stats.MaxZxid {
			stats.MaxZxid = r.maxZxid
		}
		switch {
		case r.err != nil:
			return stats, r.err
		case r.vanished && r.path == root:
			return stats, fmt.Errorf("walk %s: %w", root, zk.ErrNoNode)
		case r.vanished:
			stats.Vanished++
			continue
		case r.ephemeral:
			stats.EphemeralSkipped++
			continue
		}
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		stats.Znodes++
		stats.DataBytes += int64(len(r.rec.Data))
		if err := emit(r.rec); err != nil {
			return stats, err
		}
		if len(r.children) > 0 {
			stack = append(stack, walkFrame{parent: r.rec.Path, names: r.children})
		}
	}
	if opts.Progress != nil {
		opts.Progress(stats)
	}
	return stats, nil
}

type walkFrame struct {
	parent string // "" for the pseudo-frame holding the root
	names  []string
	next   int
}

type walkResult struct {
	path      string
	budget    int64 // bytes of the budget to give back once handled
	rec       znode.Record
	children  []string
	maxZxid   int64
	vanished  bool
	ephemeral bool
	err       error
}

// fetch reads one znode: its ACL, whose reply's Stat tells whether it is ephemeral (then
// nothing more is read) and how large its data is; then its data and Stat, once the budget
// has room for the data; then its children when it has any.
func (c *Client) fetch(ctx context.Context, conn *zk.Conn, budget *byteBudget, path string) walkResult {
	r := walkResult{path: path}
	zpath := c.abs(path)
	var acl []zk.ACL
	var aclStat *zk.Stat
	err := c.retry(ctx, func() (err error) {
		acl, aclStat, err = conn.GetACL(zpath)
		return err
	})
	if r.failed(path, err) {
		return r
	}
	r.seeStat(aclStat)
	if mode, _ := znode.ModeOf(aclStat.EphemeralOwner); mode == znode.ModeEphemeral {
		r.ephemeral = true
		return r
	}
	r.budget = budget.acquire(int64(aclStat.DataLength))
	if r.budget < 0 {
		r.budget = 0
		r.err = context.Canceled // the walk is over; nobody reads this
		return r
	}
	var data []byte
	var st *zk.Stat
	err = c.retry(ctx, func() (err error) {
		data, st, err = conn.Get(zpath)
		return err
	})
	if r.failed(path, err) {
		return r
	}
	r.seeStat(st)
	if st.NumChildren > 0 {
		var childStat *zk.Stat
		err = c.retry(ctx, func() (err error) {
			r.children, childStat, err = conn.Children(zpath)
			return err
		})
		if r.failed(path, err) {
			return r
		}
		// Sorted here, on a fetching goroutine, not on the walk's single emitting loop.
		slices.Sort(r.children)
		r.seeStat(childStat)
	}
	mode, ttl := znode.ModeOf(st.EphemeralOwner)
	r.rec = znode.Record{
		Path: path,
		Data: data,
		ACL:  fromZKACL(acl),
		Mode: mode,
		TTL:  ttl,
		Stat: fromZKStat(st),
	}
	return r
}

// failed records err, and tells whether the znode is done with: vanished (not an error) or
// failed.
func (r *walkResult) failed(path string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, zk.ErrNoNode):
		r.vanished = true
	default:
		r.err = opError("read", path, err)
	}
	return true
}

func (r *walkResult) seeStat(s *zk.Stat) {
	r.maxZxid = max(r.maxZxid, s.Czxid, s.Mzxid, s.Pzxid)
}

// byteBudget is a counting semaphore of bytes.
type byteBudget struct {
	mu     sync.Mutex
	cond   sync.Cond
	avail  int64
	max    int64
	closed bool
}

func newByteBudget(n int64) *byteBudget {
	b := &byteBudget{avail: n, max: n}
	b.cond.L = &b.mu
	return b
}

// acquire waits until n bytes (at most the whole budget) are free and takes them; it returns
// how many it took, or -1 once the budget is closed.
func (b *byteBudget) acquire(n int64) int64 {
	n = min(max(n, 0), b.max)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.avail < n && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return -1
	}
	b.avail -= n
	return n
}

func (b *byteBudget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// close wakes every waiter for good: the walk is over.
func (b *byteBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}
