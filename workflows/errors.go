package workflows

import (
	"errors"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Cause is the one line an operator needs from a failure: the outermost application
// error's message in err's chain (a stage's "<stage>: <cause>", or an activity's own
// message), without the SDK's wrapping ("activity error (type: ..., scheduledEventID:
// ...)"). A timeout or a cancellation says so, with the last failure before it when known.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *temporal.ApplicationError:
			return v.Message()
		case *temporal.TimeoutError:
			msg := "timed out (" + v.TimeoutType().String() + ")"
			if last := v.Unwrap(); last != nil {
				if c := Cause(last); c != "" && !strings.HasPrefix(c, "timed out") {
					msg += " after: " + c
				}
			}
			return msg
		case *temporal.CanceledError:
			return "canceled"
		}
	}
	return err.Error()
}

// errorType is the innermost application error's type, or "" if none.
func errorType(err error) string {
	t := ""
	for e := err; e != nil; e = errors.Unwrap(e) {
		if v, ok := e.(*temporal.ApplicationError); ok && v.Type() != "" {
			t = v.Type()
		}
	}
	return t
}

// stageError is how a workflow reports a failed stage: "dump: <cause>", typed as the cause
// (BucketNotFound, ZooKeeperAuth, ...) for the history and the API, and keeping the cause
// itself, so that what it was (a timeout, a cancellation) can still be told.
func stageError(stage string, err error) error {
	t := errorType(err)
	if t == "" {
		t = "StageFailed"
	}
	return temporal.NewNonRetryableApplicationError(stage+": "+Cause(err), t, err)
}
