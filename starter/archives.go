package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
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
// configured bucket) and opens the object. An archive encrypted with age
// (backup.encryption) is decrypted as it streams with the identities of
// restore.encryption.identityFile, as a restore's download does, and its encryption is
// returned; without them it is refused, naming its recipients.
func (a archives) open(ctx context.Context, point string) (io.ReadCloser, string, *archive.Encryption, error) {
	url := point
	if !strings.Contains(point, "://") {
		if a.bucket == "" {
			return nil, "", nil, fmt.Errorf("%q is not an archive URL (s3a://, s3:// or file:///): a bare key needs --config, whose bucket it is in", point)
		}
		var err error
		if url, err = restore.ResolvePoint(point, a.bucket); err != nil {
			return nil, "", nil, err
		}
	}
	loc, key, err := storage.SplitObjectURL(url)
	if err != nil {
		return nil, "", nil, err
	}
	store, err := storage.Open(ctx, loc.URL(""), a.cfg.S3.StoreOptions())
	if err != nil {
		return nil, "", nil, err
	}
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, "", nil, err
	}
	// The manifest (the first tar entry, a few kilobytes in) says whether it is encrypted;
	// what reading it took is replayed ahead of the rest, so the object is fetched once.
	rec := &recorder{r: rc, max: 4 << 20}
	m, merr := archive.ReadManifest(rec)
	if rec.over {
		rc.Close()
		return nil, "", nil, fmt.Errorf("%s: corrupt archive: no manifest in its first %d bytes", url, rec.max)
	}
	body := readCloser{io.MultiReader(bytes.NewReader(rec.buf.Bytes()), rc), rc.Close}
	if merr != nil || m.Encryption == nil {
		// A manifest that does not read is the reader's to report, with the rest.
		return body, url, nil, nil
	}
	ids, err := a.identities(m.Encryption)
	if err != nil {
		rc.Close()
		return nil, "", nil, fmt.Errorf("%s: %w", url, err)
	}
	// A failed decryption closes the pipe with its error, which the archive's reader
	// passes on (archive.openGzip, readErr) rather than taking it for corruption.
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.Decrypt(body, pw, ids)
		pw.CloseWithError(err)
	}()
	return readCloser{pr, func() error { pr.Close(); return rc.Close() }}, url, m.Encryption, nil
}

// identities are the age identities of restore.encryption.identityFile, for an archive
// encrypted to e's recipients.
func (a archives) identities(e *archive.Encryption) ([]age.Identity, error) {
	file := a.cfg.Restore.Encryption.IdentityFile
	if file == "" {
		return nil, fmt.Errorf("%w to age recipient(s) %s: set restore.encryption.identityFile in the --config file to read it",
			archive.ErrEncrypted, strings.Join(e.Recipients, ", "))
	}
	ids, err := archive.ReadIdentityFile(file)
	if err != nil {
		return nil, fmt.Errorf("restore.encryption.identityFile: %w", err)
	}
	return ids, nil
}

// recorder keeps what is read through it, up to max bytes; over says it read past them.
type recorder struct {
	r    io.Reader
	buf  bytes.Buffer
	max  int
	over bool
}

func (r *recorder) Read(p []byte) (int, error) {
	if r.buf.Len() >= r.max {
		r.over = true
		return 0, errors.New("read past the manifest's bytes")
	}
	n, err := r.r.Read(p[:min(len(p), r.max-r.buf.Len())])
	r.buf.Write(p[:n])
	return n, err
}

// readCloser reads from one reader and closes with another's Close.
type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

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
