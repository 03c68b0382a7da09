package archive

// Client-side encryption at rest with age (filippo.io/age, age-encryption.org/v1): each
// role's stream is encrypted to the configured X25519 recipients; the manifest stays
// plaintext, so listing and metrics need no key. A restore turns the archive back into the
// plaintext archive (Decrypt) before anything reads its records.

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// ErrEncrypted is wrapped when a reader meets an encrypted archive: Decrypt it first.
var ErrEncrypted = errors.New("archive is encrypted")

// ErrNoIdentity is wrapped when none of the identities given can decrypt an archive: it was
// encrypted to someone else.
var ErrNoIdentity = errors.New("no identity matches")

// ParseRecipients parses age public keys ("age1...").
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	out := make([]age.Recipient, 0, len(keys))
	for _, k := range keys {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", k, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("no age recipients")
	}
	return out, nil
}

// ReadIdentityFile reads age identities from a file (as age-keygen writes it). Errors name
// the file, never its content.
func ReadIdentityFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("age identity file %s: no identity in it (content not shown)", path)
	}
	return ids, nil
}

// EncryptStream writes src encrypted to recipients into dst.
func EncryptStream(dst io.Writer, src io.Reader, recipients []age.Recipient) error {
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if _, err := io.Copy(w, src); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	return nil
}

// Decrypt reads an encrypted archive and writes the plaintext archive it stands for: the
// same manifest without its encryption, each stream decrypted under its plain name. It
// streams, holding one chunk at a time. It fails wrapping ErrNoIdentity when no identity
// opens the streams, and ErrCorrupt when a ciphertext was altered (age authenticates every
// chunk), a decrypted stream is not the size the manifest says, or the archive's shape is
// wrong. What it writes is only trustworthy once the plaintext archive is verified (Verify).
func Decrypt(r io.Reader, w io.Writer, identities []age.Identity) (Manifest, error) {
	gz, err := openGzip(r)
	if err != nil {
		return Manifest{}, err
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	hdr, err := nextEntry(tr)
	if err != nil {
		return Manifest{}, err
	}
	if hdr.Name != ManifestName || hdr.Size > maxManifestSize {
		return Manifest{}, corrupt("first entry is %q (%d bytes), want %s", hdr.Name, hdr.Size, ManifestName)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
	if err != nil {
		return Manifest{}, readErr(err)
	}
	m, err := decodeManifest(raw, true)
	if err != nil {
		return Manifest{}, err
	}
	if m.Encryption == nil {
		return Manifest{}, errors.New("decrypt: the archive is not encrypted")
	}
	plain := m
	plain.Encryption = nil
	mj, err := json.MarshalIndent(plain, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("decrypt: manifest: %w", err)
	}
	mj = append(mj, '\n')
	ow := gzip.NewWriter(w)
	tw := tar.NewWriter(ow)
	mod := m.EndTime
	header := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(header(ManifestName, int64(len(mj)))); err != nil {
		return Manifest{}, fmt.Errorf("decrypt: %w", err)
	}
	if _, err := tw.Write(mj); err != nil {
		return Manifest{}, fmt.Errorf("decrypt: %w", err)
	}
	for _, role := range m.Roles {
		hdr, err := nextEntry(tr)
		if err != nil {
			return Manifest{}, err
		}
		if hdr.Name != role.Stream+EncryptedSuffix {
			return Manifest{}, corrupt("entry %q, want %s%s", hdr.Name, role.Stream, EncryptedSuffix)
		}
		dec, err := age.Decrypt(tr, identities...)
		var nomatch *age.NoIdentityMatchError
		switch {
		case errors.As(err, &nomatch):
			return Manifest{}, fmt.Errorf("%w: the archive is encrypted to %s", ErrNoIdentity, strings.Join(m.Encryption.Recipients, ", "))
		case err != nil:
			return Manifest{}, corrupt("%s: %v", hdr.Name, err)
		}
		if err := tw.WriteHeader(header(role.Stream, role.StreamBytes)); err != nil {
			return Manifest{}, fmt.Errorf("decrypt: %w", err)
		}
		n, err := io.CopyN(tw, dec, role.StreamBytes)
		if err != nil {
			if n < role.StreamBytes && errors.Is(err, io.EOF) {
				return Manifest{}, corrupt("%s decrypts to %d bytes, manifest says %d", hdr.Name, n, role.StreamBytes)
			}
			return Manifest{}, corrupt("%s: %v", hdr.Name, err)
		}
		var one [1]byte
		if k, err := dec.Read(one[:]); k > 0 || err != io.EOF {
			if err != nil && err != io.EOF {
				return Manifest{}, corrupt("%s: %v", hdr.Name, err)
			}
			return Manifest{}, corrupt("%s decrypts to more than the %d bytes the manifest says", hdr.Name, role.StreamBytes)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		if err != nil {
			return Manifest{}, readErr(err)
		}
		return Manifest{}, corrupt("unexpected entry after the last stream")
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return Manifest{}, readErr(err)
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("decrypt: %w", err)
	}
	if err := ow.Close(); err != nil {
		return Manifest{}, fmt.Errorf("decrypt: %w", err)
	}
	return m, nil
}
