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

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
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
		saveConfig(t, tg.cfgPath, tg.cfg)
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
		// inspect and diff read it as a restore does, and refuse it the same way.
		want := map[string]string{"": "set restore.encryption.identityFile in the --config file", other.String(): "no identity matches"}[keyString(tc.key)]
		for _, args := range [][]string{{"inspect", f.backup.URL}, {"diff", f.backup.URL, f.backup.URL}} {
			var out bytes.Buffer
			err := run(append([]string{"--config", tg.cfgPath}, args...), &out)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), id.Recipient().String()) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%s: %v; want one line containing %q and the recipient", args[0], err, want)
			}
		}
	}
	withIdentity(id)
	var sum inspect.Summary
	if err := json.Unmarshal([]byte(cli(t, "--config", tg.cfgPath, "inspect", "--json", f.backup.URL)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Manifest.Znodes != f.backup.Znodes || sum.Manifest.Encryption == nil || sum.Manifest.Encryption.Recipients[0] != id.Recipient().String() ||
		sum.Restore.Znodes != f.backup.Znodes || sum.Topics == 0 {
		t.Fatalf("inspect of the encrypted archive: manifest %+v, restore plan of %d znodes, %d topics", sum.Manifest, sum.Restore.Znodes, sum.Topics)
	}
	var d backupdiff.Result
	if err := json.Unmarshal([]byte(cli(t, "--config", tg.cfgPath, "diff", "--json", f.backup.URL, f.backup.URL)), &d); err != nil {
		t.Fatal(err)
	}
	if d.Znodes != (backupdiff.Changes{Unchanged: f.backup.Znodes}) || d.To.Manifest.Encryption == nil {
		t.Fatalf("diff of the encrypted archive with itself: %+v, to %+v", d.Znodes, d.To.Manifest)
	}
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

// keyString is an identity's secret key, "" for none.
func keyString(k *age.X25519Identity) string {
	if k == nil {
		return ""
	}
	return k.String()
}
