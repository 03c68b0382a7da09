package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
)

func TestDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backup.WebServerPort != 8088 || cfg.Backup.BackupInterval != 600 || cfg.Backup.Bucket != "s3a://metadata-backup" ||
		cfg.Backup.BackupPrefix != "metadata-backup" || cfg.Backup.ManagedLedgerPath != "/managed-ledgers" ||
		cfg.Restore.RestoreVersion != "1" || cfg.Temporal.TaskQueue != "metadata-backup" ||
		time.Duration(cfg.ZooKeeper.SessionTimeout) != 30*time.Second || cfg.Backup.Enable || cfg.Restore.Enable ||
		time.Duration(cfg.RetryWindow) != 5*time.Minute || !cfg.Backup.Retention.Empty() {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestServerSideEncryption(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                                       {"", ""},
		"s3:\n  serverSideEncryption: AES256\n":  {"AES256", ""},
		"s3:\n  serverSideEncryption: aws:kms\n": {"aws:kms", ""},
		"s3:\n  serverSideEncryption: aws:kms\n  kmsKeyId: arn:aws:kms:eu-west-1:1:key/abc\n": {"aws:kms", "arn:aws:kms:eu-west-1:1:key/abc"},
	} {
		cfg, err := Parse(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		o := cfg.S3.StoreOptions()
		if o.ServerSideEncryption != want[0] || o.KMSKeyID != want[1] {
			t.Errorf("%q: store options %+v", in, o)
		}
	}
}

func TestVerifyDefaultsAndScratch(t *testing.T) {
	cfg, err := Parse(strings.NewReader("verify:\n  enable: true\n  zookeeper: \"scratch-0:2181,scratch-1:2181\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	servers, err := cfg.Verify.ScratchServers()
	if err != nil || len(servers) != 2 || time.Duration(cfg.Verify.Interval) != 24*time.Hour || !cfg.Verify.Enable {
		t.Fatalf("verify %+v %v %v", cfg.Verify, servers, err)
	}
	if sc := cfg.ScratchConfig(); sc.ZooKeeper.Servers != "scratch-0:2181,scratch-1:2181" || cfg.ZooKeeper.Servers != "127.0.0.1:2181" || sc.ConfigurationStore.Servers != "" {
		t.Fatalf("scratch config %q (configuration %q), live %q", sc.ZooKeeper.Servers, sc.ConfigurationStore.Servers, cfg.ZooKeeper.Servers)
	}

	// A configuration store apart is drilled into the scratch ensemble too, under its own
	// chroot and with its own credentials; never into the deployment's.
	two, err := Parse(strings.NewReader("configurationStore:\n  servers: conf-0:2181/pulsar\n  auth: \"digest:conf:pw\"\n" +
		"verify:\n  zookeeper: \"scratch-0:2181,scratch-1:2181\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := two.ScratchConfig()
	if sc.ConfigurationStore.Servers != "zk:scratch-0:2181,scratch-1:2181"+result.ScratchConfigurationRoot || sc.ConfigurationStore.Auth != "digest:conf:pw" {
		t.Fatalf("scratch configuration store %q auth %q", sc.ConfigurationStore.Servers, sc.ConfigurationStore.Auth)
	}
	if u, err := sc.ConfigurationStore.URL(); err != nil || u.Root != result.ScratchConfigurationRoot || len(u.Servers) != 2 {
		t.Fatalf("the scratch configuration store's URL: %+v %v", u, err)
	}
	// The drill clears its scratch ensemble: it may not be the configuration store's.
	_, err = Parse(strings.NewReader("configurationStore:\n  servers: conf-0:2181\nverify:\n  zookeeper: \"scratch-0:2181,conf-0:2181\"\n"))
	if err == nil || !strings.Contains(err.Error(), "conf-0:2181 is also in configurationStore.servers") {
		t.Fatalf("a scratch ensemble sharing a server with the configuration store: %v", err)
	}
}

func TestRetentionParses(t *testing.T) {
	cfg, err := Parse(strings.NewReader("backup:\n  retention:\n    keepLast: 3\n    keepHourly: 24\n    keepDaily: 7\n    keepWeekly: 4\n    keepMonthly: 12\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Backup.Retention; r.KeepLast != 3 || r.KeepHourly != 24 || r.KeepDaily != 7 || r.KeepWeekly != 4 || r.KeepMonthly != 12 || r.Empty() {
		t.Fatalf("retention %+v", r)
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
zookeeper:
  servers: "zk-0:2181, zk-1:2181"
  sessionTimeout: 10s
  auth: "digest:pulsar:s3cret"
s3:
  endpoint: "http://127.0.0.1:9000"
  forcePathStyle: true
backup:
  enable: true
  backupInterval: 30
  bucket: "s3://other/sub/dir"
restore:
  restorePoint: "s3a://my-backuprestore/pulsar-backup-1623721488825.tar.gz"
  restoreVersion: "2"
`))
	if err != nil {
		t.Fatal(err)
	}
	servers, _ := cfg.ZooKeeper.ServerList()
	if len(servers) != 2 || servers[1] != "zk-1:2181" || !cfg.Backup.Enable || cfg.Backup.BackupInterval != 30 ||
		time.Duration(cfg.ZooKeeper.SessionTimeout) != 10*time.Second || !cfg.S3.ForcePathStyle {
		t.Fatalf("parsed %+v", cfg)
	}
	if u, p, err := cfg.ZooKeeper.Digest(); err != nil || u != "pulsar" || p != "s3cret" {
		t.Fatalf("digest %q %q %v", u, p, err)
	}
	if r := cfg.Redacted(); strings.Contains(r.ZooKeeper.Auth, "s3cret") || r.ZooKeeper.Auth != "digest:pulsar:***" {
		t.Fatalf("redacted %q", r.ZooKeeper.Auth)
	}
}

// Each invalid file fails with one line that names the key and the problem.
func TestInvalidConfigNamesKey(t *testing.T) {
	cases := map[string]string{
		"backup:\n  backupIntervall: 5\n":                                      "backupIntervall",
		"backup:\n  backupInterval: -5\n":                                      "backup.backupInterval",
		"backup:\n  backupInterval: soon\n":                                    "backupInterval",
		"backup:\n  bucket: \"http://x\"\n":                                    "backup.bucket",
		"backup:\n  bucket: \"s3a://\"\n":                                      "backup.bucket",
		"backup:\n  webServerPort: 70000\n":                                    "backup.webServerPort",
		"backup:\n  backupPrefix: \"a/b\"\n":                                   "backup.backupPrefix",
		"backup:\n  managedLedgerPath: \"ml\"\n":                               "backup.managedLedgerPath",
		"zookeeper:\n  servers: \"\"\n":                                        "zookeeper.servers",
		"zookeeper:\n  servers: \"zk\"\n":                                      "zookeeper.servers",
		"zookeeper:\n  sessionTimeout: 0s\n":                                   "zookeeper.sessionTimeout",
		"zookeeper:\n  auth: \"digest:onlyuser\"\n":                            "zookeeper.auth",
		"zookeeper:\n  servers: \"consul://c:8500\"\n":                         "zookeeper.servers",
		"zookeeper:\n  servers: \"zk1:2181/a//b\"\n":                           "zookeeper.servers",
		"zookeeper:\n  servers: \"etcd:e1:2379\"\n  auth: \"digest:u:p\"\n":    "zookeeper.auth",
		"configurationStore:\n  servers: \"foo:bar\"\n":                        "configurationStore.servers",
		"configurationStore:\n  servers: \"zk9:2181\"\n  sessionTimeout: 0s\n": "configurationStore.sessionTimeout",
		"configurationStore:\n  auth: \"digest:u:p\"\n":                        "configurationStore.auth",
		"configurationStore:\n  servers: \"zk9:2181\"\n  auth: \"u:p\"\n":      "configurationStore.auth",
		"temporal:\n  hostPort: \"nohost\"\n":                                  "temporal.hostPort",
		"s3:\n  endpoint: \"minio:9000\"\n":                                    "s3.endpoint",
		"restore:\n  enable: true\n":                                           "restore.restorePoint",
		"restore:\n  restorePoint: \"s3a://bucket\"\n":                         "restore.restorePoint",
		"restore:\n  restoreVersion: \"\"\n":                                   "restore.restoreVersion",
		"retryWindow: 0s\n":                                                    "retryWindow",
		"retryWindow: 48h\n":                                                   "retryWindow",
		"backup:\n  encryption:\n    recipients: [\"age1nope\"]\n":             "backup.encryption.recipients[0]",
		"nonsense: [":                     "yaml",
		"worker:\n  metricsPort: 70000\n": "worker.metricsPort",
		"zookeeper:\n  auth: \"digest:u:p\"\n  authFile: /run/zk-auth\n":            "zookeeper.authFile",
		"verify:\n  interval: 10s\n":                                                "verify.interval",
		"verify:\n  zookeeper: nohost\n":                                            "verify.zookeeper",
		"verify:\n  zookeeper: \"zk-9:2181, 127.0.0.1:2181\"\n":                     "verify.zookeeper",
		"s3:\n  serverSideEncryption: aes256\n":                                     "s3.serverSideEncryption",
		"s3:\n  serverSideEncryption: SSE-KMS\n":                                    "s3.serverSideEncryption",
		"s3:\n  serverSideEncryption: AES256\n  kmsKeyId: k\n":                      "s3.kmsKeyId",
		"s3:\n  kmsKeyId: k\n":                                                      "s3.kmsKeyId",
		"s3:\n  serverSideEncryption: AES256\nbackup:\n  bucket: file:///backups\n": "s3.serverSideEncryption",
		"backup:\n  retention:\n    keepDaily: -1\n":                                "backup.retention.keepDaily",
		"backup:\n  retention:\n    keepLast: -3\n":                                 "backup.retention.keepLast",
		"backup:\n  retention:\n    keepYearly: 2\n":                                "keepYearly",
		"backup:\n  retention:\n    keepWeekly: x\n":                                "backup.retention.keepWeekly",
	}
	for in, key := range cases {
		_, err := Parse(strings.NewReader(in))
		if err == nil {
			t.Errorf("%q: accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %q should be one line naming %s", in, err, key)
		}
	}
}

func TestAuthErrorNeverShowsPassword(t *testing.T) {
	_, err := Parse(strings.NewReader("zookeeper:\n  auth: \"md5:user:hunter2\"\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err %v", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("backup:\n  backupInterval: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestTargetAndRestoreBucket(t *testing.T) {
	cfg := Default()
	cfg.Backup.Bucket = "s3a://b/sub/"
	cfg.Backup.BackupPrefix = "pulsar-backup"
	if got := cfg.Backup.Target(); got != "s3a://b/sub/pulsar-backup" {
		t.Fatalf("target %q", got)
	}
	if cfg.RestoreBucket() != "s3a://b/sub/" {
		t.Fatalf("restore bucket falls back to backup.bucket: %q", cfg.RestoreBucket())
	}
	cfg.Restore.Bucket = "s3://other"
	if cfg.RestoreBucket() != "s3://other" {
		t.Fatalf("restore bucket %q", cfg.RestoreBucket())
	}
}

func TestConfigurationStore(t *testing.T) {
	for in, want := range map[string]bool{
		"zookeeper:\n  servers: \"zk1:2181/p\"\n":                                                    false,
		"zookeeper:\n  servers: \"zk1:2181/p\"\nconfigurationStore:\n  servers: \"zk:zk1:2181/p\"\n": false,
		"zookeeper:\n  servers: \"zk1:2181/p\"\nconfigurationStore:\n  servers: \"zk1:2181/q\"\n":    true,
		"zookeeper:\n  servers: \"zk1:2181\"\nconfigurationStore:\n  servers: \"zk2:2181\"\n":        true,
	} {
		cfg, err := Parse(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		z, separate := cfg.ConfigStore()
		if separate != want {
			t.Errorf("%q: separate %v, want %v", in, separate, want)
		}
		if !separate && z.Servers != cfg.ZooKeeper.Servers {
			t.Errorf("%q: one store, but ConfigStore gave %q", in, z.Servers)
		}
	}
}

func TestRedactedHidesBothPasswords(t *testing.T) {
	cfg, err := Parse(strings.NewReader("zookeeper:\n  auth: \"digest:a:zkpass1\"\nconfigurationStore:\n  servers: \"etcd:http://e:2379\"\n  auth: \"b:etcdpass2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "zkpass1") || strings.Contains(string(out), "etcdpass2") || !strings.Contains(string(out), "b:***") {
		t.Fatalf("redacted config:\n%s", out)
	}
	if cfg.ZooKeeper.Password() != "zkpass1" || cfg.ConfigurationStore.Password() != "etcdpass2" {
		t.Fatalf("passwords %q %q", cfg.ZooKeeper.Password(), cfg.ConfigurationStore.Password())
	}
}

// The example every operator starts from loads as it is.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, separate := cfg.ConfigStore(); separate {
		t.Fatal("the example's default is one store")
	}
}

// zookeeper.authFile keeps the digest out of the config file: Load reads it, with the
// newline a mounted Secret or an editor leaves, and never shows its content in an error.
func TestLoadReadsAuthFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "auth")
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte("zookeeper:\n  authFile: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "zookeeper.authFile") {
		t.Fatalf("missing auth file: err %v", err)
	}
	if err := os.WriteFile(secret, []byte("digest:pulsar:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, err := cfg.ZooKeeper.Digest(); err != nil || u != "pulsar" || p != "s3cret" {
		t.Fatalf("digest %q %q %v", u, p, err)
	}
	if r := cfg.Redacted(); strings.Contains(r.ZooKeeper.Auth, "s3cret") {
		t.Fatalf("redacted %q", r.ZooKeeper.Auth)
	}
	// Parse alone does not read it.
	parsed, err := Parse(strings.NewReader("zookeeper:\n  authFile: " + secret + "\n"))
	if err != nil || parsed.ZooKeeper.Auth != "" || parsed.ZooKeeper.AuthFile != secret {
		t.Fatalf("parse: %+v %v", parsed.ZooKeeper, err)
	}

	if err := os.WriteFile(secret, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(cfgPath)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "zookeeper.authFile") {
		t.Fatalf("bad auth file: err %v", err)
	}
}

func TestWorkerMetricsPort(t *testing.T) {
	cfg, err := Parse(strings.NewReader(""))
	if err != nil || cfg.Worker.MetricsPort != 0 {
		t.Fatalf("default: %+v %v", cfg.Worker, err)
	}
	cfg, err = Parse(strings.NewReader("worker:\n  metricsPort: 9090\n"))
	if err != nil || cfg.Worker.MetricsPort != 9090 {
		t.Fatalf("set: %+v %v", cfg.Worker, err)
	}
}
