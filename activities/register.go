package activities

import (
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
)

// RegisterBackup registers the backup stages, bound to cfg. The worker must run with
// worker.Options{EnableSessionWorker: true}: the stages run in a session.
func RegisterBackup(w worker.Registry, cfg config.Config) {
	w.RegisterActivity(&Backup{Config: cfg})
}

// RegisterRestore registers the restore stages, bound to cfg (its zookeeper section is the
// target). Like the backup's, they run in a session: EnableSessionWorker must be set.
func RegisterRestore(w worker.Registry, cfg config.Config) {
	w.RegisterActivity(&Restore{Config: cfg})
}
