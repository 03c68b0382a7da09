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
	// FormatVersion is written to every manifest. Readers take it and FormatVersion1.
	FormatVersion = 2
	// FormatVersion1 archives hold one role (the local store) in StreamName, with the
	// role's fields at the top of the manifest; readers present them as one local Role.
	FormatVersion1 = 1
	// Kind identifies archives written by this tool.
	Kind = "pulsar-metadata-backup"
	// ManifestName is the first tar entry; each role's stream follows, in Roles order.
	ManifestName = "manifest.json"
	// StreamName is the local role's stream (and version 1's only one);
	// ConfigurationStreamName the configuration role's.
	StreamName              = "znodes.jsonl"
	ConfigurationStreamName = "configuration-znodes.jsonl"
	// maxManifestSize bounds what a reader accepts for manifest.json.
	maxManifestSize = 1 << 20
	// maxLineSize bounds one record line: 1 MiB of data is 1.4 MB in base64, plus path,
	// ACL and stat.
	maxLineSize = 4 << 20
)

// Roles a store plays in a Pulsar cluster: the local metadata store (metadataStoreUrl:
// managed ledgers, local policies, bookies, load data) and the configuration store
// (configurationMetadataStoreUrl: tenants, clusters, namespace policies, partitioned-topic
// metadata), which is the local one unless configured apart.
const (
	RoleLocal         = "local"
	RoleConfiguration = "configuration"
)

// Manifest describes one backup. Zxids are hex strings ("0x1a2b") as ZooKeeper prints them.
type Manifest struct {
	FormatVersion     int       `json:"formatVersion"`
	Kind              string    `json:"kind"`
	ToolVersion       string    `json:"toolVersion"`
	ManagedLedgerPath string    `json:"managedLedgerPath"`
	StartTime         time.Time `json:"startTime"`
	EndTime           time.Time `json:"endTime"`
	// Counts are the totals over all roles.
	result.Counts
	// Roles are the stores in the archive, each with its own stream, in stream order. A
	// version-1 manifest has none written; readers fill in its one local role.
	Roles []Role `json:"roles,omitempty"`

	// Encryption, when set, says every role's stream is encrypted with age to Recipients: its
	// tar entry is named <stream>.age and holds the ciphertext of the stream the role
	// describes (StreamBytes and StreamSHA256 are the plaintext's). The manifest itself is
	// plaintext. Readers refuse such an archive (ErrEncrypted) until Decrypt has turned it
	// into the plaintext archive.
	Encryption *Encryption `json:"encryption,omitempty"`

	// Version 1 only, at the top level, for its one store; readers of version 2 leave them
	// empty (see Roles).
	Source       []string `json:"source,omitempty"`
	ZxidStart    string   `json:"zxidStart,omitempty"`
	ZxidEnd      string   `json:"zxidEnd,omitempty"`
	MaxZxid      string   `json:"maxZxid,omitempty"`
	StreamBytes  int64    `json:"streamBytes,omitempty"`
	StreamSHA256 string   `json:"streamSha256,omitempty"`
}

// Encryption describes an encrypted archive's streams.
type Encryption struct {
	// Scheme is "age" (age-encryption.org/v1, X25519 recipients).
	Scheme string `json:"scheme"`
	// Recipients are the age public keys the streams are encrypted to.
	Recipients []string `json:"recipients"`
}

// EncryptedSuffix ends the tar entry name of an encrypted stream.
const EncryptedSuffix = ".age"

// Role is one store's part of a backup.
type Role struct {
	// Role is RoleLocal or RoleConfiguration; Stream the tar entry holding its records.
	Role   string `json:"role"`
	Stream string `json:"stream"`
	// Store is "zookeeper" or "etcd"; Source its address as configured, canonical and
	// without credentials ("zk:zk1:2181,zk2:2181/pulsar"); Root the chroot every path in
	// the stream is relative to ("" for none).
	Store  string `json:"store"`
	Source string `json:"source"`
	Root   string `json:"root,omitempty"`
	// Consistency says which moment the stream reflects.
	Consistency Consistency `json:"consistency"`
	result.Counts
	// StreamBytes is the size of the stream, StreamSHA256 its SHA-256.
	StreamBytes  int64  `json:"streamBytes"`
	StreamSHA256 string `json:"streamSha256"`
}

// Consistency is a role's consistency window. ZooKeeper cannot read a tree at one moment:
// a walk sees each znode at some moment between ZxidStart (every change up to it is in) and
// ZxidEnd; MaxZxid is the highest czxid/mzxid/pzxid dumped. etcd reads every key at one
// Revision: a consistent point-in-time copy (PointInTime true).
type Consistency struct {
	PointInTime bool   `json:"pointInTime"`
	ZxidStart   string `json:"zxidStart,omitempty"`
	ZxidEnd     string `json:"zxidEnd,omitempty"`
	MaxZxid     string `json:"maxZxid,omitempty"`
	Revision    int64  `json:"revision,omitempty"`
}

// Role returns the named role, or false when the archive has none such.
func (m Manifest) Role(name string) (Role, bool) {
	for _, r := range m.Roles {
		if r.Role == name {
			return r, true
		}
	}
	return Role{}, false
}

// Local is the local store's role; every archive has one.
func (m Manifest) Local() Role {
	r, _ := m.Role(RoleLocal)
	return r
}

// StreamFor is the tar entry name of a role's stream.
func StreamFor(role string) string {
	if role == RoleConfiguration {
		return ConfigurationStreamName
	}
	return StreamName
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

// Stream is one role's stream file for Write: Size bytes read from R.
type Stream struct {
	R    io.Reader
	Size int64
}

// Write writes a version-2 archive: manifest.json, then each role's stream, in m.Roles
// order (streams[i] is m.Roles[i]'s). With m.Encryption set the streams given are the
// ciphertexts (EncryptStream), written as <stream>.age. It returns the size of the uncompressed tar. Each
// role's StreamBytes must equal its stream's size, and the totals must add up.
func Write(w io.Writer, m Manifest, streams []Stream) (tarSize int64, err error) {
	if len(m.Roles) == 0 || len(streams) != len(m.Roles) {
		return 0, fmt.Errorf("write archive: %d roles, %d streams", len(m.Roles), len(streams))
	}
	m.FormatVersion, m.Kind = FormatVersion, Kind
	m.Source, m.ZxidStart, m.ZxidEnd, m.MaxZxid, m.StreamBytes, m.StreamSHA256 = nil, "", "", "", 0, ""
	if err := m.check(); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	entries := make([]entry, len(streams))
	for i, r := range m.Roles {
		if m.Encryption != nil {
			// The ciphertext's size is the stream's; the manifest's is the plaintext's.
			entries[i] = entry{r.Stream + EncryptedSuffix, streams[i]}
			continue
		}
		if r.StreamBytes != streams[i].Size {
			return 0, fmt.Errorf("write archive: manifest says %d bytes for role %s, stream has %d", r.StreamBytes, r.Role, streams[i].Size)
		}
		entries[i] = entry{r.Stream, streams[i]}
	}
	return writeTar(w, m, entries)
}

// WriteV1 writes a version-1 archive: manifest.json, then the one stream of streamSize
// bytes as StreamName. The backup writes version 2; this stays so that archives of the
// version before can be made for tests of the readers that must keep reading them.
func WriteV1(w io.Writer, m Manifest, stream io.Reader, streamSize int64) (tarSize int64, err error) {
	if m.StreamBytes != streamSize {
		return 0, fmt.Errorf("write archive: manifest says %d stream bytes, stream has %d", m.StreamBytes, streamSize)
	}
	m.FormatVersion, m.Kind, m.Roles = FormatVersion1, Kind, nil
	return writeTar(w, m, []entry{{StreamName, Stream{stream, streamSize}}})
}

type entry struct {
	name string
	Stream
}

func writeTar(w io.Writer, m Manifest, entries []entry) (int64, error) {
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
	for _, e := range entries {
		if err := tw.WriteHeader(hdr(e.name, e.Size)); err != nil {
			return 0, fmt.Errorf("write archive: %w", err)
		}
		n, err := io.Copy(tw, e.R)
		if err != nil {
			return 0, fmt.Errorf("write archive: copy %s: %w", e.name, err)
		}
		if n != e.Size {
			return 0, fmt.Errorf("write archive: %s is %d bytes, expected %d", e.name, n, e.Size)
		}
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

// Reader reads an archive and verifies it as it goes: the manifest first, then the records
// of the roles it was asked for, and at the end of every stream its size, count and
// SHA-256 against the manifest. Streams of roles not asked for are checked the same way
// (size, line count, SHA-256) without decoding their records, and the archive must end
// after the last, with a good gzip trailer. A record is only trustworthy once Next has
// returned io.EOF: callers that must not act on a bad archive read it through once (Verify)
// before acting.
type Reader struct {
	gz       *gzip.Reader
	tr       *tar.Reader
	manifest Manifest
	want     func(role string) bool
	role     int // index in manifest.Roles of the stream being read
	stream   *bufio.Reader
	h        hash.Hash
	read     int64
	count    int64
	done     bool
}

// NewReader opens an archive for its local role's records (the only role of version 1).
func NewReader(r io.Reader) (*Reader, error) { return NewRoleReader(r, RoleLocal) }

// NewRoleReader opens an archive for one role's records. An archive without that role is
// refused (ErrNoRole).
func NewRoleReader(r io.Reader, role string) (*Reader, error) {
	return newReader(r, func(name string) bool { return name == role }, role)
}

// NewAllReader opens an archive for the records of every role, in stream order; Role tells
// whose the last record was.
func NewAllReader(r io.Reader) (*Reader, error) {
	return newReader(r, func(string) bool { return true }, "")
}

// ErrNoRole is wrapped when an archive is asked for a role it does not hold.
var ErrNoRole = errors.New("archive has no such role")

func newReader(r io.Reader, want func(string) bool, need string) (*Reader, error) {
	gz, err := openGzip(r)
	if err != nil {
		return nil, err
	}
	gz.Multistream(false)
	ar := &Reader{gz: gz, tr: tar.NewReader(gz), want: want, role: -1}
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
	if ar.manifest, err = decodeManifest(raw, true); err != nil {
		return nil, err
	}
	if e := ar.manifest.Encryption; e != nil {
		return nil, fmt.Errorf("%w to %d age recipient(s) (%s): decrypt it with an identity first", ErrEncrypted, len(e.Recipients), strings.Join(e.Recipients, ", "))
	}
	if need != "" {
		if _, ok := ar.manifest.Role(need); !ok {
			return nil, fmt.Errorf("%w: %s (the archive holds %s)", ErrNoRole, need, ar.manifest.roleNames())
		}
	}
	if err := ar.nextStream(); err != nil {
		return nil, err
	}
	return ar, nil
}

func (m Manifest) roleNames() string {
	var names []string
	for _, r := range m.Roles {
		names = append(names, r.Role)
	}
	return strings.Join(names, ", ")
}

// decodeManifest parses and checks a manifest, and gives a version-1 one its local Role.
func decodeManifest(raw []byte, strict bool) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, corrupt("%s: %v", ManifestName, err)
	}
	if m.FormatVersion == FormatVersion1 && m.Kind == Kind {
		if len(m.Roles) > 0 {
			return Manifest{}, corrupt("a version-1 manifest has no roles")
		}
		m.Roles = []Role{{
			Role: RoleLocal, Stream: StreamName, Store: "zookeeper", Source: "zk:" + strings.Join(m.Source, ","),
			Consistency: Consistency{ZxidStart: m.ZxidStart, ZxidEnd: m.ZxidEnd, MaxZxid: m.MaxZxid},
			Counts:      m.Counts, StreamBytes: m.StreamBytes, StreamSHA256: m.StreamSHA256,
		}}
	}
	return m, m.check()
}

// nextStream opens the next role's stream. Streams of roles the reader does not want are
// read through here, hashed and counted, and checked like the others.
func (ar *Reader) nextStream() error {
	for {
		ar.role++
		if ar.role == len(ar.manifest.Roles) {
			return ar.finishArchive()
		}
		r := ar.manifest.Roles[ar.role]
		hdr, err := ar.nextEntry()
		if err != nil {
			return err
		}
		if hdr.Name != r.Stream {
			return corrupt("entry %d is %q, want %s", ar.role+2, hdr.Name, r.Stream)
		}
		if hdr.Size != r.StreamBytes {
			return corrupt("%s is %d bytes, manifest says %d", r.Stream, hdr.Size, r.StreamBytes)
		}
		ar.h, ar.read, ar.count = sha256.New(), 0, 0
		ar.stream = bufio.NewReaderSize(io.TeeReader(ar.tr, ar.h), 256<<10)
		if ar.want(r.Role) {
			return nil
		}
		for {
			line, err := readLine(ar.stream)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			ar.read += int64(len(line))
			ar.count++
		}
		if err := ar.finishStream(); err != nil {
			return err
		}
	}
}

// ReadManifest reads only the manifest of an archive: it is the first entry, so this reads a
// few kilobytes whatever the archive's size. Unknown fields are allowed here (a listing
// should show a newer archive's manifest); readers of records refuse them.
func ReadManifest(r io.Reader) (Manifest, error) {
	gz, err := openGzip(r)
	if err != nil {
		return Manifest{}, err
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return Manifest{}, readErr(err)
	}
	if hdr.Name != ManifestName || hdr.Size > maxManifestSize {
		return Manifest{}, corrupt("first entry is %q (%d bytes), want %s", hdr.Name, hdr.Size, ManifestName)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
	if err != nil {
		return Manifest{}, readErr(err)
	}
	return decodeManifest(raw, false)
}

func (m Manifest) check() error {
	if m.Kind != Kind {
		return corrupt("manifest kind %q, want %q", m.Kind, Kind)
	}
	if m.FormatVersion != FormatVersion && m.FormatVersion != FormatVersion1 {
		return corrupt("format version %d, this tool reads %d and %d", m.FormatVersion, FormatVersion1, FormatVersion)
	}
	if m.Znodes < 0 || len(m.Roles) == 0 || len(m.Roles) > 2 {
		return corrupt("manifest counts or roles invalid")
	}
	var sum result.Counts
	seen := map[string]bool{}
	for _, r := range m.Roles {
		if r.Role != RoleLocal && r.Role != RoleConfiguration || seen[r.Role] {
			return corrupt("manifest role %q unknown or repeated", r.Role)
		}
		seen[r.Role] = true
		if r.Stream != StreamFor(r.Role) {
			return corrupt("role %s's stream is %q, want %s", r.Role, r.Stream, StreamFor(r.Role))
		}
		if r.Znodes < 0 || r.StreamBytes < 0 || len(r.StreamSHA256) != 64 {
			return corrupt("role %s: counts or checksum invalid", r.Role)
		}
		sum.Znodes += r.Znodes
		sum.EphemeralSkipped += r.EphemeralSkipped
		sum.Vanished += r.Vanished
		sum.DataBytes += r.DataBytes
	}
	if !seen[RoleLocal] {
		return corrupt("manifest has no %s role", RoleLocal)
	}
	if e := m.Encryption; e != nil && (e.Scheme != "age" || len(e.Recipients) == 0) {
		return corrupt("manifest encryption %q with %d recipients: want age with at least one", e.Scheme, len(e.Recipients))
	}
	if sum != m.Counts {
		return corrupt("manifest totals %+v are not the sum of its roles' %+v", m.Counts, sum)
	}
	return nil
}

func (ar *Reader) nextEntry() (*tar.Header, error) { return nextEntry(ar.tr) }

// nextEntry reads the next tar header and checks it names a plain regular file; an archive
// ending here is corrupt.
func nextEntry(tr *tar.Reader) (*tar.Header, error) {
	hdr, err := tr.Next()
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

// openGzip opens an archive's gzip stream. What is not a gzip header is corrupt; an error
// of the reader beneath (a dropped connection, a decryption that failed upstream) is not the
// archive's, and passes through as readErr has it.
func openGzip(r io.Reader) (*gzip.Reader, error) {
	gz, err := gzip.NewReader(r)
	switch {
	case err == nil:
		return gz, nil
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum):
		return nil, corrupt("not gzip: %v", err)
	}
	return nil, readErr(err)
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

// Manifest is the archive's manifest, checked for kind and version; a version-1 one has its
// local Role filled in.
func (ar *Reader) Manifest() Manifest { return ar.manifest }

// Role is the role of the stream being read: the last record's.
func (ar *Reader) Role() string {
	if ar.role < 0 || ar.role >= len(ar.manifest.Roles) {
		return ""
	}
	return ar.manifest.Roles[ar.role].Role
}

// Next returns the next record, validated (path, size, mode, ACL). After the last one it
// checks the streams and the archive's end against the manifest and returns io.EOF only if
// everything matches.
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
// io.EOF only if every stream's size, count and SHA-256 match the manifest.
func (ar *Reader) NextLine() ([]byte, error) {
	for {
		if ar.done {
			return nil, io.EOF
		}
		line, err := readLine(ar.stream)
		if err == io.EOF {
			if err := ar.finishStream(); err != nil {
				return nil, err
			}
			if err := ar.nextStream(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		ar.read += int64(len(line))
		ar.count++
		return line, nil
	}
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

// finishStream checks the stream just read against its role in the manifest.
func (ar *Reader) finishStream() error {
	r := ar.manifest.Roles[ar.role]
	if ar.read != r.StreamBytes {
		return corrupt("%s has %d bytes, manifest says %d", r.Stream, ar.read, r.StreamBytes)
	}
	if ar.count != r.Znodes {
		return corrupt("%s has %d records, manifest says %d", r.Stream, ar.count, r.Znodes)
	}
	if sum := hex.EncodeToString(ar.h.Sum(nil)); sum != r.StreamSHA256 {
		return corrupt("%s SHA-256 %s does not match manifest %s", r.Stream, sum, r.StreamSHA256)
	}
	return nil
}

// finishArchive checks that nothing follows the last stream, and drains to the gzip trailer
// so its CRC and length are checked too.
func (ar *Reader) finishArchive() error {
	if _, err := ar.tr.Next(); err != io.EOF {
		if err != nil {
			return readErr(err)
		}
		return corrupt("unexpected entry after the last stream")
	}
	if _, err := io.Copy(io.Discard, ar.gz); err != nil {
		return readErr(err)
	}
	ar.done = true
	ar.stream = bufio.NewReader(strings.NewReader(""))
	return nil
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

// Verify reads a whole archive and checks every role's records, returning its manifest;
// fn (if set) sees the local role's records. Nothing is trusted until this returns nil.
func Verify(r io.Reader, fn func(znode.Record) error) (Manifest, error) {
	return VerifyRoles(r, func(role string, rec znode.Record) error {
		if fn == nil || role != RoleLocal {
			return nil
		}
		return fn(rec)
	})
}

// VerifyRoles reads a whole archive and checks it, giving fn (if set) every record with its
// role, in stream order.
func VerifyRoles(r io.Reader, fn func(role string, rec znode.Record) error) (Manifest, error) {
	ar, err := NewAllReader(r)
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
			if err := fn(ar.Role(), rec); err != nil {
				return Manifest{}, err
			}
		}
	}
}
