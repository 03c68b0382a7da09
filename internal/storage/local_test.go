package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newLocalFixture(t *testing.T) fixture {
	dir := t.TempDir()
	s, err := Open(context.Background(), "file://"+dir, S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{Store: s, leftovers: func(t *testing.T, key string) []string {
		var found []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), partInfix) {
				found = append(found, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}}
}

func TestLocalContract(t *testing.T) { testStoreContract(t, newLocalFixture) }

func TestLocalMissingRoot(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "not-mounted")
	s, err := Open(ctx, "file://"+dir, S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantKind(t, "CheckWritable", s.CheckWritable(ctx), ErrBucketNotFound, "file://"+dir)
	err = s.Put(ctx, "k", strings.NewReader("x"), 1)
	wantKind(t, "Put", err, ErrBucketNotFound, s.URL("k"))
	_, err = s.Get(ctx, "k")
	wantKind(t, "Get", err, ErrBucketNotFound, s.URL("k"))
	err = s.List(ctx, "", func(ObjectInfo) error { return nil })
	wantKind(t, "List", err, ErrBucketNotFound, s.URL(""))
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the store created its root: %v", err)
	}
}

// A symlink inside the root must not lead a key outside it.
func TestLocalSymlinkEscape(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	f := newLocalFixture(t)
	root := strings.TrimPrefix(f.URL(""), "file://")
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "link/planted", strings.NewReader("x"), 1); err == nil {
		t.Error("Put through a symlink out of the root succeeded")
	}
	if _, err := f.Get(ctx, "link/secret"); err == nil {
		t.Error("Get through a symlink out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Error("a file was written outside the root")
	}
}

// Put refuses keys that would be hidden as another Put's temporary file.
func TestLocalRejectsPartNames(t *testing.T) {
	f := newLocalFixture(t)
	key := "a" + partInfix + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if !isPartName(key) {
		t.Fatalf("isPartName(%q) = false", key)
	}
	if err := f.Put(context.Background(), key, strings.NewReader("x"), 1); err == nil {
		t.Errorf("Put(%q) accepted", key)
	}
	if isPartName("backup.part-1.tar.gz") {
		t.Error("an ordinary name looks like a temporary file")
	}
}
