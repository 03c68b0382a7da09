package restore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ClearStats counts what Clear did (see BeginResult).
type ClearStats struct {
	Deleted, Kept, Denied int64
}

// Clear deletes every znode of the target outside the skipped paths (SkipReason), the
// marker included among the kept: it lists them (listToClear), then deletes them children
// first (deleteAll).
func Clear(ctx context.Context, c metastore.Store, tempDir string, progress func(Progress)) (ClearStats, error) {
	l, err := listToClear(ctx, c, tempDir, progress)
	if err != nil {
		return ClearStats{}, err
	}
	defer l.close()
	return l.deleteAll(ctx, c, progress)
}

// clearList is the paths to clear, parents first, one per line in a temporary file: memory
// does not grow with the tree, the file does.
type clearList struct {
	f      *os.File
	listed int64
}

// listToClear walks the target and writes the paths outside the skipped paths to a
// temporary file in tempDir ("" for the OS default), parents first, as the walk emits them.
func listToClear(ctx context.Context, c metastore.Store, tempDir string, progress func(Progress)) (*clearList, error) {
	f, err := os.CreateTemp(tempDir, "restore-clear-*.txt")
	if err != nil {
		return nil, fmt.Errorf("clear: %w", err)
	}
	l := &clearList{f: f}
	w := bufio.NewWriterSize(f, 256<<10)
	tick := ticker{fn: progress}
	_, err = c.Walk(ctx, metastore.WalkOptions{Skip: func(p string) bool {
		_, skip := SkipReason(p)
		return skip && p != "/"
	}}, func(r znode.Record) error {
		if r.Path == "/" {
			return nil
		}
		l.listed++
		tick.tick(Progress{Records: l.listed, Path: r.Path})
		_, err := w.WriteString(r.Path + "\n")
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		l.close()
		return nil, fmt.Errorf("clear: list the target: %w", err)
	}
	return l, nil
}

func (l *clearList) close() {
	l.f.Close()
	os.Remove(l.f.Name())
}

// deleteAll deletes the listed paths in reverse order, children first, in batched multi
// requests. Znodes that still have children afterwards (ancestors of skipped paths, or of
// ephemerals) are kept and counted, and so are those whose parent's ACL forbids us to
// delete them.
func (l *clearList) deleteAll(ctx context.Context, c metastore.Store, progress func(Progress)) (ClearStats, error) {
	var st ClearStats
	tick := ticker{fn: progress}
	const batch = 1000
	paths := make([]string, 0, batch)
	flush := func() error {
		ds, err := c.DeleteZnodes(ctx, paths)
		st.Deleted += ds.Deleted + ds.Gone
		st.Kept += ds.Kept
		st.Denied += ds.Denied
		paths = paths[:0]
		tick.tick(Progress{Records: l.listed, Written: st.Deleted})
		if err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		return nil
	}
	err := readLinesBackward(l.f, func(p string) error {
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
