package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

// Register registers the workflows under their operator-facing names.
func Register(w worker.Registry) {
	w.RegisterWorkflowWithOptions(BackupWorkflow, workflowRegisterOptions(result.BackupWorkflowName))
	w.RegisterWorkflowWithOptions(RestoreWorkflow, workflowRegisterOptions(result.RestoreWorkflowName))
	w.RegisterWorkflowWithOptions(PruneWorkflow, workflowRegisterOptions(result.PruneWorkflowName))
	w.RegisterWorkflowWithOptions(VerifyWorkflow, workflowRegisterOptions(result.VerifyWorkflowName))
}

func workflowRegisterOptions(name string) workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: name}
}
