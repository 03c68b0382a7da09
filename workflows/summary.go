package workflows

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// summaryChange gates what a finished run records of itself, so runs recorded before each
// step replay without the commands they never issued:
//   - version 1: the memo (result.MemoSummary, MemoDetails);
//   - version 2: also the search attribute result.SummaryAttributeName, for the Web UI's
//     run list.
const (
	summaryChange           = "run-summary-memo"
	summaryMemoVersion      = 1
	summaryAttributeVersion = 2
)

// showStage sets the run's current details, which the Web UI's run view shows while it runs
// (read through the __temporal_workflow_metadata query). It issues no command, so it needs
// no versioning. Counts so far are in the running activity's heartbeat details (the run
// view's pending activities): the workflow does not see them before the activity ends.
func showStage(ctx workflow.Context, what string) {
	workflow.SetCurrentDetails(ctx, what)
}

// recordSummary makes a finished run say what it did: its current details; its memo, which
// DescribeWorkflowExecution returns even for a closed run with no worker polling; and its
// summary search attribute, which ListWorkflowExecutions returns and the Web UI's list can
// show as a column.
func recordSummary(ctx workflow.Context, summary, details string) error {
	workflow.SetCurrentDetails(ctx, details)
	v := workflow.GetVersion(ctx, summaryChange, workflow.DefaultVersion, summaryAttributeVersion)
	if v < summaryMemoVersion {
		return nil
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{result.MemoSummary: summary, result.MemoDetails: details}); err != nil {
		return stageError("record summary", err)
	}
	if v < summaryAttributeVersion {
		return nil
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SummaryAttribute.ValueSet(cutUTF8(summary, result.SummaryAttributeMaxBytes))); err != nil {
		return stageError("record summary", err)
	}
	return nil
}

// cutUTF8 returns s cut to at most max bytes on a rune boundary, ending in "…" when cut.
func cutUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	end := max - len(ellipsis)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + ellipsis
}

// backupSummary is a finished backup in one line: znodes, compressed size and object URL.
func backupSummary(r BackupResult) string {
	return fmt.Sprintf("%d znodes, %s compressed: %s", r.Znodes, inspect.Bytes(r.SizeCompressed), r.URL)
}

// backupDetails is a finished backup in Markdown, for the run view.
func backupDetails(r BackupResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Backup** %s\n\n", r.URL)
	fmt.Fprintf(&b, "- znodes: %d (ephemeral skipped %d, vanished while read %d)\n", r.Znodes, r.EphemeralSkipped, r.Vanished)
	for _, role := range r.Roles {
		fmt.Fprintf(&b, "  - %s (%s): %d\n", role.Role, role.Source, role.Znodes)
	}
	fmt.Fprintf(&b, "- size: %s compressed (%d bytes), %s uncompressed (%d bytes), %d bytes of znode data\n",
		inspect.Bytes(r.SizeCompressed), r.SizeCompressed, inspect.Bytes(r.SizeNonCompressed), r.SizeNonCompressed, r.DataBytes)
	fmt.Fprintf(&b, "- sha256: `%s`\n", r.SHA256)
	fmt.Fprintf(&b, "- zxid: %s to %s\n", r.ZxidStart, r.ZxidEnd)
	fmt.Fprintf(&b, "- target: %s\n", r.Target)
	d := r.Durations
	fmt.Fprintf(&b, "- seconds: %.1f (dump %.1f, compress %.1f, upload %.1f)\n", d.Total, d.Dump, d.Compression, d.Upload)
	if r.AuthUnused {
		b.WriteString("- **zookeeper.auth was never needed: the credentials were not proven**\n")
	}
	return b.String()
}

// restoreSummary is a finished restore in one line: znodes created, ledgers kept and
// dropped, and the configuration store's mode and znodes created when it has one.
func restoreSummary(r RestoreReport) string {
	var s string
	switch {
	case r.AlreadyRestored:
		return "already restored: nothing done, " + r.RestorePoint + " version " + r.RestoreVersion
	case r.DryRun:
		var create int64
		if r.Plan != nil {
			create = r.Plan.Create
		}
		s = fmt.Sprintf("dry run: would restore %d znodes (%d there already), keep %d ledgers, drop %d",
			create, r.Existing, r.LedgersKept, r.LedgersDropped)
	default:
		s = fmt.Sprintf("created %d znodes, kept %d ledgers, dropped %d", r.Created, r.LedgersKept, r.LedgersDropped)
	}
	if c := r.Configuration; c != nil {
		s += fmt.Sprintf("; configuration (%s): created %d", c.Mode, c.Created)
	}
	return s
}

// restoreDetails is a finished restore in Markdown, for the run view.
func restoreDetails(r RestoreReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Restore** %s version %s into %s\n\n", r.RestorePoint, r.RestoreVersion, strings.Join(r.Target, ","))
	fmt.Fprintf(&b, "- %s\n", restoreSummary(r))
	if !r.AlreadyRestored && !r.DryRun {
		fmt.Fprintf(&b, "- znodes created %d, already there %d, `initialize-cluster-metadata` znodes replaced %d\n", r.Created, r.Existing, r.InitReplaced)
	}
	lost := int64(len(r.TopicsWithDataLoss))
	if r.Plan != nil {
		lost = r.Plan.TopicsWithDataLossCount
	}
	fmt.Fprintf(&b, "- ledgers kept (offloaded) %d, dropped (BookKeeper only) %d; cursors reset %d; topics with data loss %d\n",
		r.LedgersKept, r.LedgersDropped, r.CursorsReset, lost)
	if skipped := inspect.Counts(r.Skipped); skipped != "" {
		fmt.Fprintf(&b, "- skipped: %s\n", skipped)
	}
	if c := r.Configuration; c != nil {
		fmt.Fprintf(&b, "- configuration store %s (%s): created %d, already there %d, left as found %d\n",
			r.ConfigurationTarget, c.Mode, c.Created, c.Existing, c.Conflicts.Count)
	}
	if r.Replaced != nil {
		fmt.Fprintf(&b, "- replaced the earlier restore of %s version %s\n", r.Replaced.RestorePoint, r.Replaced.RestoreVersion)
	}
	fmt.Fprintf(&b, "- seconds: %.1f (download %.1f, plan %.1f, apply %.1f)\n", r.Durations.Total, r.Durations.Download, r.Durations.Plan, r.Durations.Apply)
	return b.String()
}
