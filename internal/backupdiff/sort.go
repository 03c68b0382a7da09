package backupdiff

// An external sort of entries by role and path (compareKeys), in bounded memory: entries are encoded
// into an arena of at most budget bytes; a full arena is sorted and written to a temporary
// file (a run); at the end the runs are merged, at most maxFanIn at a time, into one sorted
// stream.
// Temporary files are unlinked as soon as they are created, so nothing is left behind
// whatever happens to the process; they live until closed.

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
)

const (
	// defaultBudget is the arena's size: memory per archive being sorted.
	defaultBudget = 8 << 20
	// maxFanIn is the most runs merged at once (one open file and one read buffer each).
	maxFanIn = 64
	// runBuffer is the read and write buffer per run file.
	runBuffer = 64 << 10
	// maxEncoded bounds one encoded entry read back from a run: a path, 1 MiB of document
	// and a managed ledger's ledger ids. A larger length means the run file is damaged.
	maxEncoded = 64 << 20
)

// span is one encoded entry in the arena.
type span struct{ start, end int }

type sorter struct {
	dir    string
	budget int
	arena  []byte
	spans  []span
	runs   []*os.File
	// fanIn is the most runs merged at once (maxFanIn; tests lower it).
	fanIn int
}

func newSorter(dir string, budget int) *sorter {
	if budget <= 0 {
		budget = defaultBudget
	}
	return &sorter{dir: dir, budget: budget, fanIn: maxFanIn, arena: make([]byte, 0, budget)}
}

// add encodes e into the arena, writing a run first when e would not fit: the arena keeps
// its capacity (only an entry larger than the budget grows it).
func (s *sorter) add(e *entry) error {
	if len(s.arena) > 0 && len(s.arena)+e.maxEncodedSize() > cap(s.arena) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	start := len(s.arena)
	s.arena = appendEntry(s.arena, e)
	s.spans = append(s.spans, span{start, len(s.arena)})
	return nil
}

func (s *sorter) sortArena() {
	slices.SortFunc(s.spans, func(a, b span) int {
		ka, _ := entryKey(s.arena[a.start:a.end])
		kb, _ := entryKey(s.arena[b.start:b.end])
		return compareKeys(ka, kb)
	})
}

// flush sorts the arena and writes it out as a run.
func (s *sorter) flush() error {
	if len(s.spans) == 0 {
		return nil
	}
	s.sortArena()
	f, w, err := s.newRun()
	if err != nil {
		return err
	}
	for _, sp := range s.spans {
		if err := writeRecord(w, s.arena[sp.start:sp.end]); err != nil {
			f.Close()
			return err
		}
	}
	if err := s.finishRun(f, w); err != nil {
		return err
	}
	s.arena, s.spans = s.arena[:0], s.spans[:0]
	return nil
}

// newRun creates an unlinked temporary file.
func (s *sorter) newRun() (*os.File, *bufio.Writer, error) {
	f, err := os.CreateTemp(s.dir, "diff-run-*")
	if err != nil {
		return nil, nil, fmt.Errorf("diff: temporary file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("diff: temporary file: %w", err)
	}
	return f, bufio.NewWriterSize(f, runBuffer), nil
}

func (s *sorter) finishRun(f *os.File, w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("diff: write temporary file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("diff: temporary file: %w", err)
	}
	s.runs = append(s.runs, f)
	return nil
}

func writeRecord(w *bufio.Writer, rec []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(rec)))]); err != nil {
		return fmt.Errorf("diff: write temporary file: %w", err)
	}
	if _, err := w.Write(rec); err != nil {
		return fmt.Errorf("diff: write temporary file: %w", err)
	}
	return nil
}

// close releases the runs (and with them their disk space).
func (s *sorter) close() {
	for _, f := range s.runs {
		f.Close()
	}
	s.runs = nil
}

// entryIter yields entries in path order; next returns io.EOF after the last.
type entryIter interface {
	next() (entry, error)
}

// sorted ends the adding and returns the entries in path order. An archive that fits in the
// arena is never written to disk.
func (s *sorter) sorted() (entryIter, error) {
	if len(s.runs) == 0 {
		s.sortArena()
		return &memIter{s: s}, nil
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	s.arena, s.spans = nil, nil // the merge needs only the read buffers
	for len(s.runs) > s.fanIn {
		if err := s.mergeRuns(s.fanIn); err != nil {
			return nil, err
		}
	}
	m, err := newMerger(s.runs)
	if err != nil {
		return nil, err
	}
	return &mergeIter{m: m}, nil
}

// mergeRuns merges the first n runs into one, appended after the others.
func (s *sorter) mergeRuns(n int) error {
	m, err := newMerger(s.runs[:n])
	if err != nil {
		return err
	}
	f, w, err := s.newRun()
	if err != nil {
		return err
	}
	for {
		rec, err := m.next()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = writeRecord(w, rec)
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	for _, r := range s.runs[:n] {
		r.Close()
	}
	s.runs = s.runs[n:]
	return s.finishRun(f, w)
}

type memIter struct {
	s *sorter
	i int
}

func (it *memIter) next() (entry, error) {
	if it.i == len(it.s.spans) {
		return entry{}, io.EOF
	}
	sp := it.s.spans[it.i]
	it.i++
	return decodeEntry(it.s.arena[sp.start:sp.end])
}

type mergeIter struct{ m *merger }

func (it *mergeIter) next() (entry, error) {
	rec, err := it.m.next()
	if err != nil {
		return entry{}, err
	}
	return decodeEntry(rec)
}

// merger merges sorted runs of encoded entries.
type merger struct {
	h runHeap
	// last is the reader whose record next returned: it moves on at the next call, so that
	// the record stays valid until then.
	last *runReader
}

func newMerger(files []*os.File) (*merger, error) {
	m := &merger{}
	for _, f := range files {
		r := &runReader{r: bufio.NewReaderSize(f, runBuffer)}
		ok, err := r.advance()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, r)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// next returns the next encoded entry in path order; it is valid until the next call.
func (m *merger) next() ([]byte, error) {
	if m.last != nil {
		ok, err := m.last.advance()
		switch {
		case err != nil:
			return nil, err
		case ok:
			heap.Fix(&m.h, 0)
		default:
			heap.Pop(&m.h)
		}
		m.last = nil
	}
	if len(m.h) == 0 {
		return nil, io.EOF
	}
	m.last = m.h[0]
	return m.last.rec, nil
}

type runReader struct {
	r   *bufio.Reader
	rec []byte
	key []byte
}

// advance reads the next record; false at the end of the run.
func (r *runReader) advance() (bool, error) {
	n, err := binary.ReadUvarint(r.r)
	if err == io.EOF {
		return false, nil
	}
	if err != nil || n > maxEncoded {
		return false, fmt.Errorf("diff: read temporary file: %w", cmpErr(err, errBadEntry))
	}
	if uint64(cap(r.rec)) < n {
		r.rec = make([]byte, n)
	}
	r.rec = r.rec[:n]
	if _, err := io.ReadFull(r.r, r.rec); err != nil {
		return false, fmt.Errorf("diff: read temporary file: %w", err)
	}
	k, ok := entryKey(r.rec)
	if !ok {
		return false, fmt.Errorf("diff: read temporary file: %w", errBadEntry)
	}
	r.key = k
	return true, nil
}

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return compareKeys(h[i].key, h[j].key) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
