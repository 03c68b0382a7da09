package testenv

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
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

func TestMinIOBucketAndTemporal(t *testing.T) {
	m := StartMinIO(t)
	m.MakeBucket("probe")
	out, err := m.S3Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 1 || *out.Buckets[0].Name != "probe" {
		t.Fatalf("buckets = %+v, %v", out, err)
	}
	tp := StartTemporal(t, temporal.NewSearchAttributeKeyKeyword("ProbeAttr"))
	c := tp.Client(t)
	if _, err := c.CheckHealth(context.Background(), &client.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
}
