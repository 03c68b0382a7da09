// Package archive is the backup format: a stream of znode records (JSON Lines) and a
// manifest, packed as a tar.gz that an operator can open with tar, gunzip and jq. The format
// is specified in docs/FORMAT.md; this package is its only reader and writer.
//
// Writing and reading are streams: neither side ever holds more than one record in memory.
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

const (
	// FormatVersion is written to every manifest; readers refuse any other.
	FormatVersion = 1
	// Kind identifies archives written by this tool.
	Kind = "pulsar-metadata-backup"
	// ManifestName and StreamName are the two tar entries, in this order.
	ManifestName = "manifest.json"
	StreamName   = "znodes.jsonl"
	// maxManifestSize bounds what a reader accepts for manifest.json.
	maxManifestSize = 1 << 20
	// maxLineSize bounds one record line: 1 MiB of data is 1.4 MB in base64, plus path,
	// ACL and stat.
	maxLineSize = 4 << 20
)

// Manifest describes one backup. Zxids are hex strings ("0x1a2b") as ZooKeeper prints them.
type Manifest struct {
	FormatVersion int    `json:"formatVersion"`
	Kind          string `json:"kind"`
	ToolVersion   string `json:"toolVersion"`
	// Source is the ZooKeeper ensemble that was dumped, as configured (no credentials).
	Source            []string  `json:"source"`
	ManagedLedgerPath string    `json:"managedLedgerPath"`
	StartTime         time.Time `json:"startTime"`
	EndTime           time.Time `json:"endTime"`
	// ZxidStart is the server's last zxid after a sync before the walk, ZxidEnd after it.
	// Every change up to ZxidStart is in the backup; changes between the two may or may not be.
	ZxidStart string `json:"zxidStart"`
	ZxidEnd   string `json:"zxidEnd"`
	// MaxZxid is the highest czxid/mzxid/pzxid among the dumped znodes.
	MaxZxid string `json:"maxZxid"`
	result.Counts
	// StreamBytes is the size of znodes.jsonl, StreamSHA256 its SHA-256.
	StreamBytes  int64  `json:"streamBytes"`
	StreamSHA256 string `json:"streamSha256"`
}

// Zxid renders a zxid as ZooKeeper prints it.
func Zxid(z int64) string { return fmt.Sprintf("0x%x", z) }

// StreamWriter writes records as JSON Lines and keeps the count, size and SHA-256 of what it
// wrote.
type StreamWriter struct {
	w     *bufio.Writer
	h     hash.Hash
	enc   *json.Encoder
	count int64
	bytes int64
	data  int64
}

// NewStreamWriter writes to w; call Flush before reading w's result.
func NewStreamWriter(w io.Writer) *StreamWriter {
	sw := &StreamWriter{h: sha256.New()}
	sw.w = bufio.NewWriterSize(io.MultiWriter(w, sw.h, (*counter)(&sw.bytes)), 256<<10)
	sw.enc = json.NewEncoder(sw.w)
	sw.enc.SetEscapeHTML(false)
	return sw
}

type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// Write appends one record.
func (sw *StreamWriter) Write(r znode.Record) error {
	if r.ACL == nil {
		r.ACL = []znode.ACL{}
	}
	if err := sw.enc.Encode(&r); err != nil {
		return fmt.Errorf("write record %s: %w", r.Path, err)
	}
	sw.count++
	sw.data += int64(len(r.Data))
	return nil
}

// Flush writes out buffered records.
func (sw *StreamWriter) Flush() error { return sw.w.Flush() }

// Count, Bytes, DataBytes and SHA256 describe what was written (after Flush).
func (sw *StreamWriter) Count() int64     { return sw.count }
func (sw *StreamWriter) Bytes() int64     { return sw.bytes }
func (sw *StreamWriter) DataBytes() int64 { return sw.data }
func (sw *StreamWriter) SHA256() string   { return hex.EncodeToString(sw.h.Sum(nil)) }

// WriteArchive writes the tar.gz: manifest.json, then the stream of streamSize bytes read
// from stream. It returns the size of the uncompressed tar. The manifest's StreamBytes must
// equal streamSize.
func WriteArchive(w io.Writer, m Manifest, stream io.Reader, streamSize int64) (tarSize int64, err error) {
	if m.StreamBytes != streamSize {
		return 0, fmt.Errorf("write archive: manifest says %d stream bytes, stream has %d", m.StreamBytes, streamSize)
	}
	m.FormatVersion = FormatVersion
	m.Kind = Kind
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("write archive: manifest: %w", err)
	}
	mj = append(mj, '\n')
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return 0, err
	}
	var tarBytes counter
	tw := tar.NewWriter(io.MultiWriter(gz, &tarBytes))
	mod := m.EndTime
	if mod.IsZero() {
		mod = time.Now()
	}
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mj)))); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	if _, err := tw.Write(mj); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	if err := tw.WriteHeader(hdr(StreamName, streamSize)); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	n, err := io.Copy(tw, stream)
	if err != nil {
		return 0, fmt.Errorf("write archive: copy stream: %w", err)
	}
	if n != streamSize {
		return 0, fmt.Errorf("write archive: stream is %d bytes, expected %d", n, streamSize)
	}
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	return int64(tarBytes), nil
}

// ErrCorrupt is wrapped by every error that says the archive itself is bad (as opposed to
// an I/O failure reading it). Retrying cannot fix it.
var ErrCorrupt = errors.New("corrupt archive")

func corrupt(format string, args ...interface{}) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Reader reads an archive and verifies it as it goes: the manifest first, then each record,
// and at the end the stream's size, count and SHA-256 against the manifest. A record is
// only trustworthy once Next has returned io.EOF: callers that must not act on a bad
// archive read it through once (Verify) before acting.
type Reader struct {
	gz       *gzip.Reader
	tr       *tar.Reader
	manifest Manifest
	stream   *bufio.Reader
	h        hash.Hash
	read     int64
	count    int64
	done     bool
}

// NewReader opens an archive and reads and checks its manifest.
func NewReader(r io.Reader) (*Reader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, corrupt("not gzip: %v", err)
	}
	gz.Multistream(false)
	ar := &Reader{gz: gz, tr: tar.NewReader(gz), h: sha256.New()}
	hdr, err := ar.nextEntry()
	if err != nil {
		return nil, err
	}
	if hdr.Name != ManifestName {
		return nil, corrupt("first entry is %q, want %s", hdr.Name, ManifestName)
	}
	if hdr.Size > maxManifestSize {
		return nil, corrupt("%s is %d bytes, over the %d limit", ManifestName, hdr.Size, maxManifestSize)
	}
	raw, err := io.ReadAll(io.LimitReader(ar.tr, maxManifestSize))
	if err != nil {
		return nil, readErr(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ar.manifest); err != nil {
		return nil, corrupt("%s: %v", ManifestName, err)
	}
	if err := ar.manifest.check(); err != nil {
		return nil, err
	}
	hdr, err = ar.nextEntry()
	if err != nil {
		return nil, err
	}
	if hdr.Name != StreamName {
		return nil, corrupt("second entry is %q, want %s", hdr.Name, StreamName)
	}
	if hdr.Size != ar.manifest.StreamBytes {
		return nil, corrupt("%s is %d bytes, manifest says %d", StreamName, hdr.Size, ar.manifest.StreamBytes)
	}
	ar.stream = bufio.NewReaderSize(io.TeeReader(ar.tr, ar.h), 256<<10)
	return ar, nil
}

// ReadManifest reads only the manifest of an archive: it is the first entry, so this reads a
// few kilobytes whatever the archive's size.
func ReadManifest(r io.Reader) (Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Manifest{}, corrupt("not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return Manifest{}, readErr(err)
	}
	if hdr.Name != ManifestName || hdr.Size > maxManifestSize {
		return Manifest{}, corrupt("first entry is %q (%d bytes), want %s", hdr.Name, hdr.Size, ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, maxManifestSize)).Decode(&m); err != nil {
		return Manifest{}, corrupt("%s: %v", ManifestName, err)
	}
	return m, m.check()
}

func (m Manifest) check() error {
	if m.Kind != Kind {
		return corrupt("manifest kind %q, want %q", m.Kind, Kind)
	}
	if m.FormatVersion != FormatVersion {
		return corrupt("format version %d, this tool reads %d", m.FormatVersion, FormatVersion)
	}
	if m.Znodes < 0 || m.StreamBytes < 0 || len(m.StreamSHA256) != 64 {
		return corrupt("manifest counts or checksum invalid")
	}
	return nil
}

func (ar *Reader) nextEntry() (*tar.Header, error) {
	hdr, err := ar.tr.Next()
	if err == io.EOF {
		return nil, corrupt("archive ends early")
	}
	if err != nil {
		return nil, readErr(err)
	}
	if err := checkEntryName(hdr.Name); err != nil {
		return nil, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, corrupt("entry %q is not a regular file", hdr.Name)
	}
	return hdr, nil
}

// checkEntryName refuses names that could escape a directory if someone extracts the
// archive, even though this package never writes entries to disk.
func checkEntryName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return corrupt("entry name %q is not a plain relative name", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return corrupt("entry name %q escapes the archive", name)
		}
	}
	return nil
}

// readErr classifies errors from gzip/tar: truncation and checksum failures are corruption.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrHeader) {
		return corrupt("%v", err)
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return corrupt("%v", err)
	}
	return fmt.Errorf("read archive: %w", err)
}

// Manifest is the archive's manifest, checked for kind and version.
func (ar *Reader) Manifest() Manifest { return ar.manifest }

// Next returns the next record, validated (path, size, mode, ACL). After the last one it
// checks the stream against the manifest and returns io.EOF only if everything matches.
func (ar *Reader) Next() (znode.Record, error) {
	line, err := ar.NextLine()
	if err != nil {
		return znode.Record{}, err
	}
	rec, _, err := DecodeLine(line, ar.count, nil)
	return rec, err
}

// NextLine returns the next record's line, not decoded: callers that decode lines
// concurrently (DecodeLine) read them with this. The line is the caller's to keep. Lines
// count towards the end-of-stream checks as records do: after the last one NextLine returns
// io.EOF only if the stream's size, count and SHA-256 match the manifest.
func (ar *Reader) NextLine() ([]byte, error) {
	if ar.done {
		return nil, io.EOF
	}
	line, err := readLine(ar.stream)
	if err == io.EOF {
		return nil, ar.finish()
	}
	if err != nil {
		return nil, err
	}
	ar.read += int64(len(line))
	ar.count++
	return line, nil
}

// DecodeLine decodes and validates one record line (see NextLine), record number n (from 1)
// of its archive, which errors name; it is safe to call from many goroutines. If skip is set and accepts the record's path, the record is neither
// decoded nor validated: it is returned with only Path set, and skipped true. The path is
// read from the start of the line, where StreamWriter puts it; a line that does not start
// so, or whose path has JSON escapes, is decoded before skip is asked. Skipping is for
// archives Verify has accepted: skipped records are not checked.
func DecodeLine(line []byte, n int64, skip func(path string) bool) (rec znode.Record, skipped bool, err error) {
	if skip != nil {
		if p, ok := leadingPath(line); ok && skip(p) {
			return znode.Record{Path: p}, true, nil
		}
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return znode.Record{}, false, corrupt("record %d: %v", n, err)
	}
	if err := ValidateRecord(rec); err != nil {
		return znode.Record{}, false, corrupt("record %d: %v", n, err)
	}
	return rec, skip != nil && skip(rec.Path), nil
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineSize {
			return nil, corrupt("a record line is over %d bytes", maxLineSize)
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(buf) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, corrupt("last record line is not terminated")
		default:
			return nil, readErr(err)
		}
	}
}

func (ar *Reader) finish() error {
	m := ar.manifest
	if ar.read != m.StreamBytes {
		return corrupt("stream has %d bytes, manifest says %d", ar.read, m.StreamBytes)
	}
	if ar.count != m.Znodes {
		return corrupt("stream has %d records, manifest says %d", ar.count, m.Znodes)
	}
	if sum := hex.EncodeToString(ar.h.Sum(nil)); sum != m.StreamSHA256 {
		return corrupt("stream SHA-256 %s does not match manifest %s", sum, m.StreamSHA256)
	}
	if _, err := ar.tr.Next(); err != io.EOF {
		if err != nil {
			return readErr(err)
		}
		return corrupt("unexpected entry after %s", StreamName)
	}
	// Drain to the gzip trailer so its CRC and length are checked too.
	if _, err := io.Copy(io.Discard, ar.gz); err != nil {
		return readErr(err)
	}
	ar.done = true
	return io.EOF
}

// ValidateRecord checks what a restore relies on: a valid path, data within ZooKeeper's
// limit, a known mode and a usable ACL.
func ValidateRecord(r znode.Record) error {
	if err := znode.ValidatePath(r.Path); err != nil {
		return err
	}
	if znode.Under(r.Path, "/zookeeper") {
		return fmt.Errorf("%s: ZooKeeper's own subtree is never in a backup", r.Path)
	}
	if len(r.Data) > znode.MaxDataSize {
		return fmt.Errorf("%s: %d bytes of data, over ZooKeeper's %d limit", r.Path, len(r.Data), znode.MaxDataSize)
	}
	switch r.Mode {
	case znode.ModePersistent, znode.ModeContainer:
	case znode.ModeTTL:
		if r.TTL <= 0 {
			return fmt.Errorf("%s: TTL node without a positive ttl", r.Path)
		}
	default:
		return fmt.Errorf("%s: mode %q cannot be restored", r.Path, r.Mode)
	}
	if len(r.ACL) == 0 {
		return fmt.Errorf("%s: empty ACL", r.Path)
	}
	for _, a := range r.ACL {
		if a.Perms <= 0 || a.Perms > 31 || a.Scheme == "" {
			return fmt.Errorf("%s: invalid ACL entry %+v", r.Path, a)
		}
	}
	return nil
}

// Verify reads a whole archive and checks it, returning its manifest. Nothing is trusted
// until this returns nil.
func Verify(r io.Reader, fn func(znode.Record) error) (Manifest, error) {
	ar, err := NewReader(r)
	if err != nil {
		return Manifest{}, err
	}
	for {
		rec, err := ar.Next()
		if err == io.EOF {
			return ar.Manifest(), nil
		}
		if err != nil {
			return Manifest{}, err
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return Manifest{}, err
			}
		}
	}
}
