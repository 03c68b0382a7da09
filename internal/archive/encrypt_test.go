package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// buildEncrypted writes a two-role archive whose streams are encrypted to recipient;
// tamper, if set, edits a ciphertext before it is packed.
func buildEncrypted(t *testing.T, recipient *age.X25519Recipient, tamper func([]byte)) []byte {
	t.Helper()
	open := []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}
	conf := []znode.Record{{Path: "/admin", ACL: open, Mode: znode.ModePersistent}, {Path: "/admin/policies", Data: []byte(`{"secret":"offload-key"}`), ACL: open, Mode: znode.ModePersistent}}
	local, lr := stream(t, RoleLocal, sampleRecords())
	confb, cr := stream(t, RoleConfiguration, conf)
	m := Manifest{ToolVersion: "test", Roles: []Role{lr, cr}, Encryption: &Encryption{Scheme: "age", Recipients: []string{recipient.String()}}}
	m.Znodes, m.DataBytes = lr.Znodes+cr.Znodes, lr.DataBytes+cr.DataBytes
	var streams []Stream
	for _, b := range [][]byte{local, confb} {
		var ct bytes.Buffer
		if err := EncryptStream(&ct, bytes.NewReader(b), []age.Recipient{recipient}); err != nil {
			t.Fatal(err)
		}
		c := ct.Bytes()
		if tamper != nil {
			tamper(c)
		}
		streams = append(streams, Stream{R: bytes.NewReader(c), Size: int64(len(c))})
	}
	var out bytes.Buffer
	if _, err := Write(&out, m, streams); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestEncryptedArchive(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	arch := buildEncrypted(t, id.Recipient(), nil)
	if bytes.Contains(arch, []byte("offload-key")) {
		t.Fatal("plaintext data in the encrypted archive")
	}
	// The manifest stays readable; the records are not, until decrypted.
	m, err := ReadManifest(bytes.NewReader(arch))
	if err != nil || m.Encryption == nil || m.Encryption.Recipients[0] != id.Recipient().String() || len(m.Roles) != 2 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	if _, err := Verify(bytes.NewReader(arch), nil); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("reading an encrypted archive: %v", err)
	}
	var plain bytes.Buffer
	if _, err := Decrypt(bytes.NewReader(arch), &plain, []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	var n int
	pm, err := VerifyRoles(bytes.NewReader(plain.Bytes()), func(string, znode.Record) error { n++; return nil })
	if err != nil || pm.Encryption != nil || int64(n) != m.Znodes {
		t.Fatalf("decrypted: %d records of %d, %+v, %v", n, m.Znodes, pm.Encryption, err)
	}

	// Someone else's identity: named, not corrupt.
	other, _ := age.GenerateX25519Identity()
	_, err = Decrypt(bytes.NewReader(arch), &bytes.Buffer{}, []age.Identity{other})
	if !errors.Is(err, ErrNoIdentity) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "no identity matches") || !strings.Contains(err.Error(), id.Recipient().String()) {
		t.Fatalf("wrong identity: %v", err)
	}
	// An altered ciphertext: corrupt (age authenticates every chunk).
	bad := buildEncrypted(t, id.Recipient(), func(c []byte) { c[len(c)-20] ^= 1 })
	if _, err := Decrypt(bytes.NewReader(bad), &bytes.Buffer{}, []age.Identity{id}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("altered ciphertext: %v", err)
	}
}
