package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

// archives reads archives straight from their store: inspect and diff need neither Temporal
// nor ZooKeeper. The config, when given, says how to reach S3 (s3.*), where bare keys live
// (restore.bucket, else backup.bucket) and where temporary files go (backup.stagingDir).
type archives struct {
	cfg     config.Config
	bucket  string // "" without a config: URLs only
	tempDir string
}

func newArchives(configPath string) (archives, error) {
	if configPath == "" {
		return archives{cfg: config.Default(), tempDir: os.TempDir()}, nil
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return archives{}, err
	}
	a := archives{cfg: cfg, bucket: cfg.RestoreBucket(), tempDir: cfg.Backup.StagingRoot()}
	if err := os.MkdirAll(a.tempDir, 0o700); err != nil {
		return archives{}, fmt.Errorf("staging dir: %w", err)
	}
	return a, nil
}

// open resolves point as a restorePoint is (an s3a://, s3:// or file:// URL, or a key in the
// configured bucket) and opens the object.
func (a archives) open(ctx context.Context, point string) (io.ReadCloser, string, error) {
	url := point
	if !strings.Contains(point, "://") {
		if a.bucket == "" {
			return nil, "", fmt.Errorf("%q is not an archive URL (s3a://, s3:// or file:///): a bare key needs --config, whose bucket it is in", point)
		}
		var err error
		if url, err = restore.ResolvePoint(point, a.bucket); err != nil {
			return nil, "", err
		}
	}
	loc, key, err := storage.SplitObjectURL(url)
	if err != nil {
		return nil, "", err
	}
	store, err := storage.Open(ctx, loc.URL(""), a.cfg.S3.StoreOptions())
	if err != nil {
		return nil, "", err
	}
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return rc, url, nil
}

// parseArgs parses flags placed before, between or after the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func argErr(err error) string {
	if err == nil {
		return ""
	}
	return ": " + strings.TrimSpace(err.Error())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
