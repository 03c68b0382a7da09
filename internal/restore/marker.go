package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
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

// ErrTargetChanged is wrapped when the marker changed under a running restore: another
// restore started on the same target. Retrying cannot fix it.
var ErrTargetChanged = errors.New("the target's restore marker changed during the restore")

// ReadMarker reads the marker. It returns nil and version -1 when there is none; foreign is
// true when MarkerPath holds something this tool did not write.
func ReadMarker(ctx context.Context, c *zookeeper.Client) (m *Marker, version int32, foreign bool, err error) {
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
func writeMarker(ctx context.Context, c *zookeeper.Client, m Marker, version int32) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode marker: %w", err)
	}
	if version < 0 {
		_, err = c.CreateOne(ctx, znode.Record{Path: MarkerPath, Data: data, ACL: openACL, Mode: znode.ModePersistent})
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
