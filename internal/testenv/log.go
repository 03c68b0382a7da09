package testenv

// quietLogger drops the SDK's routine logging so test output shows test failures.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

func (quietLogger) Printf(string, ...interface{}) {}
