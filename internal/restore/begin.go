package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
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
	// Deleted counts znodes deleted; Kept those left because they are ancestors of skipped
	// paths (such as /loadbalance), Denied those under a parent whose ACL forbids us to
	// delete (a locked parent, unless the worker authenticates as ZooKeeper's super user).
	// Apply then finds both existing: identical is fine, different fails the apply.
	Deleted int64 `json:"deleted"`
	Kept    int64 `json:"kept"`
	Denied  int64 `json:"denied"`
}

// Begin is a restore's first write. It writes the marker as StateApplying for this run
// (compare-and-set against the marker the gate saw), and when the gate decided
// DecisionReplace it then deletes every znode of the target outside the skipped paths,
// deepest first, and records in the marker that the clearing is done. A retried Begin of the
// same run continues; a resumed pair whose clearing had not finished clears again.
func Begin(ctx context.Context, c *zookeeper.Client, in BeginInput, progress func(Progress)) (BeginResult, error) {
	m, version, foreign, err := ReadMarker(ctx, c)
	if err != nil {
		return BeginResult{}, fmt.Errorf("read restore marker: %w", err)
	}
	if foreign {
		return BeginResult{}, &Refusal{Kind: RefusedForeignMarker, Msg: fmt.Sprintf("%s exists but was not written by %s", MarkerPath, ToolName)}
	}
	var mine Marker
	if m != nil && m.RunID == in.RunID && m.WorkflowID == in.WorkflowID && m.State == StateApplying {
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
		if err := writeMarker(ctx, c, mine, version); err != nil {
			return BeginResult{}, err
		}
	}
	res := BeginResult{Replaced: mine.Replaced}
	if mine.Replaced == nil || mine.ClearedAt != nil {
		return res, nil
	}
	st, err := Clear(ctx, c, in.TempDir, progress)
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

// ClearStats counts what Clear did (see BeginResult).
type ClearStats struct {
	Deleted, Kept, Denied int64
}

// Clear deletes every znode of the target outside the skipped paths (SkipReason), the
// marker included among the kept: it walks the target, writes the paths to a temporary file
// (parents first, as the walk emits them) and deletes them in reverse order, children
// first, in batched multi requests. Znodes that still have children afterwards (ancestors
// of skipped paths, or of ephemerals) are kept and counted, and so are those whose parent's
// ACL forbids us to delete them. Memory does not grow with the
// tree; the temporary file does, by one line per znode.
func Clear(ctx context.Context, c *zookeeper.Client, tempDir string, progress func(Progress)) (ClearStats, error) {
	var st ClearStats
	f, err := os.CreateTemp(tempDir, "restore-clear-*.txt")
	if err != nil {
		return st, fmt.Errorf("clear: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	w := bufio.NewWriterSize(f, 256<<10)
	var listed int64
	tick := ticker{fn: progress}
	_, err = c.Walk(ctx, zookeeper.WalkOptions{Skip: func(p string) bool {
		_, skip := SkipReason(p)
		return skip && p != "/"
	}}, func(r znode.Record) error {
		if r.Path == "/" {
			return nil
		}
		listed++
		tick.tick(Progress{Records: listed, Path: r.Path})
		_, err := w.WriteString(r.Path + "\n")
		return err
	})
	if err != nil {
		return st, fmt.Errorf("clear: list the target: %w", err)
	}
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("clear: %w", err)
	}
	const batch = 1000
	paths := make([]string, 0, batch)
	flush := func() error {
		ds, err := c.DeleteZnodes(ctx, paths)
		st.Deleted += ds.Deleted + ds.Gone
		st.Kept += ds.Kept
		st.Denied += ds.Denied
		paths = paths[:0]
		tick.tick(Progress{Records: listed, Written: st.Deleted})
		if err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		return nil
	}
	err = readLinesBackward(f, func(p string) error {
		paths = append(paths, p)
		if len(paths) == batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if len(paths) > 0 {
		if err := flush(); err != nil {
			return st, err
		}
	}
	return st, nil
}

// readLinesBackward calls fn for each '\n'-terminated line of f, last line first.
func readLinesBackward(f *os.File, fn func(string) error) error {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	const chunk = 256 << 10
	buf := make([]byte, 0, chunk)
	var tail []byte // the start of a line whose beginning is in an earlier chunk
	for end > 0 {
		n := int64(chunk)
		if n > end {
			n = end
		}
		end -= n
		buf = buf[:n]
		if _, err := f.ReadAt(buf, end); err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		data := append(buf, tail...)
		// data ends with "\n" except at the very start; emit lines from the back.
		i := len(data)
		if data[i-1] == '\n' {
			i--
		}
		for {
			j := lastNewline(data[:i])
			if j < 0 {
				break
			}
			if err := fn(string(data[j+1 : i])); err != nil {
				return err
			}
			i = j
		}
		tail = append([]byte(nil), data[:i]...)
		buf = make([]byte, 0, chunk)
	}
	if len(tail) > 0 {
		return fn(string(tail))
	}
	return nil
}

func lastNewline(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

// ErrTargetTooLarge is returned by ReadTarget when the target holds more than its limit.
var ErrTargetTooLarge = errors.New("target holds too many znodes to compare")

// ReadTarget reads every znode of the target outside the skipped paths, for MakePlan to
// compare with the archive. A new cluster's target holds few; more than limit fails with
// ErrTargetTooLarge.
func ReadTarget(ctx context.Context, c *zookeeper.Client, limit int) (map[string]znode.Record, error) {
	out := map[string]znode.Record{}
	_, err := c.Walk(ctx, zookeeper.WalkOptions{Skip: func(p string) bool {
		_, skip := SkipReason(p)
		return skip && p != "/"
	}}, func(r znode.Record) error {
		if r.Path == "/" {
			return nil
		}
		if len(out) >= limit {
			return fmt.Errorf("%w: more than %d outside the skipped paths", ErrTargetTooLarge, limit)
		}
		out[r.Path] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the target: %w", err)
	}
	return out, nil
}
