package backupdiff_test

// The diff's peak memory on two real archives: a Pulsar tree of ZK_BENCH_ZNODES znodes
// (default 100,000) is written into a real ZooKeeper, backed up with the backup's own walk
// and archive writer, changed, and backed up again; then the built `starter diff` runs as a
// subprocess, and its peak RSS is the kernel's (rusage maxrss of the child). The child is
// started by a small launcher process (this test binary, see TestMain), not by the
// benchmark itself: Linux counts in a child's maxrss the peak RSS of the process that
// exec'd it (exec records the old address space's high-water mark, and Go execs from a
// vfork sharing the parent's), which here is the benchmark holding the tree's summary:
//
//	go test ./internal/backupdiff -run '^$' -bench DiffPeakRSS -benchtime 3x -v
//
// It fails above maxPeakRSSMB.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/zookeeper"
)

const maxPeakRSSMB = 150

// launchEnv, when set, makes this test binary a launcher: it runs the newline-separated command
// line in it, output discarded, and prints the child's maxrss in kB.
const launchEnv = "BACKUPDIFF_BENCH_LAUNCH"

func TestMain(m *testing.M) {
	if args := os.Getenv(launchEnv); args != "" {
		os.Exit(launch(strings.Split(args, "\n")))
	}
	os.Exit(m.Run())
}

func launch(args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, launchEnv+"=") })
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // kB on Linux
	return 0
}

// dump backs the tree at addr up into dir/name as the backup's dump and compress stages do:
// the walk into a stream file, then the stream packed with its manifest. It returns how
// many records come after one whose path sorts above theirs (segment order), which says
// whether archive order could drive a merge join.
func dump(b *testing.B, addr, dir, name string) (path string, znodes, outOfOrder int64) {
	b.Helper()
	c, err := zookeeper.Connect(context.Background(), zookeeper.Options{Servers: []string{addr}, Auth: restoretest.Auth, Conns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	streamPath := filepath.Join(dir, name+".jsonl")
	f, err := os.Create(streamPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sw := archive.NewStreamWriter(f)
	var last string
	stats, err := c.Walk(context.Background(), zookeeper.WalkOptions{}, func(r znode.Record) error {
		if last != "" && pathLess(r.Path, last) {
			outOfOrder++
		}
		last = r.Path
		return sw.Write(r)
	})
	if err == nil {
		err = sw.Flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	m := archive.Manifest{
		ToolVersion: "bench", Source: []string{addr}, ManagedLedgerPath: "/managed-ledgers",
		StartTime: time.Now().UTC(), EndTime: time.Now().UTC(), ZxidStart: "0x1", ZxidEnd: "0x1", MaxZxid: archive.Zxid(stats.MaxZxid),
		Counts: result.Counts{Znodes: sw.Count(), EphemeralSkipped: stats.EphemeralSkipped, DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	path = filepath.Join(dir, name+".tar.gz")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	if _, err := archive.WriteV1(w, m, bufio.NewReader(f), m.StreamBytes); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return path, sw.Count(), outOfOrder
}

// pathLess is segment order, written here independently of the package's comparePaths.
func pathLess(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// change makes n changes of each kind in the tree: namespaces' policies rewritten, topics
// deleted with their cursors, new znodes.
func change(b *testing.B, addr string, sum pulsartree.Summary, n int) {
	b.Helper()
	c := testenv.SuperConn(b, addr)
	defer c.Close()
	for i := 0; i < n && i < len(sum.Topics); i++ {
		tp := sum.Topics[len(sum.Topics)-1-i]
		for _, cu := range tp.Cursors {
			if err := c.Delete(cu.Path, -1); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Delete(tp.Path, -1); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Create(fmt.Sprintf("/bench-added-%06d", i), []byte("new"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		ns := "/admin/policies/" + strings.Join(strings.Split(strings.TrimPrefix(tp.Name, "persistent://"), "/")[:2], "/")
		if _, err := c.Set(ns, []byte(fmt.Sprintf(`{"changed":%d}`, i)), -1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiffPeakRSS(b *testing.B) {
	n := testenv.EnvInt(b, "ZK_BENCH_ZNODES", 100_000)
	z := testenv.StartZooKeeper(b)
	start := time.Now()
	_, sum := restoretest.Populate(b, z.Addr, pulsartree.Sized(n))
	b.Logf("populated a %d-znode Pulsar tree in %s", sum.Persistent+sum.Ephemeral, time.Since(start).Round(time.Millisecond))
	dir := b.TempDir()
	from, fromZnodes, fromDisorder := dump(b, z.Addr, dir, "from")
	change(b, z.Addr, sum, 1000)
	to, toZnodes, toDisorder := dump(b, z.Addr, dir, "to")
	b.Logf("archives of %d and %d znodes; records following a path that sorts after theirs: %d and %d (archive order is not path order)",
		fromZnodes, toZnodes, fromDisorder, toDisorder)

	starter := filepath.Join(dir, "starter")
	if out, err := exec.Command("go", "build", "-o", starter, "github.com/pulsar-metadata-backup/pulsar-metadata-backup/starter").CombinedOutput(); err != nil {
		b.Fatalf("build starter: %v\n%s", err, out)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		b.Fatal(err)
	}
	var peak, took float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp,
			launchEnv+"="+strings.Join([]string{starter, "diff", "--json", "file://" + from, "file://" + to}, "\n"))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("starter diff: %v: %s", err, stderr.String())
		}
		took = time.Since(t0).Seconds()
		kb, err := strconv.ParseInt(strings.TrimSpace(stdout.String()), 10, 64)
		if err != nil {
			b.Fatalf("launcher printed %q: %v", stdout.String(), err)
		}
		rss := float64(kb) / 1024
		peak = max(peak, rss)
		b.Logf("starter diff of %d and %d znodes: %.1f s, peak RSS %.0f MB", fromZnodes, toZnodes, took, rss)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		b.Errorf("the diff left %d temporary files", len(left))
	}
	b.ReportMetric(peak, "peak_rss_MB")
	b.ReportMetric(float64(fromZnodes+toZnodes)/took, "znodes/s")
	if peak > maxPeakRSSMB {
		b.Fatalf("the diff's peak RSS is %.0f MB, over %d MB", peak, maxPeakRSSMB)
	}
}
