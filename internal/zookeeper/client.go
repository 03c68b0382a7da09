// Package zookeeper talks to the ZooKeeper ensemble of a Pulsar cluster: it connects a small
// pool of sessions with digest auth, walks the whole tree with many requests in flight and
// streams it as znode.Records (backup), and creates znodes from Records in batched multi
// requests (restore).
//
// One go-zookeeper connection tops out near 6,000 requests/s, so a Client holds several and
// spreads reads over them. Every operation fails with an error wrapping ErrSessionExpired once
// any session of the pool has expired: a dump or a restore that spans two sessions cannot be
// trusted to be consistent, so the caller retries the whole stage.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/metastore"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// ErrSessionExpired is wrapped by every error of a Client whose session expired, or that could
// not reach any server for longer than the session timeout (after which the server has expired
// the session). The Client stays unusable; close it and start the stage again.
var ErrSessionExpired = errors.New("zookeeper session expired")

// errClientClosed is returned by operations on a closed Client.
var errClientClosed = errors.New("zookeeper client closed")

// Defaults for Options.
const (
	DefaultConns          = 8
	DefaultSessionTimeout = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Options configure Connect.
type Options struct {
	// Servers are host:port pairs of the ensemble (port 2181 when missing).
	Servers []string
	// Root is the chroot ("" for none), as in "zk1:2181/pulsar": every path the Client takes
	// and gives is relative to it, as with ZooKeeper's own chroot. It must exist: Connect
	// fails, naming it, when it does not.
	Root string
	// SessionTimeout is asked of the server, which clamps it to its min/max (default 30s).
	SessionTimeout time.Duration
	// Auth is "" or "digest:user:password". The password is never logged nor put in errors.
	Auth string
	// Conns is the number of sessions in the pool (default 8).
	Conns int
	// ConnectTimeout bounds the wait for every session of the pool (default 10s).
	ConnectTimeout time.Duration
	// Logger receives go-zookeeper's own messages (reconnects and the like) at debug level;
	// nil drops them.
	Logger *slog.Logger

	// dial replaces net.DialTimeout; tests use it to cut the network.
	dial zk.Dialer
}

// Client is a pool of ZooKeeper sessions. Its methods are safe for concurrent use.
type Client struct {
	conns          []*zk.Conn
	servers        string
	root           string
	sessionTimeout time.Duration
	// identity is our digest ACL id ("user:base64(sha1(user:password))"), or "" without auth.
	identity string

	// zxid is the largest zxid seen in any reply header on any connection.
	zxid atomic.Int64

	expired atomic.Bool
	closed  atomic.Bool

	// writes lets the Creator learn that a request for a path was handed to the socket, so it
	// can pipeline ordered requests on one connection (see Creator).
	writesMu sync.Mutex
	writes   map[string]chan struct{}
	watching atomic.Int32
}

// Connect opens the pool and waits until every session is established and authenticated, or
// fails with a one-line error: the ensemble unreachable within ConnectTimeout, or the server
// rejecting the digest credentials. A wrong digest password is not detectable here: ZooKeeper
// accepts any user:password pair and only later denies access to znodes whose ACL names
// another digest, which the walk reports per path.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("connect to zookeeper: no servers given")
	}
	if opts.Conns <= 0 {
		opts.Conns = DefaultConns
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	user, password, err := parseAuth(opts.Auth)
	if err != nil {
		return nil, err
	}
	if opts.Root != "" && (znode.ValidatePath(opts.Root) != nil || opts.Root == "/" || strings.HasSuffix(opts.Root, "/")) {
		return nil, fmt.Errorf("connect to zookeeper: chroot %q is not a valid path", opts.Root)
	}
	c := &Client{
		root:           opts.Root,
		servers:        strings.Join(opts.Servers, ","),
		sessionTimeout: opts.SessionTimeout,
		writes:         make(map[string]chan struct{}),
	}
	if user != "" {
		c.identity = zk.DigestACL(0, user, password)[0].ID
	}
	dial := opts.dial
	if dial == nil {
		dial = net.DialTimeout
	}
	logger := zkLogger{opts.Logger}

	ready := make([]chan struct{}, opts.Conns)
	for i := range ready {
		ch := make(chan struct{})
		ready[i] = ch
		var once sync.Once
		conn, _, err := zk.Connect(opts.Servers, opts.SessionTimeout,
			zk.WithDialer(c.trackingDialer(dial)),
			zk.WithLogger(logger),
			zk.WithLogInfo(false),
			zk.WithEventCallback(func(ev zk.Event) {
				switch ev.State {
				case zk.StateHasSession:
					once.Do(func() { close(ch) })
				case zk.StateExpired:
					c.expired.Store(true)
				}
			}))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("connect to zookeeper %s: %w", c.servers, err)
		}
		c.conns = append(c.conns, conn)
	}

	timer := time.NewTimer(opts.ConnectTimeout)
	defer timer.Stop()
	for _, ch := range ready {
		select {
		case <-ch:
		case <-timer.C:
			c.Close()
			return nil, fmt.Errorf("connect to zookeeper %s: no server reachable within %s", c.servers, opts.ConnectTimeout)
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("connect to zookeeper %s: %w", c.servers, ctx.Err())
		}
	}

	if user != "" {
		// AddAuth is remembered by go-zookeeper and sent again after every reconnect.
		errs := make([]error, len(c.conns))
		var wg sync.WaitGroup
		for i, conn := range c.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = conn.AddAuth("digest", []byte(user+":"+password))
			}()
		}
		wg.Wait()
		// The first error only: they are all alike. None carries the credentials.
		for _, err := range errs {
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("zookeeper digest auth as user %q failed: %w", user, err)
			}
		}
	}
	if c.root != "" {
		var exists bool
		err := c.retry(ctx, func() (err error) {
			exists, _, err = c.conns[0].Exists(c.root)
			return err
		})
		if err == nil && !exists {
			err = fmt.Errorf("chroot %s does not exist on zookeeper %s (%w)", c.root, c.servers, ErrChrootMissing)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// ErrChrootMissing is wrapped when Options.Root names a znode the ensemble does not have.
var ErrChrootMissing = errors.New("chroot missing")

// abs turns a path relative to the root into the server's path.
func (c *Client) abs(p string) string {
	switch {
	case c.root == "":
		return p
	case p == "/":
		return c.root
	default:
		return c.root + p
	}
}

// Root is the chroot the Client works under ("" for none).
func (c *Client) Root() string { return c.root }

// parseAuth splits "digest:user:password". Its errors never echo the value, which holds the
// password.
func parseAuth(auth string) (user, password string, err error) {
	if auth == "" {
		return "", "", nil
	}
	scheme, rest, ok := strings.Cut(auth, ":")
	if !ok {
		return "", "", errors.New(`zookeeper auth: want "digest:user:password"`)
	}
	if scheme != "digest" {
		// Not even the scheme is echoed: a value in the wrong shape may start with a secret.
		return "", "", errors.New(`zookeeper auth: only the digest scheme is supported, want "digest:user:password"`)
	}
	user, password, ok = strings.Cut(rest, ":")
	if !ok || user == "" {
		return "", "", errors.New(`zookeeper auth: want "digest:user:password"`)
	}
	return user, password, nil
}

// Identity is the digest ACL id this client authenticates as ("user:base64(sha1(user:password))"),
// "" without auth.
func (c *Client) Identity() string { return c.identity }

// Close ends every session of the pool. Operations still running fail.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	var wg sync.WaitGroup
	for _, conn := range c.conns {
		wg.Add(1)
		go func() { defer wg.Done(); conn.Close() }()
	}
	wg.Wait()
}

// Err reports whether the Client is still usable: nil, or an error wrapping ErrSessionExpired
// or telling that it was closed.
func (c *Client) Err() error {
	if c.expired.Load() {
		return ErrSessionExpired
	}
	if c.closed.Load() {
		return errClientClosed
	}
	return nil
}

// LastZxid returns the last zxid the server had processed when it answered a sync of "/":
// every change with a smaller or equal zxid is visible to reads issued afterwards. It syncs
// every session of the pool, since in an ensemble they may be connected to different servers.
//
// go-zookeeper has no accessor for reply headers, so the Client reads them off the wire (see
// trackingDialer) and this returns the largest seen once the syncs' replies have arrived.
func (c *Client) LastZxid(ctx context.Context) (int64, error) {
	errs := make([]error, len(c.conns))
	var wg sync.WaitGroup
	for i, conn := range c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.retry(ctx, func() error {
				_, err := conn.Sync(c.abs("/"))
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("sync /: %w", err)
		}
	}
	return c.zxid.Load(), nil
}

// retry runs op until it succeeds, fails for good, or the connection has been gone for longer
// than the session timeout. Connection loss is retried because reads are idempotent and
// writes are made so by the callers (an existing node is compared, not overwritten).
func (c *Client) retry(ctx context.Context, op func() error) error {
	var lostSince time.Time
	backoff := 20 * time.Millisecond
	for {
		if err := c.Err(); err != nil {
			return err
		}
		err := op()
		if err == nil {
			// A reply that raced with the expiry came from a new session: refuse it too.
			return c.Err()
		}
		if errors.Is(err, zk.ErrSessionExpired) {
			c.expired.Store(true)
			return ErrSessionExpired
		}
		if !transient(err) {
			return err
		}
		if c.closed.Load() {
			return errClientClosed
		}
		now := time.Now()
		if lostSince.IsZero() {
			lostSince = now
		} else if now.Sub(lostSince) > c.sessionTimeout {
			c.expired.Store(true)
			return fmt.Errorf("no zookeeper server reachable for %s, the session timeout: %w", c.sessionTimeout, ErrSessionExpired)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// transient errors are those of a lost connection; the session may still be alive.
func transient(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer)
}

// zkLogger routes go-zookeeper's log lines to an optional slog.Logger at debug level. They
// carry server addresses and error texts, never credentials.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	if z.l != nil {
		z.l.Debug("zookeeper: " + fmt.Sprintf(format, args...))
	}
}

var _ metastore.Store = (*Client)(nil)

// Batch is NewCreator as a metastore.Creator.
func (c *Client) Batch(ctx context.Context, opts CreatorOptions) metastore.Creator {
	return c.NewCreator(ctx, opts)
}

// Position is LastZxid: ZooKeeper's point in its history.
func (c *Client) Position(ctx context.Context) (int64, error) { return c.LastZxid(ctx) }

// PointInTime is false: a walk sees each znode at some moment between its start and end
// zxids (see Walk).
func (c *Client) PointInTime() bool { return false }
