package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// runSummary reads a closed run's summary and details from its memo, through
// DescribeWorkflowExecution: what `temporal workflow describe` and the Web UI's run view
// show, with no worker involved. It also checks that the run's summary search attribute
// holds the same line, both in the description and in ListWorkflowExecutions, which is what
// the Web UI's run list shows as a column.
func runSummary(t *testing.T, c client.Client, id string) (summary, details string) {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	info := d.WorkflowExecutionInfo
	if info.CloseTime == nil {
		t.Fatalf("%s is still running", id)
	}
	fields := info.GetMemo().GetFields()
	for key, into := range map[string]*string{result.MemoSummary: &summary, result.MemoDetails: &details} {
		p, ok := fields[key]
		if !ok {
			t.Fatalf("%s has no memo %q (memo %v)", id, key, fields)
		}
		if err := converter.GetDefaultDataConverter().FromPayload(p, into); err != nil {
			t.Fatalf("%s memo %q: %v", id, key, err)
		}
	}
	if got := summaryAttribute(t, id, info.GetSearchAttributes()); got != summary {
		t.Fatalf("%s: described search attribute %s = %q, memo summary %q", id, result.SummaryAttributeName, got, summary)
	}
	listed, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q AND RunId = %q", id, info.GetExecution().GetRunId()),
	})
	if err != nil {
		t.Fatalf("list %s: %v", id, err)
	}
	if len(listed.Executions) != 1 {
		t.Fatalf("list %s: %d executions, want 1", id, len(listed.Executions))
	}
	if got := summaryAttribute(t, id, listed.Executions[0].GetSearchAttributes()); got != summary {
		t.Fatalf("%s: listed search attribute %s = %q, memo summary %q", id, result.SummaryAttributeName, got, summary)
	}
	return summary, details
}

// summaryAttribute decodes a run's summary search attribute, failing when it has none.
func summaryAttribute(t *testing.T, id string, sa *commonpb.SearchAttributes) string {
	t.Helper()
	p, ok := sa.GetIndexedFields()[result.SummaryAttributeName]
	if !ok {
		t.Fatalf("%s has no search attribute %s (has %v)", id, result.SummaryAttributeName, sa.GetIndexedFields())
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		t.Fatalf("%s search attribute %s: %v", id, result.SummaryAttributeName, err)
	}
	return s
}

// backupRunID is the ID of the one BackupWorkflow run of a test's namespace that wrote url.
func backupRunID(t *testing.T, c client.Client, namespace, url string) string {
	t.Helper()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: namespace, Query: "WorkflowType = '" + result.BackupWorkflowName + "' AND ExecutionStatus = 'Completed'",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range resp.Executions {
		var s string
		if p, ok := ex.GetMemo().GetFields()[result.MemoSummary]; ok && converter.GetDefaultDataConverter().FromPayload(p, &s) == nil && strings.HasSuffix(s, url) {
			return ex.Execution.WorkflowId
		}
	}
	t.Fatalf("no completed %s run's summary names %s among %d", result.BackupWorkflowName, url, len(resp.Executions))
	return ""
}

// staticSummary is the summary a run was started with (StartWorkflowOptions.StaticSummary),
// as DescribeWorkflowExecution returns it.
func staticSummary(t *testing.T, c client.Client, id string) string {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	var s string
	if p := d.GetExecutionConfig().GetUserMetadata().GetSummary(); p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
			t.Fatalf("%s static summary: %v", id, err)
		}
	}
	return s
}

// currentDetails asks a run's worker for its current details, as the Web UI's run view does
// (the SDK's built-in __temporal_workflow_metadata query).
func currentDetails(t *testing.T, c client.Client, id string) string {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), id, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("query %s metadata: %v", id, err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatalf("%s metadata: %v", id, err)
	}
	return md.GetCurrentDetails()
}
