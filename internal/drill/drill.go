// Package drill is the restore drill's work on its scratch ensemble: claiming it (Prepare),
// comparing what a restore left there with the archive (Compare), and clearing it (Clear).
// The restore itself is the real one (RestoreWorkflow); what it skips and how it rewrites
// managed ledgers and cursors is taken from package restore (SkipReason and the Rewriter the
// apply uses, with the marker's start time), never derived again here.
package drill

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ClaimPath marks an ensemble as a drill's scratch: a drill writes into, and clears, only an
// ensemble that is empty or holds it.
const ClaimPath = "/metadata-verify-scratch"

var openACL = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}

// ErrNotScratch is wrapped when the scratch ensemble holds what no drill wrote: the drill
// refuses to touch it. Retrying cannot fix it.
var ErrNotScratch = errors.New("not a scratch ensemble")

// Prepare claims the scratch ensemble and makes it a target a restore accepts: it refuses
// one with a registered broker or with znodes no drill wrote (and no claim), then writes the
// claim and BookKeeper's INSTANCEID (as `pulsar initialize-cluster-metadata` formats it),
// which the restore's gate requires. What an earlier drill left is not cleared here: the
// restore and the comparison see it, and the drill clears after itself (Clear). With
// configurationRoot (result.ScratchConfigurationRoot, for a deployment with a configuration
// store apart) it also creates that chroot, which the scratch configuration store lives
// under.
func Prepare(ctx context.Context, c metastore.Store, configurationRoot string) error {
	brokers, _, err := c.ListChildren(ctx, restore.BrokersPath)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	if len(brokers) > 0 {
		return fmt.Errorf("%w: %d broker(s) registered under %s", ErrNotScratch, len(brokers), restore.BrokersPath)
	}
	top, _, err := c.ListChildren(ctx, "/")
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	claimed := slices.Contains(top, strings.TrimPrefix(ClaimPath, "/"))
	if !claimed {
		var foreign []string
		for _, n := range top {
			if n != "zookeeper" {
				foreign = append(foreign, "/"+n)
			}
		}
		if len(foreign) > 0 {
			return fmt.Errorf("%w: it holds %s and no %s: point verify.zookeeper at an empty ensemble", ErrNotScratch, strings.Join(first(foreign, 3), ", "), ClaimPath)
		}
	}
	recs := []znode.Record{
		{Path: ClaimPath, Data: []byte("restore drill scratch ensemble of pulsar-metadata-backup: cleared after every drill")},
		{Path: restore.LedgersRoot},
		{Path: restore.InstanceIDPath, Data: []byte("restore-drill")},
	}
	if configurationRoot != "" {
		recs = append(recs, znode.Record{Path: configurationRoot})
	}
	for _, r := range recs {
		r.ACL, r.Mode = openACL, znode.ModePersistent
		// One an earlier drill wrote, or the scratch's own with other contents, will do.
		if _, err := c.CreateOne(ctx, r); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("scratch: create %s: %w", r.Path, err)
		}
	}
	return nil
}

// Difference is one znode where the tree read back is not what the restore should have made.
type Difference struct {
	Path string `json:"path"`
	// What: "missing", "extra" (not in the archive), or the fields that differ ("data",
	// "acl", "mode").
	What string `json:"what"`
}

func (d Difference) String() string { return d.Path + " (" + d.What + ")" }

// Result is a comparison's account.
type Result struct {
	// Compared counts the archive's records the restore creates; Skipped those it leaves out.
	Compared, Skipped int64
	// Differences are the first differing znodes, in archive order then extras; Count all.
	Differences []Difference
	Count       int64
}

// Compare reads a scratch store back and compares it, record by record, with what a restore
// of the archive's role (archive.RoleLocal, RoleConfiguration) creates there: for each record, the restore's own Rewriter (with restoredAt, the
// marker's start, as Apply uses) says whether it is skipped and what it becomes; the znode
// read back must then have its mode, data and ACL (restore.Same). A znode outside the
// skipped paths that the archive lacks is extra. Memory: a 64-bit hash of each znode's path
// and one of its contents, never the tree; up to maxReport differences are named.
func Compare(ctx context.Context, c metastore.Store, r io.Reader, role string, restoredAt time.Time, maxReport int) (Result, error) {
	var res Result
	seed := maphash.MakeSeed()
	tree := map[uint64]uint64{}
	_, err := c.Walk(ctx, metastore.WalkOptions{Skip: skipped}, func(rec znode.Record) error {
		if rec.Path != "/" {
			tree[maphash.String(seed, rec.Path)] = contentHash(seed, rec)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("read the scratch tree back: %w", err)
	}
	ar, err := archive.NewRoleReader(r, role)
	if err != nil {
		return res, err
	}
	// The configuration store holds no managed ledgers: its records pass the Rewriter as
	// they are, as restore.ApplyConfiguration creates them.
	rw := restore.NewRewriter(ar.Manifest().ManagedLedgerPath, restoredAt)
	note := func(d Difference) {
		res.Count++
		if len(res.Differences) < maxReport {
			res.Differences = append(res.Differences, d)
		}
	}
	for {
		rec, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		it, err := rw.Next(rec)
		if err != nil {
			return res, fmt.Errorf("%w: %w", restore.ErrUnrestorable, err)
		}
		if it.Skip != "" {
			res.Skipped++
			continue
		}
		res.Compared++
		h := maphash.String(seed, it.Record.Path)
		got, ok := tree[h]
		delete(tree, h)
		switch {
		case !ok:
			note(Difference{Path: it.Record.Path, What: "missing"})
		case got != contentHash(seed, it.Record):
			what := "differs"
			if len(res.Differences) < maxReport {
				what = differs(ctx, c, it.Record)
			}
			note(Difference{Path: it.Record.Path, What: what})
		}
	}
	if len(tree) == 0 {
		return res, nil
	}
	// Extras: name them with a second walk (only their hashes were kept).
	res.Count += int64(len(tree))
	_, err = c.Walk(ctx, metastore.WalkOptions{Skip: skipped}, func(rec znode.Record) error {
		if _, extra := tree[maphash.String(seed, rec.Path)]; extra && rec.Path != "/" && len(res.Differences) < maxReport {
			res.Differences = append(res.Differences, Difference{Path: rec.Path, What: "extra: not in the archive"})
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("read the scratch tree back: %w", err)
	}
	return res, nil
}

// skipped leaves out what a restore does not write (restore.SkipReason), the claim, and the
// scratch configuration store's chroot (compared on its own).
func skipped(path string) bool {
	if path == ClaimPath || path == result.ScratchConfigurationRoot {
		return true
	}
	_, skip := restore.SkipReason(path)
	return skip && path != "/"
}

// contentHash hashes what restore.Same compares: mode (and TTL), data (null and empty alike)
// and the ACL as a set. Container and TTL znodes read back as persistent through the client
// API (the Creator's own comparison allows that too), so they hash as persistent.
func contentHash(seed maphash.Seed, r znode.Record) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	if r.Mode == znode.ModeContainer || r.Mode == znode.ModeTTL {
		r.Mode = znode.ModePersistent
	}
	h.WriteString(string(r.Mode))
	var b [8]byte
	if r.Mode == znode.ModeTTL {
		binary.LittleEndian.PutUint64(b[:], uint64(r.TTL))
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint64(b[:], uint64(len(r.Data)))
	h.Write(b[:])
	h.Write(r.Data)
	acl := make([]string, len(r.ACL))
	for i, a := range r.ACL {
		acl[i] = fmt.Sprintf("%d\x00%s\x00%s", a.Perms, a.Scheme, a.ID)
	}
	slices.Sort(acl)
	acl = slices.Compact(acl)
	for _, a := range acl {
		h.WriteString(a)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// differs names the fields in which the znode read back differs from want.
func differs(ctx context.Context, c metastore.Store, want znode.Record) string {
	have, found, err := c.ReadZnode(ctx, want.Path)
	if err != nil || !found {
		return "differs"
	}
	var what []string
	if have.Mode != want.Mode && want.Mode == znode.ModePersistent {
		what = append(what, "mode")
	}
	if string(have.Data) != string(want.Data) {
		what = append(what, "data")
	}
	if !restore.Same(znode.Record{Mode: want.Mode, TTL: want.TTL, Data: want.Data, ACL: have.ACL}, want) {
		what = append(what, "acl")
	}
	if len(what) == 0 {
		return "differs"
	}
	return strings.Join(what, ", ") + " differ"
}

// Clear deletes every znode of the scratch ensemble but /zookeeper and the claim, children
// first, one directory's children at a time. It returns how many it deleted; znodes it may
// not delete (a parent's ACL) stay and make it fail, naming one.
func Clear(ctx context.Context, c metastore.Store) (int64, error) {
	var deleted int64
	var clearUnder func(p string) error
	clearUnder = func(p string) error {
		names, _, err := c.ListChildren(ctx, p)
		if err != nil {
			return err
		}
		var paths []string
		for _, n := range names {
			cp := znode.Join(p, n)
			if cp == "/zookeeper" || cp == ClaimPath {
				continue
			}
			if err := clearUnder(cp); err != nil {
				return err
			}
			paths = append(paths, cp)
		}
		if len(paths) == 0 {
			return nil
		}
		st, err := c.DeleteZnodes(ctx, paths)
		deleted += st.Deleted
		if err != nil {
			return err
		}
		if st.Kept+st.Denied > 0 {
			return fmt.Errorf("%d znode(s) under %s could not be deleted (not empty or not allowed)", st.Kept+st.Denied, p)
		}
		return nil
	}
	if err := clearUnder("/"); err != nil {
		return deleted, fmt.Errorf("clear the scratch ensemble: %w", err)
	}
	return deleted, nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("%d more", len(s)-n))
	}
	return s
}
