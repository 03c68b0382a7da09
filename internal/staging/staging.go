// Package staging owns the local directories where a worker keeps files between the
// activities of one session (a backup's dump and archive, a restore's downloaded archive).
//
// Those files are useful only to the worker process whose session wrote them: a session
// dies with its process, and the workflow starts over on a new session elsewhere. So each
// worker process claims a directory of its own under the staging root,
// <root>/worker-<token>, and holds an exclusive lock (flock) on <root>/worker-<token>.lock
// for as long as it lives. A process that starts removes every worker directory whose lock
// no live process holds (Sweep): what a worker killed with -9 left behind goes the next time
// a worker starts on that host, and nothing a live worker uses is touched.
package staging

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const (
	prefix     = "worker-"
	lockSuffix = ".lock"
)

// Dir is a worker process's own staging directory.
type Dir struct {
	// Path is the directory; everything the process stages goes below it.
	Path     string
	lock     *os.File
	lockPath string
}

// Claim creates a directory of this process under root and locks it until Release (or until
// the process ends, when the kernel drops the lock).
func Claim(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("staging root %s: %w", root, err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	token := hex.EncodeToString(b)
	name := prefix + token
	// The lock is taken under a name Sweep ignores and renamed into place locked, so a
	// sweeper never sees this process's lock file unlocked.
	tmp := filepath.Join(root, ".claim-"+token)
	lock, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staging lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("staging lock %s: %w", tmp, err)
	}
	final := filepath.Join(root, name+lockSuffix)
	if err := os.Rename(tmp, final); err != nil {
		lock.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("staging lock: %w", err)
	}
	d := &Dir{Path: filepath.Join(root, name), lock: lock, lockPath: final}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		d.Release()
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	return d, nil
}

// Release removes the directory and drops the lock.
func (d *Dir) Release() error {
	err := os.RemoveAll(d.Path)
	if rerr := os.Remove(d.lockPath); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	d.lock.Close()
	return err
}

// Swept is what Sweep removed.
type Swept struct {
	// Dirs are the worker directories removed, Bytes what their files held.
	Dirs  []string
	Bytes int64
}

// Sweep removes every worker directory under root whose lock no live process holds, with
// its lock file. Entries of other names are left alone. A root that does not exist is empty.
func Sweep(root string) (Swept, error) {
	var s Swept
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("sweep staging root %s: %w", root, err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		seen[prefix+strings.TrimSuffix(name, lockSuffix)] = true
	}
	for name := range seen {
		dead, err := unlocked(filepath.Join(root, name+lockSuffix))
		if err != nil {
			return s, err
		}
		if !dead {
			continue
		}
		dir := filepath.Join(root, name)
		s.Bytes += size(dir)
		if err := os.RemoveAll(dir); err != nil {
			return s, fmt.Errorf("sweep %s: %w", dir, err)
		}
		if err := os.Remove(dir + lockSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("sweep %s: %w", dir+lockSuffix, err)
		}
		s.Dirs = append(s.Dirs, dir)
	}
	return s, nil
}

// unlocked tells whether no process holds the lock at path (a missing lock file is not
// held by anyone).
func unlocked(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("sweep: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sweep: lock %s: %w", path, err)
	}
	// Closing f drops the lock again; the caller removes the file.
	return true, nil
}

func size(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
