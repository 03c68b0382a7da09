package inspect

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
)

// listed is how many names of a list the text shows; the JSON has the plan's lists whole.
const listed = 5

// WriteText writes the summary for people: the manifest, then the counts, then the restore.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	m := s.Manifest
	if s.URL != "" {
		fmt.Fprintf(w, "archive   %s\n", s.URL)
	}
	fmt.Fprintf(w, "format    %d (%s, tool %s)\n", m.FormatVersion, m.Kind, m.ToolVersion)
	fmt.Fprintf(w, "time      %s .. %s\n", m.StartTime.UTC().Format("2006-01-02T15:04:05.000Z"), m.EndTime.UTC().Format("2006-01-02T15:04:05.000Z"))
	fmt.Fprintf(w, "znodes    %d (%s of data), %d ephemeral skipped, %d vanished during the backup\n", m.Znodes, Bytes(m.DataBytes), m.EphemeralSkipped, m.Vanished)
	for _, r := range m.Roles {
		c := r.Consistency
		at := fmt.Sprintf("zxids %s .. %s (highest in the tree %s)", c.ZxidStart, c.ZxidEnd, c.MaxZxid)
		if c.PointInTime {
			at = fmt.Sprintf("revision %d (one point in time)", c.Revision)
		}
		fmt.Fprintf(w, "role      %s: %s, %d znodes, %s; stream %s %s, sha256 %s\n", r.Role, r.Source, r.Znodes, at, r.Stream, Bytes(r.StreamBytes), r.StreamSHA256)
	}
	if e := m.Encryption; e != nil {
		fmt.Fprintf(w, "encrypted %s to %s\n", e.Scheme, strings.Join(e.Recipients, ", "))
	}
	fmt.Fprintf(w, "managed ledgers under %s\n\n", m.ManagedLedgerPath)

	store := ""
	if s.Configuration != nil {
		store = " (local store)"
	}
	p("top-level path%s\tznodes\tdata\n", store)
	for _, c := range s.ByTopLevel {
		p("%s\t%d\t%s\n", c.Path, c.Znodes, Bytes(c.DataBytes))
	}
	p("\n")
	if c := s.Configuration; c != nil {
		p("top-level path (configuration store %s)\tznodes\tdata\n", c.Source)
		for _, pc := range c.ByTopLevel {
			p("%s\t%d\t%s\n", pc.Path, pc.Znodes, Bytes(pc.DataBytes))
		}
		p("\n")
	}
	// Tenant rows have every cell, empty ones too, so that the namespaces' columns stay one
	// column block (text/tabwriter aligns runs of lines with the same cells).
	p("tenant / namespace\tznodes\tdata\ttopics\tpartitioned\tsubscriptions\toffloaded ledgers\tBookKeeper-only ledgers\n")
	for _, t := range s.Tenants {
		p("%s\t%d\t%s\t\t\t\t\t\n", t.Name, t.Znodes, Bytes(t.DataBytes))
		for _, ns := range t.Namespaces {
			p("  %s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\n", ns.Name, ns.Znodes, Bytes(ns.DataBytes), ns.Topics, ns.PartitionedTopics, ns.Subscriptions, ns.LedgersOffloaded, ns.LedgersBookKeeperOnly)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntenants %d, namespaces %d (policies znodes); topics %d (managed ledgers), partitioned topics %d, subscriptions %d\n",
		s.TenantZnodes, s.NamespaceZnodes, s.Topics, s.PartitionedTopics, s.Subscriptions)
	fmt.Fprintf(w, "ledgers: %d offloaded to tiered storage, %d in BookKeeper only\n", s.LedgersOffloaded, s.LedgersBookKeeperOnly)
	if s.Truncated {
		fmt.Fprintf(w, "(more top-level paths, tenants or namespaces than listed: the rest are counted under %s)\n", Other)
	}
	if err := writePlan(w, s.Restore); err != nil {
		return err
	}
	if c := s.Configuration; c != nil {
		var skipped int64
		for _, n := range c.Skipped {
			skipped += n
		}
		_, err := fmt.Fprintf(w, "and in the configuration store create %d znodes and leave out %d: %s\n"+
			"  (only missing znodes when the store holds another cluster's, or a tenant the archive lacks)\n",
			c.Create, skipped, counts(c.Skipped))
		return err
	}
	return nil
}

// writePlan says what a restore would keep and drop.
func writePlan(w io.Writer, pl restore.Plan) error {
	fmt.Fprintf(w, "\nA restore of this archive (into a new cluster) would\n")
	fmt.Fprintf(w, "  create %d znodes: %s\n", pl.Create, counts(pl.CreateByTopLevel))
	var skipped int64
	for _, n := range pl.Skipped {
		skipped += n
	}
	fmt.Fprintf(w, "  leave out %d: %s\n", skipped, counts(pl.Skipped))
	fmt.Fprintf(w, "  keep %d offloaded ledgers and drop %d BookKeeper-only ones, in %d managed ledgers with %d cursors (%d moved back to a kept position)\n",
		pl.LedgersKept, pl.LedgersDropped, pl.ManagedLedgers, pl.Cursors, pl.CursorsReset)
	fmt.Fprintf(w, "  lose data in %d topics%s\n", pl.TopicsWithDataLossCount, first(pl.TopicsWithDataLoss, pl.TopicsWithDataLossCount))
	fmt.Fprintf(w, "  leave %d schemas to register again%s\n", pl.SchemasToRegister.Count, first(pl.SchemasToRegister.First, pl.SchemasToRegister.Count))
	fmt.Fprintf(w, "  reset compaction of %d topics%s\n", pl.CompactionReset.Count, first(pl.CompactionReset.First, pl.CompactionReset.Count))
	fmt.Fprintf(w, "  restore %d cursors that had their own ledger (may redeliver)%s\n", pl.StaleCursors.Count, first(pl.StaleCursors.First, pl.StaleCursors.Count))
	if pl.LedgerIDFloor.HOB > 0 {
		fmt.Fprintf(w, "  set the ledger-id floor %s: new ledger ids from %d (highest in the archive %d)\n",
			pl.LedgerIDFloor.Path, pl.LedgerIDFloor.FirstID, pl.LedgerIDFloor.Highest)
	}
	_, err := fmt.Fprintf(w, "  (payload formats: %s)\n", counts(pl.PayloadFormats))
	return err
}

// counts renders a map as Counts does, or "none".
func counts(m map[string]int64) string {
	if s := Counts(m); s != "" {
		return s
	}
	return "none"
}

// Counts renders a count map as "k n, k n" in key order, leaving out zeros ("" when all are).
func Counts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// first renders the first names of a list: ": a, b and 3 more".
func first(names []string, count int64) string {
	if len(names) == 0 {
		return ""
	}
	shown := names[:min(len(names), listed)]
	out := ": " + strings.Join(shown, ", ")
	if rest := count - int64(len(shown)); rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out
}

// Bytes renders a size for people: 512 B, 3.4 KiB, 12.0 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
