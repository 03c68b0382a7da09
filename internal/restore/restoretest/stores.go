package restoretest

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ConfigSubtrees are what Pulsar keeps in the configuration store when it is apart from
// the local one (the PulsarResources constructor builds ClusterResources, TenantResources
// and NamespaceResources, with its partitioned topics, on configurationMetadataStore).
var ConfigSubtrees = []string{"/admin/clusters", "/admin/policies", "/admin/partitioned-topics"}

// IsConfigPath tells whether a path belongs to the configuration store.
func IsConfigPath(p string) bool {
	for _, r := range ConfigSubtrees {
		if znode.Under(p, r) {
			return true
		}
	}
	return false
}

// Split divides a one-store tree into its local and configuration parts, as a cluster with
// a configuration store apart holds them; both keep the common ancestors (/admin).
func Split(tree map[string]znode.Record) (local, conf map[string]znode.Record) {
	local, conf = map[string]znode.Record{}, map[string]znode.Record{}
	for p, r := range tree {
		switch {
		case IsConfigPath(p):
			conf[p] = r
		case slices.ContainsFunc(ConfigSubtrees, func(s string) bool { return znode.Under(s, p) }):
			local[p], conf[p] = r, r
		default:
			local[p] = r
		}
	}
	return local, conf
}

// Under returns the part of a tree below root with paths relative to it (root itself left
// out, as ReadTree leaves out /). Root "" or "/" is the whole tree.
func Under(tree map[string]znode.Record, root string) map[string]znode.Record {
	if root == "" || root == "/" {
		return tree
	}
	out := map[string]znode.Record{}
	for p, r := range tree {
		if rel, ok := strings.CutPrefix(p, root+"/"); ok {
			r.Path = "/" + rel
			out[r.Path] = r
		}
	}
	return out
}

// Union merges trees; a path in several must be the same record in each.
func Union(t testing.TB, trees ...map[string]znode.Record) map[string]znode.Record {
	t.Helper()
	out := map[string]znode.Record{}
	for _, tr := range trees {
		for p, r := range tr {
			if have, ok := out[p]; ok && (string(have.Data) != string(r.Data) || !sameACL(have.ACL, r.ACL)) {
				t.Fatalf("union: %s differs between trees", p)
			}
			out[p] = r
		}
	}
	return out
}

// CopyTree writes a tree (as ReadTree returns it) into the server at addr below root (""
// for the top), as the super user, parents first; root's own ancestors are created empty and
// open.
func CopyTree(t testing.TB, addr string, tree map[string]znode.Record, root string) {
	t.Helper()
	conn := testenv.SuperConn(t, addr)
	defer conn.Close()
	if root != "" && root != "/" {
		p := ""
		for _, seg := range strings.Split(root[1:], "/") {
			p += "/" + seg
			if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
				t.Fatalf("create %s: %v", p, err)
			}
		}
	} else {
		root = ""
	}
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	// Sorted by depth, then path: parents first.
	slices.SortFunc(paths, func(a, b string) int {
		if d := strings.Count(a, "/") - strings.Count(b, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, p := range paths {
		r := tree[p]
		acl := make([]zk.ACL, len(r.ACL))
		for i, a := range r.ACL {
			acl[i] = zk.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
		}
		if _, err := conn.Create(root+p, r.Data, 0, acl); err != nil && err != zk.ErrNodeExists {
			t.Fatalf("create %s: %v", root+p, err)
		}
	}
}
