package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// MarkerPath is the znode where a restore records itself in the target.
const MarkerPath = "/metadata-restore"

// ToolName is the marker's "tool": a marker with another value was not written by this tool.
const ToolName = "pulsar-metadata-backup"

// Marker states. A restore writes its marker as StateApplying before its first other write,
// and sets StateComplete after its last.
const (
	StateApplying = "applying"
	StateComplete = "complete"
)

// Marker is the JSON content of MarkerPath (see docs/RESTORE.md). It holds no secrets.
type Marker struct {
	Tool           string `json:"tool"`
	ToolVersion    string `json:"toolVersion"`
	State          string `json:"state"`
	RestorePoint   string `json:"restorePoint"`
	RestoreVersion string `json:"restoreVersion"`
	// WorkflowID and RunID are the Temporal run that wrote the marker last.
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// StartedAt is when the restore began writing; CompletedAt when it finished.
	StartedAt   time.Time   `json:"startedAt"`
	CompletedAt *time.Time  `json:"completedAt,omitempty"`
	Archive     ArchiveInfo `json:"archive"`
	// Created is the number of znodes the restore wrote (complete markers only).
	Created int64 `json:"created"`
	// Replaced is the earlier restore this one replaces, if any; ClearedAt is set once its
	// znodes were deleted, Cleared their number.
	Replaced  *Previous  `json:"replaced,omitempty"`
	ClearedAt *time.Time `json:"clearedAt,omitempty"`
	Cleared   int64      `json:"cleared,omitempty"`
}

// ArchiveInfo identifies the archive a restore applied.
type ArchiveInfo struct {
	// SHA256 is the hex SHA-256 of the whole .tar.gz object; StreamSHA256 the manifest's.
	SHA256            string    `json:"sha256"`
	StreamSHA256      string    `json:"streamSha256"`
	Znodes            int64     `json:"znodes"`
	BackupTime        time.Time `json:"backupTime"`
	ManagedLedgerPath string    `json:"managedLedgerPath"`
}

// Previous names an earlier restore.
type Previous struct {
	RestorePoint   string     `json:"restorePoint"`
	RestoreVersion string     `json:"restoreVersion"`
	State          string     `json:"state"`
	CompletedAt    *time.Time `json:"completedAt,omitempty"`
}

// Same reports whether the marker is for the pair (restorePoint, restoreVersion).
func (m *Marker) Same(point, version string) bool {
	return m != nil && m.RestorePoint == point && m.RestoreVersion == version
}

func (m *Marker) previous() *Previous {
	return &Previous{RestorePoint: m.RestorePoint, RestoreVersion: m.RestoreVersion, State: m.State, CompletedAt: m.CompletedAt}
}

var openACL = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}

// markerACL is the marker's ACL: with zookeeper.auth, all rights for the session's own
// authenticated identity and read for everyone (operators read it with no credentials);
// without, open. The identity is given as the "auth" scheme, which the server replaces with
// the ids the session authenticated as, and refuses (InvalidACL) for a session that has none
// (PrepRequestProcessor.fixupACL). A "digest:user:hash" id would be stored as given, proving
// nothing.
func markerACL(c metastore.Store) []znode.ACL {
	if c.Identity() != "" {
		return []znode.ACL{{Perms: 31, Scheme: "auth", ID: ""}, {Perms: znode.PermRead, Scheme: "world", ID: "anyone"}}
	}
	return openACL
}

// verifyMarker reads the marker back after Begin wrote it: it must hold m, and when Begin
// created it (created) with zookeeper.auth, its ACL must name this session's digest identity:
// the server expanded the "auth" entry to what the session authenticated as. (ZooKeeper
// accepts any digest password at login, so this proves the server took the credentials, not
// that they are the right ones; the plan's AuthMismatch checks those against the archive.)
// Later marker writes need that identity's WRITE right. A marker an earlier restore created
// keeps the ACL it was given.
func verifyMarker(ctx context.Context, c metastore.Store, m Marker, created bool) error {
	rec, found, err := c.ReadZnode(ctx, MarkerPath)
	if err != nil {
		return fmt.Errorf("read back restore marker: %w", err)
	}
	var got Marker
	if !found || json.Unmarshal(rec.Data, &got) != nil || got.RunID != m.RunID || got.WorkflowID != m.WorkflowID {
		return fmt.Errorf("read back restore marker: %w", ErrTargetChanged)
	}
	if id := c.Identity(); created && id != "" && !slices.ContainsFunc(rec.ACL, func(a znode.ACL) bool { return a.Scheme == "digest" && a.ID == id }) {
		return fmt.Errorf("read back restore marker: its ACL %v does not name this session's identity: the server did not take zookeeper.auth", rec.ACL)
	}
	return nil
}

// ErrTargetChanged is wrapped when the marker changed under a running restore: another
// restore started on the same target. Retrying cannot fix it.
var ErrTargetChanged = errors.New("the target's restore marker changed during the restore")

// ReadMarker reads the marker. It returns nil and version -1 when there is none; foreign is
// true when MarkerPath holds something this tool did not write.
func ReadMarker(ctx context.Context, c metastore.Store) (m *Marker, version int32, foreign bool, err error) {
	rec, found, err := c.ReadZnode(ctx, MarkerPath)
	if err != nil {
		return nil, -1, false, err
	}
	if !found {
		return nil, -1, false, nil
	}
	var mk Marker
	if json.Unmarshal(rec.Data, &mk) != nil || mk.Tool != ToolName {
		return nil, rec.Stat.Version, true, nil
	}
	return &mk, rec.Stat.Version, false, nil
}

// writeMarker creates the marker (version -1) or replaces it if its version is still
// version. When the write's outcome is unknown (a conflict after a lost reply) it reads the
// marker back: finding exactly m is success.
func writeMarker(ctx context.Context, c metastore.Store, m Marker, version int32) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode marker: %w", err)
	}
	if version < 0 {
		_, err = c.CreateOne(ctx, znode.Record{Path: MarkerPath, Data: data, ACL: markerACL(c), Mode: znode.ModePersistent})
	} else {
		_, err = c.SetZnodeData(ctx, MarkerPath, data, version)
	}
	if err == nil {
		return nil
	}
	cur, found, rerr := c.ReadZnode(ctx, MarkerPath)
	switch {
	case rerr != nil:
		return fmt.Errorf("write marker %s: %w", MarkerPath, err)
	case found && string(cur.Data) == string(data):
		return nil
	case found && (version < 0 || cur.Stat.Version != version):
		return fmt.Errorf("write marker %s: %w", MarkerPath, ErrTargetChanged)
	}
	return fmt.Errorf("write marker %s: %w", MarkerPath, err)
}

// Owner is the run a restore's writes belong to: Apply and Mark check that the marker still
// names it, so that two restores never write to one target at once.
type Owner struct {
	WorkflowID, RunID string
}

func checkOwner(ctx context.Context, c metastore.Store, o Owner) (*Marker, int32, error) {
	m, v, _, err := ReadMarker(ctx, c)
	if err != nil {
		return nil, 0, fmt.Errorf("read restore marker: %w", err)
	}
	if m == nil || m.WorkflowID != o.WorkflowID || m.RunID != o.RunID {
		return nil, 0, fmt.Errorf("%w: it no longer names run %s/%s", ErrTargetChanged, o.WorkflowID, o.RunID)
	}
	return m, v, nil
}

// MarkInput completes a restore's marker.
type MarkInput struct {
	Owner       Owner
	CompletedAt time.Time
	Created     int64
}

// Mark sets the marker of owner's restore to StateComplete with the completion time and the
// number of znodes created. Marking an already complete marker of the same run again does
// nothing.
func Mark(ctx context.Context, c metastore.Store, in MarkInput) (Marker, error) {
	m, v, err := checkOwner(ctx, c, in.Owner)
	if err != nil {
		return Marker{}, err
	}
	if m.State == StateComplete {
		return *m, nil
	}
	done := in.CompletedAt.UTC()
	m.State, m.CompletedAt, m.Created = StateComplete, &done, in.Created
	if err := writeMarker(ctx, c, *m, v); err != nil {
		return Marker{}, err
	}
	return *m, nil
}
