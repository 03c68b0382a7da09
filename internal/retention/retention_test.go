package retention

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

const prefix = "metadata-backup"

func name(t time.Time) string { return archive.ObjectName(prefix, t.UnixMilli()) }

// input is archives of ours at the given times (all with readable manifests).
func input(p result.Retention, times ...time.Time) Input {
	in := Input{Prefix: prefix, Policy: p, Manifests: map[string]Manifest{}}
	for _, t := range times {
		in.Objects = append(in.Objects, Object{Key: name(t), Size: 10})
		in.Manifests[name(t)] = Manifest{State: ManifestOK}
	}
	return in
}

func at(s string) time.Time {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// kept returns "<time> <rule,rule>" of every kept archive and the times of the deleted.
func outcome(ds []result.ArchiveDecision) (kept, deleted []string) {
	for _, d := range ds {
		what := d.Name
		if d.Time != nil {
			what = d.Time.Format(time.DateTime)
		}
		if d.Action == result.ActionDelete {
			deleted = append(deleted, what)
			continue
		}
		rules := d.Rule
		if len(d.Matches) > 1 {
			rules = strings.Join(d.Matches, ",")
		}
		kept = append(kept, what+" "+rules)
	}
	return kept, deleted
}

func check(t *testing.T, ds []result.ArchiveDecision, wantKept, wantDeleted []string) {
	t.Helper()
	kept, deleted := outcome(ds)
	if !slices.Equal(kept, wantKept) {
		t.Errorf("kept\n  %s\nwant\n  %s", strings.Join(kept, "\n  "), strings.Join(wantKept, "\n  "))
	}
	if !slices.Equal(deleted, wantDeleted) {
		t.Errorf("deleted\n  %s\nwant\n  %s", strings.Join(deleted, "\n  "), strings.Join(wantDeleted, "\n  "))
	}
}

// restic's own example (doc/060_forget.rst): one backup every Sunday for 12 weeks, and
// --keep-daily 4 keeps the last four Sundays.
func TestResticDocExampleKeepDaily(t *testing.T) {
	var times []time.Time
	for i := range 12 {
		times = append(times, at("2019-09-01 11:00:00").AddDate(0, 0, 7*i))
	}
	ds := Decide(input(result.Retention{KeepDaily: 4}, times...))
	check(t, ds,
		[]string{"2019-11-17 11:00:00 daily", "2019-11-10 11:00:00 daily", "2019-11-03 11:00:00 daily", "2019-10-27 11:00:00 daily"},
		[]string{"2019-10-20 11:00:00", "2019-10-13 11:00:00", "2019-10-06 11:00:00", "2019-09-29 11:00:00",
			"2019-09-22 11:00:00", "2019-09-15 11:00:00", "2019-09-08 11:00:00", "2019-09-01 11:00:00"})
}

// Only periods that have an archive count: keepDaily 3 over archives of every other day keeps
// three archives spanning five days, not the archives of the last three calendar days.
func TestPeriodsWithoutArchivesAreNotCounted(t *testing.T) {
	ds := Decide(input(result.Retention{KeepDaily: 3},
		at("2026-01-01 10:00:00"), at("2026-01-03 10:00:00"), at("2026-01-05 10:00:00"), at("2026-01-07 10:00:00"), at("2026-01-09 10:00:00")))
	check(t, ds,
		[]string{"2026-01-09 10:00:00 daily", "2026-01-07 10:00:00 daily", "2026-01-05 10:00:00 daily"},
		[]string{"2026-01-03 10:00:00", "2026-01-01 10:00:00"})
}

// Each rule keeps the newest archive of its period; the rules are ORed and every rule that
// keeps an archive is listed. Backups every 20 minutes over three hours, keepLast 2 and
// keepHourly 2.
func TestNewestOfEachPeriodAndMatches(t *testing.T) {
	var times []time.Time
	for i := range 9 {
		times = append(times, at("2026-02-10 09:00:00").Add(time.Duration(i)*20*time.Minute))
	}
	ds := Decide(input(result.Retention{KeepLast: 2, KeepHourly: 2}, times...))
	check(t, ds,
		[]string{"2026-02-10 11:40:00 last,hourly", "2026-02-10 11:20:00 last", "2026-02-10 10:40:00 hourly"},
		[]string{"2026-02-10 11:00:00", "2026-02-10 10:20:00", "2026-02-10 10:00:00", "2026-02-10 09:40:00", "2026-02-10 09:20:00", "2026-02-10 09:00:00"})
}

// Weeks are ISO weeks from Monday 00:00 UTC; months are calendar months.
func TestWeekAndMonthBoundaries(t *testing.T) {
	sunday, monday := at("2026-03-01 23:59:59"), at("2026-03-02 00:00:00") // 2026-03-02 is a Monday
	ds := Decide(input(result.Retention{KeepWeekly: 2}, at("2026-02-28 12:00:00"), sunday, monday))
	check(t, ds, []string{"2026-03-02 00:00:00 weekly", "2026-03-01 23:59:59 weekly"}, []string{"2026-02-28 12:00:00"})

	ds = Decide(input(result.Retention{KeepMonthly: 2}, at("2026-01-31 23:00:00"), at("2026-02-01 01:00:00"), at("2026-02-27 00:00:00"), at("2026-03-01 00:00:00"), at("2025-12-31 23:59:00")))
	check(t, ds, []string{"2026-03-01 00:00:00 monthly", "2026-02-27 00:00:00 monthly"},
		[]string{"2026-02-01 01:00:00", "2026-01-31 23:00:00", "2025-12-31 23:59:00"})
}

// A rule with counts left at the oldest archive keeps it too (restic 0.17), marked oldest.
func TestOldestIsKeptWhileARuleHasCountsLeft(t *testing.T) {
	ds := Decide(input(result.Retention{KeepDaily: 5},
		at("2026-04-01 08:00:00"), at("2026-04-01 09:00:00"), at("2026-04-02 09:00:00"), at("2026-04-02 10:00:00")))
	check(t, ds, []string{"2026-04-02 10:00:00 daily", "2026-04-01 09:00:00 daily", "2026-04-01 08:00:00 oldest-daily"},
		[]string{"2026-04-02 09:00:00"})
	// No count left: the oldest goes.
	ds = Decide(input(result.Retention{KeepDaily: 2},
		at("2026-04-01 08:00:00"), at("2026-04-01 09:00:00"), at("2026-04-02 09:00:00")))
	check(t, ds, []string{"2026-04-02 09:00:00 daily", "2026-04-01 09:00:00 daily"}, []string{"2026-04-01 08:00:00"})
}

func TestEmptyPolicyDeletesNothing(t *testing.T) {
	ds := Decide(input(result.Retention{}, at("2026-01-01 00:00:00"), at("2026-01-02 00:00:00")))
	check(t, ds, []string{"2026-01-02 00:00:00 no-policy", "2026-01-01 00:00:00 no-policy"}, nil)
}

// What a prune never deletes, each case alone against a policy that would delete it.
func TestProtections(t *testing.T) {
	t1, t2, t3, t4 := at("2026-05-01 00:00:00"), at("2026-05-02 00:00:00"), at("2026-05-03 00:00:00"), at("2026-05-04 00:00:00")
	keepOne := result.Retention{KeepLast: 1}

	t.Run("restore marker", func(t *testing.T) {
		in := input(keepOne, t1, t2, t3)
		in.Marker = Marker{Protect: name(t1), Detail: "restore of ... applying"}
		check(t, Decide(in), []string{"2026-05-03 00:00:00 last", "2026-05-01 00:00:00 restore-marker"}, []string{"2026-05-02 00:00:00"})
	})
	t.Run("marker unreadable", func(t *testing.T) {
		in := input(keepOne, t1, t2, t3)
		in.Marker = Marker{Unknown: true, Detail: "zookeeper unreachable"}
		ds := Decide(in)
		check(t, ds, []string{"2026-05-03 00:00:00 last", "2026-05-02 00:00:00 restore-marker-unreadable", "2026-05-01 00:00:00 restore-marker-unreadable"}, nil)
		if c := Count(ds); c.Delete != 0 || c.Retained != 3 || c.Archives != 3 {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("known good", func(t *testing.T) {
		in := input(keepOne, t1, t2, t3)
		in.KnownGood = name(t2)
		check(t, Decide(in), []string{"2026-05-03 00:00:00 last", "2026-05-02 00:00:00 newest-successful"}, []string{"2026-05-01 00:00:00"})
	})
	t.Run("not ours", func(t *testing.T) {
		in := input(keepOne, t1, t3)
		// Named like an archive, newer than ours, but not this tool's (or unreadable now): kept,
		// and not counted, so keepLast 1 still keeps t3.
		in.Objects = append(in.Objects, Object{Key: name(t4)}, Object{Key: name(t2)})
		in.Manifests[name(t4)] = Manifest{State: ManifestForeign, Detail: "corrupt archive: not gzip"}
		in.Manifests[name(t2)] = Manifest{State: ManifestUnreadable, Detail: "connection reset"}
		for _, k := range []string{"metadata-backup-eu-1700000000000.tar.gz", "metadata-backup-notes.txt",
			"metadata-backup-0170.tar.gz", "metadata-backup-1700000000000.tar.gz.sha256", "metadata-backup-copied.tar.gz"} {
			in.Objects = append(in.Objects, Object{Key: k})
		}
		ds := Decide(in)
		check(t, ds, []string{
			"2026-05-03 00:00:00 last",
			"2026-05-04 00:00:00 foreign-manifest", "2026-05-02 00:00:00 manifest-unreadable",
			"metadata-backup-0170.tar.gz not-an-archive",
			"metadata-backup-1700000000000.tar.gz.sha256 not-an-archive",
			"metadata-backup-copied.tar.gz not-an-archive",
			"metadata-backup-eu-1700000000000.tar.gz other-prefix",
			"metadata-backup-notes.txt not-an-archive",
		}, []string{"2026-05-01 00:00:00"})
		if c := Count(ds); c.Objects != 9 || c.Archives != 2 || c.Delete != 1 || c.Retained != 1 {
			t.Errorf("counts %+v", c)
		}
	})
}

// A prune keeps no less when archives are added: what a later prune deletes includes what an
// earlier one did, so two prunes running at once (a backup's and `starter prune`) agree, and
// a run the schedule skipped (which adds no archive) leaves nothing undone.
func TestMoreArchivesNeverKeepAnOlderOneDeleted(t *testing.T) {
	p := result.Retention{KeepLast: 2, KeepHourly: 3, KeepDaily: 2, KeepWeekly: 2, KeepMonthly: 2}
	var times []time.Time
	base := at("2026-01-01 00:00:00")
	for i := range 400 {
		times = append(times, base.Add(time.Duration(i*i%997)*47*time.Minute+time.Duration(i)*time.Second))
	}
	for n := 1; n < len(times); n++ {
		before := deletedSet(Decide(input(p, times[:n]...)))
		after := deletedSet(Decide(input(p, times[:n+1]...)))
		for k := range before {
			if !after[k] {
				t.Fatalf("after adding archive %d, %s is kept again", n, k)
			}
		}
	}
}

func deletedSet(ds []result.ArchiveDecision) map[string]bool {
	out := map[string]bool{}
	for _, d := range ds {
		if d.Action == result.ActionDelete {
			out[d.Name] = true
		}
	}
	return out
}

func TestIsArchiveNames(t *testing.T) {
	for key, want := range map[string]bool{
		"metadata-backup-1700000000000.tar.gz":                true,
		"metadata-backup-0.tar.gz":                            true,
		"metadata-backup-01.tar.gz":                           false,
		"metadata-backup--1.tar.gz":                           false,
		"metadata-backup-eu-1700000000000.tar.gz":             false,
		"metadata-backup-1700000000000.tar":                   false,
		"metadata-backup1700000000000.tar.gz":                 false,
		"metadata-backup-1700000000000.tar.gz/x":              false,
		fmt.Sprintf("metadata-backup-%d.tar.gz", int64(1e15)): false,
	} {
		if _, ok := IsArchive(prefix, key); ok != want {
			t.Errorf("IsArchive(%q) = %v", key, ok)
		}
	}
	if !archive.IsLongerPrefixName(prefix, "metadata-backup-eu-1700000000000.tar.gz") || archive.IsLongerPrefixName(prefix, "metadata-backup-1700000000000.tar.gz") ||
		archive.IsLongerPrefixName("metadata-backup-eu", "metadata-backup-1700000000000.tar.gz") {
		t.Error("IsLongerPrefixName")
	}
}
