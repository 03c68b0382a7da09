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

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storeurl"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// Config is the whole file. Secrets in it (zookeeper.auth) are never logged: use Redacted.
type Config struct {
	ZooKeeper ZooKeeper `yaml:"zookeeper"`
	// ConfigurationStore is Pulsar's configuration metadata store
	// (configurationMetadataStoreUrl) when it is apart from the local one; empty servers, or
	// the same store and root as zookeeper.servers, mean one store (see ConfigStore).
	ConfigurationStore ZooKeeper `yaml:"configurationStore"`
	Temporal           Temporal  `yaml:"temporal"`
	S3                 S3        `yaml:"s3"`
	Backup             Backup    `yaml:"backup"`
	Restore            Restore   `yaml:"restore"`
	Worker             Worker    `yaml:"worker"`
	Verify             Verify    `yaml:"verify"`
	// RetryWindow is how long a backup or restore stage retries a transient fault
	// (ZooKeeper or S3 unreachable, a session expiry) before it fails, counted from the
	// stage's start: a stage shorter than its timeout rides out an outage of this long; a long
	// stage (dump, upload, apply) retries within its timeout. Errors retrying cannot fix fail
	// at once.
	RetryWindow Duration `yaml:"retryWindow"`
}

// ZooKeeper is one metadata store: zookeeper (the local store) or configurationStore.
type ZooKeeper struct {
	// Servers is the store's address (storeurl.Parse): "host:port[,host:port...][/chroot]",
	// Pulsar's "zk:..." and "metadata-store:zk:...", or "etcd:http://host:2379[,...]".
	Servers        string   `yaml:"servers"`
	SessionTimeout Duration `yaml:"sessionTimeout"`
	// Auth is "" or "digest:user:password".
	Auth string `yaml:"auth"`
	// AuthFile names a file holding Auth (a mounted Kubernetes Secret, say), so the secret
	// stays out of the config file. Load reads it into Auth; set Auth or AuthFile, not both.
	AuthFile string `yaml:"authFile"`
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
	// Encryption encrypts each archive's record streams to age recipients (client-side
	// encryption at rest); the manifest stays readable.
	Encryption BackupEncryption `yaml:"encryption"`
}

type Restore struct {
	Enable         bool   `yaml:"enable"`
	RestorePoint   string `yaml:"restorePoint"`
	RestoreVersion string `yaml:"restoreVersion"`
	Bucket         string `yaml:"bucket"`
	// Encryption names the age identity that decrypts encrypted archives (restore and drill).
	Encryption RestoreEncryption `yaml:"encryption"`
}

// BackupEncryption is backup.encryption.
type BackupEncryption struct {
	// Recipients are age public keys ("age1..."); empty: archives are not encrypted.
	Recipients []string `yaml:"recipients"`
}

// RestoreEncryption is restore.encryption.
type RestoreEncryption struct {
	// IdentityFile is a file of age identities ("AGE-SECRET-KEY-1..."), as age-keygen writes.
	// Its content is never logged nor put in a workflow's input or history.
	IdentityFile string `yaml:"identityFile"`
}

// Worker holds the worker process's own settings (additions to StreamNative's values).
type Worker struct {
	// MetricsPort, when not 0, serves the worker's Temporal SDK metrics on /metrics, and
	// /healthz and /readyz, on this TCP port.
	MetricsPort int `yaml:"metricsPort"`
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
// activities run with. The drill never writes a real store: a deployment with a
// configuration store apart has it drilled into the scratch ensemble too, under
// result.ScratchConfigurationRoot (with the configuration store's credentials, whose ACLs
// its znodes carry); without one, the configuration store is unset.
func (c Config) ScratchConfig() Config {
	_, separate := c.ConfigStore()
	c.ZooKeeper.Servers = c.Verify.ZooKeeper
	if separate {
		c.ConfigurationStore.Servers = "zk:" + c.Verify.ZooKeeper + result.ScratchConfigurationRoot
	} else {
		c.ConfigurationStore = ZooKeeper{SessionTimeout: c.ConfigurationStore.SessionTimeout}
	}
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
		ZooKeeper:          ZooKeeper{Servers: "127.0.0.1:2181", SessionTimeout: Duration(30 * time.Second)},
		ConfigurationStore: ZooKeeper{SessionTimeout: Duration(30 * time.Second)},
		Temporal:           Temporal{HostPort: "127.0.0.1:7233", Namespace: "default", TaskQueue: result.DefaultTaskQueue},
		S3:                 S3{Region: "us-east-1"},
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

// Load reads and validates a config file, and the file zookeeper.authFile names. Every
// error is one line naming the file, the key and the problem.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err == nil {
		err = cfg.readAuthFile()
	}
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// readAuthFile sets each store's auth from its authFile, if that is set. Surrounding
// white space (the newline an editor or `kubectl create secret --from-file` leaves) is
// dropped. The error never contains the file's content.
func (c *Config) readAuthFile() error {
	for _, st := range []struct {
		key string
		z   *ZooKeeper
	}{{"zookeeper", &c.ZooKeeper}, {"configurationStore", &c.ConfigurationStore}} {
		path := st.z.AuthFile
		if path == "" {
			continue
		}
		if st.z.Servers == "" {
			return fmt.Errorf("%s.authFile: set without %s.servers", st.key, st.key)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s.authFile: %w", st.key, err)
		}
		st.z.Auth = strings.TrimSpace(string(raw))
		if err := st.z.validate(st.key); err != nil {
			return fmt.Errorf("%s.authFile %s: must hold \"digest:user:password\" (etcd: \"user:password\") (content not shown)", st.key, path)
		}
	}
	return nil
}

// Parse reads YAML over the defaults, rejecting unknown keys, then validates. It does not
// read the file zookeeper.authFile names: Load does.
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
	if err := c.ZooKeeper.validate("zookeeper"); err != nil {
		return err
	}
	if c.ConfigurationStore.Servers != "" {
		if err := c.ConfigurationStore.validate("configurationStore"); err != nil {
			return err
		}
	} else if c.ConfigurationStore.Auth != "" {
		return fmt.Errorf("configurationStore.auth: set without configurationStore.servers (value not shown)")
	}
	if c.ZooKeeper.AuthFile != "" && c.ZooKeeper.Auth != "" {
		return fmt.Errorf("zookeeper.authFile: set zookeeper.auth or zookeeper.authFile, not both")
	}
	if c.ConfigurationStore.AuthFile != "" && c.ConfigurationStore.Auth != "" {
		return fmt.Errorf("configurationStore.authFile: set configurationStore.auth or configurationStore.authFile, not both")
	}
	if c.Worker.MetricsPort < 0 || c.Worker.MetricsPort > 65535 {
		return fmt.Errorf("worker.metricsPort %d: must be a TCP port (1-65535), or 0 for none", c.Worker.MetricsPort)
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
	for i, r := range c.Backup.Encryption.Recipients {
		if _, err := age.ParseX25519Recipient(strings.TrimSpace(r)); err != nil {
			return fmt.Errorf("backup.encryption.recipients[%d] %q: not an age public key (age1...)", i, r)
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
	for _, store := range []struct {
		key string
		z   ZooKeeper
	}{{"zookeeper.servers", c.ZooKeeper}, {"configurationStore.servers", c.ConfigurationStore}} {
		live, _ := store.z.ServerList()
		for _, s := range scratch {
			for _, l := range live {
				if s == l {
					return fmt.Errorf("verify.zookeeper %q: %s is also in %s; the drill clears its scratch ensemble, give it one of its own", c.Verify.ZooKeeper, s, store.key)
				}
			}
		}
	}
	return nil
}

func (z ZooKeeper) validate(section string) error {
	u, err := storeurl.Parse(z.Servers)
	if err != nil {
		return fmt.Errorf("%s.servers: %w", section, err)
	}
	if z.SessionTimeout <= 0 {
		return fmt.Errorf("%s.sessionTimeout: must be positive", section)
	}
	if z.Auth == "" {
		return nil
	}
	if u.Kind == storeurl.Etcd {
		if _, _, err := z.EtcdUser(); err != nil {
			return fmt.Errorf("%s.auth: %w", section, err)
		}
		return nil
	}
	if _, _, err := z.Digest(); err != nil {
		return fmt.Errorf("%s.auth: %w", section, err)
	}
	return nil
}

// URL parses servers (storeurl.Parse).
func (z ZooKeeper) URL() (storeurl.URL, error) { return storeurl.Parse(z.Servers) }

// ServerList is the store's servers: host:port for ZooKeeper, endpoint URLs for etcd.
func (z ZooKeeper) ServerList() ([]string, error) {
	u, err := z.URL()
	if err != nil {
		return nil, fmt.Errorf("zookeeper.servers: %w", err)
	}
	return u.Servers, nil
}

// Digest splits a ZooKeeper store's auth into user and password. The error never contains
// the password.
func (z ZooKeeper) Digest() (user, password string, err error) {
	rest, ok := strings.CutPrefix(z.Auth, "digest:")
	user, password, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || user == "" || password == "" {
		return "", "", fmt.Errorf("must be \"digest:user:password\" (value not shown)")
	}
	return user, password, nil
}

// EtcdUser splits an etcd store's auth, "user:password", for etcd's own authentication. The
// error never contains the password.
func (z ZooKeeper) EtcdUser() (user, password string, err error) {
	user, password, ok := strings.Cut(z.Auth, ":")
	if !ok || user == "" || password == "" || user == "digest" {
		return "", "", fmt.Errorf("must be \"user:password\" for an etcd store (value not shown)")
	}
	return user, password, nil
}

// Password is the secret in auth ("" without one), for redactors.
func (z ZooKeeper) Password() string {
	if _, pw, err := z.Digest(); err == nil {
		return pw
	}
	if _, pw, err := z.EtcdUser(); err == nil {
		return pw
	}
	return ""
}

// ConfigStore is the configuration store's section, and whether it is a store apart from
// the local one. With one store (configurationStore.servers empty, or naming the same store
// and root), the local section is returned and separate is false.
func (c Config) ConfigStore() (z ZooKeeper, separate bool) {
	if c.ConfigurationStore.Servers == "" {
		return c.ZooKeeper, false
	}
	lu, err1 := c.ZooKeeper.URL()
	cu, err2 := c.ConfigurationStore.URL()
	if err1 == nil && err2 == nil && lu.Same(cu) {
		return c.ZooKeeper, false
	}
	return c.ConfigurationStore, true
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
	c.ZooKeeper.Auth = redactAuth(c.ZooKeeper.Auth)
	c.ConfigurationStore.Auth = redactAuth(c.ConfigurationStore.Auth)
	return c
}

func redactAuth(auth string) string {
	if auth == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(auth, "digest:"); ok {
		user, _, _ := strings.Cut(rest, ":")
		return "digest:" + user + ":***"
	}
	user, _, _ := strings.Cut(auth, ":")
	return user + ":***"
}
