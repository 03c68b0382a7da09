// Command devseed prepares the `make dev` stack: it creates the backup bucket in MinIO and
// seeds ZooKeeper with a small demo Pulsar metadata tree, then stays up holding the session
// that owns the tree's ephemeral znodes (a live "broker"), until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/storage"
)

func main() {
	configPath := flag.String("config", "", "config file (YAML)")
	znodes := flag.Int("znodes", 2000, "approximate size of the demo tree")
	flag.Parse()
	if err := run(*configPath, *znodes); err != nil {
		fmt.Fprintln(os.Stderr, "devseed:", err)
		os.Exit(1)
	}
}

func run(configPath string, znodes int) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := createBucket(ctx, cfg); err != nil {
		return err
	}
	servers, err := cfg.ZooKeeper.ServerList()
	if err != nil {
		return err
	}
	conn, _, err := zk.Connect(servers, 30*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return fmt.Errorf("connect to zookeeper: %w", err)
	}
	defer conn.Close()
	seeded, _, err := conn.Exists("/admin")
	if err != nil {
		return fmt.Errorf("zookeeper %s: %w", cfg.ZooKeeper.Servers, err)
	}
	if seeded {
		// A tree from an earlier run: only the live broker's ephemeral znode is missing.
		if _, err := conn.Create("/loadbalance/brokers/127.0.0.1:8080", []byte(`{"webServiceUrl":"http://127.0.0.1:8080"}`), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("register demo broker: %w", err)
		}
		fmt.Println("seeded (tree from an earlier run kept; demo broker registered)")
	} else {
		opts := pulsartree.Sized(znodes)
		opts.Brokers = 1
		sum, err := pulsartree.Populate(ctx, conn, opts)
		if err != nil {
			return fmt.Errorf("seed demo tree: %w", err)
		}
		fmt.Printf("seeded %d persistent and %d ephemeral znodes (%d topics)\n", sum.Persistent, sum.Ephemeral, len(sum.Topics))
	}
	if z, separate := cfg.ConfigStore(); separate {
		n, err := seedConfigStore(conn, z)
		if err != nil {
			return err
		}
		fmt.Printf("seeded the configuration store %s with %d znodes\n", z.Servers, n)
	}
	<-ctx.Done()
	return nil
}

// configSubtrees are what Pulsar keeps in a configuration store apart (ClusterResources,
// TenantResources, NamespaceResources and its partitioned topics).
var configSubtrees = []string{"/admin/clusters", "/admin/policies", "/admin/partitioned-topics"}

// seedConfigStore copies the demo tree's configuration subtrees into the configuration
// store (at the top of it, or of its chroot, created if missing) unless it holds them.
// The local store keeps its copy: a demo, not a migration.
func seedConfigStore(local *zk.Conn, z config.ZooKeeper) (int, error) {
	u, err := z.URL()
	if err != nil {
		return 0, err
	}
	conn, _, err := zk.Connect(u.Servers, 30*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return 0, fmt.Errorf("connect to the configuration store: %w", err)
	}
	defer conn.Close()
	open := zk.WorldACL(zk.PermAll)
	mk := func(p string, data []byte, acl []zk.ACL) error {
		if _, err := conn.Create(p, data, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("configuration store: create %s: %w", p, err)
		}
		return nil
	}
	root := ""
	if u.Root != "" {
		for _, seg := range strings.Split(u.Root[1:], "/") {
			root += "/" + seg
			if err := mk(root, nil, open); err != nil {
				return 0, err
			}
		}
	}
	if ok, _, err := conn.Exists(root + "/admin/clusters"); err != nil || ok {
		return 0, err
	}
	if err := mk(root+"/admin", nil, open); err != nil {
		return 0, err
	}
	n := 0
	var copyTree func(p string) error
	copyTree = func(p string) error {
		data, _, err := local.Get(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		acl, _, err := local.GetACL(p)
		if err != nil {
			return fmt.Errorf("read ACL of %s: %w", p, err)
		}
		if err := mk(root+p, data, acl); err != nil {
			return err
		}
		n++
		children, _, err := local.Children(p)
		if err != nil {
			return fmt.Errorf("list %s: %w", p, err)
		}
		for _, c := range children {
			if err := copyTree(p + "/" + c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range configSubtrees {
		if ok, _, err := local.Exists(p); err != nil || !ok {
			continue
		}
		if err := copyTree(p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// createBucket makes backup.bucket in the configured S3 endpoint if it is missing.
func createBucket(ctx context.Context, cfg config.Config) error {
	loc, err := storage.ParseURL(cfg.Backup.Bucket)
	if err != nil || loc.Scheme == "file" {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.S3.Region))
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.S3.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.S3.Endpoint)
		}
		o.UsePathStyle = cfg.S3.ForcePathStyle
	})
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(loc.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("create bucket %s: %w", loc.Bucket, err)
	}
	return nil
}
