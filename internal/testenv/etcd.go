package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Etcd is one single-member etcd server.
type Etcd struct {
	// Endpoint is http://127.0.0.1:port for clients.
	Endpoint string
	Dir      string
	t        testing.TB
	bin      string
	args     []string
	proc     *process
}

// etcdBinary is Debian's etcd-server (`make deps` installs it); ETCD_BIN overrides it.
func etcdBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ETCD_BIN"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("ETCD_BIN=%s is not an executable file", p)
		}
		return p
	}
	const deb = "/usr/bin/etcd"
	if !isExecutable(deb) {
		t.Fatalf("etcd not found at %s (install the Debian package etcd-server: `make deps`, or set ETCD_BIN)", deb)
	}
	return deb
}

// StartEtcd starts a fresh single-member etcd on free loopback ports with its own data
// directory; it is stopped and its data removed when the test ends. The server keeps its
// default request limits (128 operations per transaction, 1.5 MiB per request), which the
// code under test must respect.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{Dir: t.TempDir(), t: t, bin: etcdBinary(t)}
	client, peer := FreePort(t), FreePort(t)
	e.Endpoint = "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	e.args = []string{
		"--name", "test",
		"--data-dir", filepath.Join(e.Dir, "data"),
		"--listen-client-urls", e.Endpoint,
		"--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test=" + peerURL,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-level", "warn",
	}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

func (e *Etcd) start() {
	e.t.Helper()
	p, err := startProcess("etcd", nil, e.bin, e.args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.proc = p
	if err := waitHTTP(e.Endpoint+"/health", 30*time.Second, p.exited); err != nil {
		p.stop()
		e.t.Fatalf("etcd: %v\n%s", err, p.out.String())
	}
}

// Stop stops the server; its data directory stays until the test ends.
func (e *Etcd) Stop() { e.proc.stop() }

// Restart starts the server again on the same ports with the same data.
func (e *Etcd) Restart() { e.Stop(); e.start() }
