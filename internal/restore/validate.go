package restore

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Validation is what Validate learned.
type Validation struct {
	Manifest archive.Manifest
	// MaxPending is the most managed ledgers the Rewriter held at once.
	MaxPending int
}

// Validate reads a whole archive and checks everything a restore relies on, before anything
// is written: the format, sizes, count and SHA-256 (archive.Verify), then that every record's
// parent comes before it and no path appears twice, and that every managed-ledger and cursor
// payload decodes, rewrites and fits in a znode. Errors wrap archive.ErrCorrupt or
// ErrUnrestorable, which retrying cannot fix, or are I/O errors. progress, if not nil, is
// called every few seconds.
//
// Every role of the archive is checked, each on its own (their paths are relative to each
// store's root, so they may repeat across roles); the managed-ledger checks apply to the
// local role, where managed ledgers live.
//
// The duplicate and ordering checks keep a 64-bit hash per path (a map of them: tens of MB
// for a million znodes), never the records.
func Validate(ctx context.Context, r io.Reader, progress func(Progress)) (Validation, error) {
	var (
		v      Validation
		rw     *Rewriter
		n      int64
		seed   = maphash.MakeSeed()
		seen   = map[uint64]struct{}{}
		tick   = ticker{fn: progress}
		hashOf = func(p string) uint64 { return maphash.String(seed, p) }
	)
	ar, err := archive.NewAllReader(r)
	if err != nil {
		return v, err
	}
	v.Manifest = ar.Manifest()
	rw = NewRewriter(v.Manifest.ManagedLedgerPath, time.Now())
	role := ""
	for {
		rec, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v, err
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return v, err
			}
		}
		tick.tick(Progress{Records: n, Path: rec.Path})
		if ar.Role() != role {
			role, seen = ar.Role(), map[uint64]struct{}{}
		}
		h := hashOf(rec.Path)
		if _, dup := seen[h]; dup {
			return v, fmt.Errorf("%w: record %d: %s appears twice", archive.ErrCorrupt, n, rec.Path)
		}
		if rec.Path != "/" {
			parent := znode.Parent(rec.Path)
			if _, ok := seen[hashOf(parent)]; !ok && parent != "/" {
				return v, fmt.Errorf("%w: record %d: %s comes before its parent %s", archive.ErrCorrupt, n, rec.Path, parent)
			}
		}
		seen[h] = struct{}{}
		if role != archive.RoleLocal {
			continue
		}
		if _, err := rw.Next(rec); err != nil {
			return v, fmt.Errorf("%w: %w", ErrUnrestorable, err)
		}
		v.MaxPending = max(v.MaxPending, rw.Pending())
	}
	return v, nil
}
