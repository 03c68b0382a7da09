package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ErrTypeWorkerLost is the type of the failure of a run whose session's worker was lost
// more often than it starts over.
const ErrTypeWorkerLost = "WorkerLost"

// retry is shared by every stage: transient faults are retried with backoff for the stage's
// retry window (ScheduleToCloseTimeout); errors the activities mark non-retryable (missing
// bucket, wrong credentials, bad auth, a corrupt archive) fail the stage at once.
var retry = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Second,
}

// localStage is the options of the local activities that read the worker's config.
var localStage = workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second, ScheduleToCloseTimeout: time.Minute, RetryPolicy: retry}

// stages sets the options of a run's activities: each attempt may take its timeout, and a
// stage retries transient faults until the longer of its timeout and the retry window has
// passed since it was first scheduled (ScheduleToClose). A short stage therefore rides out an
// outage of up to the window; a long one (a dump, an upload) has its whole timeout.
//
// heartbeat is the session stages' heartbeat timeout: how soon a lost worker is noticed.
// The restore's activities heartbeat every few seconds from their own goroutine; the
// backup's beat less evenly (Prepare not at all, Dump every walk progress, Upload per 4 MiB
// read), so they keep a longer one.
type stages struct{ window, heartbeat time.Duration }

// newStages takes the worker's config.RetryWindow (its default when a result lacks it).
func newStages(window, heartbeat time.Duration) stages {
	if window <= 0 {
		window = time.Duration(config.Default().RetryWindow)
	}
	return stages{window: window, heartbeat: heartbeat}
}

// any is the options of an activity that may run on any worker.
func (st stages) any(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: max(timeout, st.window),
		HeartbeatTimeout:       time.Minute,
		RetryPolicy:            retry,
	})
}

// session is the options of an activity in a session: its host's queue, so a host that is
// gone fails it fast (ScheduleToStart, Heartbeat) and the run starts over on a new session.
func (st stages) session(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: max(timeout, st.window),
		ScheduleToStartTimeout: 2 * time.Minute,
		HeartbeatTimeout:       st.heartbeat,
		RetryPolicy:            retry,
	})
}

// clock measures stages on the workflow's clock, so durations include retries and queueing
// and are the same on every replay.
type clock struct {
	ctx         workflow.Context
	start, mark time.Time
}

func newClock(ctx workflow.Context) *clock {
	now := workflow.Now(ctx)
	return &clock{ctx: ctx, start: now, mark: now}
}

// lap returns the seconds since the last lap (or the start).
func (c *clock) lap() float64 {
	now := workflow.Now(c.ctx)
	d := now.Sub(c.mark).Seconds()
	c.mark = now
	return d
}

func (c *clock) total() float64 { return workflow.Now(c.ctx).Sub(c.start).Seconds() }

// withSessions runs attempt in a new worker session, and again in a new one whenever the
// session's worker was lost (sessionLost), up to max sessions; then it fails with
// ErrTypeWorkerLost, naming the last cause. Any other error of attempt is returned as it is.
func withSessions(ctx workflow.Context, what string, opts *workflow.SessionOptions, max int, attempt func(sctx workflow.Context) error) error {
	for n := 1; ; n++ {
		sctx, err := workflow.CreateSession(ctx, opts)
		if err != nil {
			return stageError("create session", err)
		}
		err = attempt(sctx)
		lost := err != nil && sessionLost(ctx, sctx, err)
		workflow.CompleteSession(sctx)
		switch {
		case err == nil || !lost:
			return err
		case n == max:
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s: the worker running it was lost %d times, giving up; last: %s", what, n, Cause(err)), ErrTypeWorkerLost, err)
		}
		workflow.GetLogger(ctx).Warn(what+": worker session lost, starting over on a new one", "attempt", n, "error", Cause(err))
	}
}

// sessionLost tells whether err came from losing the session's worker rather than from the
// stage itself: the session failed, its worker shut down, or its activity was cancelled or
// timed out waiting for the host (heartbeat, schedule-to-start) while the workflow goes on.
// A stage that used up its retry window (schedule-to-close) was not lost: it failed.
func sessionLost(ctx, sctx workflow.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if info := workflow.GetSessionInfo(sctx); info != nil && info.SessionState == workflow.SessionStateFailed {
		return true
	}
	var canceled *temporal.CanceledError
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		t := timeout.TimeoutType()
		return t == enumspb.TIMEOUT_TYPE_HEARTBEAT || t == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
	}
	return errors.As(err, &canceled) || errorType(err) == "SessionWorkerShutdown"
}
