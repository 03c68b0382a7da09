package workflows

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// Against a real Temporal server: the worker's schedule follows backup.enable and
// backupInterval, with overlap skip.
func TestSyncScheduleFollowsConfig(t *testing.T) {
	tp := testenv.StartTemporal(t)
	c := tp.Client(t)
	ctx := context.Background()

	state, err := SyncSchedule(ctx, c, "tq", false, time.Minute)
	if err != nil || state != ScheduleAbsent {
		t.Fatalf("disabled, no schedule: %v %v", state, err)
	}
	if state, err = SyncSchedule(ctx, c, "tq", true, 10*time.Minute); err != nil || state != ScheduleCreated {
		t.Fatalf("create: %v %v", state, err)
	}
	d := describe(t, c)
	if got := d.Schedule.Spec.Intervals[0].Every; got != 10*time.Minute {
		t.Fatalf("interval %s", got)
	}
	if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || d.Schedule.State.Paused {
		t.Fatalf("policy %v paused %v", d.Schedule.Policy.Overlap, d.Schedule.State.Paused)
	}
	act := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if act.Workflow != BackupWorkflowName || act.TaskQueue != "tq" {
		t.Fatalf("action %+v", act)
	}

	if state, err = SyncSchedule(ctx, c, "tq", false, 10*time.Minute); err != nil || state != SchedulePaused {
		t.Fatalf("pause: %v %v", state, err)
	}
	if !describe(t, c).Schedule.State.Paused {
		t.Fatal("not paused")
	}
	if state, err = SyncSchedule(ctx, c, "tq2", true, 45*time.Second); err != nil || state != ScheduleUpdated {
		t.Fatalf("update: %v %v", state, err)
	}
	d = describe(t, c)
	if d.Schedule.State.Paused || d.Schedule.Spec.Intervals[0].Every != 45*time.Second ||
		d.Schedule.Action.(*client.ScheduleWorkflowAction).TaskQueue != "tq2" || len(d.Schedule.Spec.Intervals) != 1 {
		t.Fatalf("after update: paused %v spec %+v", d.Schedule.State.Paused, d.Schedule.Spec)
	}
}

func describe(t *testing.T, c client.Client) *client.ScheduleDescription {
	t.Helper()
	d, err := c.ScheduleClient().GetHandle(context.Background(), ScheduleID).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
