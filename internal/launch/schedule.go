// Package launch is the client side of the workflows: the backup Schedule a worker keeps in
// line with its config, and starting restores. It runs in the worker and starter binaries,
// never inside a workflow.
package launch

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// ScheduleState is what SyncSchedule did.
type ScheduleState string

const (
	ScheduleCreated ScheduleState = "created"
	ScheduleUpdated ScheduleState = "updated"
	SchedulePaused  ScheduleState = "paused"
	ScheduleAbsent  ScheduleState = "absent"
)

// Deployment is what a worker backs up: its task queue (which names its Schedule) and its
// backup target (bucket and prefix), recorded in the Schedule's memo.
type Deployment struct {
	TaskQueue string
	Target    string
}

// errScheduleClaimed is wrapped when the Schedule this deployment's task queue names belongs
// to another deployment.
var errScheduleClaimed = errors.New("the schedule belongs to another deployment")

const (
	memoTarget = "backupTarget"
	note       = "managed by pulsar-metadata-backup worker (backup.enable)"
)

// ScheduledSummary is the static summary of every backup the Schedule starts.
func ScheduledSummary(target string, interval time.Duration) string {
	return fmt.Sprintf("scheduled backup to %s, every %s", target, interval)
}

// staticSummary is a scheduled run's static summary: a backup's (ScheduledSummary) or a
// restore drill's.
func staticSummary(workflowName, target string, interval time.Duration) string {
	if workflowName == result.VerifyWorkflowName {
		return fmt.Sprintf("scheduled restore drill of the newest archive of %s, every %s", target, interval)
	}
	return ScheduledSummary(target, interval)
}

// SyncSchedule brings this deployment's Schedule (result.ScheduleID of its task queue) in
// line with backup.enable: when enabled it exists, unpaused, starting BackupWorkflow every
// interval on the task queue with overlap policy skip; when disabled an existing one is
// paused (kept, so its history and any operator notes stay) and a missing one is left
// missing. It only ever touches its own Schedule: one whose action starts workflows on
// another task queue fails it, naming that deployment. A Schedule an
// earlier version of this tool kept under the default ID for this task queue is deleted.
func SyncSchedule(ctx context.Context, c client.Client, d Deployment, enable bool, interval time.Duration) (ScheduleState, error) {
	id := result.ScheduleID(d.TaskQueue)
	if interval <= 0 {
		return "", fmt.Errorf("schedule %s: interval must be positive", id)
	}
	sc := c.ScheduleClient()
	if id != result.DefaultScheduleID {
		if err := dropLegacy(ctx, sc, d); err != nil {
			return "", err
		}
	}
	// A backup that cannot finish within ten intervals is stuck, not slow.
	return syncSchedule(ctx, c, id, result.BackupWorkflowName, d, enable, interval, max(10*interval, 6*time.Hour))
}

// SyncVerifySchedule does for the restore drill's Schedule (result.VerifyScheduleID: every
// interval, VerifyWorkflow, overlap skip) what SyncSchedule does for the backups', following
// verify.enable.
func SyncVerifySchedule(ctx context.Context, c client.Client, d Deployment, enable bool, interval time.Duration) (ScheduleState, error) {
	id := result.VerifyScheduleID(d.TaskQueue)
	if interval <= 0 {
		return "", fmt.Errorf("schedule %s: interval must be positive", id)
	}
	return syncSchedule(ctx, c, id, result.VerifyWorkflowName, d, enable, interval, max(interval, 12*time.Hour))
}

func syncSchedule(ctx context.Context, c client.Client, id, workflowName string, d Deployment, enable bool, interval, timeout time.Duration) (ScheduleState, error) {
	sc := c.ScheduleClient()
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: interval}}}
	action := &client.ScheduleWorkflowAction{
		ID:                       id,
		Workflow:                 workflowName,
		TaskQueue:                d.TaskQueue,
		WorkflowExecutionTimeout: timeout,
		// What each run's view in the Web UI says before it finishes (its memo says what it did).
		StaticSummary: staticSummary(workflowName, d.Target, interval),
	}
	h := sc.GetHandle(ctx, id)
	desc, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		if !enable {
			return ScheduleAbsent, nil
		}
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, Note: note,
			Memo: map[string]any{memoTarget: d.Target},
		})
		if err != nil {
			return "", fmt.Errorf("create schedule %s: %w", id, err)
		}
		return ScheduleCreated, nil
	case err != nil:
		return "", fmt.Errorf("describe schedule %s: %w", id, err)
	}
	if a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); ok && a.Workflow != nil && fmt.Sprint(a.Workflow) != workflowName {
		return "", fmt.Errorf("%w: schedule %s starts %v, not %s; give this deployment another temporal.taskQueue", errScheduleClaimed, id, a.Workflow, workflowName)
	}
	if tq := actionQueue(desc); tq != d.TaskQueue {
		return "", fmt.Errorf("%w: schedule %s starts backups on task queue %q (%s), not on this worker's %q; leave it alone and give each deployment its own temporal.taskQueue",
			errScheduleClaimed, id, tq, describeTarget(desc), d.TaskQueue)
	}
	if !enable {
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "disabled in the config"}); err != nil {
			return "", fmt.Errorf("pause schedule %s: %w", id, err)
		}
		return SchedulePaused, nil
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		s.Action = action
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		if s.State == nil {
			s.State = &client.ScheduleState{}
		}
		s.State.Paused = false
		s.State.Note = note
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return "", fmt.Errorf("update schedule %s: %w", id, err)
	}
	return ScheduleUpdated, nil
}

// dropLegacy deletes the Schedule under the default ID when it starts backups on d's task
// queue: earlier versions kept every deployment's schedule there.
func dropLegacy(ctx context.Context, sc client.ScheduleClient, d Deployment) error {
	h := sc.GetHandle(ctx, result.DefaultScheduleID)
	desc, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil
	case err != nil:
		return fmt.Errorf("describe schedule %s: %w", result.DefaultScheduleID, err)
	case actionQueue(desc) != d.TaskQueue:
		return nil
	}
	if err := h.Delete(ctx); err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete this deployment's old schedule %s: %w", result.DefaultScheduleID, err)
	}
	return nil
}

func actionQueue(d *client.ScheduleDescription) string {
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		return a.TaskQueue
	}
	return ""
}

// describeTarget names the deployment a Schedule backs up to, from its memo.
func describeTarget(d *client.ScheduleDescription) string {
	if d.Memo != nil {
		if p, ok := d.Memo.GetFields()[memoTarget]; ok {
			var target string
			if converter.GetDefaultDataConverter().FromPayload(p, &target) == nil && target != "" {
				return "backing up to " + target
			}
		}
	}
	return "backup target unknown"
}
