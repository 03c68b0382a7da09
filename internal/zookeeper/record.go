package zookeeper

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// pathError is an error about one znode whose text is "op path: msg", so that a message can
// stay exactly as documented while errors.Is still finds the ZooKeeper error under it.
type pathError struct {
	op, path, msg string
	err           error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.msg }
func (e *pathError) Unwrap() error { return e.err }

// opError names the operation and the znode, and says what to do about the errors that have
// an answer.
func opError(op, path string, err error) error {
	switch {
	case errors.Is(err, zk.ErrNoAuth):
		return &pathError{op, path, "not authorized (set zookeeper.auth)", err}
	case errors.Is(err, ErrSessionExpired), errors.Is(err, errClientClosed):
		return &pathError{op, path, err.Error(), err}
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func fromZKACL(acl []zk.ACL) []znode.ACL {
	out := make([]znode.ACL, len(acl))
	for i, a := range acl {
		out[i] = znode.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
	}
	return out
}

func toZKACL(acl []znode.ACL) []zk.ACL {
	out := make([]zk.ACL, len(acl))
	for i, a := range acl {
		out[i] = zk.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
	}
	return out
}

func fromZKStat(s *zk.Stat) znode.Stat {
	return znode.Stat{
		Czxid:          s.Czxid,
		Mzxid:          s.Mzxid,
		Pzxid:          s.Pzxid,
		Ctime:          s.Ctime,
		Mtime:          s.Mtime,
		Version:        s.Version,
		Cversion:       s.Cversion,
		Aversion:       s.Aversion,
		EphemeralOwner: s.EphemeralOwner,
		NumChildren:    s.NumChildren,
		DataLength:     s.DataLength,
	}
}

// sameACL compares ACLs as sets: ZooKeeper keeps the order it was given, but order carries no
// meaning.
func sameACL(a, b []zk.ACL) bool {
	if len(a) != len(b) {
		return false
	}
next:
	for _, x := range a {
		for _, y := range b {
			if x == y {
				continue next
			}
		}
		return false
	}
	return true
}

const worldID = "anyone"

// grantsCreate tells whether acl lets us create children: CREATE for world:anyone, or for our
// digest identity (empty without auth).
func grantsCreate(acl []zk.ACL, identity string) bool {
	for _, a := range acl {
		if a.Perms&zk.PermCreate == 0 {
			continue
		}
		if a.Scheme == "world" && a.ID == worldID || identity != "" && a.Scheme == "digest" && a.ID == identity {
			return true
		}
	}
	return false
}

// tempPerms is what the temporary ACL of a locked parent adds for us: CREATE for its children,
// ADMIN to set the real ACL afterwards, READ to compare it when a restore is applied again.
// Without auth the entry is world:anyone, and READ is left out so the data of a locked node is
// not exposed to everyone while the restore runs.
const (
	tempPermsDigest = zk.PermCreate | zk.PermAdmin | zk.PermRead
	tempPermsWorld  = zk.PermCreate | zk.PermAdmin
)

// temporaryACL is the real ACL plus an entry that lets us create children and set the real ACL
// later. Keeping the real entries means a restore that dies before Close leaves the node no
// more closed than it should be, and only as much more open as the one entry.
func temporaryACL(acl []zk.ACL, identity string) []zk.ACL {
	scheme, id, perms := "digest", identity, int32(tempPermsDigest)
	if identity == "" {
		scheme, id, perms = "world", worldID, tempPermsWorld
	}
	out := make([]zk.ACL, 0, len(acl)+1)
	found := false
	for _, a := range acl {
		if a.Scheme == scheme && a.ID == id {
			a.Perms |= perms
			found = true
		}
		out = append(out, a)
	}
	if !found {
		out = append(out, zk.ACL{Perms: perms, Scheme: scheme, ID: id})
	}
	return out
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
