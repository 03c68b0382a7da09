package activities

import (
	"go.temporal.io/sdk/worker"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
)

// RegisterBackup registers the backup stages, bound to cfg, staging their files under
// staging (the process's own directory, staging.Claim; "" for the config's staging root).
// The worker must run with worker.Options{EnableSessionWorker: true}: the stages run in a
// session.
func RegisterBackup(w worker.Registry, cfg config.Config, staging string) {
	w.RegisterActivity(&Backup{Config: cfg, Staging: staging})
}

// RegisterRestore registers the restore stages, bound to cfg (its zookeeper section is the
// target), staging like RegisterBackup. Like the backup's, they run in a session:
// EnableSessionWorker must be set.
func RegisterRestore(w worker.Registry, cfg config.Config, staging string) {
	w.RegisterActivity(&Restore{Config: cfg, Staging: staging})
}

// RegisterVerify registers the restore drill's own stages, bound to cfg (verify.zookeeper is
// the scratch ensemble). The drill also runs the restore's download and validation
// (RegisterRestore) on the same workers.
func RegisterVerify(w worker.Registry, cfg config.Config) {
	w.RegisterActivity(&Verify{Config: cfg})
}
