package backupdiff

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// entry is what the diff keeps of one record: enough to tell whether it changed, and the
// little it reports on (a policy document's JSON, a managed ledger's offloaded ledgers).
// Entries are what the external sort writes to disk.
type entry struct {
	// role is the store the record was backed up from (roleLocal, roleConfiguration): a
	// path names one znode per store, and the two stores may hold the same path.
	role uint8
	path string
	// data is a hash of the znode's data (empty and null alike, as restore.Same has them),
	// meta of its ACL as a set, mode and TTL.
	data [16]byte
	meta [8]byte
	kind kind
	// doc is the data of a znode under /admin: a policy document.
	doc []byte
	// kept are the ledgers of a managed ledger a restore keeps (fully offloaded), sorted.
	kept []int64
}

// kind says what an entry is to the diff's reports; the bits may combine.
type kind uint8

const (
	kindTenant kind = 1 << iota
	kindNamespace
	kindManagedLedger
	kindPartitionedTopic
	kindPolicyDoc
	// kindUndecodable marks a managed ledger whose payload does not decode.
	kindUndecodable
)

// Roles as entries hold them; the local store's sort first.
const (
	roleLocal uint8 = iota
	roleConfiguration
)

// roleOf is the entry role of an archive role.
func roleOf(name string) uint8 {
	if name == archive.RoleConfiguration {
		return roleConfiguration
	}
	return roleLocal
}

// roleName is an entry role's archive role.
func roleName(r uint8) string {
	if r == roleConfiguration {
		return archive.RoleConfiguration
	}
	return archive.RoleLocal
}

// newEntry builds the entry of a record of an archive role whose managed ledgers follow
// layout. Managed ledgers are only the local store's: PulsarService.start hands the
// managed-ledger storage its localMetadataStore (ManagedLedgerStorage.create).
func newEntry(rec znode.Record, role uint8, layout pulsarpath.Layout) entry {
	e := entry{role: role, path: rec.Path}
	sum := sha256.Sum256(rec.Data)
	copy(e.data[:], sum[:])
	e.meta = metaHash(rec)
	if _, ok := pulsarpath.IsTenant(rec.Path); ok {
		e.kind |= kindTenant
	}
	if _, ok := pulsarpath.IsNamespace(rec.Path, rec.Stat.NumChildren); ok {
		e.kind |= kindNamespace
	}
	if _, ok := pulsarpath.IsPartitionedTopic(rec.Path); ok {
		e.kind |= kindPartitionedTopic
	}
	if znode.Under(rec.Path, pulsarpath.AdminRoot) {
		e.kind |= kindPolicyDoc
		e.doc = rec.Data
	}
	if role == roleLocal && layout.IsManagedLedger(rec.Path) {
		e.kind |= kindManagedLedger
		// The restore's rule for what survives: managedledger.RewriteLedger keeps the
		// ledgers whose offloadContext is complete.
		if _, lr, err := managedledger.RewriteLedger(rec.Data); err != nil {
			e.kind |= kindUndecodable
		} else {
			e.kept = lr.KeptIDs()
			slices.Sort(e.kept)
		}
	}
	return e
}

// metaHash hashes what a restore creates besides the data: the ACL as a set, the mode and
// the TTL.
func metaHash(rec znode.Record) [8]byte {
	acl := slices.Clone(rec.ACL)
	slices.SortFunc(acl, func(a, b znode.ACL) int {
		return cmp.Or(cmp.Compare(a.Scheme, b.Scheme), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Perms, b.Perms))
	})
	acl = slices.Compact(acl)
	h := sha256.New()
	var buf []byte
	buf = appendString(buf, string(rec.Mode))
	buf = binary.AppendVarint(buf, rec.TTL)
	for _, a := range acl {
		buf = appendString(buf, a.Scheme)
		buf = appendString(buf, a.ID)
		buf = binary.AppendVarint(buf, int64(a.Perms))
	}
	h.Write(buf)
	var out [8]byte
	copy(out[:], h.Sum(nil))
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendEntry encodes e after b: its key (role byte and path), hashes, kind, doc and kept
// ledgers, each length-prefixed. The key comes first, so comparing two encoded entries
// reads only it (compareKeys).
func appendEntry(b []byte, e *entry) []byte {
	b = binary.AppendUvarint(b, uint64(1+len(e.path)))
	b = append(b, e.role)
	b = append(b, e.path...)
	b = append(b, e.data[:]...)
	b = append(b, e.meta[:]...)
	b = append(b, byte(e.kind))
	b = binary.AppendUvarint(b, uint64(len(e.doc)))
	b = append(b, e.doc...)
	b = binary.AppendUvarint(b, uint64(len(e.kept)))
	for _, id := range e.kept {
		b = binary.AppendVarint(b, id)
	}
	return b
}

// maxEncodedSize bounds the size appendEntry gives e.
func (e *entry) maxEncodedSize() int {
	return 3*binary.MaxVarintLen64 + 1 + len(e.path) + len(e.data) + len(e.meta) + 1 + len(e.doc) + binary.MaxVarintLen64*(1+len(e.kept))
}

var errBadEntry = errors.New("backupdiff: bad entry in a sort run")

// decodeEntry decodes what appendEntry wrote; the entry does not alias b.
func decodeEntry(b []byte) (entry, error) {
	var e entry
	key, rest, ok := cutString(b)
	if !ok || len(key) == 0 || len(rest) < len(e.data)+len(e.meta)+1 {
		return e, errBadEntry
	}
	e.role, e.path = key[0], string(key[1:])
	rest = rest[copy(e.data[:], rest):]
	rest = rest[copy(e.meta[:], rest):]
	e.kind, rest = kind(rest[0]), rest[1:]
	doc, rest, ok := cutString(rest)
	if !ok {
		return e, errBadEntry
	}
	if len(doc) > 0 {
		e.doc = slices.Clone(doc)
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return e, errBadEntry
	}
	rest = rest[k:]
	if n > 0 {
		e.kept = make([]int64, n)
		for i := range e.kept {
			v, k := binary.Varint(rest)
			if k <= 0 {
				return e, errBadEntry
			}
			e.kept[i], rest = v, rest[k:]
		}
	}
	return e, nil
}

// cutString reads a length-prefixed byte string off the front of b.
func cutString(b []byte) (s, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// entryKey is the key of an encoded entry (its role byte, then its path), without decoding
// the rest; ok is false for a malformed one.
func entryKey(b []byte) ([]byte, bool) {
	k, _, ok := cutString(b)
	return k, ok && len(k) > 0
}

// compareKeys orders encoded keys by role, then path (comparePaths).
func compareKeys(a, b []byte) int {
	return cmp.Or(cmp.Compare(a[0], b[0]), comparePaths(a[1:], b[1:]))
}

// compareEntries orders entries as compareKeys orders their keys.
func compareEntries(a, b *entry) int {
	return cmp.Or(cmp.Compare(a.role, b.role), comparePaths(a.path, b.path))
}

// comparePaths orders paths segment by segment: a parent sorts right before its subtree, and
// a subtree's paths are contiguous ("/a", "/a/b", "/a-b", not "/a", "/a-b", "/a/b" as plain
// byte order has it, '-' being below '/'). It is byte order with '/' taken as lower than
// every other byte, which is the order of the paths' segment lists.
func comparePaths[S ~string | ~[]byte](a, b S) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		switch {
		case ca == '/':
			return -1
		case cb == '/':
			return 1
		}
		return cmp.Compare(ca, cb)
	}
	return cmp.Compare(len(a), len(b))
}
