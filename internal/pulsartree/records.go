package pulsartree

import (
	"errors"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Records yields the tree o describes as records, parents first, without a ZooKeeper
// server: for stores that take records (etcd). Ephemeral znodes come with Mode ephemeral
// (the caller writes them as live state, say with a lease, or leaves them out); Stat is
// zero apart from NumChildren, which is left 0. It stops when yield returns false. The
// Summary is Populate's for the same options.
// Options.Awkward is refused: its cases (sequential names, container and TTL modes, ACLs set
// after the children) are ZooKeeper's and need Populate.
func Records(o Options, yield func(znode.Record) bool) (Summary, error) {
	if o.Awkward {
		return Summary{}, errors.New("pulsartree: Records does not build the Awkward cases (use Populate)")
	}
	p, err := buildPlan(o)
	if err != nil {
		return Summary{}, err
	}
	sum := p.sum
	sum.Persistent, sum.Ephemeral = p.persistent, p.ephemeral
	for _, op := range p.ops {
		mode := znode.ModePersistent
		if op.flags == zk.FlagEphemeral {
			mode = znode.ModeEphemeral
		}
		acl := make([]znode.ACL, len(op.acl))
		for i, a := range op.acl {
			acl[i] = znode.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
		}
		if !yield(znode.Record{Path: op.path, Data: op.data, ACL: acl, Mode: mode}) {
			return sum, nil
		}
	}
	return sum, nil
}
