// Package config reads the one YAML file that the worker, the starter and the API share.
// Its keys follow StreamNative Platform's values.yaml for its metadata tool, with the same
// defaults, so an operator's existing values carry over.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Config is the whole file. Secrets in it (zookeeper.auth) are never logged: use Redacted.
type Config struct {
	ZooKeeper ZooKeeper `yaml:"zookeeper"`
	Temporal  Temporal  `yaml:"temporal"`
	S3        S3        `yaml:"s3"`
	Backup    Backup    `yaml:"backup"`
	Restore   Restore   `yaml:"restore"`
	Verify    Verify    `yaml:"verify"`
	// RetryWindow is how long a backup or restore stage retries a transient fault
	// (ZooKeeper or S3 unreachable, a session expiry) before it fails, counted from the
	// stage's start: a stage shorter than its timeout rides out an outage of this long; a long
	// stage (dump, upload, apply) retries within its timeout. Errors retrying cannot fix fail
	// at once.
	RetryWindow Duration `yaml:"retryWindow"`
}

type ZooKeeper struct {
	// Servers is the comma-separated ensemble, host:port each.
	Servers        string   `yaml:"servers"`
	SessionTimeout Duration `yaml:"sessionTimeout"`
	// Auth is "" or "digest:user:password".
	Auth string `yaml:"auth"`
}

type Temporal struct {
	HostPort  string `yaml:"hostPort"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"taskQueue"`
}

type S3 struct {
	Endpoint       string `yaml:"endpoint"`
	Region         string `yaml:"region"`
	ForcePathStyle bool   `yaml:"forcePathStyle"`
	// ServerSideEncryption is asked of the store on every upload: "" (the bucket's
	// default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with KMSKeyID or the store's default
	// key).
	ServerSideEncryption string `yaml:"serverSideEncryption"`
	KMSKeyID             string `yaml:"kmsKeyId"`
}

type Backup struct {
	Enable            bool   `yaml:"enable"`
	WebServerPort     int    `yaml:"webServerPort"`
	BackupInterval    int    `yaml:"backupInterval"`
	Bucket            string `yaml:"bucket"`
	BackupPrefix      string `yaml:"backupPrefix"`
	ManagedLedgerPath string `yaml:"managedLedgerPath"`
	// StagingDir holds the dump and the archive between activities (an addition to
	// StreamNative's values); defaults to the OS temporary directory.
	StagingDir string `yaml:"stagingDir"`
	// Retention is how many archives the prune after each backup keeps (restic's `forget`
	// policy, internal/retention); all 0, the default, deletes nothing.
	Retention result.Retention `yaml:"retention"`
}

type Restore struct {
	Enable         bool   `yaml:"enable"`
	RestorePoint   string `yaml:"restorePoint"`
	RestoreVersion string `yaml:"restoreVersion"`
	Bucket         string `yaml:"bucket"`
}

// Verify is the restore drill: VerifyWorkflow on its own schedule checks the newest archive
// whole and, with a scratch ensemble, restores it there and reads it back.
type Verify struct {
	Enable   bool     `yaml:"enable"`
	Interval Duration `yaml:"interval"`
	// ZooKeeper is the scratch ensemble (comma-separated host:port) the drill restores into
	// and clears; "" verifies the archive without restoring it. It must not be
	// zookeeper.servers: the drill deletes everything in it.
	ZooKeeper string `yaml:"zookeeper"`
}

// ScratchServers splits verify.zookeeper; nil when it is empty.
func (v Verify) ScratchServers() ([]string, error) {
	if strings.TrimSpace(v.ZooKeeper) == "" {
		return nil, nil
	}
	servers, err := ZooKeeper{Servers: v.ZooKeeper}.ServerList()
	if err != nil {
		return nil, fmt.Errorf("verify.zookeeper: %w", err)
	}
	return servers, nil
}

// ScratchConfig is c with verify.zookeeper as its ensemble: what the drill's restore
// activities run with.
func (c Config) ScratchConfig() Config {
	c.ZooKeeper.Servers = c.Verify.ZooKeeper
	return c
}

// Duration is a time.Duration written as "30s" in YAML; a bare number means seconds.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 30s")
	}
	if secs, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration like 30s, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (interface{}, error) { return time.Duration(d).String(), nil }

// Default returns the defaults of StreamNative's values, and ours for the keys it lacks.
func Default() Config {
	return Config{
		ZooKeeper: ZooKeeper{Servers: "127.0.0.1:2181", SessionTimeout: Duration(30 * time.Second)},
		Temporal:  Temporal{HostPort: "127.0.0.1:7233", Namespace: "default", TaskQueue: result.DefaultTaskQueue},
		S3:        S3{Region: "us-east-1"},
		Backup: Backup{
			WebServerPort:     8088,
			BackupInterval:    600,
			Bucket:            "s3a://metadata-backup",
			BackupPrefix:      "metadata-backup",
			ManagedLedgerPath: "/managed-ledgers",
		},
		Restore:     Restore{RestoreVersion: "1"},
		Verify:      Verify{Interval: Duration(24 * time.Hour)},
		RetryWindow: Duration(5 * time.Minute),
	}
}

// Load reads and validates a config file. Every error is one line naming the file, the key
// and the problem.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads YAML over the defaults, rejecting unknown keys, then validates.
func Parse(r io.Reader) (Config, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Config{}, err
	}
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, nameKeys(raw, oneLine(err))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// oneLine folds yaml.v3's multi-line type errors ("yaml: unmarshal errors:\n  line 3: ...")
// into one line.
func oneLine(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return errors.New(strings.Join(lines, "; "))
}

var lineRef = regexp.MustCompile(`line (\d+): `)

// nameKeys rewrites yaml.v3's "line 7: cannot unmarshal ..." into "backup.backupInterval
// (line 7): cannot unmarshal ...", so the error names the key as well as the line.
func nameKeys(raw []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(raw, &root) != nil {
		return err
	}
	msg := lineRef.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(lineRef.FindStringSubmatch(m)[1])
		if key := keyAtLine(&root, n, ""); key != "" {
			return fmt.Sprintf("%s (line %d): ", key, n)
		}
		return m
	})
	msg = unknownField.ReplaceAllString(msg, "unknown key")
	return errors.New(msg)
}

var unknownField = regexp.MustCompile(`field \S+ not found in type \S+`)

func keyAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, prefix); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			if prefix != "" {
				name = prefix + "." + name
			}
			if k.Line == line || v.Line == line && v.Kind == yaml.ScalarNode {
				return name
			}
			if sub := keyAtLine(v, line, name); sub != "" {
				return sub
			}
		}
	}
	return ""
}

// Validate checks every key; the error names the key.
func (c Config) Validate() error {
	if _, err := c.ZooKeeper.ServerList(); err != nil {
		return err
	}
	if c.ZooKeeper.SessionTimeout <= 0 {
		return fmt.Errorf("zookeeper.sessionTimeout: must be positive")
	}
	if c.ZooKeeper.Auth != "" {
		if _, _, err := c.ZooKeeper.Digest(); err != nil {
			return err
		}
	}
	if err := validateHostPort("temporal.hostPort", c.Temporal.HostPort); err != nil {
		return err
	}
	if c.Temporal.Namespace == "" {
		return fmt.Errorf("temporal.namespace: must not be empty")
	}
	if c.Temporal.TaskQueue == "" {
		return fmt.Errorf("temporal.taskQueue: must not be empty")
	}
	if c.S3.Endpoint != "" && !strings.HasPrefix(c.S3.Endpoint, "http://") && !strings.HasPrefix(c.S3.Endpoint, "https://") {
		return fmt.Errorf("s3.endpoint %q: must start with http:// or https://", c.S3.Endpoint)
	}
	if c.S3.Region == "" {
		return fmt.Errorf("s3.region: must not be empty")
	}
	switch c.S3.ServerSideEncryption {
	case "", storage.SSEAES256, storage.SSEKMS:
	default:
		return fmt.Errorf("s3.serverSideEncryption %q: want %q or %q (or leave it empty for the bucket's default)",
			c.S3.ServerSideEncryption, storage.SSEAES256, storage.SSEKMS)
	}
	if c.S3.KMSKeyID != "" && c.S3.ServerSideEncryption != storage.SSEKMS {
		return fmt.Errorf("s3.kmsKeyId: only used with s3.serverSideEncryption %q", storage.SSEKMS)
	}
	if c.S3.ServerSideEncryption != "" && strings.HasPrefix(strings.ToLower(c.Backup.Bucket), "file:") {
		return fmt.Errorf("s3.serverSideEncryption %q: backup.bucket %s is a local directory, which the store cannot encrypt", c.S3.ServerSideEncryption, c.Backup.Bucket)
	}
	if c.Backup.WebServerPort <= 0 || c.Backup.WebServerPort > 65535 {
		return fmt.Errorf("backup.webServerPort %d: must be a TCP port (1-65535)", c.Backup.WebServerPort)
	}
	if c.RetryWindow < Duration(time.Second) || c.RetryWindow > Duration(24*time.Hour) {
		return fmt.Errorf("retryWindow %s: must be between 1s and 24h", time.Duration(c.RetryWindow))
	}
	if c.Backup.BackupInterval <= 0 {
		return fmt.Errorf("backup.backupInterval %d: must be a positive number of seconds", c.Backup.BackupInterval)
	}
	if _, err := storage.ParseURL(c.Backup.Bucket); err != nil {
		return fmt.Errorf("backup.bucket: %w", err)
	}
	if p := c.Backup.BackupPrefix; p == "" || strings.ContainsAny(p, "/\\") || strings.TrimSpace(p) != p {
		return fmt.Errorf("backup.backupPrefix %q: must be a non-empty name without slashes", p)
	}
	if err := znode.ValidatePath(c.Backup.ManagedLedgerPath); err != nil || c.Backup.ManagedLedgerPath == "/" {
		return fmt.Errorf("backup.managedLedgerPath %q: must be an absolute znode path below /", c.Backup.ManagedLedgerPath)
	}
	r := c.Backup.Retention
	for _, k := range []struct {
		name string
		v    int
	}{{"keepLast", r.KeepLast}, {"keepHourly", r.KeepHourly}, {"keepDaily", r.KeepDaily}, {"keepWeekly", r.KeepWeekly}, {"keepMonthly", r.KeepMonthly}} {
		if k.v < 0 {
			return fmt.Errorf("backup.retention.%s %d: must be 0 (the rule is off) or a positive count", k.name, k.v)
		}
	}
	if c.Restore.Bucket != "" {
		if _, err := storage.ParseURL(c.Restore.Bucket); err != nil {
			return fmt.Errorf("restore.bucket: %w", err)
		}
	}
	if c.Restore.Enable {
		if c.Restore.RestorePoint == "" {
			return fmt.Errorf("restore.restorePoint: required when restore.enable is true")
		}
	}
	if c.Restore.RestorePoint != "" {
		if _, _, err := storage.SplitObjectURL(c.Restore.RestorePoint); err != nil {
			return fmt.Errorf("restore.restorePoint: %w", err)
		}
	}
	if strings.TrimSpace(c.Restore.RestoreVersion) == "" {
		return fmt.Errorf("restore.restoreVersion: must not be empty")
	}
	if c.Verify.Interval < Duration(time.Minute) {
		return fmt.Errorf("verify.interval %s: must be at least 1m", time.Duration(c.Verify.Interval))
	}
	scratch, err := c.Verify.ScratchServers()
	if err != nil {
		return err
	}
	live, _ := c.ZooKeeper.ServerList()
	for _, s := range scratch {
		for _, l := range live {
			if s == l {
				return fmt.Errorf("verify.zookeeper %q: %s is also in zookeeper.servers; the drill clears its scratch ensemble, give it one of its own", c.Verify.ZooKeeper, s)
			}
		}
	}
	return nil
}

// ServerList splits zookeeper.servers into host:port entries.
func (z ZooKeeper) ServerList() ([]string, error) {
	var out []string
	for _, s := range strings.Split(z.Servers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if err := validateHostPort("zookeeper.servers", s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("zookeeper.servers: must list at least one host:port")
	}
	return out, nil
}

// Digest splits zookeeper.auth into user and password. The error never contains the password.
func (z ZooKeeper) Digest() (user, password string, err error) {
	rest, ok := strings.CutPrefix(z.Auth, "digest:")
	user, password, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || user == "" || password == "" {
		return "", "", fmt.Errorf("zookeeper.auth: must be \"digest:user:password\" (value not shown)")
	}
	return user, password, nil
}

func validateHostPort(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%s %q: must be host:port", key, v)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%s %q: port must be 1-65535", key, v)
	}
	return nil
}

// StoreOptions maps the s3 section onto the storage package's options. Credentials are not
// among them: they come from the AWS SDK's default chain.
func (s S3) StoreOptions() storage.S3Options {
	return storage.S3Options{Endpoint: s.Endpoint, Region: s.Region, ForcePathStyle: s.ForcePathStyle,
		ServerSideEncryption: s.ServerSideEncryption, KMSKeyID: s.KMSKeyID}
}

// StagingRoot is the local directory that holds backups and restores between activities:
// backup.stagingDir, or a directory under the OS's temporary one.
func (b Backup) StagingRoot() string {
	if b.StagingDir != "" {
		return b.StagingDir
	}
	return filepath.Join(os.TempDir(), "pulsar-metadata-backup")
}

// Target is where this deployment's backups go: the bucket URL joined with the backup
// prefix, e.g. "s3a://bucket/metadata-backup". BackupWorkflow tags its runs with it and the
// API lists only runs with its own, so deployments sharing a Temporal namespace stay apart.
func (b Backup) Target() string {
	return strings.TrimRight(b.Bucket, "/") + "/" + b.BackupPrefix
}

// RestoreBucket is the bucket a bare-key restorePoint is taken relative to: restore.bucket,
// or backup.bucket when that is empty.
func (c Config) RestoreBucket() string {
	if c.Restore.Bucket != "" {
		return c.Restore.Bucket
	}
	return c.Backup.Bucket
}

// Redacted returns a copy safe to log or print: secrets replaced.
func (c Config) Redacted() Config {
	if c.ZooKeeper.Auth != "" {
		user, _, err := c.ZooKeeper.Digest()
		if err != nil {
			user = "?"
		}
		c.ZooKeeper.Auth = "digest:" + user + ":***"
	}
	return c
}
