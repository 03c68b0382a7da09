package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixture is one fresh, empty Store under test, plus a look behind it.
type fixture struct {
	Store
	// leftovers lists what a failed Put of key left outside the Store's own view:
	// temporary files, incomplete multipart uploads. It must come back empty.
	leftovers func(t *testing.T, key string) []string
}

const MiB = 1 << 20

// testStoreContract checks the Store contract in storage.go; every implementation runs it.
func testStoreContract(t *testing.T, newFixture func(t *testing.T) fixture) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := newFixture(t)
		before := time.Now().Add(-time.Minute)
		put(t, s, "a/b/c.txt", "hello")
		info, err := s.Stat(ctx, "a/b/c.txt")
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != "a/b/c.txt" || info.Size != 5 || info.ModTime.Before(before) {
			t.Errorf("Stat = %+v", info)
		}
		if got := getString(t, s, "a/b/c.txt"); got != "hello" {
			t.Errorf("Get = %q", got)
		}
		if u := s.URL("a/b/c.txt"); !strings.HasSuffix(u, "/a/b/c.txt") {
			t.Errorf("URL = %q", u)
		}
	})

	t.Run("LargeStreamAndReplace", func(t *testing.T) {
		s := newFixture(t)
		const size = 40 * MiB // several 16 MiB parts
		// Size -1: the archive is a pipe whose length nobody knows in advance.
		if err := s.Put(ctx, "big.tar.gz", onlyReader{generate(1, size)}, -1); err != nil {
			t.Fatal(err)
		}
		info, err := s.Stat(ctx, "big.tar.gz")
		if err != nil || info.Size != size {
			t.Fatalf("Stat = %+v, %v", info, err)
		}
		rc, err := s.Get(ctx, "big.tar.gz")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if got, want := hashOf(t, rc), hashOf(t, generate(1, size)); got != want {
			t.Fatalf("content differs: sha256 %x, want %x", got, want)
		}
		put(t, s, "big.tar.gz", "small now")
		if got := getString(t, s, "big.tar.gz"); got != "small now" {
			t.Errorf("after replace Get = %q", got)
		}
	})

	t.Run("List", func(t *testing.T) {
		s := newFixture(t)
		keys := []string{"b", "a/x", "a-c", "a/y/z", "ab", "pulsar-backup-2", "pulsar-backup-10"}
		for _, k := range keys {
			put(t, s, k, "data of "+k)
		}
		for prefix, want := range map[string][]string{
			"":               {"a-c", "a/x", "a/y/z", "ab", "b", "pulsar-backup-10", "pulsar-backup-2"},
			"a/":             {"a/x", "a/y/z"},
			"a":              {"a-c", "a/x", "a/y/z", "ab"},
			"a/y":            {"a/y/z"},
			"pulsar-backup-": {"pulsar-backup-10", "pulsar-backup-2"},
			"zzz":            nil,
			"a/q/":           nil,
		} {
			var got []string
			err := s.List(ctx, prefix, func(o ObjectInfo) error {
				if o.Size != int64(len("data of "+o.Key)) {
					t.Errorf("List(%q): %s has size %d", prefix, o.Key, o.Size)
				}
				got = append(got, o.Key)
				return nil
			})
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := s.List(ctx, "", func(ObjectInfo) error { calls++; return stop })
		if err != stop || calls != 1 {
			t.Errorf("List with failing fn = %v after %d calls; want the fn's error after 1", err, calls)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := newFixture(t)
		put(t, s, "dir/present", "x")
		for _, key := range []string{"absent", "dir", "dir/absent", "dir/present/below"} {
			_, err := s.Get(ctx, key)
			wantKind(t, "Get "+key, err, ErrNotExist, s.URL(key))
			_, err = s.Stat(ctx, key)
			wantKind(t, "Stat "+key, err, ErrNotExist, s.URL(key))
			err = s.Delete(ctx, key)
			wantKind(t, "Delete "+key, err, ErrNotExist, s.URL(key))
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newFixture(t)
		put(t, s, "k", "x")
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "k")
		wantKind(t, "Stat after Delete", err, ErrNotExist, s.URL("k"))
		wantKind(t, "second Delete", s.Delete(ctx, "k"), ErrNotExist, s.URL("k"))
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := newFixture(t)
		for _, key := range []string{"", "/etc/passwd", "../escape", "a/../../b", "a/..", "./a", "a/./b", "a//b", `a\..\b`, "a\nb", "a\x00b"} {
			errs := map[string]error{"Put": s.Put(ctx, key, strings.NewReader("x"), 1), "Delete": s.Delete(ctx, key)}
			_, errs["Get"] = s.Get(ctx, key)
			_, errs["Stat"] = s.Stat(ctx, key)
			for op, err := range errs {
				if err == nil || errors.Is(err, ErrNotExist) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s(%q) = %v; want a one-line invalid-key error", op, key, err)
				}
			}
		}
		for _, prefix := range []string{"/", "../", "a//", "a/../"} {
			if err := s.List(ctx, prefix, func(ObjectInfo) error { return nil }); err == nil {
				t.Errorf("List(%q) accepted", prefix)
			}
		}
		wantEmpty(t, s)
	})

	// A Put that fails must leave nothing: not under the key, not in a listing, and no
	// temporary file or multipart upload on the side.
	failedPut := func(t *testing.T, s fixture, key string, r io.Reader, size int64, wantErr error) {
		t.Helper()
		err := s.Put(ctx, key, r, size)
		if !errors.Is(err, wantErr) {
			t.Fatalf("Put = %v; want an error wrapping %v", err, wantErr)
		}
		if !strings.HasPrefix(err.Error(), "put "+s.URL(key)+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q does not start with the operation and URL on one line", err)
		}
		_, err = s.Stat(ctx, key)
		wantKind(t, "Stat after failed Put", err, ErrNotExist, s.URL(key))
		wantEmpty(t, s)
		if l := s.leftovers(t, key); len(l) > 0 {
			t.Errorf("failed Put left %q behind", l)
		}
	}

	t.Run("ReaderFails", func(t *testing.T) {
		s := newFixture(t)
		boom := errors.New("boom")
		// Fails after the first part went up, so there is a multipart upload to abort.
		failedPut(t, s, "x/failing", io.MultiReader(generate(2, 20*MiB), errReader{boom}), -1, boom)
		failedPut(t, s, "small", io.MultiReader(strings.NewReader("abc"), errReader{boom}), -1, boom)
	})

	t.Run("SizeMismatch", func(t *testing.T) {
		s := newFixture(t)
		failedPut(t, s, "short", generate(3, 17*MiB), 17*MiB+1, io.ErrUnexpectedEOF)
		failedPut(t, s, "tiny-short", strings.NewReader("abc"), 4, io.ErrUnexpectedEOF)
		err := s.Put(ctx, "long", strings.NewReader("abcde"), 4)
		if err == nil {
			t.Fatal("Put of 5 bytes declared as 4 succeeded")
		}
		wantEmpty(t, s)
	})

	t.Run("Cancelled", func(t *testing.T) {
		s := newFixture(t)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// The stream cancels the Put's own context part way, as a Temporal cancellation would.
		r := io.MultiReader(generate(4, 20*MiB), cancelReader{cancel}, generate(5, 20*MiB))
		err := s.Put(cctx, "cancelled", r, -1)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put = %v; want context.Canceled", err)
		}
		_, err = s.Stat(ctx, "cancelled")
		wantKind(t, "Stat after cancelled Put", err, ErrNotExist, s.URL("cancelled"))
		wantEmpty(t, s)
		if l := s.leftovers(t, "cancelled"); len(l) > 0 {
			t.Errorf("cancelled Put left %q behind", l)
		}
	})

	t.Run("CheckWritable", func(t *testing.T) {
		s := newFixture(t)
		if err := s.CheckWritable(ctx); err != nil {
			t.Fatal(err)
		}
		wantEmpty(t, s)
	})
}

func put(t *testing.T, s Store, key, data string) {
	t.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func getString(t *testing.T, s Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantKind checks err wraps kind and reads "<op> <url>...: <kind>..." on one line.
func wantKind(t *testing.T, what string, err, kind error, url string) {
	t.Helper()
	switch {
	case !errors.Is(err, kind):
		t.Errorf("%s: %v; want %v", what, err, kind)
	case !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), kind.Error()) || strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: error %q should name %s and say %q on one line", what, err, url, kind)
	}
}

func wantEmpty(t *testing.T, s Store) {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), "", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("store holds %q; want nothing", keys)
	}
}

// generate yields n pseudo-random bytes determined by seed, without holding them in memory.
func generate(seed byte, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

func hashOf(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// onlyReader hides any other methods (Seek, ReadAt, WriteTo) a reader has, as a pipe would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelReader calls cancel when the stream reaches it, and yields nothing.
type cancelReader struct{ cancel context.CancelFunc }

func (c cancelReader) Read([]byte) (int, error) { c.cancel(); return 0, io.EOF }
