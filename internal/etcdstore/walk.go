package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultPageSize is the number of keys a walk reads per range request.
const DefaultPageSize = 1000

// WalkOptions configure Walk.
type WalkOptions struct {
	// Path is the subtree to walk, relative to Root ("/" when empty).
	Path string
	// Skip, when it returns true for a path, leaves out that key and every key below it.
	// It is called from the goroutine that called Walk.
	Skip func(path string) bool
	// PageSize is the number of keys per range request (default 1,000). A page whose
	// response exceeds Options.MaxResponseBytes is read again in smaller pages.
	PageSize int
	// Progress, if set, is called with the counts so far from the goroutine that called
	// Walk, between records at most every ProgressInterval (default 10s), and once at the
	// end of a walk that succeeds.
	Progress         func(WalkStats)
	ProgressInterval time.Duration
}

// DefaultProgressInterval is WalkOptions.ProgressInterval's default.
const DefaultProgressInterval = 10 * time.Second

// WalkStats counts what a walk saw.
type WalkStats struct {
	// Znodes is the number of records emitted, Implied ones included.
	Znodes int64
	// Implied counts records emitted for paths with keys below them and none of their own.
	Implied int64
	// EphemeralSkipped counts leased keys, which are live state and never emitted.
	EphemeralSkipped int64
	// SkippedSubtrees counts subtrees left out by Skip.
	SkippedSubtrees int64
	// DataBytes is the data emitted.
	DataBytes int64
	// Revision is the store revision every key was read at: the walk is the store's state
	// at that revision, a consistent point in time.
	Revision int64
	// Requests counts the range and transaction requests sent.
	Requests int64
}

// Walk streams every key at or below opts.Path to emit as records (see the package
// documentation for the mapping). Its contract:
//
//   - Every key is read at one revision: the first request's, then range requests at that
//     revision (WithRev), so the records are the store's state at WalkStats.Revision and no
//     write made during the walk is seen. A revision compacted away during the walk fails it
//     (wrapping rpctypes.ErrCompacted); start again.
//   - Records come in etcd's key order, which puts every key before the keys that extend
//     it, so a parent always precedes its children; siblings' subtrees may interleave
//     ("/a", "/a-b", "/a/c"), as ZooKeeper's walk interleaves them too. A path with keys
//     below it and no key of its own is emitted as an Implied record just before the first
//     of them.
//   - Stat.NumChildren is the number of keys below the record (persistent and leased, at
//     any depth): for Pulsar's managed ledgers, whose cursors are leaves, the number of
//     cursors, which is what a restore's rewriter needs to know when a managed ledger is
//     done. It is counted from the page when the page holds all of them, else by a
//     count-only range at the walk's revision, in transactions of up to MaxTxnOps counts:
//     about one per ancestor level per page.
//   - Leased keys are counted in EphemeralSkipped and not emitted; keys below one are.
//   - A key that is not a valid ZooKeeper path ("/a//b", a trailing "/", control
//     characters) fails the walk with an error naming it: the archive cannot hold it.
//   - emit is called from the goroutine that called Walk; the record is emit's to keep.
//     An error from emit stops the walk and is returned as is.
//   - Memory does not grow with the store: two pages of keys (the one being emitted and
//     the next, each at most MaxResponseBytes), and the chain of open ancestors.
//   - Opts.Path with no key at or below it fails with an error wrapping ErrNotFound, unless
//     it is "/" with no Root (an empty store).
func (s *Store) Walk(ctx context.Context, opts WalkOptions, emit func(znode.Record) error) (WalkStats, error) {
	var stats WalkStats
	path := opts.Path
	if path == "" {
		path = "/"
	}
	if err := znode.ValidatePath(path); err != nil {
		return stats, fmt.Errorf("walk: %w", err)
	}
	page := opts.PageSize
	if page <= 0 {
		page = DefaultPageSize
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	w := &walker{s: s, ctx: ctx, opts: opts, emit: emit, stats: &stats, pageSize: page, lastProgress: time.Now()}
	base := s.key(path)
	w.baseLen = len(base)
	if base != "/" {
		// The base key itself, then the keys below it; the first request fixes the revision.
		resp, err := s.cli.Get(ctx, base)
		stats.Requests++
		if err != nil {
			return stats, fmt.Errorf("walk %s: read %s: %w", s.endpoints, s.describe(path), err)
		}
		w.rev = resp.Header.Revision
		stats.Revision = w.rev
		if err := w.page(fromKVs(resp.Kvs), false); err != nil {
			return stats, err
		}
	}
	start := childPrefix(base)
	if base == "/" {
		start = "/"
	}
	if err := w.rangeRead(start, childEnd(base)); err != nil {
		return stats, err
	}
	if stats.Znodes+stats.EphemeralSkipped+stats.SkippedSubtrees == 0 && (path != "/" || s.root != "") {
		return stats, fmt.Errorf("walk etcd %s: %s %w", s.endpoints, s.describe(path), ErrNotFound)
	}
	if opts.Progress != nil {
		opts.Progress(stats)
	}
	return stats, nil
}

// describe names a path for errors: the chroot for the root of a Store with one.
func (s *Store) describe(path string) string {
	if path == "/" && s.root != "" {
		return "chroot " + s.root
	}
	if s.root != "" {
		return "path " + path + " (under chroot " + s.root + ")"
	}
	return "path " + path
}

type walker struct {
	s        *Store
	ctx      context.Context
	opts     WalkOptions
	emit     func(znode.Record) error
	stats    *WalkStats
	pageSize int
	rev      int64
	baseLen  int
	// open are the keys emitted (or implied) whose keys below may still come; skipped the
	// keys Skip left out, likewise. Both are stacks: a later entry's range of keys below
	// ends before an earlier one's (see pop).
	open    []string
	skipped []string

	lastProgress time.Time
}

func fromKVs(kvs []*mvccpb.KeyValue) []keyValue {
	out := make([]keyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = keyValue{string(kv.Key), kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease}
	}
	return out
}

// rangeRead reads [start, end) page by page at w.rev and hands each page to w.page. The
// next page is requested before the current one is handled, so the server reads it while
// the walk counts and emits: two pages are in memory at most.
func (w *walker) rangeRead(start, end string) error {
	limit := w.pageSize
	next := w.get(start, end, limit)
	for {
		f := <-next
		w.stats.Requests++
		if status.Code(f.err) == codes.ResourceExhausted {
			if limit == 1 {
				return fmt.Errorf("walk etcd %s at revision %d: the key after %q is larger than the response limit (%d bytes): %w", w.s.endpoints, w.rev, f.start, w.s.maxResp, f.err)
			}
			limit = max(1, limit/4)
			next = w.get(f.start, end, limit)
			continue
		}
		if err := f.err; err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("walk etcd %s: revision %d was compacted during the walk (start the backup again): %w", w.s.endpoints, w.rev, err)
			}
			return fmt.Errorf("walk etcd %s at revision %d: range from %q: %w", w.s.endpoints, w.rev, f.start, err)
		}
		if w.rev == 0 {
			w.rev = f.resp.Header.Revision
			w.stats.Revision = w.rev
		}
		if len(f.resp.Kvs) == 0 {
			return nil
		}
		kvs := fromKVs(f.resp.Kvs)
		last := kvs[len(kvs)-1].key
		limit = min(w.pageSize, limit*2)
		var prefetch <-chan fetched
		if f.resp.More {
			prefetch = w.get(last+"\x00", end, limit)
		}
		if err := w.page(kvs, !f.resp.More); err != nil {
			return err
		}
		if !f.resp.More {
			return nil
		}
		next = prefetch
		// Everything from the last key read up to the end of a skipped subtree holding it
		// is in that subtree: jump over it.
		if n := len(w.skipped); n > 0 && strings.HasPrefix(last, childPrefix(w.skipped[n-1])) {
			start = childEnd(w.skipped[n-1])
			if start >= end {
				return nil
			}
			next = w.get(start, end, limit)
		}
	}
}

type fetched struct {
	start string
	resp  *clientv3.GetResponse
	err   error
}

// get requests one page in the background; the channel holds its one reply, so a walk that
// returns early leaves nothing blocked.
func (w *walker) get(start, end string, limit int) <-chan fetched {
	opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(limit))}
	if w.rev > 0 {
		opts = append(opts, clientv3.WithRev(w.rev))
	}
	ch := make(chan fetched, 1)
	go func() {
		resp, err := w.s.cli.Get(w.ctx, start, opts...)
		ch <- fetched{start, resp, err}
	}()
	return ch
}

// out is one record of a page, before its count of keys below is known.
type out struct {
	rec   znode.Record
	key   string
	count bool // NumChildren needs a count request
}

// page turns one page of keys (in key order) into records and emits them. final says that
// no key follows the page.
func (w *walker) page(kvs []keyValue, final bool) error {
	var outs []out
	for i, kv := range kvs {
		pop(&w.open, kv.key)
		pop(&w.skipped, kv.key)
		if n := len(w.skipped); n > 0 && strings.HasPrefix(kv.key, childPrefix(w.skipped[n-1])) {
			continue
		}
		// Live state is left out before its key is judged: an odd key under a lease does
		// not fail a backup that would not hold it anyway.
		if kv.lease != 0 {
			w.stats.EphemeralSkipped++
			continue
		}
		p := w.s.path(kv.key)
		if err := znode.ValidatePath(p); err != nil {
			return fmt.Errorf("walk etcd %s: key %q: %w", w.s.endpoints, kv.key, err)
		}
		if w.opts.Skip != nil && w.opts.Skip(p) {
			w.stats.SkippedSubtrees++
			w.skipped = append(w.skipped, kv.key)
			continue
		}
		// Ancestors below the walk's base with no key of their own: implied records, unless
		// Skip leaves one out, and with it this key.
		skip := false
		for _, a := range w.missingAncestors(kv.key) {
			ap := w.s.path(a)
			if w.opts.Skip != nil && w.opts.Skip(ap) {
				w.stats.SkippedSubtrees++
				w.skipped = append(w.skipped, a)
				skip = true
				break
			}
			o := out{rec: znode.Record{Path: ap, ACL: WorldACL, Mode: znode.ModePersistent}, key: a}
			o.count = !localCount(&o, kvs, i, final)
			outs = append(outs, o)
			w.open = append(w.open, a)
		}
		if skip {
			continue
		}
		o := out{rec: w.s.record(kv), key: kv.key}
		o.count = !localCount(&o, kvs, i+1, final)
		outs = append(outs, o)
		w.open = append(w.open, kv.key)
	}
	if err := w.countBelow(outs); err != nil {
		return err
	}
	for _, o := range outs {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.stats.Znodes++
		if o.rec.Data == nil {
			w.stats.Implied++
		}
		w.stats.DataBytes += int64(len(o.rec.Data))
		if err := w.emit(o.rec); err != nil {
			return err
		}
		if w.opts.Progress != nil && time.Since(w.lastProgress) >= w.opts.ProgressInterval {
			w.opts.Progress(*w.stats)
			w.lastProgress = time.Now()
		}
	}
	return nil
}

// localCount sets o's NumChildren from the page when the page holds every key below it:
// they are [childPrefix, childEnd) in key order, so they are all here when a key at or
// past childEnd follows in the page, or when no page follows. from is the index of the
// first key after o's own. It reports whether it could.
func localCount(o *out, kvs []keyValue, from int, final bool) bool {
	prefix, end := childPrefix(o.key), childEnd(o.key)
	n := int64(0)
	j := from
	for ; j < len(kvs) && kvs[j].key < end; j++ {
		if strings.HasPrefix(kvs[j].key, prefix) {
			n++
		}
	}
	if j == len(kvs) && !final {
		return false
	}
	o.rec.Stat.NumChildren = clampInt32(n)
	return true
}

// pop removes the entries whose keys below all sort before key. An entry pushed after
// another is either below it or extends its last segment with a byte before '/', so its
// range ends first: the stack pops from the top.
func pop(stack *[]string, key string) {
	s := *stack
	for len(s) > 0 && childEnd(s[len(s)-1]) <= key {
		s = s[:len(s)-1]
	}
	*stack = s
}

// missingAncestors returns, outermost first, the ancestors of key at or below the walk's
// base that are not open (neither emitted nor implied yet), leaving out the store's root
// ("/"), which needs no record.
func (w *walker) missingAncestors(key string) []string {
	var missing []string
	for i := len(key) - 1; i >= w.baseLen; i-- {
		if key[i] != '/' || i == 0 {
			continue
		}
		a := key[:i]
		if len(a) < w.baseLen || w.s.path(a) == "/" || contains(w.open, a) {
			break
		}
		missing = append(missing, a)
	}
	// Collected innermost first.
	for i, j := 0, len(missing)-1; i < j; i, j = i+1, j-1 {
		missing[i], missing[j] = missing[j], missing[i]
	}
	return missing
}

func contains(stack []string, key string) bool {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] == key {
			return true
		}
	}
	return false
}

// countBelow sets NumChildren of the records that need a count, in transactions of up to
// MaxTxnOps count-only ranges at the walk's revision, sent concurrently.
func (w *walker) countBelow(outs []out) error {
	var idx []int
	for i, o := range outs {
		if o.count {
			idx = append(idx, i)
		}
	}
	var chunks [][]int
	for len(idx) > 0 {
		n := min(len(idx), w.s.maxOps)
		chunks = append(chunks, idx[:n])
		idx = idx[n:]
	}
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for c, chunk := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops := make([]clientv3.Op, len(chunk))
			for j, i := range chunk {
				ops[j] = belowOp(outs[i].key, w.rev)
			}
			resp, err := w.s.cli.Txn(w.ctx).Then(ops...).Commit()
			if err != nil {
				errs[c] = err
				return
			}
			for j, i := range chunk {
				outs[i].rec.Stat.NumChildren = clampInt32(resp.Responses[j].GetResponseRange().Count)
			}
		}()
	}
	wg.Wait()
	w.stats.Requests += int64(len(chunks))
	for c, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Errorf("walk etcd %s: revision %d was compacted during the walk (start the backup again): %w", w.s.endpoints, w.rev, err)
		}
		return fmt.Errorf("walk etcd %s at revision %d: count keys below %s: %w", w.s.endpoints, w.rev, outs[chunks[c][0]].rec.Path, err)
	}
	return nil
}
