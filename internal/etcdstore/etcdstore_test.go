package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func rawClient(t testing.TB, e *testenv.Etcd) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func put(t testing.TB, c *clientv3.Client, kvs ...string) {
	t.Helper()
	for i := 0; i < len(kvs); i += 2 {
		if _, err := c.Put(context.Background(), kvs[i], kvs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

func connect(t testing.TB, e *testenv.Etcd, opts Options) *Store {
	t.Helper()
	opts.Endpoints = []string{e.Endpoint}
	s, err := Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func walkAll(t testing.TB, s *Store, opts WalkOptions) ([]znode.Record, WalkStats) {
	t.Helper()
	var recs []znode.Record
	st, err := s.Walk(context.Background(), opts, func(r znode.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, st
}

func paths(recs []znode.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Path)
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// TestWalk runs every walk case against one server, each under its own key prefix.
func TestWalk(t *testing.T) {
	e := testenv.StartEtcd(t)
	raw := rawClient(t, e)
	ctx := context.Background()

	t.Run("layout", func(t *testing.T) {
		// Pulsar's layout under a chroot: no parent keys, a topic whose name extends a
		// sibling's with '-' (sorts between it and its cursors), an empty value, a leased
		// broker registration, and a neighbouring cluster whose prefix extends the chroot.
		put(t, raw,
			"/c1/admin/clusters/pulsar", `{"serviceUrl":"x"}`,
			"/c1/managed-ledgers/t/ns/persistent/a", "ml-a",
			"/c1/managed-ledgers/t/ns/persistent/a-1", "ml-a-1",
			"/c1/managed-ledgers/t/ns/persistent/a/sub1", "cur1",
			"/c1/managed-ledgers/t/ns/persistent/a/sub2", "cur2",
			"/c1/schemas", "",
			"/c1-other/admin", "not ours",
			"/c2", "outside",
		)
		lease, err := raw.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		// Live state, one key of it not even a valid path: left out, not judged.
		for _, k := range []string{"/c1/loadbalance/brokers/10.0.0.1:8080", "/c1/loadbalance//odd"} {
			if _, err := raw.Put(ctx, k, "live", clientv3.WithLease(lease.ID)); err != nil {
				t.Fatal(err)
			}
		}
		s := connect(t, e, Options{Root: "/c1"})
		for _, page := range []int{1, 2, 1000} {
			recs, st := walkAll(t, s, WalkOptions{PageSize: page})
			want := "/admin /admin/clusters /admin/clusters/pulsar /managed-ledgers /managed-ledgers/t /managed-ledgers/t/ns " +
				"/managed-ledgers/t/ns/persistent /managed-ledgers/t/ns/persistent/a /managed-ledgers/t/ns/persistent/a-1 " +
				"/managed-ledgers/t/ns/persistent/a/sub1 /managed-ledgers/t/ns/persistent/a/sub2 /schemas"
			if got := paths(recs); got != want {
				t.Fatalf("page %d: walked\n%s\nwant\n%s", page, got, want)
			}
			if st.Znodes != 12 || st.Implied != 6 || st.EphemeralSkipped != 2 || st.DataBytes != int64(len(`{"serviceUrl":"x"}`)+4+6+4+4) {
				t.Fatalf("page %d: stats %+v", page, st)
			}
			byPath := map[string]znode.Record{}
			for _, r := range recs {
				byPath[r.Path] = r
				// NumChildren: every key below, leased ones included, as etcd counts them.
				g, err := raw.Get(ctx, "/c1"+r.Path+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
				if err != nil {
					t.Fatal(err)
				}
				if int64(r.Stat.NumChildren) != g.Count {
					t.Fatalf("page %d: %s has NumChildren %d, %d keys below", page, r.Path, r.Stat.NumChildren, g.Count)
				}
			}
			a := byPath["/managed-ledgers/t/ns/persistent/a"]
			if string(a.Data) != "ml-a" || a.Stat.NumChildren != 2 || Implied(a) || a.Mode != znode.ModePersistent || len(a.ACL) != 1 || a.ACL[0] != WorldACL[0] {
				t.Fatalf("page %d: managed ledger record %+v", page, a)
			}
			if r := byPath["/managed-ledgers/t/ns/persistent/a-1"]; r.Stat.NumChildren != 0 {
				t.Fatalf("page %d: a-1 has %d children", page, r.Stat.NumChildren)
			}
			if r := byPath["/managed-ledgers/t"]; !Implied(r) || r.Stat.NumChildren != 4 {
				t.Fatalf("page %d: implied /managed-ledgers/t = %+v", page, r)
			}
			if r := byPath["/schemas"]; r.Data == nil || len(r.Data) != 0 || Implied(r) {
				t.Fatalf("page %d: an empty value must be empty data, not implied: %+v", page, r)
			}
			// Stat from etcd's metadata, read independently.
			g, err := raw.Get(ctx, "/c1/managed-ledgers/t/ns/persistent/a")
			if err != nil {
				t.Fatal(err)
			}
			kv := g.Kvs[0]
			if a.Stat.Czxid != kv.CreateRevision || a.Stat.Mzxid != kv.ModRevision || a.Stat.Version != int32(kv.Version-1) || a.Stat.DataLength != 4 {
				t.Fatalf("page %d: stat %+v for %v", page, a.Stat, kv)
			}
			if st.Revision < kv.ModRevision {
				t.Fatalf("page %d: revision %d before the last write %d", page, st.Revision, kv.ModRevision)
			}
		}

		// A sub-path; Skip leaves a subtree out, implied or not.
		recs, _ := walkAll(t, s, WalkOptions{Path: "/managed-ledgers/t/ns/persistent"})
		if got := paths(recs); got != "/managed-ledgers/t/ns/persistent /managed-ledgers/t/ns/persistent/a /managed-ledgers/t/ns/persistent/a-1 /managed-ledgers/t/ns/persistent/a/sub1 /managed-ledgers/t/ns/persistent/a/sub2" {
			t.Fatalf("sub-path walk: %s", got)
		}
		recs, st := walkAll(t, s, WalkOptions{PageSize: 2, Skip: func(p string) bool {
			return p == "/managed-ledgers/t/ns/persistent/a" || p == "/admin"
		}})
		if got := paths(recs); got != "/managed-ledgers /managed-ledgers/t /managed-ledgers/t/ns /managed-ledgers/t/ns/persistent /managed-ledgers/t/ns/persistent/a-1 /schemas" || st.SkippedSubtrees != 2 {
			t.Fatalf("walk with Skip: %s (%+v)", got, st)
		}

		if _, err := s.Walk(ctx, WalkOptions{Path: "/nothing"}, func(znode.Record) error { return nil }); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/nothing") {
			t.Fatalf("walk of a missing path: %v", err)
		}
	})

	t.Run("one revision", func(t *testing.T) {
		put(t, raw, "/rev/a", "1", "/rev/b", "old", "/rev/c", "doomed", "/rev/d", "4")
		s := connect(t, e, Options{Root: "/rev"})
		first := true
		var got []znode.Record
		st, err := s.Walk(ctx, WalkOptions{PageSize: 1}, func(r znode.Record) error {
			if first {
				first = false
				// Writes after the walk's first read: none may show.
				put(t, raw, "/rev/b", "new", "/rev/bb", "added", "/rev/e", "added")
				if _, err := raw.Delete(ctx, "/rev/c"); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := paths(got); p != "/a /b /c /d" {
			t.Fatalf("walk saw %s, want the store before the writes", p)
		}
		if string(got[1].Data) != "old" || string(got[2].Data) != "doomed" {
			t.Fatalf("walk saw values written after it began: %q %q", got[1].Data, got[2].Data)
		}
		now, err := raw.Get(ctx, "/rev/b")
		if err != nil {
			t.Fatal(err)
		}
		if st.Revision >= now.Kvs[0].ModRevision {
			t.Fatalf("walk revision %d not before the write at %d", st.Revision, now.Kvs[0].ModRevision)
		}
	})

	t.Run("compacted during the walk", func(t *testing.T) {
		put(t, raw, "/cmp/a", "1", "/cmp/b", "2", "/cmp/c", "3")
		s := connect(t, e, Options{Root: "/cmp"})
		first := true
		_, err := s.Walk(ctx, WalkOptions{PageSize: 1}, func(r znode.Record) error {
			if first {
				first = false
				resp, err := raw.Put(ctx, "/cmp/a", "changed")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := raw.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		if !errors.Is(err, rpctypes.ErrCompacted) || !strings.Contains(err.Error(), "compacted during the walk") {
			t.Fatalf("walk over a compacted revision: %v", err)
		}
	})

	t.Run("bounded pages", func(t *testing.T) {
		// 40 values of 20 KB and a response limit of 100 KB: a page of 1,000 keys cannot
		// arrive whole, so the walk must read smaller pages, and still see every key once.
		val := strings.Repeat("x", 20_000)
		for i := range 40 {
			put(t, raw, fmt.Sprintf("/big/k%02d", i), val)
		}
		s := connect(t, e, Options{Root: "/big", MaxResponseBytes: 100_000})
		var reports []WalkStats
		recs, st := walkAll(t, s, WalkOptions{ProgressInterval: time.Nanosecond, Progress: func(s WalkStats) { reports = append(reports, s) }})
		if len(recs) != 40 || st.DataBytes != 40*20_000 {
			t.Fatalf("walked %d records, %d bytes", len(recs), st.DataBytes)
		}
		// A report after every record, and the final counts once more.
		if len(reports) != 41 || reports[0].Znodes != 1 || reports[40] != st {
			t.Fatalf("%d progress reports, first %+v, last %+v (walk %+v)", len(reports), reports[0], reports[len(reports)-1], st)
		}
		for i, r := range recs {
			if r.Path != fmt.Sprintf("/k%02d", i) {
				t.Fatalf("record %d is %s", i, r.Path)
			}
		}
	})

	t.Run("bad keys and roots", func(t *testing.T) {
		put(t, raw, "/bad/a//b", "x")
		s := connect(t, e, Options{Root: "/bad"})
		_, err := s.Walk(ctx, WalkOptions{}, func(znode.Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), `"/bad/a//b"`) {
			t.Fatalf("walk over an invalid key: %v", err)
		}
		_, err = Connect(ctx, Options{Endpoints: []string{e.Endpoint}, Root: "/no-such-cluster"})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "chroot /no-such-cluster does not exist") {
			t.Fatalf("missing chroot: %v", err)
		}
		// The chroot's own key is enough, and maps to "/".
		put(t, raw, "/lone", "root data")
		s = connect(t, e, Options{Root: "/lone"})
		recs, _ := walkAll(t, s, WalkOptions{})
		if paths(recs) != "/" || string(recs[0].Data) != "root data" {
			t.Fatalf("chroot key alone: %+v", recs)
		}
	})
}

func TestConnectUnreachable(t *testing.T) {
	port := testenv.FreePort(t)
	ep := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := time.Now()
	_, err := Connect(context.Background(), Options{Endpoints: []string{ep}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), "no endpoint reachable within 1s") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unreachable: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to give up", d)
	}
}

func recsOf(prefix string, n int) []znode.Record {
	recs := make([]znode.Record, n)
	for i := range recs {
		recs[i] = znode.Record{Path: fmt.Sprintf("%s/n%04d", prefix, i), Data: []byte(fmt.Sprintf("data-%d", i)), ACL: WorldACL, Mode: znode.ModePersistent}
	}
	return recs
}

func TestWrite(t *testing.T) {
	e := testenv.StartEtcd(t)
	raw := rawClient(t, e)
	ctx := context.Background()
	put(t, raw, "/w", "")
	s := connect(t, e, Options{Root: "/w"})

	t.Run("batches over the op limit", func(t *testing.T) {
		recs := recsOf("/many", 1000)
		n, err := s.CreateBatch(ctx, recs, nil)
		if err != nil || n != 1000 {
			t.Fatalf("created %d: %v", n, err)
		}
		g, err := raw.Get(ctx, "/w/many/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) != 1000 {
			t.Fatalf("%d keys", len(g.Kvs))
		}
		for i, kv := range g.Kvs {
			if string(kv.Key) != "/w"+recs[i].Path || !bytes.Equal(kv.Value, recs[i].Data) {
				t.Fatalf("key %d: %s=%q", i, kv.Key, kv.Value)
			}
		}
		// 1000 records in at most 128 per transaction: the keys carry at least 8 distinct
		// revisions (each transaction is one).
		revs := map[int64]bool{}
		for _, kv := range g.Kvs {
			revs[kv.ModRevision] = true
		}
		if len(revs) < 8 || len(revs) > 20 {
			t.Fatalf("1000 records in %d transactions", len(revs))
		}
	})

	t.Run("large values split transactions", func(t *testing.T) {
		// 6 values of 400 KB: no two... four of them would pass 1.5 MiB.
		recs := recsOf("/large", 6)
		for i := range recs {
			recs[i].Data = bytes.Repeat([]byte{byte('a' + i)}, 400_000)
		}
		if n, err := s.CreateBatch(ctx, recs, nil); err != nil || n != 6 {
			t.Fatalf("created %d: %v", n, err)
		}
		huge := []znode.Record{{Path: "/huge", Data: make([]byte, 2<<20), ACL: WorldACL, Mode: znode.ModePersistent}}
		if _, err := s.CreateBatch(ctx, huge, nil); err == nil || !strings.Contains(err.Error(), "/huge") || !strings.Contains(err.Error(), "request limit") {
			t.Fatalf("2 MiB value: %v", err)
		}
	})

	t.Run("idempotent resume and conflict", func(t *testing.T) {
		recs := recsOf("/resume", 300)
		// An earlier run wrote a stretch in the middle, then stopped.
		if n, err := s.CreateBatch(ctx, recs[100:150], nil); err != nil || n != 50 {
			t.Fatalf("first run: %d %v", n, err)
		}
		n, err := s.CreateBatch(ctx, recs, nil)
		if err != nil || n != 250 {
			t.Fatalf("resumed run created %d (want 250): %v", n, err)
		}
		n, err = s.CreateBatch(ctx, recs, nil)
		if err != nil || n != 0 {
			t.Fatalf("third run created %d: %v", n, err)
		}
		other := recsOf("/resume", 300)
		other[200].Data = []byte("changed")
		_, err = s.CreateBatch(ctx, other, nil)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "/resume/n0200") || !strings.Contains(err.Error(), "different data") {
			t.Fatalf("conflict: %v", err)
		}
		lease, err := raw.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Put(ctx, "/w/live", "x", clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateBatch(ctx, []znode.Record{{Path: "/live", Data: []byte("x"), Mode: znode.ModePersistent}}, nil)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "leased") {
			t.Fatalf("over a leased key: %v", err)
		}
		if _, err := s.CreateBatch(ctx, []znode.Record{recs[0], recs[0]}, nil); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Fatalf("duplicate: %v", err)
		}
	})

	t.Run("guard and Put", func(t *testing.T) {
		v, err := s.Put(ctx, "/marker", []byte("applying"), -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "/marker", []byte("again"), -1); !errors.Is(err, ErrVersionConflict) {
			t.Fatalf("create over an existing key: %v", err)
		}
		rec, rv, found, err := s.Read(ctx, "/marker")
		if err != nil || !found || rv != v || string(rec.Data) != "applying" || rec.Stat.Version != 0 {
			t.Fatalf("read: %+v %d %v %v", rec, rv, found, err)
		}
		guard := &Guard{Path: "/marker", Version: v}
		if n, err := s.CreateBatch(ctx, recsOf("/guarded", 200), guard); err != nil || n != 200 {
			t.Fatalf("guarded create: %d %v", n, err)
		}
		// Another restore takes over the marker.
		v2, err := s.Put(ctx, "/marker", []byte("other run"), v)
		if err != nil || v2 <= v {
			t.Fatalf("CAS: %d %v", v2, err)
		}
		if _, err := s.Put(ctx, "/marker", []byte("stale"), v); !errors.Is(err, ErrVersionConflict) {
			t.Fatalf("stale CAS: %v", err)
		}
		n, err := s.CreateBatch(ctx, recsOf("/after", 10), guard)
		if !errors.Is(err, ErrGuardFailed) || n != 0 {
			t.Fatalf("after the marker changed: %d %v", n, err)
		}
		if g, _ := raw.Get(ctx, "/w/after/", clientv3.WithPrefix(), clientv3.WithCountOnly()); g.Count != 0 {
			t.Fatalf("%d keys written past a failed guard", g.Count)
		}
		// A deleted and re-created guard key does not match its old version.
		if _, err := raw.Delete(ctx, "/w/marker"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateBatch(ctx, recsOf("/after", 1), &Guard{Path: "/marker", Version: v2}); !errors.Is(err, ErrGuardFailed) {
			t.Fatalf("guard key gone: %v", err)
		}
		if _, _, found, err := s.Read(ctx, "/marker"); found || err != nil {
			t.Fatalf("read of a deleted key: %v %v", found, err)
		}
	})

	t.Run("walk restored elsewhere", func(t *testing.T) {
		// Pulsar's layout (no parent keys, an empty value, a key at the chroot itself)
		// walked, written under a new chroot, and walked again: the same records, and no
		// key for an implied parent.
		put(t, raw,
			"/src", "chroot's own",
			"/src/admin/policies/t/ns", "policies",
			"/src/managed-ledgers/t/ns/persistent/x", "ml",
			"/src/managed-ledgers/t/ns/persistent/x-partition-0", "ml-p0",
			"/src/managed-ledgers/t/ns/persistent/x/sub", "cursor",
			"/src/schemas", "",
		)
		src := connect(t, e, Options{Root: "/src"})
		before, _ := walkAll(t, src, WalkOptions{PageSize: 3})
		if _, err := Connect(ctx, Options{Endpoints: []string{e.Endpoint}, Root: "/dst"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("connect to an empty chroot: %v", err)
		}
		dst := connect(t, e, Options{Root: "/dst", AllowEmptyRoot: true})
		n, err := dst.CreateBatch(ctx, before, nil)
		if err != nil || n != 5 {
			t.Fatalf("created %d (want the 5 keys below the chroot): %v", n, err)
		}
		after, _ := walkAll(t, dst, WalkOptions{})
		// "/", the chroot's own key, is not restored.
		if before[0].Path != "/" || paths(after) != paths(before[1:]) {
			t.Fatalf("walked back\n%s\nwant\n%s", paths(after), paths(before[1:]))
		}
		for i := range after {
			b, a := before[i+1], after[i]
			if !bytes.Equal(a.Data, b.Data) || (a.Data == nil) != (b.Data == nil) || Implied(a) != Implied(b) || a.Stat.NumChildren != b.Stat.NumChildren {
				t.Fatalf("%s: walked back %+v, was %+v", b.Path, a, b)
			}
		}
		g, err := raw.Get(ctx, "/dst", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range g.Kvs {
			keys = append(keys, string(kv.Key))
		}
		if got := strings.Join(keys, " "); got != "/dst/admin/policies/t/ns /dst/managed-ledgers/t/ns/persistent/x /dst/managed-ledgers/t/ns/persistent/x-partition-0 /dst/managed-ledgers/t/ns/persistent/x/sub /dst/schemas" {
			t.Fatalf("keys written: %s", got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		recs := recsOf("/del", 300)
		if _, err := s.CreateBatch(ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		ps := []string{"/del/none"}
		for _, r := range recs {
			ps = append(ps, r.Path)
		}
		st, err := s.Delete(ctx, ps)
		if err != nil || st.Deleted != 300 || st.Gone != 1 {
			t.Fatalf("delete: %+v %v", st, err)
		}
		if g, _ := raw.Get(ctx, "/w/del/", clientv3.WithPrefix(), clientv3.WithCountOnly()); g.Count != 0 {
			t.Fatalf("%d keys left", g.Count)
		}
	})
}

func TestAuth(t *testing.T) {
	e := testenv.StartEtcd(t)
	raw := rawClient(t, e)
	ctx := context.Background()
	put(t, raw, "/a/b", "x")
	if _, err := raw.UserAdd(ctx, "root", "root-secret-pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := Connect(ctx, Options{Endpoints: []string{e.Endpoint}, Username: "root", Password: "wrong-pw-123", DialTimeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), `auth as user "root" failed`) || strings.Contains(err.Error(), "wrong-pw-123") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Logf("wrong password: %v", err)
	s := connect(t, e, Options{Username: "root", Password: "root-secret-pw", Root: "/a"})
	recs, _ := walkAll(t, s, WalkOptions{})
	if paths(recs) != "/b" {
		t.Fatalf("walk as root: %s", paths(recs))
	}
	stop := errors.New("stop")
	if _, err := s.Walk(ctx, WalkOptions{}, func(znode.Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("emit's error: %v", err)
	}
}
