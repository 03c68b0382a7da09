// Package testenv starts real servers for integration tests: ZooKeeper from the Debian
// package, MinIO and the Temporal CLI dev server, each on free loopback ports with its own
// data directory, stopped when the test ends.
//
// A missing binary fails the test with the command that installs it (`make deps`); it never
// skips, so CI cannot go green without having run the integration tests.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// findBinary is the repo's bin/<name>, the version the Makefile pins and `make deps`
// installs; the environment variable envVar overrides it explicitly. Whatever else is on
// PATH is never taken: tests run against the pinned servers.
func findBinary(t testing.TB, envVar, name string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", envVar, p, err)
		}
		return p
	}
	if p := filepath.Join(RepoRoot(), "bin", name); isExecutable(p) {
		return p
	}
	t.Fatalf("%s not found in %s (run `make deps` to install the pinned version, or set %s)", name, filepath.Join(RepoRoot(), "bin"), envVar)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// waitFor calls probe until it succeeds, the process exits (exited may be nil) or timeout
// passes; what names the awaited state in the error.
func waitFor(what string, timeout, every time.Duration, exited <-chan struct{}, probe func() error) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("process exited before %s", what)
		default:
		}
		if probe() == nil {
			return nil
		}
		time.Sleep(every)
	}
	return fmt.Errorf("not %s within %s", what, timeout)
}

// waitTCP waits until addr accepts connections or the process exits.
func waitTCP(addr string, timeout time.Duration, exited <-chan struct{}) error {
	return waitFor(addr+" accepted connections", timeout, 50*time.Millisecond, exited, func() error {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// process is a server child process whose output is kept for failure reports.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProcess(name string, env []string, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group, so stopping kills the JVM that zkServer.sh execs too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *process) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// kill stops the process abruptly, as a crash would.
func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// ZooKeeper is one standalone ZooKeeper server.
type ZooKeeper struct {
	// Addr is host:port for clients.
	Addr string
	Dir  string
	t    testing.TB
	proc *process
	home string
}

// SuperPassword is the password of the "super" user every test ZooKeeper accepts, so tests can
// read and clean up digest-protected znodes: AddAuth("digest", "super:"+SuperPassword).
const SuperPassword = "test-super"

// SuperConn connects to the ZooKeeper at addr as the super user; the caller closes it.
func SuperConn(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.AddAuth("digest", []byte("super:"+SuperPassword)); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn
}

// superDigest is base64(sha1("super:test-super")), as DigestAuthenticationProvider wants it.
const superDigest = "super:1imG2rmgUC6oSJls76wzSKMnT10="

// StartZooKeeper starts a fresh standalone ZooKeeper with TTL nodes enabled and a super user;
// it is stopped and its data removed when the test ends.
func StartZooKeeper(t testing.TB) *ZooKeeper {
	t.Helper()
	home := os.Getenv("ZOOKEEPER_HOME")
	if home == "" {
		home = "/usr/share/zookeeper"
	}
	if !isExecutable(filepath.Join(home, "bin", "zkServer.sh")) {
		t.Fatalf("ZooKeeper not found at %s/bin/zkServer.sh (install the Debian package: `make deps`, or set ZOOKEEPER_HOME)", home)
	}
	dir := t.TempDir()
	z := &ZooKeeper{Dir: dir, t: t, home: home}
	port := FreePort(t)
	z.Addr = "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s/data
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
extendedTypesEnabled=true
emulate353TTLNodes=false
minSessionTimeout=1000
maxSessionTimeout=60000
`, dir, port)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	z.start()
	t.Cleanup(z.Stop)
	return z
}

func (z *ZooKeeper) start() {
	z.t.Helper()
	env := []string{
		"ZOOCFGDIR=" + z.Dir,
		"ZOO_LOG_DIR=" + z.Dir,
		"ZOO_LOG4J_PROP=WARN,CONSOLE",
		"JVMFLAGS=" + jvmFlags() + " -XX:HeapDumpPath=" + z.Dir + " -Dzookeeper.DigestAuthenticationProvider.superDigest=" + superDigest,
	}
	p, err := startProcess("zookeeper", env, filepath.Join(z.home, "bin", "zkServer.sh"), "start-foreground", filepath.Join(z.Dir, "zoo.cfg"))
	if err != nil {
		z.t.Fatal(err)
	}
	z.proc = p
	if err := waitTCP(z.Addr, 60*time.Second, p.exited); err != nil {
		p.stop()
		z.t.Fatalf("zookeeper: %v\n%s", err, p.out.String())
	}
	if err := waitZKServing(z.Addr, 30*time.Second); err != nil {
		p.stop()
		z.t.Fatalf("zookeeper: %v\n%s", err, p.out.String())
	}
}

// waitZKServing waits until a client session can be established: "ruok" answers before the
// server accepts sessions, and a request sent in that gap fails with ErrNoServer.
func waitZKServing(addr string, timeout time.Duration) error {
	return waitFor(addr+" serving sessions", timeout, 100*time.Millisecond, nil, func() error {
		c, events, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
		if err != nil {
			return err
		}
		defer c.Close()
		timer := time.After(2 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.State == zk.StateHasSession {
					return nil
				}
			case <-timer:
				return errors.New("no session")
			}
		}
	})
}

// Stop stops the server; its data directory stays until the test ends.
func (z *ZooKeeper) Stop() { z.proc.stop() }

// Restart starts the server again on the same port with the same data.
func (z *ZooKeeper) Restart() { z.Stop(); z.start() }

// MinIO is one MinIO server.
type MinIO struct {
	// Endpoint is http://127.0.0.1:port.
	Endpoint  string
	AccessKey string
	SecretKey string
	Dir       string
	// KMSKey is the name of the built-in KMS key (WithKMSKey), "" without one.
	KMSKey    string
	kmsSecret string
	t         testing.TB
	bin       string
	port      int
	proc      *process
}

// MinIOOption changes how StartMinIO starts the server.
type MinIOOption func(*MinIO)

// WithKMSKey starts MinIO with its built-in KMS: one static key called name, random for this
// server, given as MINIO_KMS_SECRET_KEY=<name>:<base64 of 32 bytes>. Uploads may then ask
// for server-side encryption: SSE-S3 (AES256) and SSE-KMS with this key (or no key ID).
func WithKMSKey(name string) MinIOOption {
	return func(m *MinIO) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			m.t.Fatal(err)
		}
		m.KMSKey, m.kmsSecret = name, name+":"+base64.StdEncoding.EncodeToString(key)
	}
}

// StartMinIO starts MinIO with fresh storage and random root credentials.
func StartMinIO(t testing.TB, opts ...MinIOOption) *MinIO {
	t.Helper()
	m := &MinIO{
		Dir:       t.TempDir(),
		AccessKey: "testaccess" + strconv.Itoa(os.Getpid()),
		SecretKey: fmt.Sprintf("testsecret-%d-%d", os.Getpid(), time.Now().UnixNano()),
		t:         t,
		bin:       findBinary(t, "MINIO_BIN", "minio"),
		port:      FreePort(t),
	}
	m.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", m.port)
	for _, o := range opts {
		o(m)
	}
	m.start()
	t.Cleanup(m.Stop)
	return m
}

func (m *MinIO) start() {
	m.t.Helper()
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	}
	if m.kmsSecret != "" {
		env = append(env, "MINIO_KMS_SECRET_KEY="+m.kmsSecret)
	}
	console := FreePort(m.t)
	p, err := startProcess("minio", env, m.bin, "server", "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", m.port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console),
		filepath.Join(m.Dir, "data"))
	if err != nil {
		m.t.Fatal(err)
	}
	m.proc = p
	if err := waitHTTP(m.Endpoint+"/minio/health/ready", 60*time.Second, p.exited); err != nil {
		p.stop()
		m.t.Fatalf("minio: %v\n%s", err, p.out.String())
	}
	// Ready is not yet serving: on a loaded machine, S3 calls just after it may still get
	// "Server not initialized yet" (503). Wait until one is answered.
	client := newS3Client(m.Endpoint, m.AccessKey, m.SecretKey)
	if err := waitFor("minio answering S3 calls", 60*time.Second, 100*time.Millisecond, p.exited, func() error {
		_, err := client.ListBuckets(context.Background(), &s3.ListBucketsInput{})
		return err
	}); err != nil {
		p.stop()
		m.t.Fatalf("minio: %v\n%s", err, p.out.String())
	}
}

// Stop stops MinIO; its data stays until the test ends, so Restart brings the objects back.
func (m *MinIO) Stop() { m.proc.stop() }

// Kill stops MinIO abruptly, as an outage would.
func (m *MinIO) Kill() { m.proc.kill() }

// Restart starts MinIO again on the same port with the same data.
func (m *MinIO) Restart() { m.Stop(); m.start() }

// MakeBucket creates a bucket by creating its directory under MinIO's data dir is not safe;
// so it goes through the S3 API with the root credentials.
func (m *MinIO) MakeBucket(name string) {
	m.t.Helper()
	if err := makeBucket(context.Background(), m.Endpoint, m.AccessKey, m.SecretKey, name); err != nil {
		m.t.Fatalf("make bucket %s: %v", name, err)
	}
}

// SetEnv points the AWS SDK's default chain at this server's root credentials for the rest
// of the test (not with t.Parallel).
func (m *MinIO) SetEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(m.Dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(m.Dir, "no-aws-credentials"))
}

// jvmFlags tunes the ZooKeeper JVM. Tests start many short-lived servers, so by default the
// JIT stops at C1 and the GC is serial: faster start, slower sustained throughput.
// Benchmarks set TESTENV_ZK_JVMFLAGS="-Xmx2g" (the JVM's own defaults) to measure the
// server as it runs in production.
func jvmFlags() string {
	if f := os.Getenv("TESTENV_ZK_JVMFLAGS"); f != "" {
		return f
	}
	return "-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
}

// EnvInt reads a positive integer setting of a benchmark from the environment.
func EnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// Helm is the pinned helm CLI in bin/ (`make deps` installs it; HELM_BIN overrides).
func Helm(t testing.TB) string {
	t.Helper()
	return findBinary(t, "HELM_BIN", "helm")
}

// Promtool is Prometheus's promtool, from Debian's prometheus package, which `make deps`
// installs and links into bin/ (PROMTOOL_BIN overrides).
func Promtool(t testing.TB) string {
	t.Helper()
	return findBinary(t, "PROMTOOL_BIN", "promtool")
}
