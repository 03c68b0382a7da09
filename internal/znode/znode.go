// Package znode holds the one record type that flows through both directions of the tool:
// a backup turns each ZooKeeper znode into a Record, and a restore turns Records back into
// znodes. Nothing here talks to ZooKeeper or storage.
package znode

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Mode is how a znode was created, as far as it can be told after the fact. Sequential nodes
// are ordinary persistent nodes once created, so they are ModePersistent.
type Mode string

const (
	ModePersistent Mode = "persistent"
	ModeContainer  Mode = "container"
	ModeTTL        Mode = "ttl"
	// ModeEphemeral is never written to an archive; it is what a walk reports for the
	// znodes it skips.
	ModeEphemeral Mode = "ephemeral"
)

// containerOwner is the ephemeralOwner ZooKeeper stores for container nodes (Long.MIN_VALUE).
const containerOwner = math.MinInt64

// TTL nodes have 0xFF in the top byte of ephemeralOwner and the TTL in milliseconds in the
// low 40 bits (ZooKeeper's EphemeralType.TTL).
const (
	ttlTopByte = 0xFF
	ttlMaxMs   = (int64(1) << 40) - 1
)

// ModeOf tells the creation mode from a Stat's ephemeralOwner, and for TTL nodes the TTL in
// milliseconds.
func ModeOf(ephemeralOwner int64) (Mode, int64) {
	switch {
	case ephemeralOwner == 0:
		return ModePersistent, 0
	case ephemeralOwner == containerOwner:
		return ModeContainer, 0
	case uint64(ephemeralOwner)>>56 == ttlTopByte:
		return ModeTTL, ephemeralOwner & ttlMaxMs
	default:
		return ModeEphemeral, 0
	}
}

// ACL is one access-control entry: Perms is ZooKeeper's bit set (READ=1, WRITE=2, CREATE=4,
// DELETE=8, ADMIN=16, ALL=31).
type ACL struct {
	Perms  int32  `json:"perms"`
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// PermRead is ZooKeeper's READ permission bit (ZooDefs.Perms.READ).
const PermRead = 1

// WorldReadable reports whether an ACL lets anyone read: an entry world:anyone with READ.
// Reading a znode whose ACL is not needs credentials (or the super user).
func WorldReadable(acl []ACL) bool {
	for _, a := range acl {
		if a.Scheme == "world" && a.ID == "anyone" && a.Perms&PermRead != 0 {
			return true
		}
	}
	return false
}

// Stat is the subset of ZooKeeper's Stat a backup keeps for the record; a restore cannot set
// any of it (the server assigns it), so it is information, not input.
type Stat struct {
	Czxid          int64 `json:"czxid"`
	Mzxid          int64 `json:"mzxid"`
	Pzxid          int64 `json:"pzxid"`
	Ctime          int64 `json:"ctime"`
	Mtime          int64 `json:"mtime"`
	Version        int32 `json:"version"`
	Cversion       int32 `json:"cversion"`
	Aversion       int32 `json:"aversion"`
	EphemeralOwner int64 `json:"ephemeralOwner"`
	NumChildren    int32 `json:"numChildren"`
	DataLength     int32 `json:"dataLength"`
}

// Record is one znode.
type Record struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
	ACL  []ACL  `json:"acl"`
	Mode Mode   `json:"mode"`
	// TTL in milliseconds, only for ModeTTL.
	TTL  int64 `json:"ttl,omitempty"`
	Stat Stat  `json:"stat"`
}

// MaxDataSize is ZooKeeper's default jute.maxbuffer: the most a znode can hold.
const MaxDataSize = 1024 * 1024

// ValidatePath checks a path the way ZooKeeper's PathUtils.validatePath does, so a restore
// never sends a path the server would reject halfway through.
func ValidatePath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid znode path: empty")
	}
	if p[0] != '/' {
		return fmt.Errorf("invalid znode path %q: must start with /", p)
	}
	if len(p) == 1 {
		return nil
	}
	if p[len(p)-1] == '/' {
		return fmt.Errorf("invalid znode path %q: must not end with /", p)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("invalid znode path %q: not UTF-8", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("invalid znode path %q: empty segment", p)
		case ".", "..":
			return fmt.Errorf("invalid znode path %q: relative segment %q", p, seg)
		}
	}
	// Java checks UTF-16 code units: a character outside the BMP is a surrogate pair, in the
	// rejected 0xd800-0xf8ff range.
	for _, r := range p {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
			return fmt.Errorf("invalid znode path %q: character %U not allowed", p, r)
		}
	}
	return nil
}

// Parent returns the parent path of p ("/" for a top-level node).
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Base returns the last segment of p ("" for "/").
func Base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// Join appends a child name to a parent path.
func Join(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// Under reports whether p is root or lies below it.
func Under(p, root string) bool {
	if root == "/" {
		return true
	}
	return strings.HasPrefix(p, root) && (len(p) == len(root) || p[len(root)] == '/')
}
