// Package restore puts a backup archive into the ZooKeeper ensemble of a new Pulsar cluster.
// It holds the domain logic of RestoreWorkflow's stages, with no Temporal in it:
//
//   - Check: the gate. It refuses a target with a live broker, or with managed-ledger metadata
//     that no earlier restore of this tool wrote, and tells from the marker znode whether this
//     (restorePoint, restoreVersion) pair was already restored.
//   - Validate: reads the whole verified archive before anything is written, and checks what
//     the restore relies on beyond the format (parents first, no duplicates, managed-ledger
//     and cursor payloads that decode and fit after the rewrite).
//   - MakePlan: what a restore would do, the dry run's output.
//   - Begin: the start of a restore, which writes the marker as "applying" and, when the
//     marker names an earlier restore of another pair, deletes that restore's znodes (Clear).
//   - Apply: sets the ledger-id floor (SetLedgerIDFloor), then streams the archive into the
//     target through the zookeeper package's Creator, skipping live state and rewriting
//     managed ledgers and cursors on the fly, every batch conditional on the marker.
//   - Mark: sets the marker to "complete".
//
// One file per stage (check.go, validate.go, plan.go, begin.go, clear.go, apply.go,
// marker.go), the rules in restore.go (skips), rewrite.go, floor.go and initcluster.go.
//
// What is skipped and rewritten is documented in docs/RESTORE.md; SkipReason and Rewriter
// are the code of it.
package restore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsarpath"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// DefaultManagedLedgerPath is Pulsar's default managedLedgerPath.
const DefaultManagedLedgerPath = pulsarpath.DefaultManagedLedgerPath

// Reasons a znode of the archive is not restored, as counted in Plan.Skipped. Each rule
// says what a restore leaves alone in both directions: Apply does not create it and Clear
// does not delete it, so the new cluster's own znodes there survive a new restoreVersion.
const (
	// SkipRoot: "/" exists in every ensemble; its data and ACL are left as the target has
	// them.
	SkipRoot = "root"
	// SkipZooKeeper: /zookeeper is the server's own (archives never hold it).
	SkipZooKeeper = "zookeeper"
	// SkipBookKeeper: /ledgers belongs to the new cluster's BookKeeper (cookies, INSTANCEID,
	// its ledgers); the restore only adds the ledger-id floor there (SetLedgerIDFloor).
	SkipBookKeeper = "bookkeeper"
	// SkipBookKeeperBound: metadata of the old BookKeeper's data kept outside /ledgers:
	// /pulsar/functions and /pulsar/packages are DistributedLog namespaces whose logs are
	// ledgers of the old cluster (WorkerUtils.initializeDlogNamespace,
	// BookKeeperPackagesStorage.initializeDlogNamespace), and /stream is stream storage's
	// cluster metadata (ZkClusterMetadataStore), whose initializer does nothing once
	// /stream/metadata exists (ZkClusterInitializer.initializeCluster).
	SkipBookKeeperBound = "bookkeeper-bound"
	// SkipSchemaLocator: /schemas/<tenant>/<ns>/<topic>, a SchemaLocator naming BookKeeper
	// ledgers that hold the schema versions (BookkeeperSchemaStorage). Restored, it fails
	// every producer with a schema (SchemaRegistryServiceImpl.putSchemaIfAbsent reads all
	// versions, BookkeeperSchemaStorage.readSchemaEntry opens their ledgers) and deleting it
	// deletes those ledger ids in the new cluster (BookkeeperSchemaStorage.deleteSchema);
	// absent, getSchema finds none and the first producer registers one.
	SkipSchemaLocator = "schema-locator"
	// SkipLiveBrokers: /loadbalance/brokers and /loadbalance/leader, the registrations of
	// running brokers.
	SkipLiveBrokers = "live-brokers"
	// SkipBundleOwnership: everything below /namespace, the bundle ownership of running
	// brokers.
	SkipBundleOwnership = "bundle-ownership"
	// SkipLoadStatistics: /loadbalance/bundle-data and broker-time-average, load reports of
	// the old brokers, stale in a new cluster; brokers rebuild them.
	// (/loadbalance/resource-quota is restored: it holds the quotas admins set with
	// `pulsar-admin resource-quotas`, ResourceQuotasBase, read by BundlesQuotas.)
	SkipLoadStatistics = "load-statistics"
	// SkipMarker: a restore marker in the archive (the source was itself restored).
	SkipMarker = "restore-marker"
)

// SkipReasons lists every reason, in a stable order.
var SkipReasons = []string{SkipRoot, SkipZooKeeper, SkipBookKeeper, SkipBookKeeperBound, SkipSchemaLocator, SkipLiveBrokers, SkipBundleOwnership, SkipLoadStatistics, SkipMarker}

// BookKeeperBoundRoots are the subtrees SkipBookKeeperBound leaves out, roots included.
var BookKeeperBoundRoots = []string{"/pulsar/functions", "/pulsar/packages", "/stream"}

// skipRules maps subtree roots to their reason; the subtree root itself is skipped too.
var skipRules = func() []skipRule {
	rules := []skipRule{{"/zookeeper", SkipZooKeeper}, {LedgersRoot, SkipBookKeeper}}
	for _, r := range BookKeeperBoundRoots {
		rules = append(rules, skipRule{r, SkipBookKeeperBound})
	}
	return append(rules,
		skipRule{"/loadbalance/brokers", SkipLiveBrokers},
		skipRule{"/loadbalance/leader", SkipLiveBrokers},
		skipRule{"/loadbalance/bundle-data", SkipLoadStatistics},
		skipRule{"/loadbalance/broker-time-average", SkipLoadStatistics},
		skipRule{MarkerPath, SkipMarker})
}()

type skipRule struct{ root, reason string }

// SkipReason tells whether a restore leaves path alone, and why. The same rule decides what
// Apply does not create and what Clear does not delete.
func SkipReason(path string) (reason string, skip bool) {
	if path == "/" {
		return SkipRoot, true
	}
	for _, r := range skipRules {
		if znode.Under(path, r.root) {
			return r.reason, true
		}
	}
	if strings.HasPrefix(path, "/namespace/") {
		return SkipBundleOwnership, true
	}
	if isSchema(path) {
		return SkipSchemaLocator, true
	}
	return "", false
}

// skipUndecoded tells whether a record is skipped without its data being needed: every
// skipped one but schema locators, whose ledgers the plan reports and the floor covers.
func skipUndecoded(path string) bool {
	reason, skip := SkipReason(path)
	return skip && reason != SkipSchemaLocator
}

// ErrInvalidInput is wrapped by errors about the restore's input (restorePoint,
// restoreVersion); retrying cannot fix them.
var ErrInvalidInput = errors.New("invalid restore input")

// ResolvePoint turns a restorePoint into the full object URL of the archive: a URL
// (s3a://, s3://, file://) is checked and returned as is; a bare key, such as
// "pulsar-backup-1700000000000.tar.gz", is taken relative to bucket (restore.bucket, or
// backup.bucket when that is empty).
func ResolvePoint(point, bucket string) (string, error) {
	point = strings.TrimSpace(point)
	if point == "" {
		return "", fmt.Errorf("%w: restorePoint is empty", ErrInvalidInput)
	}
	if !strings.Contains(point, "://") {
		if bucket == "" {
			return "", fmt.Errorf("%w: restorePoint %q is a bare key and no bucket is configured", ErrInvalidInput, point)
		}
		loc, err := storage.ParseURL(bucket)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		point = loc.URL(strings.TrimPrefix(point, "/"))
	}
	if _, _, err := storage.SplitObjectURL(point); err != nil {
		return "", fmt.Errorf("%w: restorePoint: %w", ErrInvalidInput, err)
	}
	return point, nil
}

// CheckVersion checks a restoreVersion: any non-empty string without control characters,
// at most 128 bytes (it goes into the marker and the workflow ID's hash).
func CheckVersion(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%w: restoreVersion is empty", ErrInvalidInput)
	}
	if len(v) > 128 {
		return fmt.Errorf("%w: restoreVersion is longer than 128 bytes", ErrInvalidInput)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: restoreVersion contains a control character", ErrInvalidInput)
		}
	}
	return nil
}

func cleanMLPath(p string) string { return pulsarpath.NewLayout(p).ManagedLedgerPath() }

// ErrUnrestorable is wrapped by errors about an archive that is well-formed but that a
// restore cannot apply (a managed-ledger payload that does not decode, say). Retrying cannot
// fix it.
var ErrUnrestorable = errors.New("archive cannot be restored")
