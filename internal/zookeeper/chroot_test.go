package zookeeper

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// A client under a chroot reads and writes only there, with paths relative to it, as
// ZooKeeper's own chroot does: a tree written under /a through one client is walked back
// from /b's point of view after a move, with the same relative paths.
func TestChrootRelativePaths(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	ctx := context.Background()
	plain := connect(t, z.Addr, Options{Conns: 1})
	for _, p := range []string{"/a", "/b", "/a-sibling"} {
		if _, err := plain.CreateOne(ctx, rec(p, nil, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.CreateOne(ctx, rec("/a-sibling/x", []byte("outside"), 0)); err != nil {
		t.Fatal(err)
	}

	a := connect(t, z.Addr, Options{Conns: 2, Root: "/a"})
	recs := fixtureTree()
	guard := rec("/guard", nil, 0)
	if _, err := a.CreateOne(ctx, guard); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, a, CreatorOptions{BatchOps: 17, InFlight: 4, Guard: &Guard{Path: "/guard", Version: 0}}, recs); err != nil {
		t.Fatal(err)
	}
	// The server holds them under /a; nothing leaked to the top level.
	if _, found, err := plain.ReadZnode(ctx, "/a"+recs[0].Path); err != nil || !found {
		t.Fatalf("%s not under /a: %v", recs[0].Path, err)
	}
	if _, found, _ := plain.ReadZnode(ctx, recs[0].Path); found {
		t.Fatalf("%s written at the top level", recs[0].Path)
	}

	var walked []string
	if _, err := a.Walk(ctx, WalkOptions{}, func(r znode.Record) error {
		walked = append(walked, r.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if walked[0] != "/" || len(walked) != len(recs)+2 {
		t.Fatalf("walk under /a gave %d paths starting %q, want / and %d more", len(walked), walked[0], len(recs)+1)
	}
	for _, p := range walked {
		if strings.HasPrefix(p, "/a/") || strings.Contains(p, "outside") {
			t.Fatalf("walk under /a emitted %q", p)
		}
	}
	top := 1 // /guard
	for _, r := range recs {
		if znode.Parent(r.Path) == "/" {
			top++
		}
	}
	if got, found, err := a.ListChildren(ctx, "/"); err != nil || !found || len(got) != top {
		t.Fatalf("children of / under /a: %v %v %v", got, found, err)
	}
	if v, err := a.SetZnodeData(ctx, "/guard", []byte("x"), 0); err != nil || v != 1 {
		t.Fatalf("set under /a: %d %v", v, err)
	}
	if st, err := a.DeleteZnodes(ctx, []string{"/guard"}); err != nil || st.Deleted != 1 {
		t.Fatalf("delete under /a: %+v %v", st, err)
	}
	if _, found, _ := plain.ReadZnode(ctx, "/a/guard"); found {
		t.Fatal("/a/guard still there")
	}
	if _, err := a.LastZxid(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestChrootMissingIsNamed(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	_, err := Connect(context.Background(), Options{Servers: []string{z.Addr}, Root: "/nope/pulsar"})
	if !errors.Is(err, ErrChrootMissing) || !strings.Contains(err.Error(), "chroot /nope/pulsar does not exist on zookeeper "+z.Addr) {
		t.Fatalf("err = %v", err)
	}
	_, err = Connect(context.Background(), Options{Servers: []string{z.Addr}, Root: "/bad//x"})
	if err == nil || errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("invalid chroot: err = %v", err)
	}
}
