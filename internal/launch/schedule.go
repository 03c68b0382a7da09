package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// ScheduleState is what SyncSchedule did.
type ScheduleState string

const (
	ScheduleCreated ScheduleState = "created"
	ScheduleUpdated ScheduleState = "updated"
	SchedulePaused  ScheduleState = "paused"
	ScheduleAbsent  ScheduleState = "absent"
)

// SyncSchedule brings the Temporal Schedule ScheduleID in line with backup.enable: when
// enabled it exists, unpaused, starting BackupWorkflow every interval on taskQueue with
// overlap policy skip; when disabled an existing schedule is paused (kept, so its history
// and any operator notes stay) and a missing one is left missing.
func SyncSchedule(ctx context.Context, c client.Client, taskQueue string, enable bool, interval time.Duration) (ScheduleState, error) {
	if interval <= 0 {
		return "", fmt.Errorf("schedule %s: interval must be positive", ScheduleID)
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: interval}}}
	action := &client.ScheduleWorkflowAction{
		ID:        ScheduleID,
		Workflow:  BackupWorkflowName,
		TaskQueue: taskQueue,
		// A backup that cannot finish within ten intervals is stuck, not slow.
		WorkflowExecutionTimeout: maxDuration(10*interval, 6*time.Hour),
	}
	sc := c.ScheduleClient()
	h := sc.GetHandle(ctx, ScheduleID)
	_, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		if !enable {
			return ScheduleAbsent, nil
		}
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID:      ScheduleID,
			Spec:    spec,
			Action:  action,
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Note:    "managed by pulsar-metadata-backup worker (backup.enable)",
		})
		if err != nil {
			return "", fmt.Errorf("create schedule %s: %w", ScheduleID, err)
		}
		return ScheduleCreated, nil
	case err != nil:
		return "", fmt.Errorf("describe schedule %s: %w", ScheduleID, err)
	}
	if !enable {
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "backup.enable is false"}); err != nil {
			return "", fmt.Errorf("pause schedule %s: %w", ScheduleID, err)
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
		s.State.Note = "managed by pulsar-metadata-backup worker (backup.enable)"
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return "", fmt.Errorf("update schedule %s: %w", ScheduleID, err)
	}
	return ScheduleUpdated, nil
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
