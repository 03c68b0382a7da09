package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// Cause is the innermost application error's message in err's chain: the one line an
// operator needs, without the SDK's wrapping ("activity error (type: ..., scheduledEventID:
// ...)"). Timeouts and cancellations say so.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *temporal.ApplicationError:
			msg = v.Message()
		case *temporal.TimeoutError:
			msg = "timed out (" + v.TimeoutType().String() + ")"
		case *temporal.CanceledError:
			msg = "canceled"
		}
	}
	return msg
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

// stageError is how a workflow reports a failed stage: "dump: <cause>", keeping the cause's
// error type (BucketNotFound, ZooKeeperAuth, ...) for the history and the API.
func stageError(stage string, err error) error {
	t := errorType(err)
	if t == "" {
		t = "StageFailed"
	}
	return temporal.NewNonRetryableApplicationError(stage+": "+Cause(err), t, nil)
}
