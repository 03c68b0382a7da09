package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func sampleRecords() []znode.Record {
	open := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	return []znode.Record{
		{Path: "/admin", ACL: open, Mode: znode.ModePersistent},
		{Path: "/admin/policies", Data: []byte{0, 1, 2, 0, 0xff}, ACL: open, Mode: znode.ModePersistent},
		{Path: "/admin/policies/tënänt-日本", Data: []byte(`{"a":"<b>&"}`), ACL: []znode.ACL{{Perms: 1, Scheme: "digest", ID: "u:hash="}}, Mode: znode.ModePersistent},
		{Path: "/c", ACL: open, Mode: znode.ModeContainer},
		{Path: "/t", ACL: open, Mode: znode.ModeTTL, TTL: 3600000, Stat: znode.Stat{Czxid: 7, EphemeralOwner: -72057594037927936 | 3600000}},
		{Path: "/big", Data: bytes.Repeat([]byte{'x', 0}, 500_000), ACL: open, Mode: znode.ModePersistent},
	}
}

// stream encodes records as a role's stream and returns it with its role entry.
func stream(t *testing.T, role string, recs []znode.Record) ([]byte, Role) {
	t.Helper()
	var b bytes.Buffer
	sw := NewStreamWriter(&b)
	for _, r := range recs {
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), Role{
		Role: role, Stream: StreamFor(role), Store: "zookeeper", Source: "zk:127.0.0.1:2181/" + role,
		Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
}

// buildRoles writes a version-2 archive of the given roles' records (local first).
func buildRoles(t *testing.T, roles map[string][]znode.Record, edit func(*Manifest, [][]byte)) []byte {
	t.Helper()
	m := Manifest{ToolVersion: "test", StartTime: time.Unix(1, 0).UTC(), EndTime: time.Unix(2, 0).UTC()}
	var bodies [][]byte
	for _, name := range []string{RoleLocal, RoleConfiguration} {
		recs, ok := roles[name]
		if !ok {
			continue
		}
		b, r := stream(t, name, recs)
		m.Roles = append(m.Roles, r)
		m.Znodes += r.Znodes
		m.DataBytes += r.DataBytes
		bodies = append(bodies, b)
	}
	if edit != nil {
		edit(&m, bodies)
	}
	var streams []Stream
	var entries []entry
	for i, b := range bodies {
		streams = append(streams, Stream{bytes.NewReader(b), int64(len(b))})
		entries = append(entries, entry{m.Roles[i].Stream, Stream{bytes.NewReader(b), int64(len(b))}})
	}
	var out bytes.Buffer
	if edit != nil {
		// Possibly malformed on purpose: written as is, past Write's checks.
		m.FormatVersion, m.Kind = FormatVersion, Kind
		if _, err := writeTar(&out, m, entries); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	if _, err := Write(&out, m, streams); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// build writes recs into a version-2 archive of one local role.
func build(t *testing.T, recs []znode.Record, edit func(*Manifest)) []byte {
	t.Helper()
	return buildRoles(t, map[string][]znode.Record{RoleLocal: recs}, func(m *Manifest, _ [][]byte) {
		if edit != nil {
			edit(m)
		}
	})
}

// buildV1 writes recs into a version-1 archive, as the tool wrote before roles.
func buildV1(t *testing.T, recs []znode.Record, edit func(*Manifest)) []byte {
	t.Helper()
	var stream bytes.Buffer
	sw := NewStreamWriter(&stream)
	for _, r := range recs {
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := Manifest{
		ToolVersion: "test", Source: []string{"127.0.0.1:2181"}, StartTime: time.Unix(1, 0).UTC(),
		EndTime: time.Unix(2, 0).UTC(), Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(),
		StreamSHA256: sw.SHA256(),
	}
	if edit != nil {
		edit(&m)
	}
	var out bytes.Buffer
	tarSize, err := WriteV1(&out, m, bytes.NewReader(stream.Bytes()), int64(stream.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if tarSize <= int64(stream.Len()) {
		t.Fatalf("tar size %d not larger than stream %d", tarSize, stream.Len())
	}
	return out.Bytes()
}

func TestRoundTripIsExact(t *testing.T) {
	recs := sampleRecords()
	arch := build(t, recs, nil)
	var got []znode.Record
	m, err := Verify(bytes.NewReader(arch), func(r znode.Record) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if m.Znodes != int64(len(recs)) || m.FormatVersion != FormatVersion || m.Kind != Kind {
		t.Fatalf("manifest %+v", m)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		a, _ := json.Marshal(recs[i])
		b, _ := json.Marshal(got[i])
		if !bytes.Equal(a, b) {
			t.Errorf("record %d differs:\n%s\n%s", i, a[:min(len(a), 200)], b[:min(len(b), 200)])
		}
	}
	m2, err := ReadManifest(bytes.NewReader(arch))
	if err != nil || m2.Local().StreamSHA256 != m.Local().StreamSHA256 || m2.Local().StreamSHA256 == "" {
		t.Fatalf("ReadManifest = %+v, %v", m2, err)
	}
}

// The archive can be inspected with standard tools: it is a tar.gz of plain files, and
// the stream is JSON Lines.
func TestArchiveIsPlainTarOfJSON(t *testing.T) {
	arch := build(t, sampleRecords(), nil)
	gz, err := gzip.NewReader(bytes.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		body, _ := io.ReadAll(tr)
		if h.Name == StreamName {
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if len(lines) != len(sampleRecords()) {
				t.Fatalf("%d lines", len(lines))
			}
			var first map[string]interface{}
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["path"] != "/admin" {
				t.Fatalf("first line %q: %v", lines[0], err)
			}
		}
	}
	if strings.Join(names, ",") != ManifestName+","+StreamName {
		t.Fatalf("entries %v", names)
	}
}

func expectCorrupt(t *testing.T, arch []byte, want string) {
	t.Helper()
	_, err := Verify(bytes.NewReader(arch), nil)
	if err == nil {
		t.Fatalf("bad archive accepted (want %q)", want)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

func TestTruncatedArchiveIsCorrupt(t *testing.T) {
	arch := build(t, sampleRecords(), nil)
	for _, n := range []int{10, len(arch) / 3, len(arch) - 9} {
		_, err := Verify(bytes.NewReader(arch[:n]), nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d of %d: %v", n, len(arch), err)
		}
	}
}

func TestFlippedByteIsCorrupt(t *testing.T) {
	arch := build(t, sampleRecords(), nil)
	for _, off := range []int{len(arch) / 2, len(arch) - 12} {
		bad := bytes.Clone(arch)
		bad[off] ^= 0x40
		if _, err := Verify(bytes.NewReader(bad), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: %v", off, err)
		}
	}
}

func TestTamperedStreamFailsChecksum(t *testing.T) {
	recs := sampleRecords()
	good := build(t, recs, nil)
	m, _ := ReadManifest(bytes.NewReader(good))
	// Same size, different content: only the SHA-256 can tell.
	recs[1].Data = []byte{0, 1, 2, 0, 0xfe}
	expectCorrupt(t, build(t, recs, func(x *Manifest) { x.Roles[0].StreamSHA256 = m.Local().StreamSHA256 }), "SHA-256")
	expectCorrupt(t, build(t, sampleRecords(), func(x *Manifest) { x.Roles[0].Znodes++; x.Znodes++ }), "records")
	expectCorrupt(t, build(t, sampleRecords(), func(x *Manifest) { x.Roles[0].StreamSHA256 = "00" }), "checksum")
	expectCorrupt(t, build(t, sampleRecords(), func(x *Manifest) { x.Znodes++ }), "not the sum of its roles")
}

// Version-1 archives, as the tool wrote them before roles, still read: as one local role
// with the top-level fields, and checked the same way.
func TestVersion1StillReads(t *testing.T) {
	recs := sampleRecords()
	v1 := buildV1(t, recs, func(m *Manifest) { m.ZxidStart, m.ZxidEnd = "0x10", "0x12" })
	var n int
	m, err := Verify(bytes.NewReader(v1), func(znode.Record) error { n++; return nil })
	if err != nil || n != len(recs) || m.FormatVersion != FormatVersion1 {
		t.Fatalf("v1: %d records, %+v, %v", n, m, err)
	}
	l := m.Local()
	if len(m.Roles) != 1 || l.Stream != StreamName || l.Source != "zk:127.0.0.1:2181" || l.Consistency.ZxidStart != "0x10" || l.StreamSHA256 != m.StreamSHA256 || l.Znodes != int64(len(recs)) {
		t.Fatalf("v1 local role %+v", l)
	}
	recs[1].Data = []byte{0, 1, 2, 0, 0xfe}
	good, _ := ReadManifest(bytes.NewReader(v1))
	expectCorrupt(t, buildV1(t, recs, func(x *Manifest) { x.StreamSHA256 = good.StreamSHA256 }), "SHA-256")
	if _, err := NewRoleReader(bytes.NewReader(v1), RoleConfiguration); !errors.Is(err, ErrNoRole) {
		t.Fatalf("configuration role of a v1 archive: %v", err)
	}
}

// Two roles: each reader gets its own role's records only, and still checks the other's
// stream; VerifyRoles sees both, in order.
func TestTwoRoles(t *testing.T) {
	open := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	conf := []znode.Record{
		{Path: "/admin", ACL: open, Mode: znode.ModePersistent},
		{Path: "/admin/policies", Data: []byte(`{"retention":1}`), ACL: open, Mode: znode.ModePersistent},
	}
	local := sampleRecords()
	arch := buildRoles(t, map[string][]znode.Record{RoleLocal: local, RoleConfiguration: conf}, nil)
	var roles []string
	m, err := VerifyRoles(bytes.NewReader(arch), func(role string, r znode.Record) error {
		roles = append(roles, role+":"+r.Path)
		return nil
	})
	if err != nil || len(roles) != len(local)+len(conf) || roles[0] != "local:/admin" || roles[len(roles)-1] != "configuration:/admin/policies" {
		t.Fatalf("VerifyRoles: %v %v", roles, err)
	}
	if m.Znodes != int64(len(local)+len(conf)) || len(m.Roles) != 2 || m.FormatVersion != FormatVersion {
		t.Fatalf("manifest %+v", m)
	}
	read := func(arch []byte, role string) ([]string, error) {
		ar, err := NewRoleReader(bytes.NewReader(arch), role)
		if err != nil {
			return nil, err
		}
		var paths []string
		for {
			r, err := ar.Next()
			if err == io.EOF {
				return paths, nil
			}
			if err != nil {
				return paths, err
			}
			if ar.Role() != role {
				t.Fatalf("reader for %s gave a record of %s", role, ar.Role())
			}
			paths = append(paths, r.Path)
		}
	}
	if got, err := read(arch, RoleConfiguration); err != nil || strings.Join(got, ",") != "/admin,/admin/policies" {
		t.Fatalf("configuration role: %v %v", got, err)
	}
	if got, err := read(arch, RoleLocal); err != nil || len(got) != len(local) {
		t.Fatalf("local role: %v %v", got, err)
	}
	// A tampered local stream fails a reader of the configuration role too, and the other way.
	tamper := func(i int) []byte {
		return buildRoles(t, map[string][]znode.Record{RoleLocal: local, RoleConfiguration: conf}, func(m *Manifest, b [][]byte) {
			b[i][10] ^= 1
		})
	}
	if _, err := read(tamper(0), RoleConfiguration); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), StreamName) {
		t.Fatalf("tampered local stream, configuration reader: %v", err)
	}
	if _, err := read(tamper(1), RoleLocal); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ConfigurationStreamName) {
		t.Fatalf("tampered configuration stream, local reader: %v", err)
	}
	// Shapes a reader refuses.
	expectCorrupt(t, buildRoles(t, map[string][]znode.Record{RoleLocal: local, RoleConfiguration: conf}, func(m *Manifest, b [][]byte) {
		m.Roles[0], m.Roles[1] = m.Roles[1], m.Roles[0]
		b[0], b[1] = b[1], b[0]
		m.Roles[0].Stream, m.Roles[1].Stream = StreamName, ConfigurationStreamName
	}), "stream is")
	expectCorrupt(t, buildRoles(t, map[string][]znode.Record{RoleConfiguration: conf}, func(*Manifest, [][]byte) {}), "no local role")
	expectCorrupt(t, buildRoles(t, map[string][]znode.Record{RoleLocal: local, RoleConfiguration: conf}, func(m *Manifest, b [][]byte) {
		m.Roles[1].Role = RoleLocal
	}), "repeated")
}

func TestWrongFormatVersionRefused(t *testing.T) {
	arch := rawArchive(t, map[string]interface{}{"formatVersion": 99, "kind": Kind, "streamSha256": strings.Repeat("0", 64)}, "x", "")
	expectCorrupt(t, arch, "format version 99")
}

// rawArchive builds a tar.gz by hand, for shapes WriteArchive refuses to make.
func rawArchive(t *testing.T, manifest map[string]interface{}, secondName, second string) []byte {
	t.Helper()
	mj, _ := json.Marshal(manifest)
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(mj)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(mj)
	_ = tw.WriteHeader(&tar.Header{Name: secondName, Mode: 0o644, Size: int64(len(second)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(second))
	_ = tw.Close()
	_ = gz.Close()
	return out.Bytes()
}

func TestHostileEntriesRefused(t *testing.T) {
	ok := map[string]interface{}{"formatVersion": FormatVersion1, "kind": Kind, "streamSha256": strings.Repeat("0", 64)}
	expectCorrupt(t, rawArchive(t, ok, "../../etc/passwd", ""), "escapes")
	expectCorrupt(t, rawArchive(t, ok, "/etc/passwd", ""), "not a plain relative name")
	expectCorrupt(t, rawArchive(t, ok, "other.bin", ""), `entry 2 is "other.bin", want znodes.jsonl`)
}

func TestHostileRecordsRefused(t *testing.T) {
	open := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	cases := map[string]znode.Record{
		"relative segment":   {Path: "/a/../b", ACL: open, Mode: znode.ModePersistent},
		"must start with /":  {Path: "a", ACL: open, Mode: znode.ModePersistent},
		"over ZooKeeper's":   {Path: "/big", Data: make([]byte, znode.MaxDataSize+1), ACL: open, Mode: znode.ModePersistent},
		"cannot be restored": {Path: "/e", ACL: open, Mode: znode.ModeEphemeral},
		"empty ACL":          {Path: "/n", Mode: znode.ModePersistent},
		"own subtree":        {Path: "/zookeeper/quota", ACL: open, Mode: znode.ModePersistent},
		"not allowed":        {Path: "/a\x00b", ACL: open, Mode: znode.ModePersistent},
	}
	for want, rec := range cases {
		t.Run(want, func(t *testing.T) {
			expectCorrupt(t, build(t, []znode.Record{rec}, nil), want)
		})
	}
}

func TestOverlongLineRefused(t *testing.T) {
	line := `{"path":"/x","data":"` + strings.Repeat("A", maxLineSize) + "\"}\n"
	ok := map[string]interface{}{"formatVersion": FormatVersion1, "kind": Kind, "streamSha256": strings.Repeat("0", 64), "streamBytes": len(line), "znodes": 1}
	expectCorrupt(t, rawArchive(t, ok, StreamName, line), "a record line is over")
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestReaderErrorsAreNotCorruption: an error of the reader under an archive (a dropped
// connection, a decryption that failed upstream) passes through, and is not taken for a
// corrupt archive; a stream that is not gzip is.
func TestReaderErrorsAreNotCorruption(t *testing.T) {
	dropped := errors.New("connection reset")
	for name, open := range map[string]func(io.Reader) error{
		"reader":   func(r io.Reader) error { _, err := NewReader(r); return err },
		"manifest": func(r io.Reader) error { _, err := ReadManifest(r); return err },
		"decrypt":  func(r io.Reader) error { _, err := Decrypt(r, io.Discard, nil); return err },
	} {
		if err := open(failingReader{dropped}); !errors.Is(err, dropped) || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s of a failing reader: %v", name, err)
		}
		if err := open(strings.NewReader("not gzip")); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not gzip") {
			t.Errorf("%s of text: %v", name, err)
		}
	}
}
