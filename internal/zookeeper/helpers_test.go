package zookeeper

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

const superAuth = "digest:super:" + testenv.SuperPassword

// rawConn is a plain go-zookeeper session for setting up fixtures, as super user.
func rawConn(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(10 * time.Second)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			t.Fatalf("no session with %s", addr)
		}
	}
	if err := conn.AddAuth("digest", []byte("super:"+testenv.SuperPassword)); err != nil {
		t.Fatal(err)
	}
	return conn
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// connect opens a Client on z; auth "" means the super user.
func connect(t testing.TB, addr string, opts Options) *Client {
	t.Helper()
	opts.Servers = []string{addr}
	if opts.Auth == "" {
		opts.Auth = superAuth
	} else if opts.Auth == "none" {
		opts.Auth = ""
	}
	c, err := Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func mustCreate(t testing.TB, conn *zk.Conn, path string, data []byte, acl []zk.ACL) {
	t.Helper()
	if acl == nil {
		acl = zk.WorldACL(zk.PermAll)
	}
	if _, err := conn.Create(path, data, zk.FlagPersistent, acl); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// collect walks and returns the records by path, failing on a duplicate or a child emitted
// before its parent.
func collect(t testing.TB, c *Client, opts WalkOptions) (map[string]znode.Record, WalkStats, error) {
	t.Helper()
	got := map[string]znode.Record{}
	root := opts.Root
	if root == "" {
		root = "/"
	}
	stats, err := c.Walk(context.Background(), opts, func(r znode.Record) error {
		if _, dup := got[r.Path]; dup {
			t.Errorf("%s emitted twice", r.Path)
		}
		if r.Path != root {
			if _, ok := got[znode.Parent(r.Path)]; !ok {
				t.Errorf("%s emitted before its parent", r.Path)
			}
		}
		got[r.Path] = r
		return nil
	})
	return got, stats, err
}

// cutDialer is a network that tests can cut: open connections are closed and new ones
// refused until healed.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("network cut by test")
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) setCut(cut bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = cut
	if cut {
		for _, c := range d.conns {
			c.Close()
		}
		d.conns = nil
	}
}

func assertNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the password: %v", err)
	}
}
