package restore

import (
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// clusterInitPaths are the znodes `pulsar initialize-cluster-metadata` writes outside
// /ledgers, /stream and /namespace (PulsarClusterMetadataSetup.initializeCluster): each is
// created when absent, so a target initialised first holds the new cluster's defaults where
// the archive holds the old cluster's configuration. Every /admin/clusters/<name> child
// counts (the cluster's own and "global").
var clusterInitPaths = map[string]bool{
	"/bookies":                                           true, // ZkBookieRackAffinityMapping.BOOKIE_INFO_ROOT_PATH, "{}"
	"/managed-ledgers":                                   true,
	"/admin":                                             true,
	"/admin/clusters":                                    true,
	"/admin/policies":                                    true,
	"/admin/policies/public":                             true, // createTenantIfAbsent
	"/admin/policies/pulsar":                             true,
	"/admin/policies/public/default":                     true, // createNamespaceIfAbsent
	"/admin/policies/pulsar/system":                      true,
	"/admin/partitioned-topics":                          true, // createPartitionedTopic
	"/admin/partitioned-topics/pulsar":                   true,
	"/admin/partitioned-topics/pulsar/system":            true,
	"/admin/partitioned-topics/pulsar/system/persistent": true,
	"/admin/partitioned-topics/pulsar/system/persistent/transaction_coordinator_assign": true,
}

// ClusterInitPath tells whether path is one `pulsar initialize-cluster-metadata` writes with
// the new cluster's defaults. A restore replaces such a znode's data and ACL with the
// archive's (Plan.InitReplaced, the Creator's Replace) instead of refusing it as a conflict:
// the supported order is to initialise the cluster's metadata first (BookKeeper's format is
// part of it), then restore, and the archive's configuration is what the restore brings back.
func ClusterInitPath(path string) bool {
	if clusterInitPaths[path] {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/admin/clusters/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// replaceable tells whether an existing znode at path that differs from the archive's is
// replaced rather than refused: a ClusterInitPath, persistent on both sides (what the
// Creator's Replace does, zookeeper.Creator.settle).
func replaceable(path string, have, want znode.Mode) bool {
	return ClusterInitPath(path) && have == znode.ModePersistent && want == znode.ModePersistent
}
