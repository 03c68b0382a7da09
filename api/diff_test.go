package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive/archivetest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// restorableArchive is an archive of n znodes /z0.. with data and an open ACL.
func restorableArchive(t *testing.T, n int, start time.Time) []byte {
	t.Helper()
	return archiveOf(t, n, start, []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}})
}

func TestDiffEndpoint(t *testing.T) {
	f := newFixture(t)
	f.srv.differ = newDiffer(f.store, f.prefix, t.TempDir())
	at := time.UnixMilli(1_700_000_000_000).UTC()
	older := f.addRun(at, 3, false)
	newer := f.addRun(at.Add(time.Hour), 5, false)
	// Archives whose records a restore would accept, under the runs' names.
	f.put(older.Name, restorableArchive(t, 3, at))
	f.put(newer.Name, restorableArchive(t, 5, at.Add(time.Hour)))
	f.put(f.prefix+"-broken.tar.gz", []byte("not a gzip stream"))
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f.put(f.prefix+"-encrypted.tar.gz", archivetest.Encrypted(t, []znode.Record{{Path: "/z0", Data: []byte("v"), Mode: znode.ModePersistent,
		ACL: []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}}}, nil, key.Recipient()))

	var got backupdiff.Result
	f.getJSON("/backup/diff?from="+older.Name+"&to="+newer.Name, 200, &got)
	if z := got.Znodes; z.Added != 2 || z.Removed != 0 || z.Changed != 0 || z.Unchanged != 3 {
		t.Fatalf("znodes %+v", z)
	}
	// The same JSON as the library gives (and `starter diff --json` prints).
	var in [2]backupdiff.Input
	for i, name := range []string{older.Name, newer.Name} {
		file, err := os.Open(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		in[i] = backupdiff.Input{Name: f.store.URL(name), R: file}
	}
	want, err := backupdiff.Diff(context.Background(), in[0], in[1], backupdiff.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := f.get("/backup/diff?from=" + older.Name + "&to=" + newer.Name)
	var wantJSON bytes.Buffer
	enc := json.NewEncoder(&wantJSON)
	enc.SetIndent("", "  ")
	if err := enc.Encode(want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, wantJSON.Bytes()) {
		t.Errorf("served\n%s\nlibrary\n%s", body, wantJSON.Bytes())
	}

	for _, c := range []struct {
		query  string
		status int
		says   string
	}{
		{"?from=" + older.Name, 400, "to is required"},
		{"?to=" + older.Name, 400, "from is required"},
		{"?from=&to=" + older.Name, 400, "from is required"},
		{"?from=notes.txt&to=" + older.Name, 400, `from "notes.txt" is not a backup name`},
		{"?from=" + older.Name + "&to=" + url.QueryEscape(f.prefix+"-1/../../etc.tar.gz"), 400, "is not a backup name"},
		{"?from=" + older.Name + "&to=" + url.QueryEscape("../"+f.prefix+"-1.tar.gz"), 400, "is not a backup name"},
		{"?from=" + older.Name + "&to=" + older.Name + "&to=" + newer.Name, 400, `"to" given 2 times`},
		{"?from=" + older.Name + "&to=" + newer.Name + "&limit=1", 400, `unknown query parameter "limit"`},
		{"?from=" + f.prefix + "-1.tar.gz&to=" + newer.Name, 404, `no backup named "` + f.prefix + `-1.tar.gz"`},
		{"?from=" + older.Name + "&to=" + f.prefix + "-broken.tar.gz", 422, "corrupt archive: not gzip"},
		// The API holds no age identity: an encrypted archive is for `starter diff`.
		{"?from=" + f.prefix + "-encrypted.tar.gz&to=" + newer.Name, 422, "encrypted to 1 age recipient(s) (" + key.Recipient().String() + ")"},
	} {
		status, h, body := f.get("/backup/diff" + c.query)
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || status != c.status || !strings.Contains(e.Error, c.says) ||
			strings.Contains(e.Error, "\n") || h.Get("Content-Type") != "application/json" {
			t.Errorf("GET /backup/diff%s = %d %s, want %d saying %q on one line", c.query, status, body, c.status, c.says)
		}
	}
	if status, _, _ := f.get(fmt.Sprintf("/backup/diff?from=%s&to=%s", older.Name, newer.Name)); status != 200 {
		t.Errorf("a diff after the refusals = %d", status)
	}
}
