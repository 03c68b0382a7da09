package catalog

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func pagedSnapshot(t *testing.T, n int, at time.Time) Snapshot {
	t.Helper()
	b := newMemBucket()
	var runs []Backup
	for i := range n {
		ti := at.Add(time.Duration(i) * time.Minute)
		b.put(millisName(ti), []byte{1})
		runs = append(runs, run(millisName(ti), ti, 1))
	}
	// Two runs with the same time and a foreign copy at that time too: ties need the rest
	// of the key.
	runs = append(runs, run("metadata-backup-tie-a.tar.gz", at, 1), run("metadata-backup-tie-b.tar.gz", at, 1))
	snap, err := New(b, Options{Prefix: "metadata-backup"}).Build(context.Background(), runs)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func names(bs []Backup) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func TestPagesWalkTheListOnce(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	snap := pagedSnapshot(t, 7, at)
	for _, limit := range []int{1, 2, 3, 9, 10} {
		var walked []string
		tok, pages := "", 0
		for {
			page, next, err := snap.Page(tok, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			walked = append(walked, names(page)...)
			pages++
			if next == "" {
				break
			}
			tok = next
			if pages > 20 {
				t.Fatal("pages never end")
			}
		}
		if !slices.Equal(walked, names(snap.Backups)) {
			t.Errorf("limit %d walked %v, want %v", limit, walked, names(snap.Backups))
		}
		if want := (len(snap.Backups) + limit - 1) / limit; pages != want {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
		}
	}
}

func TestPageTokenSurvivesNewBackups(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before := pagedSnapshot(t, 4, at)
	first, next, err := before.Page("", 2)
	if err != nil || next == "" {
		t.Fatal(next, err)
	}
	// Three newer backups arrive before the second request.
	after := pagedSnapshot(t, 7, at)
	rest, _, err := after.Page(next, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := append(names(first), names(rest)...)
	if !slices.Equal(got, names(before.Backups)) {
		t.Errorf("walk across an update = %v, want %v", got, names(before.Backups))
	}
}

func TestBadPageTokens(t *testing.T) {
	snap := pagedSnapshot(t, 2, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	for _, tok := range []string{"!!!", "e30", "bm90IGpzb24", "eyJ0IjoiMjAyNi0wMy0wMVQxMjowMDowMFoifQ"} {
		if _, _, err := snap.Page(tok, 1); !errors.Is(err, ErrBadToken) {
			t.Errorf("token %q: err = %v", tok, err)
		}
	}
}
