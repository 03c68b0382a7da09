package catalog

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

func TestLocalStoreEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	loc, err := storage.ParseURL("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.NewLocal(loc)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	data, m := makeArchive(t, 4, at)
	if err := st.Put(ctx, "pb-copy.tar.gz", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	snap, err := New(st, Options{Prefix: "pb"}).Build(ctx, []Backup{run("pb-1.tar.gz", at.Add(time.Hour), 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Backups) != 2 || !snap.Backups[0].Missing || snap.Backups[1].URL != "file://"+dir+"/pb-copy.tar.gz" ||
		snap.Backups[1].Counts == nil || snap.Backups[1].Znodes != m.Znodes {
		t.Fatalf("backups = %+v", snap.Backups)
	}
}
