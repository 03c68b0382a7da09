package pulsartree

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/go-zookeeper/zk"
)

// ClusterName is the cluster name of every generated tree.
const ClusterName = clusterName

// InitClusterMetadata writes into a new ensemble what `pulsar initialize-cluster-metadata
// --cluster <cluster>` writes when local and configuration store are that one ensemble
// (PulsarClusterMetadataSetup.initializeCluster), with the new cluster's own values, and
// returns the paths it created:
//
//   - BookKeeper's format, only while /ledgers does not exist (BookKeeperAdmin.format with
//     Pulsar's registration manager: /ledgers, available, available/readonly, INSTANCEID);
//   - stream storage's cluster metadata, only while /stream/metadata does not exist
//     (ZkClusterInitializer);
//   - /bookies, /managed-ledgers, /namespace, the Functions DistributedLog namespace
//     /pulsar/functions, the cluster and "global" under /admin/clusters, the tenants public
//     and pulsar, the namespaces public/default and pulsar/system, and the transaction
//     coordinator's partitioned topic.
//
// Like the real command it leaves existing znodes alone.
func InitClusterMetadata(ctx context.Context, conn *zk.Conn, cluster string) ([]string, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	var created []string
	create := func(path string, data []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, p := range ancestors(path) {
			if _, err := conn.Create(p, nil, 0, openACL); err == nil {
				created = append(created, p)
			} else if !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("pulsartree: create %s: %w", p, err)
			}
		}
		if _, err := conn.Create(path, data, 0, openACL); err == nil {
			created = append(created, path)
		} else if !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("pulsartree: create %s: %w", path, err)
		}
		return nil
	}
	exists := func(path string) (bool, error) {
		ok, _, err := conn.Exists(path)
		if err != nil {
			return false, fmt.Errorf("pulsartree: exists %s: %w", path, err)
		}
		return ok, nil
	}
	type node struct {
		path string
		data []byte
	}
	var nodes []node
	if ok, err := exists("/ledgers"); err != nil {
		return nil, err
	} else if !ok {
		nodes = append(nodes, node{"/ledgers/available/readonly", nil}, node{"/ledgers/INSTANCEID", []byte(uuidFrom(rng))})
	}
	if ok, err := exists("/stream/metadata"); err != nil {
		return nil, err
	} else if !ok {
		for _, p := range []string{"/stream/metadata", "/stream/assignment", "/stream/servers/available", "/stream/storage"} {
			nodes = append(nodes, node{p, nil})
		}
	}
	policies := mustJSON(map[string]any{
		"bundles":              map[string]any{"boundaries": bundles16(), "numBundles": 16},
		"replication_clusters": []string{cluster},
		"deleted":              false,
	})
	tenant := mustJSON(map[string]any{"adminRoles": []string{}, "allowedClusters": []string{cluster}})
	nodes = append(nodes,
		node{"/bookies", []byte("{}")},
		node{"/managed-ledgers", nil},
		node{"/namespace", nil},
		node{"/pulsar/functions", []byte("\n\x0flocalhost:2181/ledgers")},
		node{"/admin/clusters/" + cluster, mustJSON(map[string]any{"serviceUrl": "http://" + cluster + "-broker.new:8080", "brokerServiceUrl": "pulsar://" + cluster + "-broker.new:6650"})},
		node{"/admin/clusters/global", mustJSON(map[string]any{})},
		node{"/admin/policies/public", tenant},
		node{"/admin/policies/pulsar", tenant},
		node{"/admin/policies/public/default", policies},
		node{"/admin/policies/pulsar/system", policies},
		node{"/admin/partitioned-topics/pulsar/system/persistent/transaction_coordinator_assign", partitionedTopic(16)},
	)
	for _, n := range nodes {
		if err := create(n.path, n.data); err != nil {
			return created, err
		}
	}
	return created, nil
}

// ancestors lists path's ancestors below "/", outermost first.
func ancestors(path string) []string {
	var out []string
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	return out
}

// bundles16 are the boundaries of 16 equal bundles (PulsarClusterMetadataSetup.getBundles).
func bundles16() []string {
	out := make([]string, 0, 17)
	for i := range 16 {
		out = append(out, fmt.Sprintf("0x%08x", uint64(i)<<28))
	}
	return append(out, "0xffffffff")
}
