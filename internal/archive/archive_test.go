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

// build writes recs into an archive and returns its bytes.
func build(t *testing.T, recs []znode.Record, edit func(*Manifest)) []byte {
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
	tarSize, err := WriteArchive(&out, m, bytes.NewReader(stream.Bytes()), int64(stream.Len()))
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
	if err != nil || m2.StreamSHA256 != m.StreamSHA256 {
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
	expectCorrupt(t, build(t, recs, func(x *Manifest) { x.StreamSHA256 = m.StreamSHA256 }), "SHA-256")
	expectCorrupt(t, build(t, sampleRecords(), func(x *Manifest) { x.Znodes++ }), "records")
	expectCorrupt(t, build(t, sampleRecords(), func(x *Manifest) { x.StreamSHA256 = "00" }), "checksum")
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
	ok := map[string]interface{}{"formatVersion": FormatVersion, "kind": Kind, "streamSha256": strings.Repeat("0", 64)}
	expectCorrupt(t, rawArchive(t, ok, "../../etc/passwd", ""), "escapes")
	expectCorrupt(t, rawArchive(t, ok, "/etc/passwd", ""), "not a plain relative name")
	expectCorrupt(t, rawArchive(t, ok, "other.bin", ""), "second entry")
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
	ok := map[string]interface{}{"formatVersion": FormatVersion, "kind": Kind, "streamSha256": strings.Repeat("0", 64), "streamBytes": len(line), "znodes": 1}
	expectCorrupt(t, rawArchive(t, ok, StreamName, line), "a record line is over")
}
