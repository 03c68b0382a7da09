package restore

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
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
	// Batches are the multi requests sent, DeferredACLs the locked parents whose ACL was set
	// after their children.
	Batches      int64 `json:"batches"`
	DeferredACLs int64 `json:"deferredACLs"`
}

// Owner is the run a restore's writes belong to: Apply and Mark check that the marker still
// names it, so that two restores never write to one target at once.
type Owner struct {
	WorkflowID, RunID string
}

func checkOwner(ctx context.Context, c *zookeeper.Client, o Owner) (*Marker, int32, error) {
	m, v, _, err := ReadMarker(ctx, c)
	if err != nil {
		return nil, 0, fmt.Errorf("read restore marker: %w", err)
	}
	if m == nil || m.WorkflowID != o.WorkflowID || m.RunID != o.RunID {
		return nil, 0, fmt.Errorf("%w: it no longer names run %s/%s", ErrTargetChanged, o.WorkflowID, o.RunID)
	}
	return m, v, nil
}

// Apply streams an archive into the target: each record is classified and rewritten by a
// Rewriter and, unless skipped, handed to a zookeeper Creator, which creates it parents
// first in batched multi requests with its data, ACL and mode. Skipped records are not even
// decoded (archive.Reader.NextUnless). Reading and rewriting run in
// a goroutine of their own, a few hundred records ahead of the Creator, so decoding the
// archive overlaps with ZooKeeper's round trips. Nothing but those records and the
// Creator's requests in flight is held in memory.
//
// The archive must have passed Validate: it is verified again as it is read, but a mismatch
// found at its end comes after the writes. Apply is idempotent: a znode already there with
// the same mode, data and ACL is counted as Existing, so an interrupted Apply run again
// continues and ends with the same tree; one that differs fails the Apply, naming it.
// Before writing it checks that the marker names owner (see Begin). progress, if set, is
// called every few seconds.
func Apply(ctx context.Context, c *zookeeper.Client, r io.Reader, owner Owner, opts zookeeper.CreatorOptions, progress func(Progress)) (ApplyStats, error) {
	var st ApplyStats
	if _, _, err := checkOwner(ctx, c, owner); err != nil {
		return st, err
	}
	ar, err := archive.NewReader(r)
	if err != nil {
		return st, err
	}
	rw := NewRewriter(ar.Manifest().ManagedLedgerPath)

	// The reader sends chunks of records to create; readErr is set before ch is closed.
	const chunk = 256
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ch := make(chan []Item, 8)
	var readErr error
	var records, skipped int64
	go func() {
		defer close(ch)
		buf := make([]Item, 0, chunk)
		send := func() bool {
			select {
			case ch <- buf:
				buf = make([]Item, 0, chunk)
				return true
			case <-rctx.Done():
				readErr = rctx.Err()
				return false
			}
		}
		for {
			rec, skip, err := ar.NextUnless(skipped0)
			if err == io.EOF {
				if len(buf) > 0 {
					send()
				}
				return
			}
			if err != nil {
				readErr = err
				return
			}
			records++
			if skip {
				skipped++
				continue
			}
			it, err := rw.Next(rec)
			if err != nil {
				readErr = fmt.Errorf("%w: %w", ErrUnrestorable, err)
				return
			}
			if buf = append(buf, it); len(buf) == chunk && !send() {
				return
			}
		}
	}()

	cr := c.NewCreator(ctx, opts)
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
	st.Created, st.Existing, st.Batches, st.DeferredACLs = cs.Created, cs.Existing, cs.Batches, cs.DeferredACLs
	switch {
	case addErr != nil:
		return st, addErr
	case readErr != nil:
		return st, readErr
	case err != nil:
		return st, err
	}
	return st, nil
}

// MarkInput completes a restore's marker.
type MarkInput struct {
	Owner       Owner
	CompletedAt time.Time
	Created     int64
}

// Mark sets the marker of owner's restore to StateComplete with the completion time and the
// number of znodes created. Marking an already complete marker of the same run again does
// nothing.
func Mark(ctx context.Context, c *zookeeper.Client, in MarkInput) (Marker, error) {
	m, v, err := checkOwner(ctx, c, in.Owner)
	if err != nil {
		return Marker{}, err
	}
	if m.State == StateComplete {
		return *m, nil
	}
	done := in.CompletedAt.UTC()
	m.State, m.CompletedAt, m.Created = StateComplete, &done, in.Created
	if err := writeMarker(ctx, c, *m, v); err != nil {
		return Marker{}, err
	}
	return *m, nil
}

// skipped0 tells whether a restore leaves path alone (SkipReason), for NextUnless.
func skipped0(path string) bool {
	_, skip := SkipReason(path)
	return skip
}
