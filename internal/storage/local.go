package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// NewLocal returns a Store that keeps each object as a file under loc.Dir, at the key's
// path. The directory itself must exist: it is never created, so a typo or an unmounted
// volume fails with ErrBucketNotFound instead of filling the wrong disk. Directories for
// keys are created with mode 0750, files with 0600 (archives may hold ZooKeeper secrets).
// Every access goes through os.Root, so neither a key nor a symlink can leave loc.Dir.
func NewLocal(loc Location) (Store, error) {
	if loc.Scheme != "file" || !path.IsAbs(loc.Dir) {
		return nil, fmt.Errorf("local store for %q: want a file:///absolute/dir location", loc.String())
	}
	return &localStore{loc: loc}, nil
}

type localStore struct{ loc Location }

// A Put's temporary file is "<key>.part-<rand.Text()>"; List hides such names and Put
// refuses keys that look like one.
const partInfix = ".part-"

var partRandLen = len(rand.Text())

func isPartName(name string) bool {
	i := strings.LastIndex(name, partInfix)
	if i < 0 {
		return false
	}
	suffix := name[i+len(partInfix):]
	return len(suffix) == partRandLen && strings.Trim(suffix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

func (s *localStore) URL(key string) string { return s.loc.URL(key) }

func (s *localStore) fail(op, key string, err error) error {
	kind := localKind(err)
	if op == "put" && kind == ErrNotExist {
		kind = nil // e.g. a file where the key needs a directory: not an absent object
	}
	return opError(op, s.URL(key), kind, err)
}

// localKind maps a file-system error to the package's sentinels.
func localKind(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return ErrNotExist
	case errors.Is(err, fs.ErrPermission):
		return ErrAccessDenied
	}
	return nil
}

// openRoot opens loc.Dir for one operation, so a directory that disappears or is remounted
// is noticed by the next call.
func (s *localStore) openRoot(op, key string) (*os.Root, error) {
	root, err := os.OpenRoot(s.loc.Dir)
	if err == nil {
		return root, nil
	}
	kind := localKind(err)
	if kind == ErrNotExist {
		kind = ErrBucketNotFound
	}
	return nil, opError(op, s.URL(key), kind, err)
}

func (s *localStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	const op = "put"
	if err := checkKey(key); err != nil {
		return opError(op, s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	if isPartName(path.Base(key)) {
		return opError(op, s.URL(key), nil, fmt.Errorf("key %q looks like a temporary file", key))
	}
	root, err := s.openRoot(op, key)
	if err != nil {
		return err
	}
	defer root.Close()
	dir := path.Dir(key)
	if err := root.MkdirAll(dir, 0o750); err != nil {
		return s.fail(op, key, err)
	}
	tmp := key + partInfix + rand.Text()
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.fail(op, key, err)
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	_, err = io.Copy(f, &putReader{ctx: ctx, r: r, size: size})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.fail(op, key, err)
	}
	if err := root.Rename(tmp, key); err != nil {
		return s.fail(op, key, err)
	}
	// The rename is durable only once the directory is synced; if that fails the object
	// must not stay, or a crash could lose what Put reported as stored.
	if err := syncDir(root, dir); err != nil {
		_ = root.Remove(key)
		return s.fail(op, key, err)
	}
	return nil
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get returns the open file; it stays readable after the root is closed.
func (s *localStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	const op = "get"
	if err := checkKey(key); err != nil {
		return nil, opError(op, s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	root, err := s.openRoot(op, key)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(key)
	if err != nil {
		return nil, s.fail(op, key, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, opError(op, s.URL(key), ErrNotExist, err)
	}
	return f, nil
}

func (s *localStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	return s.stat("stat", key)
}

// stat treats anything but a regular file (a directory made for longer keys) as absent.
func (s *localStore) stat(op, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, opError(op, s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	root, err := s.openRoot(op, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer root.Close()
	st, err := root.Stat(key)
	if err != nil {
		return ObjectInfo{}, s.fail(op, key, err)
	}
	if !st.Mode().IsRegular() {
		return ObjectInfo{}, opError(op, s.URL(key), ErrNotExist, nil)
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (s *localStore) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if _, err := s.stat(op, key); err != nil {
		return err
	}
	root, err := s.openRoot(op, key)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(key); err != nil {
		return s.fail(op, key, err)
	}
	return nil
}

// List walks only the directory that prefix names (up to its last '/'), then sorts, since
// a directory walk does not visit keys in lexical order ("a/b" before "a-c").
func (s *localStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	const op = "list"
	if err := checkPrefix(prefix); err != nil {
		return opError(op, s.URL(prefix), nil, err)
	}
	root, err := s.openRoot(op, prefix)
	if err != nil {
		return err
	}
	defer root.Close()
	start := "."
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
	}
	var objects []ObjectInfo
	err = fs.WalkDir(root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() && p != start && !strings.HasPrefix(p, prefix) {
			return fs.SkipDir // start is prefix's deepest directory, so nothing below can match
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) || isPartName(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		objects = append(objects, ObjectInfo{Key: p, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return s.fail(op, prefix, err)
	}
	slices.SortFunc(objects, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objects {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *localStore) CheckWritable(ctx context.Context) error { return checkWritable(ctx, s) }
