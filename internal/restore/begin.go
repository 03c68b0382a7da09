package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
)

// BeginInput is what Begin needs to claim the target for one run.
type BeginInput struct {
	RestorePoint, RestoreVersion string
	WorkflowID, RunID            string
	ToolVersion                  string
	StartedAt                    time.Time
	Archive                      ArchiveInfo
	// Check is the gate's result this run acts on; Begin fails with ErrTargetChanged when
	// the marker is no longer what the gate saw.
	Check CheckResult
	// TempDir holds the list of znodes to clear while clearing ("" for the OS default).
	TempDir string
}

// BeginResult says what Begin did.
type BeginResult struct {
	// Replaced is the earlier restore whose znodes were cleared, if any.
	Replaced *Previous `json:"replaced,omitempty"`
	// Configuration is what clearing the configuration store did (ClearConfiguration).
	Configuration *ConfigClearStats `json:"configuration,omitempty"`
	// Deleted counts znodes deleted; Kept those left because they are ancestors of skipped
	// paths (such as /loadbalance), Denied those under a parent whose ACL forbids us to
	// delete (a locked parent, unless the worker authenticates as ZooKeeper's super user).
	// Apply then finds both existing: identical is fine, different fails the apply.
	Deleted int64 `json:"deleted"`
	Kept    int64 `json:"kept"`
	Denied  int64 `json:"denied"`
}

// Begin is a restore's first write. When the gate decided DecisionReplace (or a resumed
// pair's clearing had not finished) it first lists every znode of the target outside the
// skipped paths, which reads the whole target: credentials that cannot read it fail here,
// with the marker as it was. It then writes the marker as StateApplying for this run
// (compare-and-set against the marker the gate saw; with zookeeper.auth its ACL gives this
// identity all rights and everyone else read, and it is read back), deletes the listed
// znodes deepest first, and records in the marker that the clearing is done. A retried Begin
// of the same run continues.
func Begin(ctx context.Context, c metastore.Store, in BeginInput, progress func(Progress)) (BeginResult, error) {
	m, version, foreign, err := ReadMarker(ctx, c)
	if err != nil {
		return BeginResult{}, fmt.Errorf("read restore marker: %w", err)
	}
	if foreign {
		return BeginResult{}, &Refusal{Kind: RefusedForeignMarker, Msg: fmt.Sprintf("%s exists but was not written by %s", MarkerPath, ToolName)}
	}
	var mine Marker
	began := m != nil && m.RunID == in.RunID && m.WorkflowID == in.WorkflowID && m.State == StateApplying
	if began {
		mine = *m // this run began already: a retry
	} else {
		if (m == nil) != (in.Check.Marker == nil) || m != nil && version != in.Check.MarkerVersion {
			return BeginResult{}, fmt.Errorf("begin restore: %w", ErrTargetChanged)
		}
		mine = Marker{
			Tool: ToolName, ToolVersion: in.ToolVersion, State: StateApplying,
			RestorePoint: in.RestorePoint, RestoreVersion: in.RestoreVersion,
			WorkflowID: in.WorkflowID, RunID: in.RunID,
			StartedAt: in.StartedAt.UTC(), Archive: in.Archive,
		}
		switch in.Check.Decision {
		case DecisionReplace:
			mine.Replaced = m.previous()
		case DecisionResume:
			// The same pair again: what it wrote already (cursors' lastActive is StartedAt)
			// must compare equal, so it keeps its start.
			mine.Replaced, mine.ClearedAt, mine.StartedAt = m.Replaced, m.ClearedAt, m.StartedAt
		}
	}
	res := BeginResult{Replaced: mine.Replaced}
	var list *clearList
	if mine.Replaced != nil && mine.ClearedAt == nil {
		if list, err = listToClear(ctx, c, in.TempDir, progress); err != nil {
			return res, err
		}
		defer list.close()
	}
	if !began {
		if err := writeMarker(ctx, c, mine, version); err != nil {
			return res, err
		}
		if err := verifyMarker(ctx, c, mine, version < 0); err != nil {
			return res, err
		}
	}
	if list == nil {
		return res, nil
	}
	st, err := list.deleteAll(ctx, c, progress)
	res.Deleted, res.Kept, res.Denied = st.Deleted, st.Kept, st.Denied
	if err != nil {
		return res, err
	}
	// Clearing takes long; the marker must still name this run before it is rewritten.
	_, version, err = checkOwner(ctx, c, Owner{WorkflowID: in.WorkflowID, RunID: in.RunID})
	if err != nil {
		return res, fmt.Errorf("begin restore: %w", err)
	}
	now := time.Now().UTC()
	mine.ClearedAt = &now
	mine.Cleared = st.Deleted
	if err := writeMarker(ctx, c, mine, version); err != nil {
		return res, err
	}
	return res, nil
}
