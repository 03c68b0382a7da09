package launch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

func describe(t *testing.T, c client.Client, id string) *client.ScheduleDescription {
	t.Helper()
	d, err := c.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Against a real Temporal server: a deployment's schedule follows backup.enable and
// backupInterval, with overlap skip.
func TestSyncScheduleFollowsConfig(t *testing.T) {
	tp := testenv.StartTemporal(t)
	c := tp.Client(t)
	ctx := context.Background()
	d := Deployment{TaskQueue: result.DefaultTaskQueue, Target: "s3a://a/metadata-backup"}

	state, err := SyncSchedule(ctx, c, d, false, time.Minute)
	if err != nil || state != ScheduleAbsent {
		t.Fatalf("disabled, no schedule: %v %v", state, err)
	}
	if state, err = SyncSchedule(ctx, c, d, true, 10*time.Minute); err != nil || state != ScheduleCreated {
		t.Fatalf("create: %v %v", state, err)
	}
	desc := describe(t, c, "metadata-backup")
	if got := desc.Schedule.Spec.Intervals[0].Every; got != 10*time.Minute {
		t.Fatalf("interval %s", got)
	}
	if desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || desc.Schedule.State.Paused {
		t.Fatalf("policy %v paused %v", desc.Schedule.Policy.Overlap, desc.Schedule.State.Paused)
	}
	act := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if act.Workflow != result.BackupWorkflowName || act.TaskQueue != result.DefaultTaskQueue || act.StaticSummary != "scheduled backup to "+d.Target+", every 10m0s" {
		t.Fatalf("action %+v", act)
	}

	if state, err = SyncSchedule(ctx, c, d, false, 10*time.Minute); err != nil || state != SchedulePaused {
		t.Fatalf("pause: %v %v", state, err)
	}
	if !describe(t, c, "metadata-backup").Schedule.State.Paused {
		t.Fatal("not paused")
	}
	if state, err = SyncSchedule(ctx, c, d, true, 45*time.Second); err != nil || state != ScheduleUpdated {
		t.Fatalf("update: %v %v", state, err)
	}
	desc = describe(t, c, "metadata-backup")
	if desc.Schedule.State.Paused || desc.Schedule.Spec.Intervals[0].Every != 45*time.Second || len(desc.Schedule.Spec.Intervals) != 1 {
		t.Fatalf("after update: paused %v spec %+v", desc.Schedule.State.Paused, desc.Schedule.Spec)
	}
}

// Two deployments in one namespace: each has its own schedule, and the worker of one never
// pauses or takes over the other's.
func TestTwoDeploymentsInOneNamespace(t *testing.T) {
	tp := testenv.StartTemporal(t)
	c := tp.Client(t)
	ctx := context.Background()
	x := Deployment{TaskQueue: result.DefaultTaskQueue, Target: "s3a://x/metadata-backup"}
	y := Deployment{TaskQueue: "cluster-y", Target: "s3a://y/metadata-backup"}

	if _, err := SyncSchedule(ctx, c, x, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Y's worker with backup.enable false: it has no schedule and X's keeps running.
	if state, err := SyncSchedule(ctx, c, y, false, time.Minute); err != nil || state != ScheduleAbsent {
		t.Fatalf("y disabled: %v %v", state, err)
	}
	if describe(t, c, "metadata-backup").Schedule.State.Paused {
		t.Fatal("deployment y paused x's schedule")
	}
	if state, err := SyncSchedule(ctx, c, y, true, 2*time.Minute); err != nil || state != ScheduleCreated {
		t.Fatalf("y enabled: %v %v", state, err)
	}
	if act := describe(t, c, "metadata-backup-cluster-y").Schedule.Action.(*client.ScheduleWorkflowAction); act.TaskQueue != "cluster-y" {
		t.Fatalf("y's schedule starts on %q", act.TaskQueue)
	}
	if act := describe(t, c, "metadata-backup").Schedule.Action.(*client.ScheduleWorkflowAction); act.TaskQueue != result.DefaultTaskQueue {
		t.Fatalf("x's schedule now starts on %q", act.TaskQueue)
	}

	// A schedule under y's ID that another deployment made: y's worker refuses, naming it.
	z := Deployment{TaskQueue: "cluster-z", Target: "s3a://z/metadata-backup"}
	if _, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: result.ScheduleID(z.TaskQueue), Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{ID: "w", Workflow: result.BackupWorkflowName, TaskQueue: "someone-else"},
		Memo:   map[string]any{memoTarget: "s3a://other/prefix"},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := SyncSchedule(ctx, c, z, false, time.Minute)
	if !errors.Is(err, errScheduleClaimed) || !strings.Contains(err.Error(), `task queue "someone-else" (backing up to s3a://other/prefix)`) {
		t.Fatalf("claimed schedule: %v", err)
	}
	if describe(t, c, result.ScheduleID(z.TaskQueue)).Schedule.State.Paused {
		t.Fatal("another deployment's schedule was paused")
	}
}

// Earlier versions kept every deployment's schedule under "metadata-backup": the worker of a
// deployment with its own task queue deletes the one that starts its backups, and only that.
func TestLegacyScheduleIsMovedToTheDeploymentsOwn(t *testing.T) {
	tp := testenv.StartTemporal(t)
	c := tp.Client(t)
	ctx := context.Background()
	legacy := client.ScheduleOptions{
		ID: result.DefaultScheduleID, Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{ID: "w", Workflow: result.BackupWorkflowName, TaskQueue: "cluster-y"},
	}
	if _, err := c.ScheduleClient().Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	// Another deployment's worker leaves it alone.
	if _, err := SyncSchedule(ctx, c, Deployment{TaskQueue: "cluster-w"}, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	describe(t, c, result.DefaultScheduleID)
	if _, err := SyncSchedule(ctx, c, Deployment{TaskQueue: "cluster-y"}, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScheduleClient().GetHandle(ctx, result.DefaultScheduleID).Describe(ctx); err == nil {
		t.Fatal("the legacy schedule is still there")
	}
	describe(t, c, "metadata-backup-cluster-y")
}

// The restore drill's schedule follows verify.enable and verify.interval beside the backups';
// a task queue whose backup schedule would take the drill's ID is refused, naming it.
func TestSyncVerifySchedule(t *testing.T) {
	tp := testenv.StartTemporal(t)
	c := tp.Client(t)
	ctx := context.Background()
	d := Deployment{TaskQueue: result.DefaultTaskQueue, Target: "s3a://a/metadata-backup"}
	if state, err := SyncVerifySchedule(ctx, c, d, false, 24*time.Hour); err != nil || state != ScheduleAbsent {
		t.Fatalf("disabled: %v %v", state, err)
	}
	if state, err := SyncVerifySchedule(ctx, c, d, true, 24*time.Hour); err != nil || state != ScheduleCreated {
		t.Fatalf("create: %v %v", state, err)
	}
	desc := describe(t, c, "metadata-backup-verify")
	act := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if act.Workflow != result.VerifyWorkflowName || act.TaskQueue != result.DefaultTaskQueue || desc.Schedule.Spec.Intervals[0].Every != 24*time.Hour ||
		desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Fatalf("verify schedule %+v %+v", act, desc.Schedule.Spec)
	}
	if state, err := SyncSchedule(ctx, c, d, true, time.Minute); err != nil || state != ScheduleCreated {
		t.Fatalf("backup schedule beside it: %v %v", state, err)
	}
	if state, err := SyncVerifySchedule(ctx, c, d, false, time.Hour); err != nil || state != SchedulePaused || describe(t, c, "metadata-backup").Schedule.State.Paused {
		t.Fatalf("pausing the drill paused the backups, or failed: %v %v", state, err)
	}
	// A deployment on task queue "verify" would put its backups under the default drill's ID.
	_, err := SyncSchedule(ctx, c, Deployment{TaskQueue: "verify"}, true, time.Minute)
	if !errors.Is(err, errScheduleClaimed) || !strings.Contains(err.Error(), result.VerifyWorkflowName) {
		t.Fatalf("colliding schedule ID: %v", err)
	}
}
