package etcdstore

// The etcd dump rate against a yardstick measured in the same run, on a Pulsar-shaped tree
// written as Pulsar lays it out in etcd (no parent keys, live state under leases):
//
//	go test ./internal/etcdstore -run '^$' -bench EtcdDumpRatios -benchtime 1x -v
//
// ZK_BENCH_ZNODES sets the tree size (default 100,000), as for the ZooKeeper benchmarks.

import (
	"context"
	"testing"
	"time"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// populate writes the tree through CreateBatch, 1,000 records a call, leaving out the
// parents Pulsar does not create (nil data); ephemerals go under one lease. It returns the
// number of keys written.
func populate(b *testing.B, s *Store, raw *clientv3.Client, n int) int {
	ctx := context.Background()
	lease, err := raw.Grant(ctx, 600)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var batch []znode.Record
	var live []clientv3.Op
	keys := 0
	flush := func() {
		c, err := s.CreateBatch(ctx, batch, nil)
		if err != nil {
			b.Fatal(err)
		}
		keys += c
		batch = batch[:0]
	}
	_, err = pulsartree.Records(pulsartree.Sized(n), func(r znode.Record) bool {
		switch {
		case r.Mode == znode.ModeEphemeral:
			live = append(live, clientv3.OpPut(r.Path, string(r.Data), clientv3.WithLease(lease.ID)))
		case r.Data != nil:
			batch = append(batch, r)
			if len(batch) == 1000 {
				flush()
			}
		}
		return true
	})
	if err != nil {
		b.Fatal(err)
	}
	flush()
	for len(live) > 0 {
		k := min(len(live), MaxTxnOps)
		if _, err := raw.Txn(ctx).Then(live[:k]...).Commit(); err != nil {
			b.Fatal(err)
		}
		keys += k
		live = live[k:]
	}
	d := time.Since(start)
	b.Logf("populated %d keys in %s with CreateBatch: %.0f keys/s", keys, d.Round(time.Millisecond), float64(keys)/d.Seconds())
	return keys
}

// rangeDump is the yardstick: the plain paginated range read of every key at one revision
// that a walk is built on, values included, doing nothing with them.
func rangeDump(raw *clientv3.Client) (int, error) {
	ctx := context.Background()
	start, end := "/", "0"
	var rev int64
	n := 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(DefaultPageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := raw.Get(ctx, start, opts...)
		if err != nil {
			return n, err
		}
		rev = resp.Header.Revision
		n += len(resp.Kvs)
		if !resp.More || len(resp.Kvs) == 0 {
			return n, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func BenchmarkEtcdDumpRatios(b *testing.B) {
	n := testenv.EnvInt(b, "ZK_BENCH_ZNODES", 100_000)
	e := testenv.StartEtcd(b)
	raw := rawClient(b, e)
	s := connect(b, e, Options{})
	keys := populate(b, s, raw, n)

	rate := func(name string, dump func() (int, error)) float64 {
		start := time.Now()
		got, err := dump()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		if got != keys {
			b.Fatalf("%s read %d keys, want %d", name, got, keys)
		}
		r := float64(got) / d.Seconds()
		b.Logf("%-16s %7d keys in %8s: %8.0f keys/s", name, got, d.Round(time.Millisecond), r)
		return r
	}
	var yard, walk float64
	var st WalkStats
	for b.Loop() {
		yard = rate("range read", func() (int, error) { return rangeDump(raw) })
		walk = rate("Walk", func() (int, error) {
			var err error
			st, err = s.Walk(context.Background(), WalkOptions{}, func(znode.Record) error { return nil })
			// Keys read: the records that had one, and the leased ones skipped.
			return int(st.Znodes - st.Implied + st.EphemeralSkipped), err
		})
	}
	b.Logf("Walk: %d records (%d implied), %d leased keys skipped, %d requests", st.Znodes, st.Implied, st.EphemeralSkipped, st.Requests)
	b.ReportMetric(walk, "keys/s")
	b.ReportMetric(yard, "range_keys/s")
	b.ReportMetric(walk/yard, "walk/range")
}
