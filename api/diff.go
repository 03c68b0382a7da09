package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// diffTimeout bounds one /backup/diff: reading two archives of a million znodes each takes
// a minute or two; the response's write deadline is moved out to match.
const diffTimeout = 10 * time.Minute

// differ serves /backup/diff over the deployment's bucket. Diffs run one at a time: each
// holds its sort buffers (backupdiff.Options.Budget per archive) and two downloads.
type differ struct {
	bucket  catalog.Bucket
	prefix  string
	tempDir string
	slot    chan struct{}
}

func newDiffer(bucket catalog.Bucket, prefix, tempDir string) *differ {
	return &differ{bucket: bucket, prefix: prefix, tempDir: tempDir, slot: make(chan struct{}, 1)}
}

// checkName accepts the names /backup/list shows: keys under the backup prefix ending in
// .tar.gz.
func (d *differ) checkName(param, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is required: the name of a backup as /backup/list shows it", param)
	case !strings.HasPrefix(name, d.prefix) || !strings.HasSuffix(name, catalog.ArchiveSuffix):
		return fmt.Errorf("%s %q is not a backup name: names start with %q and end with %q, as /backup/list shows them", param, name, d.prefix, catalog.ArchiveSuffix)
	}
	if err := storage.CheckKey(name); err != nil {
		return fmt.Errorf("%s %q is not a backup name: %v", param, name, err)
	}
	return nil
}

// diffStatus is the HTTP status for a failed diff: the archive's fault (422), a missing
// object (404) or the bucket's (503).
func diffStatus(err error) int {
	switch {
	case errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrEncrypted):
		// ErrEncrypted: the API holds no age identity; `starter diff` decrypts.
		return http.StatusUnprocessableEntity
	case errors.Is(err, storage.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, storage.ErrBucketNotFound), errors.Is(err, storage.ErrAccessDenied):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// diff answers GET /backup/diff?from=NAME&to=NAME with backupdiff's Result, the JSON of
// `starter diff --json`.
func (s *server) diff(w http.ResponseWriter, r *http.Request) {
	d := s.differ
	if d == nil {
		s.fail(w, http.StatusNotFound, "no such endpoint: /backup/diff")
		return
	}
	q, err := query(r, "from", "to")
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, p := range []string{"from", "to"} {
		if err := d.checkName(p, q[p]); err != nil {
			s.fail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), diffTimeout)
	defer cancel()
	select {
	case d.slot <- struct{}{}:
		defer func() { <-d.slot }()
	case <-ctx.Done():
		return // the client is gone
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(diffTimeout + time.Minute))
	res, err := d.run(ctx, q["from"], q["to"])
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		status := diffStatus(err)
		s.log.Warn("diff failed", "from", q["from"], "to", q["to"], "status", status, "error", s.redact(err.Error()))
		s.fail(w, status, err.Error())
		return
	}
	s.reply(w, http.StatusOK, res)
}

func (d *differ) run(ctx context.Context, from, to string) (backupdiff.Result, error) {
	var in [2]backupdiff.Input
	for i, name := range []string{from, to} {
		rc, err := d.bucket.Get(ctx, name)
		if errors.Is(err, storage.ErrNotExist) {
			return backupdiff.Result{}, fmt.Errorf("no backup named %q in %s: %w", name, d.bucket.URL(""), err)
		}
		if err != nil {
			return backupdiff.Result{}, err
		}
		defer rc.Close()
		in[i] = backupdiff.Input{Name: d.bucket.URL(name), R: rc}
	}
	if err := os.MkdirAll(d.tempDir, 0o700); err != nil {
		return backupdiff.Result{}, fmt.Errorf("diff: temporary directory: %w", err)
	}
	return backupdiff.Diff(ctx, in[0], in[1], backupdiff.Options{TempDir: d.tempDir})
}
