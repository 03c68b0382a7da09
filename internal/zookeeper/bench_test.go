package zookeeper

// Benchmarks against a real ZooKeeper (testenv), on a Pulsar-shaped tree they populate with
// a Creator first. One pass takes seconds, so run each once; -v shows a line per pass with
// its rate and the CPU time the client and the server spent per 1,000 znodes:
//
//	go test ./internal/zookeeper -run '^$' -bench 'DumpRatios|Apply$' -benchtime 1x -v
//
// ZK_BENCH_ZNODES sets the tree size (default 100,000), ZK_BENCH_SERIAL how many znodes the
// one-request-at-a-time yardstick reads (default 10,000: it runs near 2,000/s, so it reads the
// first part of the same tree and rates are compared), ZK_BENCH_ONE how many znodes CreateOne
// creates for the apply baseline (default 5,000).

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// pulsarTree yields n records, parents first, shaped like a Pulsar cluster's metadata:
// tenants and namespaces under /admin/policies, managed ledgers with two cursors each under
// /managed-ledgers, a schema per topic under /schemas, and BookKeeper ledgers under
// /ledgers/00/0000. Data is 100-300 protobuf-like bytes (NULs included), the same for a
// given n.
func pulsarTree(n int, yield func(znode.Record) bool) {
	const tenants, namespaces = 20, 10
	// per topic: a managed ledger, 2 cursors, a schema and a BookKeeper ledger
	topics := max(1, (n-600)/(tenants*namespaces*5)+1)
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	data := func(lo, hi int) []byte {
		b := make([]byte, lo+rng.IntN(hi-lo+1))
		for i := 0; i < len(b); i++ {
			// field tags and varints: small bytes, zeros, and the odd high byte
			switch i % 7 {
			case 0:
				b[i] = 0x08 + byte(i%5)<<3
			case 3:
				b[i] = 0
			default:
				b[i] = byte(rng.UintN(256))
			}
		}
		return b
	}
	emitted := 0
	emit := func(path string, d []byte, children int) bool {
		if emitted == n {
			return false
		}
		emitted++
		return yield(znode.Record{Path: path, Data: d, ACL: openACL, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: int32(children)}})
	}
	tn := func(t int) string { return fmt.Sprintf("tenant-%02d", t) }
	nn := func(ns int) string { return fmt.Sprintf("ns-%02d", ns) }
	topic := func(i int) string { return fmt.Sprintf("topic-%05d", i) }

	if !emit("/admin", nil, 1) || !emit("/admin/policies", nil, tenants) {
		return
	}
	for t := range tenants {
		if !emit("/admin/policies/"+tn(t), data(100, 160), namespaces) {
			return
		}
		for ns := range namespaces {
			if !emit("/admin/policies/"+tn(t)+"/"+nn(ns), data(200, 300), 0) {
				return
			}
		}
	}
	if !emit("/managed-ledgers", nil, tenants) {
		return
	}
	for t := range tenants {
		if !emit("/managed-ledgers/"+tn(t), nil, namespaces) {
			return
		}
		for ns := range namespaces {
			base := "/managed-ledgers/" + tn(t) + "/" + nn(ns)
			if !emit(base, nil, 1) || !emit(base+"/persistent", nil, topics) {
				return
			}
			for i := range topics {
				ml := base + "/persistent/" + topic(i)
				if !emit(ml, data(180, 300), 2) || !emit(ml+"/sub-a", data(100, 150), 0) || !emit(ml+"/sub-b", data(100, 150), 0) {
					return
				}
			}
		}
	}
	if !emit("/schemas", nil, tenants) {
		return
	}
	for t := range tenants {
		if !emit("/schemas/"+tn(t), nil, namespaces) {
			return
		}
		for ns := range namespaces {
			if !emit("/schemas/"+tn(t)+"/"+nn(ns), nil, topics) {
				return
			}
			for i := range topics {
				if !emit("/schemas/"+tn(t)+"/"+nn(ns)+"/"+topic(i), data(100, 140), 0) {
					return
				}
			}
		}
	}
	ledgers := tenants * namespaces * topics
	if !emit("/ledgers", nil, 1) || !emit("/ledgers/00", nil, 1) || !emit("/ledgers/00/0000", nil, ledgers) {
		return
	}
	for i := range ledgers {
		if !emit(fmt.Sprintf("/ledgers/00/0000/L%06d", i), data(150, 250), 0) {
			return
		}
	}
}

type benchEnv struct {
	z      *testenv.ZooKeeper
	c      *Client
	znodes int // in the tree, /zookeeper and / included
}

// populatedZooKeeper starts a server and creates the tree with a Creator, reporting how fast.
func populatedZooKeeper(b *testing.B) *benchEnv {
	b.Helper()
	n := testenv.EnvInt(b, "ZK_BENCH_ZNODES", 100_000)
	z := testenv.StartZooKeeper(b)
	c := connect(b, z.Addr, Options{})
	start := time.Now()
	cr := c.NewCreator(context.Background(), CreatorOptions{})
	var addErr error
	pulsarTree(n, func(r znode.Record) bool {
		addErr = cr.Add(r)
		return addErr == nil
	})
	stats, err := cr.Close()
	if addErr != nil || err != nil {
		b.Fatalf("populate: %v %v", addErr, err)
	}
	d := time.Since(start)
	b.Logf("populated %d znodes in %s with a Creator: %.0f znodes/s (%d batches)", stats.Created, d.Round(time.Millisecond), float64(stats.Created)/d.Seconds(), stats.Batches)
	// "/", /zookeeper, /zookeeper/config and /zookeeper/quota come with the server.
	return &benchEnv{z: z, c: c, znodes: n + 4}
}

// rawConns opens plain go-zookeeper sessions for the yardsticks, as super user.
func rawConns(b *testing.B, addr string, n int) []*zk.Conn {
	conns := make([]*zk.Conn, n)
	for i := range conns {
		conns[i] = rawConn(b, addr)
	}
	return conns
}

// serialDump is yardstick 1: one request at a time on one connection, depth first, reading
// what Walk reads. It stops after limit znodes.
func serialDump(conn *zk.Conn, limit int) (int, error) {
	stack := []string{"/"}
	n := 0
	for len(stack) > 0 && n < limit {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p == "/zookeeper" {
			continue
		}
		_, st, err := conn.Get(p)
		if err != nil {
			return n, fmt.Errorf("get %s: %w", p, err)
		}
		if _, _, err := conn.GetACL(p); err != nil {
			return n, fmt.Errorf("get acl %s: %w", p, err)
		}
		if st.NumChildren > 0 {
			children, _, err := conn.Children(p)
			if err != nil {
				return n, fmt.Errorf("children %s: %w", p, err)
			}
			for _, c := range children {
				stack = append(stack, znode.Join(p, c))
			}
		}
		n++
	}
	return n, nil
}

// pipelinedDump is yardstick 2: inFlight goroutines sharing a stack of paths, each doing one
// request at a time on its connection. No ordering, no single consumer: the simplest way to
// keep inFlight requests outstanding.
func pipelinedDump(conns []*zk.Conn, inFlight int) (int, error) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	stack := []string{"/"}
	busy, n := 0, 0
	var firstErr error
	var wg sync.WaitGroup
	for i := range inFlight {
		conn := conns[i%len(conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for len(stack) == 0 && busy > 0 && firstErr == nil {
					cond.Wait()
				}
				if len(stack) == 0 || firstErr != nil {
					mu.Unlock()
					cond.Broadcast()
					return
				}
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				busy++
				mu.Unlock()

				var children []string
				_, st, err := conn.Get(p)
				if err == nil {
					_, _, err = conn.GetACL(p)
				}
				if err == nil && st.NumChildren > 0 {
					children, _, err = conn.Children(p)
				}

				mu.Lock()
				busy--
				n++
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("read %s: %w", p, err)
				}
				for _, c := range children {
					if cp := znode.Join(p, c); cp != "/zookeeper" {
						stack = append(stack, cp)
						cond.Signal()
					}
				}
				if len(stack) == 0 && busy == 0 {
					cond.Broadcast()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return n, firstErr
}

// walkDump runs Walk into a sink that only counts.
func walkDump(c *Client) (int, error) {
	var n int
	_, err := c.Walk(context.Background(), WalkOptions{}, func(r znode.Record) error {
		n++
		return nil
	})
	return n, err
}

// rate runs dump once and returns znodes per second. It logs the CPU time used by this
// process and by the server per 1,000 znodes: on a small machine they compete.
func rate(b *testing.B, server *testenv.ZooKeeper, name string, want int, dump func() (int, error)) float64 {
	b.Helper()
	start := time.Now()
	ownCPU, serverCPU := cpuTimes(b, server)
	n, err := dump()
	d := time.Since(start)
	ownCPU2, serverCPU2 := cpuTimes(b, server)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	if want > 0 && n != want {
		b.Fatalf("%s read %d znodes, want %d", name, n, want)
	}
	r := float64(n) / d.Seconds()
	b.Logf("%-22s %7d znodes in %8s: %8.0f znodes/s; CPU per 1,000 znodes: client %5.1f ms, server %5.1f ms",
		name, n, d.Round(time.Millisecond), r, 1e6*(ownCPU2-ownCPU).Seconds()/float64(n), 1e6*(serverCPU2-serverCPU).Seconds()/float64(n))
	return r
}

// cpuTimes returns the CPU time used so far by this process and by the server's processes
// (found by the data directory on their command line).
func cpuTimes(b *testing.B, server *testenv.ZooKeeper) (own, srv time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		own = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(p + "/cmdline")
		if err != nil || !bytes.Contains(cmd, []byte(server.Dir)) {
			continue
		}
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		// fields after the ")" closing the command name: utime and stime are the 12th and 13th
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			srv += time.Duration(ut+st) * time.Second / 100 // USER_HZ
		}
	}
	return own, srv
}

func BenchmarkDumpSerial(b *testing.B) {
	env := populatedZooKeeper(b)
	conn := rawConns(b, env.z.Addr, 1)[0]
	limit := testenv.EnvInt(b, "ZK_BENCH_SERIAL", 10_000)
	var r float64
	for b.Loop() {
		r = rate(b, env.z, "serial (subset)", min(limit, env.znodes-3), func() (int, error) { return serialDump(conn, limit) })
	}
	b.ReportMetric(r, "znodes/s")
}

func BenchmarkDumpPipelined8x256(b *testing.B) {
	env := populatedZooKeeper(b)
	conns := rawConns(b, env.z.Addr, 8)
	var r float64
	for b.Loop() {
		r = rate(b, env.z, "pipelined 8x256", env.znodes-3, func() (int, error) { return pipelinedDump(conns, 256) })
	}
	b.ReportMetric(r, "znodes/s")
}

func BenchmarkDumpWalk(b *testing.B) {
	env := populatedZooKeeper(b)
	resetPeakRSS(b)
	var r float64
	for b.Loop() {
		r = rate(b, env.z, "Walk", env.znodes-3, func() (int, error) { return walkDump(env.c) })
	}
	b.ReportMetric(r, "znodes/s")
	b.ReportMetric(peakRSSMB(b), "peak_rss_MB")
}

// BenchmarkDumpWalkLargeZnodes walks ZK_BENCH_LARGE znodes of 1,000,000 bytes (default 60)
// and reports the peak RSS: the worst case for memory, since replies in flight are whole
// znodes. The test server's 512 MB heap holds the data twice (its tree, and the last 500
// transactions it keeps for followers), hence the modest default.
func BenchmarkDumpWalkLargeZnodes(b *testing.B) {
	n := testenv.EnvInt(b, "ZK_BENCH_LARGE", 60)
	z := testenv.StartZooKeeper(b)
	c := connect(b, z.Addr, Options{})
	cr := c.NewCreator(context.Background(), CreatorOptions{})
	if err := cr.Add(rec("/large", nil, int32(n))); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1_000_000)
	for i := range n {
		data[i%len(data)]++
		if err := cr.Add(rec(fmt.Sprintf("/large/%04d", i), data, 0)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := cr.Close(); err != nil {
		b.Fatal(err)
	}
	data = nil
	resetPeakRSS(b)
	var r float64
	for b.Loop() {
		r = rate(b, z, "Walk (1 MB znodes)", n+2, func() (int, error) { return walkDump(c) })
	}
	b.ReportMetric(r, "znodes/s")
	b.ReportMetric(peakRSSMB(b), "peak_rss_MB")
}

// BenchmarkDumpRatios runs the three dumps on the same tree in one run and reports Walk's
// rate against each yardstick. The serial one reads the first ZK_BENCH_SERIAL znodes only.
func BenchmarkDumpRatios(b *testing.B) {
	env := populatedZooKeeper(b)
	conns := rawConns(b, env.z.Addr, 8)
	limit := testenv.EnvInt(b, "ZK_BENCH_SERIAL", 10_000)
	var serial, pipelined, walk, rss float64
	for b.Loop() {
		// A first pass warms the server up (its JIT and caches), so neither measured dump
		// pays for it.
		rate(b, env.z, "warm-up (pipelined)", env.znodes-3, func() (int, error) { return pipelinedDump(conns, 256) })
		serial = rate(b, env.z, "serial (subset)", min(limit, env.znodes-3), func() (int, error) { return serialDump(conns[0], limit) })
		pipelined = rate(b, env.z, "pipelined 8x256", env.znodes-3, func() (int, error) { return pipelinedDump(conns, 256) })
		// The yardsticks' sessions hold buffers of their own: close them before measuring
		// Walk's peak memory.
		for _, c := range conns {
			c.Close()
		}
		resetPeakRSS(b)
		walk = rate(b, env.z, "Walk", env.znodes-3, func() (int, error) { return walkDump(env.c) })
		rss = peakRSSMB(b)
		conns = rawConns(b, env.z.Addr, 8)
	}
	b.ReportMetric(walk, "walk_znodes/s")
	b.ReportMetric(serial, "serial_znodes/s")
	b.ReportMetric(pipelined, "pipelined_znodes/s")
	b.ReportMetric(walk/serial, "x_serial")
	b.ReportMetric(walk/pipelined, "x_pipelined")
	b.ReportMetric(rss, "walk_peak_rss_MB")
	b.Logf("Walk: %.1fx serial (on its first %d znodes), %.2fx pipelined 8x256; peak RSS of the test process during Walk %.0f MB", walk/serial, limit, walk/pipelined, rss)
}

// BenchmarkApply creates ZK_BENCH_ZNODES znodes with a Creator, then ZK_BENCH_ONE with
// CreateOne one at a time, on a fresh server, and compares the rates.
func BenchmarkApply(b *testing.B) {
	n := testenv.EnvInt(b, "ZK_BENCH_ZNODES", 100_000)
	one := testenv.EnvInt(b, "ZK_BENCH_ONE", 5_000)
	z := testenv.StartZooKeeper(b)
	c := connect(b, z.Addr, Options{})
	ctx := context.Background()
	var creator, single float64
	run := 0
	for b.Loop() {
		run++
		prefix := fmt.Sprintf("/run-%d", run)
		if _, err := c.CreateOne(ctx, rec(prefix, nil, 4)); err != nil {
			b.Fatal(err)
		}
		creator = rate(b, z, "Creator", n, func() (int, error) {
			cr := c.NewCreator(ctx, CreatorOptions{})
			var err error
			pulsarTree(n, func(r znode.Record) bool {
				r.Path = prefix + r.Path
				err = cr.Add(r)
				return err == nil
			})
			stats, cerr := cr.Close()
			if err == nil {
				err = cerr
			}
			return int(stats.Created), err
		})
		oneRoot := prefix + "-one"
		if _, err := c.CreateOne(ctx, rec(oneRoot, nil, 4)); err != nil {
			b.Fatal(err)
		}
		single = rate(b, z, "CreateOne", one, func() (int, error) {
			created := 0
			var err error
			pulsarTree(one, func(r znode.Record) bool {
				r.Path = oneRoot + r.Path
				var ok bool
				ok, err = c.CreateOne(ctx, r)
				if ok {
					created++
				}
				return err == nil
			})
			return created, err
		})
	}
	b.ReportMetric(creator, "creator_znodes/s")
	b.ReportMetric(single, "createone_znodes/s")
	b.ReportMetric(creator/single, "x_one")
	b.Logf("Creator: %.1fx CreateOne (which created the first %d znodes of the same tree)", creator/single, one)
}

// resetPeakRSS returns freed memory to the OS and resets the kernel's high-water mark, so
// that VmHWM afterwards is the peak of what runs next.
func resetPeakRSS(b *testing.B) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS (%v): the figure includes the populate step", err)
		return
	}
	b.Logf("RSS before the dump: %.0f MB", procStatusMB(b, "VmRSS:"))
}

// peakRSSMB is VmHWM of this process (the ZooKeeper server is another).
func peakRSSMB(b *testing.B) float64 { return procStatusMB(b, "VmHWM:") }

func procStatusMB(b *testing.B, field string) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatalf("%s %q: %v", field, rest, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
