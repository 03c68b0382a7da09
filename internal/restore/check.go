package restore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// BrokersPath is where every running broker registers an ephemeral znode.
const BrokersPath = "/loadbalance/brokers"

// Kinds of Refusal.
const (
	// RefusedClusterRunning: a broker is registered under /loadbalance/brokers.
	RefusedClusterRunning = "ClusterRunning"
	// RefusedManagedLedgers: the target holds managed-ledger metadata and no marker of this
	// tool explains it.
	RefusedManagedLedgers = "TargetHasManagedLedgers"
	// RefusedForeignMarker: MarkerPath holds something this tool did not write.
	RefusedForeignMarker = "ForeignMarker"
	// RefusedConflicts: the target holds znodes the restore would create, with other
	// contents.
	RefusedConflicts = "TargetConflict"
	// RefusedNoBookKeeper: the target has no BookKeeper cluster metadata, where the
	// restore must set the ledger-id floor.
	RefusedNoBookKeeper = "BookKeeperNotInitialized"
	// RefusedLedgerCollision: a restored topic would list a ledger id the target's
	// BookKeeper already has.
	RefusedLedgerCollision = "LedgerIdCollision"
	// RefusedInProgress: the marker names another restore that is still applying, in a run
	// Temporal still has open.
	RefusedInProgress = "RestoreInProgress"
)

// InitClusterCommand is the step a target without BookKeeper metadata needs first.
const InitClusterCommand = "bin/pulsar initialize-cluster-metadata"

// Refusal is the error of a restore the gate refused: the target is not one a restore may
// write to. Nothing was written. Kind is one of the Refused* constants.
type Refusal struct {
	Kind string
	Msg  string
}

func (r *Refusal) Error() string { return "restore refused: " + r.Msg }

// Decision is what the gate says a restore of a pair should do.
type Decision string

const (
	// DecisionFresh: no marker; restore into what is there.
	DecisionFresh Decision = "fresh"
	// DecisionAlreadyRestored: the marker records this pair as complete; nothing to do.
	DecisionAlreadyRestored Decision = "already-restored"
	// DecisionResume: the marker records this pair as applying (an earlier run stopped);
	// apply again, which continues where it stopped.
	DecisionResume Decision = "resume"
	// DecisionReplace: the marker records another pair; clear its znodes, then apply.
	DecisionReplace Decision = "replace"
)

// CheckResult is the gate's answer.
type CheckResult struct {
	Decision Decision `json:"decision"`
	// Marker is the target's marker, nil without one; MarkerVersion its znode's data
	// version (-1 without one), for the compare-and-set of Begin.
	Marker        *Marker `json:"marker,omitempty"`
	MarkerVersion int32   `json:"markerVersion"`
}

// Check is the gate a restore passes before its first write and again just before it
// applies. It reads only. It fails with a *Refusal when
//
//   - a broker is registered under /loadbalance/brokers (the cluster is running);
//   - a znode at MarkerPath was not written by this tool;
//   - a managed-ledger path holds children and there is no marker of this tool: the target
//     is a cluster that has run, not a new one, nor one an earlier restore wrote;
//   - BookKeeper's cluster metadata is not formatted (no /ledgers/INSTANCEID). The restore
//     sets its ledger-id floor under /ledgers, and `pulsar initialize-cluster-metadata`
//     formats BookKeeper only while /ledgers does not exist (PulsarClusterMetadataSetup), so
//     a floor written first would leave BookKeeper unformatted for good. The refusal names
//     the step to run first.
//
// Otherwise it reports the Decision for the pair from the marker. managedLedgerPaths are
// the target's managedLedgerPath and, when known and different, the archive's.
func Check(ctx context.Context, c metastore.Store, point, version string, managedLedgerPaths []string) (CheckResult, error) {
	brokers, _, err := c.ListChildren(ctx, BrokersPath)
	if err != nil {
		return CheckResult{}, fmt.Errorf("check for live brokers: %w", err)
	}
	if len(brokers) > 0 {
		return CheckResult{}, &Refusal{Kind: RefusedClusterRunning, Msg: fmt.Sprintf(
			"the target cluster is running: %d broker(s) registered under %s (%s); stop every broker first", len(brokers), BrokersPath, names(brokers))}
	}
	m, mv, foreign, err := ReadMarker(ctx, c)
	if err != nil {
		return CheckResult{}, fmt.Errorf("read restore marker: %w", err)
	}
	if foreign {
		return CheckResult{}, &Refusal{Kind: RefusedForeignMarker, Msg: fmt.Sprintf(
			"%s exists but was not written by %s", MarkerPath, ToolName)}
	}
	res := CheckResult{Marker: m, MarkerVersion: mv}
	switch {
	case m == nil:
		res.Decision = DecisionFresh
	case m.Same(point, version) && m.State == StateComplete:
		res.Decision = DecisionAlreadyRestored
		return res, nil
	case m.Same(point, version):
		res.Decision = DecisionResume
	default:
		res.Decision = DecisionReplace
	}
	if _, formatted, err := c.ReadZnode(ctx, InstanceIDPath); err != nil {
		return CheckResult{}, fmt.Errorf("check for BookKeeper metadata: %w", err)
	} else if !formatted {
		return CheckResult{}, &Refusal{Kind: RefusedNoBookKeeper, Msg: fmt.Sprintf(
			"the target has no BookKeeper cluster metadata (%s is missing): run `%s` against it first, then restore (the restore sets the ledger-id floor under %s, which must exist first)",
			InstanceIDPath, InitClusterCommand, LedgersRoot)}
	}
	if m != nil {
		return res, nil
	}
	paths := slices.Clone(managedLedgerPaths)
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		p = cleanMLPath(p)
		children, _, err := c.ListChildren(ctx, p)
		if err != nil {
			return CheckResult{}, fmt.Errorf("check for managed ledgers: %w", err)
		}
		if len(children) > 0 {
			found := make([]string, len(children))
			for i, ch := range children {
				found[i] = znode.Join(p, ch)
			}
			return CheckResult{}, &Refusal{Kind: RefusedManagedLedgers, Msg: fmt.Sprintf(
				"the target already holds managed-ledger metadata under %s (%s) and no restore marker at %s; restore only into a new cluster",
				p, names(found), MarkerPath)}
		}
	}
	return res, nil
}

// names lists up to three names and how many more there are.
func names(s []string) string {
	if len(s) <= 3 {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:3], ", "), len(s)-3)
}
