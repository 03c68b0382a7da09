package zookeeper

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

var openACL = []znode.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}}

func rec(path string, data []byte, children int32) znode.Record {
	return znode.Record{Path: path, Data: data, ACL: openACL, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: children}}
}

// apply feeds records to a new Creator and closes it.
func apply(t testing.TB, c *Client, opts CreatorOptions, recs []znode.Record) (CreatorStats, error) {
	t.Helper()
	cr := c.NewCreator(context.Background(), opts)
	for _, r := range recs {
		if err := cr.Add(r); err != nil {
			stats, _ := cr.Close()
			return stats, err
		}
	}
	return cr.Close()
}

// fixtureTree is parent-first records with awkward data: null, empty, binary, unicode names,
// a deep path, several 1,000,000-byte znodes in a row, and many small ones.
func fixtureTree() []znode.Record {
	var recs []znode.Record
	add := func(path string, data []byte, children int32) { recs = append(recs, rec(path, data, children)) }
	add("/admin", nil, 3)
	add("/admin/null", nil, 0)
	add("/admin/empty", []byte{}, 0)
	add("/admin/ünïcødé-名前", []byte{0, 0, 1, 0xff}, 0)
	add("/big", nil, 4)
	for i := range 4 {
		add(fmt.Sprintf("/big/%d", i), bytes.Repeat([]byte{byte(i), 0}, 500_000), 0)
	}
	deep := ""
	for i := range 50 {
		deep += fmt.Sprintf("/d%02d", i)
		n := int32(1)
		if i == 49 {
			n = 0
		}
		add(deep, []byte(deep), n)
	}
	add("/ml", []byte("ml"), 40)
	for i := range 40 {
		topic := fmt.Sprintf("/ml/topic-%02d", i)
		add(topic, bytes.Repeat([]byte{byte(i), 0, 0x0a}, 70), 25)
		for j := range 25 {
			add(fmt.Sprintf("%s/sub-%02d", topic, j), []byte{0x08, byte(j), 0x10, 0}, 0)
		}
	}
	return recs
}

func checkTree(t *testing.T, c *Client, recs []znode.Record) {
	t.Helper()
	got, _, err := collect(t, c, WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		g, ok := got[r.Path]
		if !ok {
			t.Errorf("%s missing", r.Path)
			continue
		}
		if !bytes.Equal(g.Data, r.Data) || (g.Data == nil) != (r.Data == nil) {
			t.Errorf("%s: data %d bytes (nil %v), want %d (nil %v)", r.Path, len(g.Data), g.Data == nil, len(r.Data), r.Data == nil)
		}
		if !sameACL(toZKACL(g.ACL), toZKACL(r.ACL)) {
			t.Errorf("%s: ACL %+v, want %+v", r.Path, g.ACL, r.ACL)
		}
	}
}

func TestCreatorCreatesTreeAndReapplyIsNoop(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	var maxFrame maxWriteDialer
	c := connect(t, z.Addr, Options{Conns: 4, dial: maxFrame.dial})
	recs := fixtureTree()

	// Small batches, so that many are in flight and ordering across them matters.
	stats, err := apply(t, c, CreatorOptions{BatchOps: 17, InFlight: 6}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Created != int64(len(recs)) || stats.Existing != 0 || stats.Recovered != 0 {
		t.Errorf("stats = %+v, want %d created", stats, len(recs))
	}
	if stats.Singles != 4 || stats.Batches < int64(len(recs)/17) {
		t.Errorf("stats = %+v: want the four 1 MB znodes alone, the rest in batches", stats)
	}
	if m := maxFrame.max(); m > MaxRequestBytes {
		t.Errorf("a request of %d bytes was sent, over jute.maxbuffer", m)
	}
	checkTree(t, c, recs)

	// Default batches: several 1 MB znodes in a row and batches near BatchBytes.
	stats, err = apply(t, c, CreatorOptions{}, prefixed("/again", recs))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Created != int64(len(recs)+1) {
		t.Errorf("stats = %+v", stats)
	}
	if m := maxFrame.max(); m > DefaultBatchBytes+requestOverhead && m < 1_000_000 || m > MaxRequestBytes {
		t.Errorf("largest request %d bytes", m)
	}

	stats, err = apply(t, c, CreatorOptions{BatchOps: 17}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Existing != int64(len(recs)) || stats.Created != 0 {
		t.Errorf("re-apply: stats = %+v, want %d existing", stats, len(recs))
	}
}

// prefixed moves records under a new top-level znode.
func prefixed(top string, recs []znode.Record) []znode.Record {
	out := []znode.Record{rec(top, nil, 1)}
	for _, r := range recs {
		r.Path = top + r.Path
		out = append(out, r)
	}
	return out
}

func TestCreatorRecoversInOrderAfterAFailedBatch(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/a", []byte("a"), nil)
	c := connect(t, z.Addr, Options{Conns: 2})

	// The first batch fails (/a exists) and is rolled back, so /b is not created; the
	// batches after it, already sent, hold its descendants and fail as well.
	recs := []znode.Record{rec("/a", []byte("a"), 0), rec("/b", nil, 30)}
	for i := range 30 {
		p := fmt.Sprintf("/b/%02d", i)
		recs = append(recs, rec(p, nil, 1), rec(p+"/x", []byte(p), 0))
	}
	stats, err := apply(t, c, CreatorOptions{BatchOps: 2, InFlight: 8}, recs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", stats)
	if stats.Existing != 1 || stats.Created != int64(len(recs)-1) || stats.Recovered < 1 {
		t.Errorf("stats = %+v", stats)
	}
	checkTree(t, c, recs)
}

func TestCreatorRejectsDifferingZnodes(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/x", []byte("old"), nil)
	mustCreate(t, raw, "/y", []byte("same"), zk.WorldACL(zk.PermRead))
	if _, err := raw.Create("/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	c := connect(t, z.Addr, Options{Conns: 2})

	for i, tc := range []struct {
		rec  znode.Record
		want string
	}{
		{rec("/x", []byte("new"), 0), "create /x: exists with different data"},
		{rec("/y", []byte("same"), 0), "create /y: exists with different ACL"},
		{rec("/eph", nil, 0), "create /eph: exists with different mode (ephemeral, want persistent)"},
		{rec("/nope/child", nil, 0), "create /nope/child: parent /nope does not exist"},
	} {
		// A fresh znode first, so the failing one is inside a batch.
		_, err := apply(t, c, CreatorOptions{}, []znode.Record{rec(fmt.Sprintf("/fresh-%d", i), nil, 0), tc.rec})
		if err == nil || err.Error() != tc.want {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
		if _, err := c.CreateOne(context.Background(), tc.rec); err == nil || err.Error() != tc.want {
			t.Errorf("CreateOne: err = %v, want %q", err, tc.want)
		}
	}

	// The root always exists; an identical record for it is counted, not created.
	data, _, err := raw.Get("/")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := apply(t, c, CreatorOptions{}, []znode.Record{rec("/", data, 3), rec("/z", nil, 0)})
	if err != nil || stats.Existing != 1 || stats.Created != 1 {
		t.Errorf("root: stats %+v, err %v", stats, err)
	}
	created, err := c.CreateOne(context.Background(), rec("/z", nil, 0))
	if created || err != nil {
		t.Errorf("CreateOne of an identical znode: created %v, err %v", created, err)
	}
}

func TestCreatorDefersACLOfLockedParents(t *testing.T) {
	alice := znode.ACL{Perms: zk.PermRead | zk.PermAdmin, Scheme: "digest", ID: zk.DigestACL(0, "alice", "alice-pw")[0].ID}
	for _, auth := range []string{"none", "digest:bob:bob-pw"} {
		t.Run(auth, func(t *testing.T) {
			z := testenv.StartZooKeeper(t)
			c := connect(t, z.Addr, Options{Conns: 2, Auth: auth})
			locked := znode.Record{Path: "/locked", Data: []byte("l"), ACL: []znode.ACL{alice}, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: 2}}
			inner := locked
			inner.Path, inner.Stat.NumChildren = "/locked/b", 1
			leaf := locked
			leaf.Path, leaf.Stat.NumChildren = "/locked/b/leaf", 0
			recs := []znode.Record{locked, rec("/locked/a", []byte("a"), 0), inner, leaf}
			stats, err := apply(t, c, CreatorOptions{}, recs)
			if err != nil {
				t.Fatal(err)
			}
			if stats.DeferredACLs != 2 || stats.Created != 4 {
				t.Errorf("stats = %+v, want 2 deferred ACLs", stats)
			}
			super := connect(t, z.Addr, Options{Conns: 1})
			checkTree(t, super, recs)

			// Applying again needs an auth that can read the locked znodes: the super user.
			stats, err = apply(t, super, CreatorOptions{}, recs)
			if err != nil || stats.Existing != 4 {
				t.Errorf("re-apply: stats = %+v, err = %v", stats, err)
			}
			// Without it, the error names the znode it could not compare.
			_, err = apply(t, c, CreatorOptions{}, recs)
			if err == nil || !strings.HasPrefix(err.Error(), "create /locked: compare with the existing znode: read /locked: not authorized") {
				t.Errorf("re-apply without read access: %v", err)
			}
		})
	}
}

func TestCreatorContainerAndTTL(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	c := connect(t, z.Addr, Options{Conns: 2})
	recs := []znode.Record{
		rec("/p", nil, 2),
		{Path: "/p/container", Data: []byte("c"), ACL: openACL, Mode: znode.ModeContainer, Stat: znode.Stat{NumChildren: 1}},
		rec("/p/container/child", []byte("x"), 0),
		{Path: "/p/ttl", Data: []byte("t"), ACL: openACL, Mode: znode.ModeTTL, TTL: 3_600_000},
	}
	stats, err := apply(t, c, CreatorOptions{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Singles != 2 || stats.Created != 4 {
		t.Errorf("stats = %+v", stats)
	}
	checkTree(t, c, recs)

	// The client cannot see the modes (the server masks them), its transaction log can.
	txns := readTxnLog(t, z.Dir)
	if got := txns["/p/container"]; got.typ != opCreateContainer {
		t.Errorf("/p/container created by txn type %d, want createContainer", got.typ)
	}
	if got := txns["/p/ttl"]; got.typ != opCreateTTL || got.ttl != 3_600_000 {
		t.Errorf("/p/ttl created by txn type %d ttl %d, want createTTL 3600000", got.typ, got.ttl)
	}
	if got := txns["/p/container/child"]; got.typ != opCreate {
		t.Errorf("/p/container/child created by txn type %d", got.typ)
	}

	// Applying again is a no-op; the modes cannot be compared through the client protocol
	// and are taken as persistent, which is what the server reports.
	if stats, err := apply(t, c, CreatorOptions{}, recs); err != nil || stats.Existing != 4 {
		t.Errorf("re-apply: stats = %+v, err = %v", stats, err)
	}
}

// maxWriteDialer records the largest request sent, whatever the writes that carry it.
type maxWriteDialer struct {
	mu sync.Mutex
	n  int
}

func (d *maxWriteDialer) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	return &maxWriteConn{Conn: c, d: d}, nil
}

func (d *maxWriteDialer) max() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

type maxWriteConn struct {
	net.Conn
	d      *maxWriteDialer
	lenBuf []byte
	left   int
}

func (c *maxWriteConn) Write(p []byte) (int, error) {
	for b := p; len(b) > 0; {
		if c.left == 0 {
			k := min(4-len(c.lenBuf), len(b))
			c.lenBuf = append(c.lenBuf, b[:k]...)
			b = b[k:]
			if len(c.lenBuf) == 4 {
				c.left = int(binary.BigEndian.Uint32(c.lenBuf))
				c.lenBuf = c.lenBuf[:0]
				c.d.mu.Lock()
				c.d.n = max(c.d.n, c.left)
				c.d.mu.Unlock()
			}
			continue
		}
		k := min(c.left, len(b))
		b = b[k:]
		c.left -= k
	}
	return c.Conn.Write(p)
}

type txnInfo struct {
	typ int32
	ttl int64
}

// readTxnLog reads the server's transaction logs: for each created path, the type of the
// transaction (multi unpacked) and, for createTTL, the TTL.
func readTxnLog(t *testing.T, dir string) map[string]txnInfo {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "data", "version-2", "log.*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transaction log in %s: %v", dir, err)
	}
	sort.Strings(files)
	out := map[string]txnInfo{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = b[16:] // magic, version, dbid
		for len(b) >= 12 {
			n := int(binary.BigEndian.Uint32(b[8:12]))
			if n == 0 || 12+n+1 > len(b) {
				break
			}
			txn := b[12 : 12+n]
			b = b[12+n+1:] // crc, length, txn, end-of-record 'B'
			typ := int32(binary.BigEndian.Uint32(txn[28:32]))
			body := txn[32:]
			if typ == opMulti {
				count := int(binary.BigEndian.Uint32(body))
				body = body[4:]
				for range count {
					sub := int32(binary.BigEndian.Uint32(body))
					l := int(binary.BigEndian.Uint32(body[4:]))
					decodeCreateTxn(out, sub, body[8:8+l])
					body = body[8+l:]
				}
				continue
			}
			decodeCreateTxn(out, typ, body)
		}
	}
	return out
}

func decodeCreateTxn(out map[string]txnInfo, typ int32, b []byte) {
	if typ != opCreate && typ != opCreate2 && typ != opCreateContainer && typ != opCreateTTL {
		return
	}
	str := func() []byte {
		l := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if l < 0 {
			return nil
		}
		s := b[:l]
		b = b[l:]
		return s
	}
	path := string(str())
	info := txnInfo{typ: typ}
	if typ == opCreateTTL {
		str() // data
		acls := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		for range acls {
			b = b[4:] // perms
			str()
			str()
		}
		b = b[4:] // parentCVersion
		info.ttl = int64(binary.BigEndian.Uint64(b))
	}
	out[path] = info
}

func TestCreateOneAndCreatorAgreeOnErrors(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	c := connect(t, z.Addr, Options{Conns: 1})
	ctx := context.Background()
	if created, err := c.CreateOne(ctx, rec("/one", []byte("1"), 0)); !created || err != nil {
		t.Fatalf("created %v, err %v", created, err)
	}
	if _, err := c.CreateOne(ctx, znode.Record{Path: "/e", ACL: openACL, Mode: znode.ModeEphemeral}); err == nil {
		t.Error("ephemeral accepted")
	}
	if _, err := c.CreateOne(ctx, znode.Record{Path: "/noacl", Mode: znode.ModePersistent}); err == nil {
		t.Error("empty ACL accepted")
	}
	cr := c.NewCreator(ctx, CreatorOptions{})
	if err := cr.Add(znode.Record{Path: "bad", ACL: openACL, Mode: znode.ModePersistent}); err == nil {
		t.Error("invalid path accepted")
	}
	if _, err := cr.Close(); err == nil {
		t.Error("Close after a failed Add returned nil")
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	cr = c.NewCreator(ctx2, CreatorOptions{})
	if err := cr.Add(rec("/c", nil, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a cancelled context: %v", err)
	}
}

// A guarded Creator writes only while the guard znode keeps its version: once another writer
// changes it, the next batch (or single create) fails whole, nothing of it is created, and
// the Creator stops with ErrGuardFailed.
func TestCreatorGuardStopsWritesOnceTheGuardChanges(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/guard", []byte("mine"), nil)
	c := connect(t, z.Addr, Options{})
	ctx := context.Background()
	opts := CreatorOptions{BatchOps: 5, InFlight: 1, Guard: &Guard{Path: "/guard", Version: 0}}

	cr := c.NewCreator(ctx, opts)
	add := func(recs ...znode.Record) error {
		for _, r := range recs {
			if err := cr.Add(r); err != nil {
				return err
			}
		}
		return nil
	}
	first := []znode.Record{rec("/t", nil, 20)}
	for i := range 9 {
		first = append(first, rec(fmt.Sprintf("/t/a%d", i), nil, 0))
	}
	if err := add(first...); err != nil { // two full batches, sent
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _, _ := raw.Exists("/t/a8"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first batches never landed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Another restore takes over.
	if _, err := raw.Set("/guard", []byte("theirs"), 0); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; err == nil && i < 10; i++ {
		err = add(rec(fmt.Sprintf("/t/b%d", i), nil, 0))
	}
	if err == nil {
		_, err = cr.Close()
	}
	if !errors.Is(err, ErrGuardFailed) || !strings.Contains(err.Error(), "/guard is no longer at version 0") {
		t.Fatalf("after the guard changed: %v", err)
	}
	children, _, err := raw.Children("/t")
	if err != nil || len(children) != 9 {
		t.Fatalf("/t holds %v (%v): want only the 9 written before the guard changed", children, err)
	}

	// A container, which goes in a single create after its own check, is refused too.
	cr = c.NewCreator(ctx, opts)
	err = cr.Add(znode.Record{Path: "/t/c", ACL: openACL, Mode: znode.ModeContainer})
	if err == nil {
		_, err = cr.Close()
	}
	if !errors.Is(err, ErrGuardFailed) {
		t.Fatalf("guarded container: %v", err)
	}
	if ok, _, _ := raw.Exists("/t/c"); ok {
		t.Fatal("the container was created")
	}
	// At the guard's new version, writes go on.
	if _, err := apply(t, c, CreatorOptions{Guard: &Guard{Path: "/guard", Version: 1}}, []znode.Record{rec("/t/d", nil, 0)}); err != nil {
		t.Fatal(err)
	}
}

// With KeepDiffering, a znode that exists with other contents is left exactly as found (data
// and ACL, even one the record would lock), reported, and the rest is still created,
// children under it included.
func TestCreatorKeepDiffering(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/theirs", []byte("their data"), nil)
	mustCreate(t, raw, "/same", []byte("s"), nil)
	c := connect(t, z.Addr, Options{Conns: 2})
	locker := znode.ACL{Perms: zk.PermRead | zk.PermAdmin, Scheme: "digest", ID: zk.DigestACL(0, "alice", "pw")[0].ID}
	locked := znode.Record{Path: "/theirs", Data: []byte("ours"), ACL: []znode.ACL{locker}, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: 1}}
	recs := []znode.Record{rec("/new", []byte("n"), 0), locked, rec("/theirs/child", []byte("c"), 0), rec("/same", []byte("s"), 0)}
	var kept []string
	stats, err := apply(t, c, CreatorOptions{BatchOps: 2, KeepDiffering: func(p string) { kept = append(kept, p) }}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(kept, ",") != "/theirs" || stats.Differing != 1 || stats.Created != 2 || stats.Existing != 1 {
		t.Fatalf("kept %v, stats %+v", kept, stats)
	}
	data, _, err := raw.Get("/theirs")
	if err != nil || string(data) != "their data" {
		t.Fatalf("/theirs now %q, %v", data, err)
	}
	acl, _, err := raw.GetACL("/theirs")
	if err != nil || len(acl) != 1 || acl[0].Scheme != "world" {
		t.Fatalf("/theirs ACL now %v, %v", acl, err)
	}
	if data, _, err := raw.Get("/theirs/child"); err != nil || string(data) != "c" {
		t.Fatalf("/theirs/child: %q %v", data, err)
	}
	// Without it the same records fail on /theirs.
	if _, err := apply(t, c, CreatorOptions{}, recs); err == nil || !strings.Contains(err.Error(), "create /theirs: exists with different data") {
		t.Fatalf("without KeepDiffering: %v", err)
	}
}
