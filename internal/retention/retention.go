// Package retention decides which backup archives a prune deletes: restic's `forget` policy
// over this deployment's archives, and the protections that outrank it. It does no I/O: the
// prune activity lists the bucket, reads the manifests and the restore marker, and deletes
// what Decide says.
//
// # The policy
//
// backup.retention's rules are restic's --keep-last, --keep-hourly, --keep-daily,
// --keep-weekly and --keep-monthly, applied as restic's ApplyPolicy does
// (internal/data/snapshot_policy.go in github.com/restic/restic; documented in its
// doc/060_forget.rst, "Removing snapshots according to a policy"):
//
//   - archives are taken newest first;
//   - keepLast n keeps the n newest;
//   - keepHourly, keepDaily, keepWeekly and keepMonthly n keep, "for the last n
//     hours/days/weeks/months which have one or more snapshots", the newest archive of each.
//     Periods are natural calendar boundaries, not counted back from now: hours :00 to :59,
//     days 00:00 to 23:59, ISO weeks from Monday, calendar months (restic's ymdh, ymd, yw and
//     ym buckets). A period with no archive is not counted: keepDaily 7 over archives made
//     every other day keeps 7 archives that span 13 days. Archives carry their start time in
//     Unix milliseconds; periods are taken in UTC;
//   - when a rule still has counts left at the oldest archive, it keeps that one too (restic
//     0.17: "If there are not enough snapshots to keep one for each duration related
//     --keep-{within-,}* option, the oldest snapshot is kept additionally and marked as
//     oldest"; its rule here is "oldest-<rule>");
//   - an archive is kept when any rule keeps it (the rules are ORed), and every rule that
//     does is listed; any other archive is deleted;
//   - as restic refuses an empty policy, a policy whose every count is 0 deletes nothing.
//
// Negative counts (restic's "unlimited") are refused at config load. restic's
// --keep-yearly, --keep-within* and --keep-tag have no key here.
//
// # What a prune never deletes
//
// Whatever the policy says, Decide keeps:
//   - the newest archive of this deployment, and the archive the backup that runs the prune
//     just wrote (RuleNewest);
//   - the archive a restore marker names while it is "applying" (RuleRestoreMarker): a
//     restore that loses its worker downloads it again. When the marker could not be read,
//     any archive might be the one, so nothing is deleted (RuleMarkerUnknown);
//   - objects under the prefix that are not this tool's archives: other names
//     (RuleNotArchive), archives of a longer prefix that starts with this one, such as
//     metadata-backup-eu-<millis>.tar.gz under metadata-backup (RuleOtherPrefix), and objects
//     named like an archive whose manifest is not this tool's (RuleForeign) or could not be
//     read this time (RuleUnreadable). They are left out of the policy's counts, so they never
//     take the place of an archive the policy would keep.
package retention

import (
	"cmp"
	"slices"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// Rules, as ArchiveDecision.Rule and Matches give them.
const (
	RuleLast    = "last"
	RuleHourly  = "hourly"
	RuleDaily   = "daily"
	RuleWeekly  = "weekly"
	RuleMonthly = "monthly"
	// OldestPrefix is prepended to a rule that keeps the oldest archive because it still
	// had counts left ("oldest-daily").
	OldestPrefix = "oldest-"

	// RuleNone: no rule keeps the archive; it is deleted.
	RuleNone = "none"
	// RuleNoPolicy: every count is 0; nothing is deleted.
	RuleNoPolicy = "no-policy"

	RuleNewest        = "newest-successful"
	RuleRestoreMarker = "restore-marker"
	RuleMarkerUnknown = "restore-marker-unreadable"
	RuleNotArchive    = "not-an-archive"
	RuleOtherPrefix   = "other-prefix"
	RuleForeign       = "foreign-manifest"
	RuleUnreadable    = "manifest-unreadable"
)

// Object is one object listed under the prefix.
type Object struct {
	Key  string
	Size int64
}

// ManifestState is what reading an archive's manifest found.
type ManifestState int

const (
	// ManifestOK: the manifest is this tool's (kind and format version).
	ManifestOK ManifestState = iota
	// ManifestForeign: the object is not this tool's archive (not gzip, no manifest, another
	// kind or version).
	ManifestForeign
	// ManifestUnreadable: reading it failed for another reason (I/O); it is kept this time.
	ManifestUnreadable
)

// Manifest is the state of one archive's manifest and the error that explains it.
type Manifest struct {
	State  ManifestState
	Detail string
}

// Marker is what the restore marker of the deployment's ensemble says.
type Marker struct {
	// Unknown is set when the marker could not be read: Detail says why.
	Unknown bool
	// Protect is the key of an archive of this prefix an "applying" marker names, "" if
	// none; Detail names the restore.
	Protect string
	Detail  string
}

// Input is everything Decide needs.
type Input struct {
	Prefix string
	Policy result.Retention
	// Objects are every object listed under Prefix.
	Objects []Object
	// Manifests holds the state of each archive-named object's manifest (IsArchive keys);
	// one missing counts as unreadable.
	Manifests map[string]Manifest
	Marker    Marker
	// KnownGood is the key of an archive known to be a successful backup (the one the
	// backup running this prune wrote), protected as RuleNewest; "" if none.
	KnownGood string
}

// IsArchive tells whether key is named as an archive of prefix, and its time.
func IsArchive(prefix, key string) (time.Time, bool) { return archive.ParseObjectName(prefix, key) }

// Decide returns a decision for every object: this deployment's archives newest first,
// then the other objects by key. Only decisions with Action delete are to be deleted.
func Decide(in Input) []result.ArchiveDecision {
	var ours, others []result.ArchiveDecision
	for _, o := range in.Objects {
		d := result.ArchiveDecision{Name: o.Key, Size: o.Size, Action: result.ActionKeep}
		t, ok := IsArchive(in.Prefix, o.Key)
		if !ok {
			d.Rule = RuleNotArchive
			if archive.IsLongerPrefixName(in.Prefix, o.Key) {
				d.Rule = RuleOtherPrefix
			}
			others = append(others, d)
			continue
		}
		d.Time = &t
		switch m, ok := in.Manifests[o.Key]; {
		case !ok:
			d.Rule, d.Detail = RuleUnreadable, "manifest not read"
		case m.State == ManifestForeign:
			d.Rule, d.Detail = RuleForeign, m.Detail
		case m.State == ManifestUnreadable:
			d.Rule, d.Detail = RuleUnreadable, m.Detail
		default:
			ours = append(ours, d)
			continue
		}
		others = append(others, d)
	}
	// Newest first; at equal times (never, for one prefix's names) by key, for a total order.
	slices.SortStableFunc(ours, func(a, b result.ArchiveDecision) int {
		if c := b.Time.Compare(*a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	})
	applyPolicy(ours, in.Policy)
	for i := range ours {
		protect(&ours[i], i == 0, in)
	}
	// Archive-named objects first, newest first, then the rest by key.
	slices.SortStableFunc(others, func(a, b result.ArchiveDecision) int {
		switch {
		case a.Time != nil && b.Time != nil:
			if c := b.Time.Compare(*a.Time); c != 0 {
				return c
			}
		case a.Time != nil:
			return -1
		case b.Time != nil:
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return append(ours, others...)
}

// bucket is one rule of the policy: restic's bucket with its count left and the last period
// value it kept.
type bucket struct {
	rule   string
	count  int
	period func(t time.Time, nr int) int
	last   int
}

// The period functions of restic's ApplyPolicy (ymdh, ymd, yw, ym, always), on UTC.
func always(_ time.Time, nr int) int { return nr }
func hour(t time.Time, _ int) int {
	t = t.UTC()
	return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
}
func day(t time.Time, _ int) int {
	t = t.UTC()
	return t.Year()*10000 + int(t.Month())*100 + t.Day()
}
func week(t time.Time, _ int) int {
	y, w := t.UTC().ISOWeek()
	return y*100 + w
}
func month(t time.Time, _ int) int {
	t = t.UTC()
	return t.Year()*100 + int(t.Month())
}

// applyPolicy sets Action, Rule and Matches of ours (newest first) by the policy alone.
func applyPolicy(ours []result.ArchiveDecision, p result.Retention) {
	if p.Empty() {
		for i := range ours {
			ours[i].Rule = RuleNoPolicy
		}
		return
	}
	buckets := []bucket{
		{RuleLast, p.KeepLast, always, -1},
		{RuleHourly, p.KeepHourly, hour, -1},
		{RuleDaily, p.KeepDaily, day, -1},
		{RuleWeekly, p.KeepWeekly, week, -1},
		{RuleMonthly, p.KeepMonthly, month, -1},
	}
	for nr := range ours {
		d := &ours[nr]
		oldest := nr == len(ours)-1
		for i := range buckets {
			b := &buckets[i]
			if b.count <= 0 {
				continue
			}
			v := b.period(*d.Time, nr)
			if v == b.last && !oldest {
				continue
			}
			rule := b.rule
			if v == b.last {
				rule = OldestPrefix + rule
			}
			b.last = v
			b.count--
			d.Matches = append(d.Matches, rule)
		}
		if len(d.Matches) > 0 {
			d.Action, d.Rule = result.ActionKeep, d.Matches[0]
		} else {
			d.Action, d.Rule = result.ActionDelete, RuleNone
		}
	}
}

// protect keeps an archive the policy would delete when a protection covers it.
func protect(d *result.ArchiveDecision, newest bool, in Input) {
	if d.Action != result.ActionDelete {
		return
	}
	switch {
	case newest || d.Name == in.KnownGood:
		d.Action, d.Rule = result.ActionKeep, RuleNewest
	case d.Name == in.Marker.Protect:
		d.Action, d.Rule, d.Detail = result.ActionKeep, RuleRestoreMarker, in.Marker.Detail
	case in.Marker.Unknown:
		d.Action, d.Rule, d.Detail = result.ActionKeep, RuleMarkerUnknown, in.Marker.Detail
	}
}

// Count sums up decisions (before any delete ran: Deleted and Failed are left 0).
func Count(ds []result.ArchiveDecision) result.PruneCounts {
	c := result.PruneCounts{Objects: len(ds)}
	for _, d := range ds {
		ours := d.Time != nil && d.Rule != RuleNotArchive && d.Rule != RuleOtherPrefix && d.Rule != RuleForeign && d.Rule != RuleUnreadable
		if ours {
			c.Archives++
		}
		if d.Action == result.ActionDelete {
			c.Delete++
		}
	}
	c.Retained = c.Archives - c.Delete
	return c
}
