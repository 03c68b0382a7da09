package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
)

// TestAgeEncryptedBackup: with backup.encryption.recipients the archive's record streams are
// encrypted with age while its manifest stays readable; a restore needs an identity that
// opens them: without one, or with someone else's, it fails before anything is written;
// with the right one it restores exactly. No identity ever reaches workflow history.
func TestAgeEncryptedBackup(t *testing.T) {
	f := &restoreFixture{stack: startStack(t)}
	_, f.sum = restoretest.Populate(t, f.zk.Addr, pulsartree.Sized(1000))
	f.source = restoretest.ReadTree(t, f.zk.Addr)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	var out bytes.Buffer
	cfgPath := f.config(t, func(c *config.Config) { c.Backup.Encryption.Recipients = []string{id.Recipient().String()} })
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &f.backup); err != nil {
		t.Fatal(err)
	}
	body := f.getObject(t, f.backup.Name)
	m, err := archive.ReadManifest(bytes.NewReader(body))
	if err != nil || m.Encryption == nil || m.Encryption.Recipients[0] != id.Recipient().String() || m.Znodes != f.backup.Znodes {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tarBytes, _ := io.ReadAll(gz)
	if bytes.Contains(tarBytes, []byte("/managed-ledgers/")) || !bytes.Contains(tarBytes, []byte(archive.StreamName+archive.EncryptedSuffix)) {
		t.Fatal("the archive holds plaintext records, or no encrypted stream")
	}
	if _, err := archive.Verify(bytes.NewReader(body), nil); !errors.Is(err, archive.ErrEncrypted) {
		t.Fatalf("reading the records without decrypting: %v", err)
	}

	tg := f.newTarget(t, "age", nil)
	withIdentity := func(key *age.X25519Identity) {
		t.Helper()
		tg.worker()
		p := filepath.Join(t.TempDir(), "age-identity.txt")
		if err := os.WriteFile(p, []byte("# created by the test\n"+key.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tg.cfg.Restore.Encryption.IdentityFile = p
		raw, err := yaml.Marshal(tg.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tg.cfgPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		tg.worker = f.startWorker(t, tg.cfg)
	}
	for _, tc := range []struct {
		key  *age.X25519Identity
		want string
	}{
		{nil, "restore.encryption.identityFile is not set"},
		{other, "no identity matches: the archive is encrypted to " + id.Recipient().String()},
	} {
		if tc.key != nil {
			withIdentity(tc.key)
		}
		_, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("restore: %v; want one line containing %q", err, tc.want)
		}
		tg.assertNothingWritten(t)
	}
	withIdentity(id)
	rep, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created == 0 {
		t.Fatalf("report %+v", rep)
	}
	f.checkRestored(t, tg)
	assertNoSecretsInHistory(t, f.stack, id.String(), other.String())
}
