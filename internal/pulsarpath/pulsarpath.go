// Package pulsarpath says what a znode path is in an Apache Pulsar cluster's metadata: a
// tenant, a namespace, a managed ledger and its cursors, a partitioned topic, and which
// tenant and namespace a path belongs to. The restore, inspect and diff read paths with these
// rules, so a topic is the same thing to all three. It imports nothing of this project but
// znode, so the API can link it without the restore or ZooKeeper.
package pulsarpath

import (
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Where Pulsar keeps its metadata (pulsar-broker-common, org.apache.pulsar.broker.resources).
const (
	// DefaultManagedLedgerPath is Pulsar's default managedLedgerPath.
	DefaultManagedLedgerPath = "/managed-ledgers"
	// PoliciesRoot holds a znode per tenant (TenantResources, TenantInfo JSON) and, below
	// it, one per namespace (NamespaceResources, Policies JSON).
	PoliciesRoot = "/admin/policies"
	// LocalPoliciesRoot holds LocalPolicies per namespace (LocalPoliciesResources).
	LocalPoliciesRoot = "/admin/local-policies"
	// PartitionedTopicsRoot holds PartitionedTopicMetadata JSON per partitioned topic at
	// <root>/<namespace>/<domain>/<encoded local name>
	// (NamespaceResources.PartitionedTopicResources).
	PartitionedTopicsRoot = "/admin/partitioned-topics"
	// AdminRoot is the configuration store's root: clusters, tenants, namespaces, their
	// policies and partitioned-topic metadata, all JSON documents.
	AdminRoot = "/admin"
	// SchemasRoot holds a SchemaLocator per topic at <root>/<tenant>/<ns>/<topic>.
	SchemasRoot = "/schemas"
)

// namespaceRoots are the subtrees whose paths continue <tenant>/<namespace>/...; the
// managed-ledger path is one more.
var namespaceRoots = []string{
	PoliciesRoot, LocalPoliciesRoot, PartitionedTopicsRoot, SchemasRoot,
	"/namespace",               // bundle ownership (NamespaceResources NAMESPACE_BASE_PATH)
	"/loadbalance/bundle-data", // bundle load data (BUNDLE_DATA_BASE_PATH)
}

// Layout reads paths of a cluster whose brokers use one managedLedgerPath.
type Layout struct {
	ml string
}

// NewLayout returns the Layout for managedLedgerPath ("" or "/" mean the default).
func NewLayout(managedLedgerPath string) Layout {
	p := managedLedgerPath
	if p == "" || p == "/" {
		p = DefaultManagedLedgerPath
	}
	return Layout{ml: strings.TrimSuffix(p, "/")}
}

// ManagedLedgerPath is the cleaned managedLedgerPath.
func (l Layout) ManagedLedgerPath() string { return l.ml }

// managedLedgerSegments reports whether s, the segments of a path below the managed-ledger
// path, name a managed ledger: <tenant>/<ns>/persistent/<topic>, or the v1 layout
// <tenant>/<cluster>/<ns>/persistent/<topic> (whose third segment is then not "persistent",
// which would make it a v2 cursor). TopicName.getPersistenceNamingEncoding is the layout.
func managedLedgerSegments(s []string) bool {
	switch len(s) {
	case 4:
		return s[2] == "persistent"
	case 5:
		return s[3] == "persistent" && s[2] != "persistent"
	}
	return false
}

// rel returns path's segments below root, or nil.
func rel(path, root string) []string {
	rest, ok := strings.CutPrefix(path, root+"/")
	if !ok || rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}

// IsManagedLedger reports whether path is a managed ledger's znode (payload
// ManagedLedgerInfo).
func (l Layout) IsManagedLedger(path string) bool {
	return managedLedgerSegments(rel(path, l.ml))
}

// IsCursor reports whether path is a cursor's znode: a child of a managed ledger (payload
// ManagedCursorInfo).
func (l Layout) IsCursor(path string) bool {
	p := znode.Parent(path)
	return p != l.ml && l.IsManagedLedger(p)
}

// TopicName is the topic of a managed ledger's path: persistent://<tenant>/<ns>/<topic>
// (v1: persistent://<tenant>/<cluster>/<ns>/<topic>).
func (l Layout) TopicName(managedLedger string) string {
	s := rel(managedLedger, l.ml)
	if len(s) < 2 {
		return "persistent://" + strings.Join(s, "/")
	}
	return "persistent://" + strings.Join(s[:len(s)-2], "/") + "/" + s[len(s)-1]
}

// IsTenant reports whether path is a tenant's znode, <PoliciesRoot>/<tenant>
// (TenantResources), and returns the tenant.
func IsTenant(path string) (string, bool) {
	s := rel(path, PoliciesRoot)
	if len(s) != 1 {
		return "", false
	}
	return s[0], true
}

// IsNamespace reports whether path is a namespace's policies znode and returns the
// namespace, <tenant>/<ns> (v1: <tenant>/<cluster>/<ns>). Pulsar takes a path below a tenant
// for a namespace when it has no children (NamespaceResources.namespaceExists): a v1
// <tenant>/<cluster> znode is a parent of namespaces, not one. children is the znode's
// Stat.NumChildren.
func IsNamespace(path string, children int32) (string, bool) {
	s := rel(path, PoliciesRoot)
	if (len(s) != 2 && len(s) != 3) || children != 0 {
		return "", false
	}
	return strings.Join(s, "/"), true
}

// IsPartitionedTopic reports whether path is a partitioned topic's metadata znode and returns
// the topic, <domain>://<tenant>/<ns>/<topic> (v1: with the cluster after the tenant).
func IsPartitionedTopic(path string) (string, bool) {
	s := rel(path, PartitionedTopicsRoot)
	isDomain := func(d string) bool { return d == "persistent" || d == "non-persistent" }
	switch {
	case len(s) == 4 && isDomain(s[2]):
		return s[2] + "://" + s[0] + "/" + s[1] + "/" + s[3], true
	case len(s) == 5 && isDomain(s[3]) && !isDomain(s[2]):
		return s[3] + "://" + s[0] + "/" + s[1] + "/" + s[2] + "/" + s[4], true
	}
	return "", false
}

// Owner is the tenant and namespace a path belongs to: Tenant is set for every path below a
// tenant-scoped root (policies, local policies, partitioned topics, managed ledgers, schemas,
// bundle ownership and bundle data), Namespace ("<tenant>/<ns>") for paths at or below a
// namespace there. Managed ledgers and their cursors in the v1 layout belong to
// "<tenant>/<cluster>/<ns>"; elsewhere the first two segments name the namespace.
type Owner struct {
	Tenant, Namespace string
}

// OwnerOf tells which tenant and namespace path belongs to; the zero Owner for cluster-wide
// paths.
func (l Layout) OwnerOf(path string) Owner {
	if s := rel(path, l.ml); s != nil {
		o := Owner{Tenant: s[0]}
		switch {
		case len(s) >= 5 && managedLedgerSegments(s[:5]):
			o.Namespace = strings.Join(s[:3], "/")
		case len(s) >= 2:
			o.Namespace = s[0] + "/" + s[1]
		}
		return o
	}
	for _, root := range namespaceRoots {
		if s := rel(path, root); s != nil {
			o := Owner{Tenant: s[0]}
			if len(s) >= 2 {
				o.Namespace = s[0] + "/" + s[1]
			}
			return o
		}
	}
	return Owner{}
}

// TopLevel is the top-level znode path lies under ("/admin" for "/admin/policies/a"), or
// "/" for the root.
func TopLevel(path string) string {
	if len(path) <= 1 {
		return "/"
	}
	if i := strings.IndexByte(path[1:], '/'); i >= 0 {
		return path[:i+1]
	}
	return path
}
