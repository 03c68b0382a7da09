// Command api serves the backup service's HTTP API on backup.webServerPort:
//
//	api --config FILE [--listen ADDR] [--cache-ttl 10s] [--refresh-timeout 5s] [--max-runs 1000]
//
// Everything it serves is read from Temporal and the bucket, so any number of instances can
// run and a restart loses nothing. It serves one deployment: the BackupWorkflow runs tagged
// with its bucket and prefix (search attribute MetadataBackupTarget) and the archives under
// that prefix.
//
//   - GET /backup/latest: the newest backup a completed run made whose archive is still in
//     the bucket (or, when no run is, the newest readable archive in the bucket); 404 when
//     there is none.
//   - GET /backup/list[?limit=N][&pageToken=T]: {"backups": [...], "nextPageToken": T},
//     newest first, N from 1 to 10000 (default 1000); nextPageToken is absent on the last
//     page.
//   - GET /backup/diff?from=NAME&to=NAME: what changed from one backup to another (NAME as
//     /backup/list shows it), the JSON of `starter diff --json`. 400 for a name that is not
//     a backup name, 404 for one not in the bucket, 422 for an archive that is corrupt.
//   - GET /metrics: Prometheus text format (see metrics.go for the names).
//   - GET /healthz: 200 while the process runs. GET /readyz: 200 when Temporal answers
//     queries for this deployment and the bucket can be listed, else 503 with the reasons.
//
// An entry has the JSON names of the workflow's result (name, url, time, znodes,
// ephemeralSkipped, dataBytes, sizeNonCompressed, sizeCompressed, zxidStart, zxidEnd, sha256,
// durations {prepare, dump, compression, upload, total} in seconds, and prune: what the prune
// after the backup did) plus workflowId, runId, missing (the run completed but its archive is
// gone) and source: "temporal" for a run,
// "bucket" for an archive no listed run accounts for, described by its own manifest (no
// durations, no non-compressed size). A .tar.gz under the prefix whose manifest cannot be
// read is listed with "error"; other objects are not backups and are ignored, and so are the
// archives of a longer prefix that starts with this one and a dash (another deployment's).
//
// Errors are {"error": "..."}: 400 for bad query parameters, 404 for unknown paths, 503 with
// the reason when Temporal or the bucket cannot be read within the refresh timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/catalog"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

type options struct {
	configPath     string
	listen         string
	cacheTTL       time.Duration
	refreshTimeout time.Duration
	maxRuns        int
}

func main() {
	var o options
	flag.StringVar(&o.configPath, "config", "", "config file (YAML), the same as the worker's")
	flag.StringVar(&o.listen, "listen", "", "address to listen on (default \":<backup.webServerPort>\")")
	flag.DurationVar(&o.cacheTTL, "cache-ttl", 10*time.Second, "how long a view of Temporal and the bucket is served before it is refreshed")
	flag.DurationVar(&o.refreshTimeout, "refresh-timeout", 5*time.Second, "bound on one refresh from Temporal and the bucket; past it requests get 503")
	flag.IntVar(&o.maxRuns, "max-runs", 1000, "most recent completed workflow runs read per refresh; older archives are listed from the bucket")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(o, logger); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(o options, logger *slog.Logger) error {
	if o.configPath == "" {
		return errors.New("--config FILE is required")
	}
	if o.cacheTTL <= 0 || o.refreshTimeout <= 0 || o.maxRuns <= 0 {
		return errors.New("--cache-ttl, --refresh-timeout and --max-runs must be positive")
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	if o.listen == "" {
		o.listen = ":" + strconv.Itoa(cfg.Backup.WebServerPort)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := newAPI(ctx, cfg, o, logger)
	if err != nil {
		return err
	}
	defer a.close()

	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	srv := newHTTPServer(a.handler())
	logger.Info("api listening", "addr", l.Addr().String(), "temporal", cfg.Temporal.HostPort,
		"namespace", cfg.Temporal.Namespace, "target", a.target)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", o.listen, err)
	case <-ctx.Done():
	}
	logger.Info("api stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// api is the server with its connections, built from the config.
type api struct {
	*server
	target string
	tc     client.Client
}

// newAPI connects lazily: the process starts, and /healthz answers, even while Temporal or
// the bucket is down; /readyz and the data endpoints say what is unreachable.
func newAPI(ctx context.Context, cfg config.Config, o options, logger *slog.Logger) (*api, error) {
	store, err := storage.Open(ctx, cfg.Backup.Bucket, cfg.S3.StoreOptions())
	if err != nil {
		return nil, err
	}
	tc, err := client.NewLazyClient(client.Options{
		HostPort:  cfg.Temporal.HostPort,
		Namespace: cfg.Temporal.Namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", cfg.Temporal.HostPort, err)
	}
	target := cfg.Backup.Target()
	runs := newTemporalRuns(tc, target, o.maxRuns, logger)
	cat := catalog.New(store, catalog.Options{Prefix: cfg.Backup.BackupPrefix})
	redact := newRedactor(cfg)
	snaps := newSnapshots(runs, cat, o.cacheTTL, o.refreshTimeout, logger)
	snaps.redact = redact
	checks := []health.Check{
		{Name: "temporal", Fn: runs.Ping},
		{Name: "bucket", Fn: func(ctx context.Context) error { return probeBucket(ctx, store, cfg.Backup.BackupPrefix) }},
	}
	srv := newServer(snaps, checks, scheduledInterval(cfg), logger, redact)
	srv.differ = newDiffer(store, cfg.Backup.BackupPrefix, cfg.Backup.StagingRoot())
	return &api{
		server: srv,
		target: target,
		tc:     tc,
	}, nil
}

func (a *api) close() { a.tc.Close() }

// scheduledInterval is the time between scheduled backups, or 0 when the worker keeps the
// schedule paused (backup.enable false).
func scheduledInterval(cfg config.Config) time.Duration {
	if !cfg.Backup.Enable {
		return 0
	}
	return time.Duration(cfg.Backup.BackupInterval) * time.Second
}

var errStop = errors.New("stop")

// probeBucket lists at most one page of the prefix: enough to prove the bucket exists and
// the credentials may read it, without writing (the API may have read-only credentials).
func probeBucket(ctx context.Context, st storage.Store, prefix string) error {
	err := st.List(ctx, prefix, func(storage.ObjectInfo) error { return errStop })
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// newRedactor returns a function that blanks the secrets this process knows of, in case
// a library ever puts one into an error message.
func newRedactor(cfg config.Config) func(string) string {
	var secrets []string
	for _, env := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		secrets = append(secrets, os.Getenv(env))
	}
	for _, z := range []config.ZooKeeper{cfg.ZooKeeper, cfg.ConfigurationStore} {
		if pw := z.Password(); pw != "" {
			secrets = append(secrets, pw)
		}
	}
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 { // shorter strings would blank ordinary words
			pairs = append(pairs, s, "***")
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	return strings.NewReplacer(pairs...).Replace
}
