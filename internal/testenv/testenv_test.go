package testenv

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestZooKeeperStartsAndAcceptsSuper(t *testing.T) {
	z := StartZooKeeper(t)
	c, _, err := zk.Connect([]string{z.Addr}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AddAuth("digest", []byte("super:"+SuperPassword)); err != nil {
		t.Fatalf("%v\n%s", err, z.proc.out.String())
	}
	if _, err := c.Create("/locked", nil, 0, zk.DigestACL(zk.PermAll, "u", "p")); err != nil {
		t.Fatal(err)
	}
	// Only the super user can read a node locked to another digest user.
	if _, _, err := c.Get("/locked"); err != nil {
		t.Fatalf("super cannot read: %v", err)
	}
	if _, err := c.CreateTTL("/ttl", nil, zk.FlagTTL, zk.WorldACL(zk.PermAll), time.Hour); err != nil {
		t.Fatalf("TTL nodes not enabled: %v", err)
	}
}
