package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Defaults for WalkOptions.
const (
	DefaultInFlight         = 256
	DefaultMaxBytesInFlight = 64 << 20
	DefaultProgressInterval = 10 * time.Second
)

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
	// MaxBytesInFlight caps the data of replies being received at once (default 64 MiB): after
	// large znodes the walk keeps fewer requests in flight, so a tree of 1 MB znodes does not
	// hold InFlight of them.
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

// Walk streams every znode under opts.Root to emit, depth first, with many requests in
// flight. Its contract:
//
//   - emit is called from the goroutine that called Walk, one record at a time, and a parent
//     always before its children. The record is emit's to keep.
//   - Persistent, container and TTL znodes are emitted, each with its data (nil when the
//     znode's data is null, as opposed to empty), ACL and Stat.
//     Ephemeral ones are counted in EphemeralSkipped. A znode that is deleted while the walk
//     runs is counted in Vanished, its subtree left out, and the walk goes on.
//   - The result is fuzzy, like ZooKeeper's own snapshots: every znode reflects some moment
//     during the walk. MaxZxid bounds the changes it may contain.
//   - Memory does not grow with the tree: only the lists of not yet visited children along
//     the current paths and the replies in flight are held.
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
					results <- c.fetch(ctx, conn, path)
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

	// The in-flight limit follows the largest data seen over the last two windows of 1,024
	// replies, so that limit × size stays under maxBytes.
	const window = 1024
	var seen, winMax, prevMax int
	limit := inFlight

	outstanding := 0
	for {
		for outstanding < limit {
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
		n := len(r.rec.Data)
		stats.Znodes++
		stats.DataBytes += int64(n)
		if err := emit(r.rec); err != nil {
			return stats, err
		}
		if len(r.children) > 0 {
			slices.Sort(r.children)
			stack = append(stack, walkFrame{parent: r.rec.Path, names: r.children})
		}

		winMax = max(winMax, n)
		if seen++; seen == window {
			prevMax, winMax, seen = winMax, 0, 0
		}
		limit = max(len(c.conns), min(inFlight, maxBytes/max(1024, winMax, prevMax)))
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
	rec       znode.Record
	children  []string
	maxZxid   int64
	vanished  bool
	ephemeral bool
	err       error
}

// fetch reads one znode: its data and Stat, its ACL, and its children when it has any.
func (c *Client) fetch(ctx context.Context, conn *zk.Conn, path string) walkResult {
	r := walkResult{path: path}
	var data []byte
	var st *zk.Stat
	err := c.retry(ctx, func() (err error) {
		data, st, err = conn.Get(path)
		return err
	})
	if r.failed(path, err) {
		return r
	}
	r.seeStat(st)
	mode, ttl := znode.ModeOf(st.EphemeralOwner)
	if mode == znode.ModeEphemeral {
		r.ephemeral = true
		return r
	}
	var acl []zk.ACL
	var aclStat *zk.Stat
	err = c.retry(ctx, func() (err error) {
		acl, aclStat, err = conn.GetACL(path)
		return err
	})
	if r.failed(path, err) {
		return r
	}
	r.seeStat(aclStat)
	if st.NumChildren > 0 {
		var childStat *zk.Stat
		err = c.retry(ctx, func() (err error) {
			r.children, childStat, err = conn.Children(path)
			return err
		})
		if r.failed(path, err) {
			return r
		}
		r.seeStat(childStat)
	}
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
