package workflows

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

func TestSummaries(t *testing.T) {
	b := BackupResult{URL: "s3a://b/metadata-backup-1.tar.gz", Counts: result.Counts{Znodes: 1234}, SizeCompressed: 3 << 20, SizeNonCompressed: 7 << 20}
	if got, want := backupSummary(b), "1234 znodes, 3.0 MiB compressed: s3a://b/metadata-backup-1.tar.gz"; got != want {
		t.Errorf("backup summary %q, want %q", got, want)
	}
	if d := backupDetails(b); !strings.Contains(d, "(3145728 bytes)") || !strings.Contains(d, "(7340032 bytes)") || strings.Contains(d, "were not proven") {
		t.Errorf("backup details:\n%s", d)
	}
	if d := backupDetails(BackupResult{AuthUnused: true}); !strings.Contains(d, "were not proven") {
		t.Errorf("details of a backup whose auth was never needed do not say so:\n%s", d)
	}

	r := RestoreReport{RestorePoint: "s3a://b/k", RestoreVersion: "2", Created: 10, LedgersKept: 3, LedgersDropped: 4,
		Skipped: map[string]int64{"ephemeral": 0, "bookkeeper": 5}}
	for _, c := range []struct {
		name string
		edit func(*RestoreReport)
		want string
	}{
		{"real", func(*RestoreReport) {}, "created 10 znodes, kept 3 ledgers, dropped 4"},
		{"with a configuration store", func(r *RestoreReport) { r.Configuration = &restore.ConfigStats{Mode: "shared", Created: 7} },
			"created 10 znodes, kept 3 ledgers, dropped 4; configuration (shared): created 7"},
		{"dry run", func(r *RestoreReport) {
			r.DryRun, r.Created, r.Existing, r.Plan = true, 0, 2, &restore.Plan{Create: 12}
		},
			"dry run: would restore 12 znodes (2 there already), keep 3 ledgers, drop 4"},
		{"already restored", func(r *RestoreReport) { r.AlreadyRestored, r.Created = true, 0 }, "already restored: nothing done, s3a://b/k version 2"},
	} {
		rep := r
		c.edit(&rep)
		if got := restoreSummary(rep); got != c.want {
			t.Errorf("%s: summary %q, want %q", c.name, got, c.want)
		}
	}
	if d := restoreDetails(r); !strings.Contains(d, "- skipped: bookkeeper 5\n") || strings.Contains(d, "ephemeral") {
		t.Errorf("restore details list skipped reasons wrongly:\n%s", d)
	}
}

// TestCutUTF8 keeps a summary inside the search attribute's size limit without splitting a
// character, and says it was cut.
func TestCutUTF8(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"}, // 7 bytes and the 3-byte ellipsis
		{"abcdeéééé", 10, "abcdeé…"},    // é is 2 bytes: 5+2 = 7, the next é would end at 9 > 7
		{"ab€€€€", 10, "ab€…"},          // € is 3 bytes: 2+3 = 5, the next ends at 8 > 7
	} {
		got := cutUTF8(c.in, c.max)
		if got != c.want || len(got) > c.max || !utf8.ValidString(got) {
			t.Errorf("cutUTF8(%q, %d) = %q (%d bytes), want %q", c.in, c.max, got, len(got), c.want)
		}
	}
	long := strings.Repeat("é", result.SummaryAttributeMaxBytes)
	if got := cutUTF8(long, result.SummaryAttributeMaxBytes); len(got) > result.SummaryAttributeMaxBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("a long summary cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
