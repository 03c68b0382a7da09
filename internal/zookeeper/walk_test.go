package zookeeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func TestWalkEmitsEveryPersistentZnodeExactly(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)

	want := map[string][]byte{}
	put := func(path string, data []byte, acl []zk.ACL) {
		t.Helper()
		mustCreate(t, raw, path, data, acl)
		want[path] = data
	}
	put("/admin", nil, nil)
	put("/admin/binary", []byte{0, 1, 0, 0xff, 0, '\n', 0}, nil)
	put("/admin/empty", []byte{}, nil)
	big := bytes.Repeat([]byte{0, 'p', 'u', 'l', 's', 'a', 'r', 0xfe}, 125_000) // 1,000,000 bytes
	put("/admin/big", big, nil)
	put("/admin/ünïcødé-名前-Ωλ", []byte("unicode"), nil)
	deep := ""
	for i := range 50 {
		deep += fmt.Sprintf("/d%02d", i)
		put(deep, []byte(deep), nil)
	}
	// Many siblings, so that requests really overlap.
	put("/managed-ledgers", []byte{}, nil)
	for i := range 300 {
		p := fmt.Sprintf("/managed-ledgers/topic-%03d", i)
		put(p, []byte(p), nil)
		put(p+"/sub", []byte{byte(i)}, nil)
	}
	// Digest-protected, readable by the super user the client authenticates as.
	locked := zk.DigestACL(zk.PermRead|zk.PermAdmin, "alice", "secret")
	put("/locked", []byte("locked"), locked)

	if _, err := raw.CreateContainer("/container", []byte("c"), zk.FlagContainer, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	want["/container"] = []byte("c")
	put("/container/child", nil, nil)
	if _, err := raw.CreateTTL("/ttl", []byte("t"), zk.FlagTTL, zk.WorldACL(zk.PermAll), time.Hour); err != nil {
		t.Fatal(err)
	}
	want["/ttl"] = []byte("t")

	// An ephemeral of another session.
	other := rawConn(t, z.Addr)
	if _, err := other.Create("/admin/ephemeral", []byte("e"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	c := connect(t, z.Addr, Options{Conns: 3})
	var progressCalls atomic.Int32
	got, stats, err := collect(t, c, WalkOptions{InFlight: 64, Progress: func(WalkStats) { progressCalls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}

	for path, data := range want {
		r, ok := got[path]
		if !ok {
			t.Errorf("%s not emitted", path)
			continue
		}
		if !bytes.Equal(r.Data, data) || (data == nil) != (r.Data == nil) {
			t.Errorf("%s: data %d bytes (nil %v), want %d (nil %v)", path, len(r.Data), r.Data == nil, len(data), data == nil)
		}
		if int(r.Stat.DataLength) != len(data) {
			t.Errorf("%s: stat.dataLength %d, want %d", path, r.Stat.DataLength, len(data))
		}
	}
	for path := range got {
		if strings.HasPrefix(path, "/zookeeper") {
			t.Errorf("%s emitted", path)
		}
		if _, ok := want[path]; !ok && path != "/" {
			t.Errorf("unexpected %s", path)
		}
	}
	if _, ok := got["/"]; !ok {
		t.Error("root not emitted")
	}
	if _, ok := got["/admin/ephemeral"]; ok {
		t.Error("ephemeral emitted")
	}
	if stats.EphemeralSkipped != 1 {
		t.Errorf("EphemeralSkipped = %d, want 1", stats.EphemeralSkipped)
	}
	if stats.Znodes != int64(len(want)+1) {
		t.Errorf("Znodes = %d, want %d", stats.Znodes, len(want)+1)
	}
	if stats.SkippedSubtrees != 1 {
		t.Errorf("SkippedSubtrees = %d, want 1 (/zookeeper)", stats.SkippedSubtrees)
	}
	if progressCalls.Load() == 0 {
		t.Error("Progress never called")
	}

	if r := got["/locked"]; len(r.ACL) != 1 || r.ACL[0].Scheme != "digest" || r.ACL[0].ID != locked[0].ID || r.ACL[0].Perms != zk.PermRead|zk.PermAdmin {
		t.Errorf("/locked ACL = %+v, want %+v", r.ACL, locked)
	}
	if r := got["/admin"]; len(r.ACL) != 1 || r.ACL[0] != (znode.ACL{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}) {
		t.Errorf("/admin ACL = %+v", r.ACL)
	}
	// ZooKeeper reports ephemeralOwner 0 to clients for container and TTL znodes
	// (DataNode.getClientEphemeralOwner), so through the client protocol they read as
	// persistent. Should a server ever report them, ModeOf tells them apart.
	for _, p := range []string{"/container", "/ttl"} {
		if r := got[p]; r.Mode != znode.ModePersistent || r.Stat.EphemeralOwner != 0 {
			t.Errorf("%s: mode %q, ephemeralOwner %#x: the server no longer masks it; assert the mode", p, r.Mode, r.Stat.EphemeralOwner)
		}
	}
	if r := got["/admin"]; r.Mode != znode.ModePersistent || r.Stat.NumChildren != 5 || r.Stat.Czxid == 0 {
		t.Errorf("/admin = %+v", r)
	}

	var maxZxid int64
	for _, r := range got {
		maxZxid = max(maxZxid, r.Stat.Czxid, r.Stat.Mzxid, r.Stat.Pzxid)
	}
	if stats.MaxZxid < maxZxid {
		t.Errorf("MaxZxid = %d, below %d", stats.MaxZxid, maxZxid)
	}
	var dataBytes int64
	for _, r := range got {
		dataBytes += int64(len(r.Data))
	}
	if stats.DataBytes != dataBytes {
		t.Errorf("DataBytes = %d, want %d", stats.DataBytes, dataBytes)
	}

	// Skip leaves out a subtree; a Root walks only below it.
	got, _, err = collect(t, c, WalkOptions{Skip: func(p string) bool { return p == "/managed-ledgers" }})
	if err != nil {
		t.Fatal(err)
	}
	for p := range got {
		if znode.Under(p, "/managed-ledgers") {
			t.Fatalf("%s emitted under a skipped subtree", p)
		}
	}
	got, _, err = collect(t, c, WalkOptions{Root: "/d00/d01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 49 {
		t.Errorf("walk of /d00/d01 emitted %d, want 49", len(got))
	}
	if _, _, err := collect(t, c, WalkOptions{Root: "/nonexistent"}); err == nil || err.Error() != "walk /nonexistent: zk: node does not exist" {
		t.Errorf("walk of a missing root: %v", err)
	}
}

func TestWalkCountsVanishedZnodes(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/v", nil, nil)
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, raw, "/v/"+n, []byte(n), nil)
	}
	mustCreate(t, raw, "/v/b/child", nil, nil)
	c := connect(t, z.Addr, Options{Conns: 2})
	// Children are visited in name order: when /v/a is about to be read, /v/b is listed but
	// not read yet, and deleting it makes it vanish mid-walk.
	got, stats, err := collect(t, c, WalkOptions{Skip: func(p string) bool {
		if p == "/v/a" {
			if err := raw.Delete("/v/b/child", -1); err != nil {
				t.Error(err)
			}
			if err := raw.Delete("/v/b", -1); err != nil {
				t.Error(err)
			}
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Vanished != 1 {
		t.Errorf("Vanished = %d, want 1", stats.Vanished)
	}
	if _, ok := got["/v/b"]; ok {
		t.Error("/v/b emitted")
	}
	if _, ok := got["/v/c"]; !ok {
		t.Error("/v/c not emitted")
	}
}

func TestWalkStopsOnEmitErrorAndCancel(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/n", nil, nil)
	for i := range 200 {
		mustCreate(t, raw, fmt.Sprintf("/n/%d", i), nil, nil)
	}
	c := connect(t, z.Addr, Options{Conns: 2})

	boom := errors.New("boom")
	calls := 0
	_, err := c.Walk(context.Background(), WalkOptions{}, func(znode.Record) error {
		calls++
		if calls == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 10 {
		t.Errorf("err = %v after %d calls, want boom after 10", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	_, err = c.Walk(ctx, WalkOptions{}, func(znode.Record) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 10 {
		t.Errorf("err = %v after %d calls, want context.Canceled after 10", err, calls)
	}
}

func TestWalkNotAuthorizedNamesPathNotPassword(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/x", []byte("secret data"), zk.DigestACL(zk.PermAll, "u", "right-password"))

	// ZooKeeper accepts any digest password at AddAuth: the wrong one only shows when a
	// znode of that user is read.
	c := connect(t, z.Addr, Options{Auth: "digest:u:wrong-password", Conns: 2})
	_, _, err := collect(t, c, WalkOptions{})
	if err == nil || err.Error() != "read /x: not authorized (set zookeeper.auth)" {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("err does not wrap zk.ErrNoAuth")
	}
	assertNoSecret(t, err, "wrong-password")

	c = connect(t, z.Addr, Options{Auth: "digest:u:right-password", Conns: 2})
	got, _, err := collect(t, c, WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got["/x"].Data) != "secret data" {
		t.Errorf("/x = %q", got["/x"].Data)
	}
}

func TestLastZxidFollowsWrites(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	c := connect(t, z.Addr, Options{Conns: 2})
	ctx := context.Background()

	before, err := c.LastZxid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, raw, "/a", nil, nil)
	st, err := raw.Set("/a", []byte("x"), -1)
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.LastZxid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("LastZxid %d after writes, %d before", after, before)
	}
	if after != st.Mzxid {
		t.Errorf("LastZxid = %d, want the mzxid of the last write %d", after, st.Mzxid)
	}
	// Writes of our own client count as well.
	if _, err := c.CreateOne(ctx, znode.Record{Path: "/b", ACL: []znode.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}}, Mode: znode.ModePersistent}); err != nil {
		t.Fatal(err)
	}
	_, st, err = raw.Exists("/b")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.LastZxid(ctx); err != nil || got != st.Mzxid {
		t.Errorf("LastZxid = %d, %v; want %d", got, err, st.Mzxid)
	}
}

func TestConnectUnreachableFailsFast(t *testing.T) {
	start := time.Now()
	_, err := Connect(context.Background(), Options{Servers: []string{"127.0.0.1:1"}, ConnectTimeout: 2 * time.Second})
	if err == nil || err.Error() != "connect to zookeeper 127.0.0.1:1: no server reachable within 2s" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestConnectAuthErrorsKeepPasswordOut(t *testing.T) {
	for _, auth := range []string{"digest:nopassword-secret", "sasl:user:secret", "digest::secret", "secret"} {
		_, err := Connect(context.Background(), Options{Servers: []string{"127.0.0.1:1"}, Auth: auth})
		if err == nil || !strings.HasPrefix(err.Error(), "zookeeper auth: ") {
			t.Errorf("auth %q: err = %v", auth, err)
		}
		assertNoSecret(t, err, "secret")
	}

	// A server that rejects the credentials: the test network turns the digest scheme into
	// one the server does not know, which it answers with AUTH_FAILED.
	z := testenv.StartZooKeeper(t)
	_, err := Connect(context.Background(), Options{
		Servers: []string{z.Addr}, Auth: "digest:u:hunter2-password", Conns: 2,
		dial: func(network, addr string, timeout time.Duration) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, timeout)
			if err != nil {
				return nil, err
			}
			return schemeMangler{c}, nil
		},
	})
	if err == nil || !strings.HasPrefix(err.Error(), `zookeeper digest auth as user "u" failed: `) || !errors.Is(err, zk.ErrAuthFailed) {
		t.Fatalf("err = %v", err)
	}
	assertNoSecret(t, err, "hunter2")
}

// schemeMangler rewrites the scheme of outgoing SetAuth requests ("digest" to "digesX").
type schemeMangler struct{ net.Conn }

func (m schemeMangler) Write(p []byte) (int, error) {
	scheme := []byte("\x00\x00\x00\x06digest")
	if bytes.Contains(p, scheme) {
		p = bytes.ReplaceAll(p, scheme, []byte("\x00\x00\x00\x06digesX"))
	}
	return m.Conn.Write(p)
}

func TestSessionExpiryFailsOperations(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	raw := rawConn(t, z.Addr)
	mustCreate(t, raw, "/s", nil, nil)
	for i := range 50 {
		mustCreate(t, raw, fmt.Sprintf("/s/%d", i), nil, nil)
	}

	t.Run("idle client learns on reconnect", func(t *testing.T) {
		network := &cutDialer{}
		// The server's minimum session timeout is 1s.
		c := connect(t, z.Addr, Options{Conns: 2, SessionTimeout: time.Second, dial: network.dial})
		network.setCut(true)
		time.Sleep(3 * time.Second) // the server expires the session meanwhile
		network.setCut(false)
		deadline := time.Now().Add(10 * time.Second)
		for !c.expired.Load() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !c.expired.Load() {
			t.Fatal("expiry not seen after reconnecting")
		}
		if _, err := c.LastZxid(context.Background()); !errors.Is(err, ErrSessionExpired) {
			t.Errorf("LastZxid after expiry: %v", err)
		}
		if _, err := c.Walk(context.Background(), WalkOptions{}, func(znode.Record) error { return nil }); !errors.Is(err, ErrSessionExpired) {
			t.Errorf("Walk after expiry: %v", err)
		}
		if _, err := c.CreateOne(context.Background(), rec("/after", nil, 0)); !errors.Is(err, ErrSessionExpired) {
			t.Errorf("CreateOne after expiry: %v", err)
		}
	})

	t.Run("walk in flight fails", func(t *testing.T) {
		network := &cutDialer{}
		c := connect(t, z.Addr, Options{Conns: 2, SessionTimeout: time.Second, dial: network.dial})
		// Cut the network in the middle of a walk for longer than the session timeout: the
		// reads in flight fail with the expiry, whether the client learns it from the server
		// or by being cut off for longer than the session timeout.
		cuts := 0
		_, err := c.Walk(context.Background(), WalkOptions{InFlight: 4, Skip: func(p string) bool {
			if p == "/s/20" {
				cuts++
				network.setCut(true)
				time.AfterFunc(3*time.Second, func() { network.setCut(false) })
			}
			return false
		}}, func(znode.Record) error { return nil })
		if !errors.Is(err, ErrSessionExpired) || cuts != 1 {
			t.Fatalf("walk: err = %v, want ErrSessionExpired", err)
		}
		if !strings.HasPrefix(err.Error(), "read /s/") {
			t.Errorf("error does not name the znode: %v", err)
		}
	})
}

func TestFrameScannerAnyChunking(t *testing.T) {
	// A handshake frame, then three replies with zxids 7, 3 and 9, the last one large.
	var stream []byte
	frame := func(body []byte) {
		stream = append(stream, byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		stream = append(stream, body...)
	}
	reply := func(xid int32, zxid int64, extra int) []byte {
		b := make([]byte, 16+extra)
		for i := range 4 {
			b[i] = byte(uint32(xid) >> (24 - 8*i))
		}
		for i := range 8 {
			b[4+i] = byte(uint64(zxid) >> (56 - 8*i))
		}
		return b
	}
	frame(bytes.Repeat([]byte{0xff}, 36)) // connect response: no header, must be ignored
	frame(reply(1, 7, 3))
	frame(reply(-1, -1, 0))
	frame(reply(2, 3, 0))
	frame(reply(3, 9, 5000))
	for _, chunk := range []int{1, 2, 3, 5, 13, 4096, len(stream)} {
		c := &Client{}
		tc := &trackedConn{c: c, in: frameScanner{handshake: true}}
		var seen []int64
		for b := stream; len(b) > 0; {
			n := min(chunk, len(b))
			tc.in.scan(b[:n], func(pre []byte) int {
				if len(pre) < 12 {
					return 12
				}
				seen = append(seen, int64(pre[11]))
				return tc.inboundPrefix(pre)
			})
			b = b[n:]
		}
		if fmt.Sprint(seen) != "[7 255 3 9]" || c.zxid.Load() != 9 {
			t.Errorf("chunk %d: zxids %v, max %d", chunk, seen, c.zxid.Load())
		}
	}
}

func TestByteBudgetBlocksUntilReleased(t *testing.T) {
	b := newByteBudget(100)
	if got := b.acquire(60); got != 60 {
		t.Fatalf("acquire(60) = %d", got)
	}
	// More than the whole budget is clamped to it, and waits for everything to be free.
	got := make(chan int64)
	go func() { got <- b.acquire(1000) }()
	select {
	case n := <-got:
		t.Fatalf("acquire(1000) returned %d while 60 of 100 were taken", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	if n := <-got; n != 100 {
		t.Errorf("acquire(1000) = %d, want the whole budget", n)
	}
	go func() { got <- b.acquire(1) }()
	b.close()
	if n := <-got; n != -1 {
		t.Errorf("acquire after close = %d, want -1", n)
	}
}
