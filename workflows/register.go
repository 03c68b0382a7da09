package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers the workflows under their operator-facing names.
func Register(w worker.Registry) {
	w.RegisterWorkflowWithOptions(BackupWorkflow, workflowRegisterOptions(BackupWorkflowName))
	w.RegisterWorkflowWithOptions(RestoreWorkflow, workflowRegisterOptions(RestoreWorkflowName))
}

func workflowRegisterOptions(name string) workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: name}
}
