package archive

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func TestNextUnlessSkipsByPathAndStillVerifies(t *testing.T) {
	acl := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	recs := []znode.Record{
		{Path: "/keep", Data: []byte("k"), ACL: acl, Mode: znode.ModePersistent},
		{Path: "/skip", Data: []byte("s"), ACL: acl, Mode: znode.ModePersistent},
		{Path: "/skip/child", Data: []byte("c"), ACL: acl, Mode: znode.ModePersistent},
		{Path: `/skip/with"quote`, Data: []byte("q"), ACL: acl, Mode: znode.ModePersistent}, // escaped: decoded, then skipped
		{Path: "/keep/ünï", Data: []byte("u"), ACL: acl, Mode: znode.ModePersistent},
	}
	build := func(mutate func([]byte)) []byte {
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
		m := Manifest{StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0), Counts: result.Counts{Znodes: sw.Count()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()}
		b := stream.Bytes()
		if mutate != nil {
			mutate(b)
		}
		var out bytes.Buffer
		if _, err := WriteV1(&out, m, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	skip := func(p string) bool { return znode.Under(p, "/skip") }
	read := func(a []byte) ([]string, []string, error) {
		ar, err := NewReader(bytes.NewReader(a))
		if err != nil {
			return nil, nil, err
		}
		var kept, skipped []string
		for {
			rec, s, err := ar.NextUnless(skip)
			if err == io.EOF {
				return kept, skipped, nil
			}
			if err != nil {
				return kept, skipped, err
			}
			if s {
				skipped = append(skipped, rec.Path)
			} else {
				kept = append(kept, rec.Path+"="+string(rec.Data))
			}
		}
	}
	kept, skipped, err := read(build(nil))
	if err != nil || len(kept) != 2 || kept[0] != "/keep=k" || kept[1] != "/keep/ünï=u" || len(skipped) != 3 || skipped[2] != `/skip/with"quote` {
		t.Fatalf("kept %q skipped %q: %v", kept, skipped, err)
	}
	// A skipped record is not decoded, but still in the checksum: its data made invalid
	// base64 is caught by the SHA-256 at the end, not by a decode error on the way.
	_, _, err = read(build(func(b []byte) { b[bytes.Index(b, []byte(`"data":"cw==`))+8] = '!' }))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("tampered skipped record: %v", err)
	}
}
