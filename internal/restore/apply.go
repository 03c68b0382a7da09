package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ApplyStats counts what Apply did.
type ApplyStats struct {
	// Records is the number of records read; Skipped those not restored.
	Records int64 `json:"records"`
	Skipped int64 `json:"skipped"`
	// Created counts znodes created; Existing those already there, identical (from an
	// interrupted earlier attempt, or a new cluster's own).
	Created  int64 `json:"created"`
	Existing int64 `json:"existing"`
	// InitReplaced counts znodes `pulsar initialize-cluster-metadata` had written that were
	// replaced by the archive's (ClusterInitPath).
	InitReplaced int64 `json:"initReplaced"`
	// Floor is what setting the ledger-id floor found and did.
	Floor FloorResult `json:"floor"`
	// Batches are the multi requests sent, DeferredACLs the locked parents whose ACL was set
	// after their children.
	Batches      int64 `json:"batches"`
	DeferredACLs int64 `json:"deferredACLs"`
	// Configuration is what ApplyConfiguration did, for archives with that role.
	Configuration *ConfigStats `json:"configuration,omitempty"`
}

// ApplyInput is what Apply needs besides the archive.
type ApplyInput struct {
	// Owner is the run the marker must name.
	Owner Owner
	// Floor is the plan's ledger-id floor, set before the first znode is written.
	Floor LedgerIDFloor
	// Creator tunes the batches; its Replace is set by Apply.
	Creator metastore.CreatorOptions
}

// Apply streams an archive into the target: each record is classified and rewritten by a
// Rewriter and, unless skipped, handed to a zookeeper Creator, which creates it parents
// first in batched multi requests with its data, ACL and mode. Skipped records are not even
// decoded. Reading, decoding (on several goroutines) and rewriting run
// ahead of the Creator, a few thousand records at most, so decoding the archive overlaps
// with ZooKeeper's round trips. Nothing but those records and the
// Creator's requests in flight is held in memory.
//
// The archive must have passed Validate: it is verified again as it is read, but a mismatch
// found at its end comes after the writes. Apply is idempotent: a znode already there with
// the same mode, data and ACL is counted as Existing, so an interrupted Apply run again
// continues and ends with the same tree; one that differs fails the Apply, naming it.
// Before writing it checks that the marker names the owner (see Begin), then sets the
// ledger-id floor (SetLedgerIDFloor). Cursors get the marker's StartedAt as lastActive, the
// same in every run of the pair. Znodes that `pulsar initialize-cluster-metadata` wrote
// (ClusterInitPath) are replaced by the archive's. progress, if set, is called every few
// seconds.
func Apply(ctx context.Context, c metastore.Store, r io.Reader, in ApplyInput, progress func(Progress)) (ApplyStats, error) {
	var st ApplyStats
	m, version, err := checkOwner(ctx, c, in.Owner)
	if err != nil {
		return st, err
	}
	if st.Floor, err = SetLedgerIDFloor(ctx, c, in.Floor); err != nil {
		return st, err
	}
	ar, err := archive.NewReader(r)
	if err != nil {
		return st, err
	}
	rw := NewRewriter(ar.Manifest().ManagedLedgerPath, m.StartedAt)
	opts := in.Creator
	opts.Replace = ClusterInitPath
	// Every batch is conditional on the marker still being this run's: a restore that took
	// the target over stops this one at its next batch, so two never interleave.
	opts.Guard = &metastore.Guard{Path: MarkerPath, Version: version}

	// Three stages run ahead of the Creator: one goroutine reads lines (and keeps the
	// stream's checks), decodeWorkers decode them in parallel, and one goroutine takes the
	// decoded batches back in order, rewrites them (the Rewriter is sequential: cursors need
	// their topic's ledgers) and sends chunks of records to create. readErr is set before ch
	// is closed.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ch := make(chan []Item, 8)
	var readErr error
	var records, skipped int64
	order := readDecoded(rctx, ar)
	go func() {
		defer close(ch)
		for b := range order {
			select {
			case <-b.done:
			case <-rctx.Done():
				readErr = rctx.Err()
				return
			}
			if b.err != nil {
				readErr = b.err
				return
			}
			items := make([]Item, 0, len(b.recs))
			for i, rec := range b.recs {
				records++
				if b.skipped[i] {
					skipped++
					continue
				}
				it, err := rw.rewrite(rec) // not skipped: decodeLine said so
				if err != nil {
					readErr = fmt.Errorf("%w: %w", ErrUnrestorable, err)
					return
				}
				items = append(items, it)
			}
			if len(items) == 0 {
				continue
			}
			select {
			case ch <- items:
			case <-rctx.Done():
				readErr = rctx.Err()
				return
			}
		}
	}()

	cr := c.Batch(ctx, opts)
	tick := ticker{fn: progress}
	var added int64
	var addErr error
	for items := range ch {
		if addErr != nil {
			continue // drain, so the reader ends
		}
		for _, it := range items {
			if addErr = cr.Add(it.Record); addErr != nil {
				stop()
				break
			}
			added++
		}
		if addErr == nil {
			tick.tick(Progress{Records: added, Written: added, Path: items[len(items)-1].Record.Path})
		}
	}
	st.Records, st.Skipped = records, skipped
	cs, err := cr.Close()
	st.Created, st.Existing, st.InitReplaced, st.Batches, st.DeferredACLs = cs.Created, cs.Existing, cs.Replaced, cs.Batches, cs.DeferredACLs
	switch {
	case addErr != nil:
		err = addErr
	case readErr != nil:
		err = readErr
	}
	if errors.Is(err, metastore.ErrGuardFailed) {
		return st, fmt.Errorf("%w: %w", ErrTargetChanged, err)
	}
	return st, err
}

// skipped tells whether a restore leaves path alone (SkipReason), for DecodeLine.
func skipped(path string) bool {
	_, skip := SkipReason(path)
	return skip
}

// decodeWorkers decode archive lines in parallel: JSON decoding is most of what reading an
// archive costs.
var decodeWorkers = max(2, runtime.GOMAXPROCS(0))

const decodeBatch = 256

// decodedBatch is decodeBatch consecutive records; done is closed once they are decoded.
type decodedBatch struct {
	first   int64 // record number of lines[0], from 1
	lines   [][]byte
	recs    []znode.Record
	skipped []bool
	err     error
	done    chan struct{}
}

// readDecoded reads ar's lines in batches and decodes them on decodeWorkers goroutines. The
// returned channel yields the batches in archive order (each to be waited on with done); a
// read error, or the stream failing its end checks, comes as a last batch with err set. At
// most a few dozen batches are in memory at once.
func readDecoded(ctx context.Context, ar *archive.Reader) <-chan *decodedBatch {
	order := make(chan *decodedBatch, 4*decodeWorkers)
	work := make(chan *decodedBatch, 4*decodeWorkers)
	for range decodeWorkers {
		go func() {
			for b := range work {
				b.recs = make([]znode.Record, len(b.lines))
				b.skipped = make([]bool, len(b.lines))
				for i, line := range b.lines {
					rec, skip, err := archive.DecodeLine(line, b.first+int64(i), skipped)
					if err != nil {
						b.err = err
						break
					}
					b.recs[i], b.skipped[i] = rec, skip
				}
				b.lines = nil
				close(b.done)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(work)
		next := int64(1)
		for {
			b := &decodedBatch{first: next, done: make(chan struct{})}
			var err error
			for len(b.lines) < decodeBatch {
				var line []byte
				if line, err = ar.NextLine(); err != nil {
					break
				}
				b.lines = append(b.lines, line)
			}
			next += int64(len(b.lines))
			if len(b.lines) > 0 {
				select {
				case work <- b:
				case <-ctx.Done():
					return
				}
				select {
				case order <- b:
				case <-ctx.Done():
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				last := &decodedBatch{err: err, done: make(chan struct{})}
				close(last.done)
				select {
				case order <- last:
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	return order
}
