package backupdiff

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive/archivetest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

var open = []znode.ACL{{Perms: 31, Scheme: "world", ID: "anyone"}}

func rec(path, data string, children int32) znode.Record {
	var d []byte
	if data != "" {
		d = []byte(data)
	}
	return znode.Record{Path: path, Data: d, ACL: open, Mode: znode.ModePersistent, Stat: znode.Stat{NumChildren: children}}
}

// ml is a managed ledger's record whose ledgers are offloaded (complete) when their id is
// in offloaded.
func ml(t testing.TB, path string, ids []int64, offloaded ...int64) znode.Record {
	t.Helper()
	info := &mlpb.ManagedLedgerInfo{}
	for _, id := range ids {
		li := &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: proto.Int64(id), Entries: proto.Int64(10)}
		if slices.Contains(offloaded, id) {
			li.OffloadContext = &mlpb.OffloadContext{Complete: proto.Bool(true)}
		}
		info.LedgerInfo = append(info.LedgerInfo, li)
	}
	b, err := managedledger.Encode(info, mlpb.CompressionType_NONE)
	if err != nil {
		t.Fatal(err)
	}
	return znode.Record{Path: path, Data: b, ACL: open, Mode: znode.ModePersistent}
}

// pack writes records as the backup's archive writer does, in the order given.
func pack(t testing.TB, recs []znode.Record) []byte {
	t.Helper()
	return archivetest.V1(t, "/managed-ledgers", recs)
}

func diffBytes(t testing.TB, a, b []byte, opts Options) (Result, error) {
	t.Helper()
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	return Diff(context.Background(), Input{Name: "a", R: bytes.NewReader(a)}, Input{Name: "b", R: bytes.NewReader(b)}, opts)
}

func shuffled(recs []znode.Record, seed uint64) []znode.Record {
	out := slices.Clone(recs)
	rand.New(rand.NewPCG(seed, seed)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestComparePathsKeepsSubtreesTogether(t *testing.T) {
	paths := []string{"/a-b", "/a/b", "/a", "/", "/a/b/c", "/a.b", "/ab", "/a/b-c", "/a/b/c/d", "/b", "/a/é", "/a/z"}
	slices.SortFunc(paths, comparePaths[string])
	want := []string{"/", "/a", "/a/b", "/a/b/c", "/a/b/c/d", "/a/b-c", "/a/z", "/a/é", "/a-b", "/a.b", "/ab", "/b"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("got  %q\nwant %q", paths, want)
	}
	// The same order as comparing segment lists.
	bySegments := func(a, b string) int {
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "-", ".", "/", "é", "0"}
	for range 20000 {
		gen := func() string {
			var sb strings.Builder
			sb.WriteString("/")
			for n := rng.IntN(6); n >= 0; n-- {
				s := alphabet[rng.IntN(len(alphabet))]
				if s == "/" && strings.HasSuffix(sb.String(), "/") {
					s = "a"
				}
				sb.WriteString(s)
			}
			return strings.TrimSuffix(sb.String(), "/") + "x"
		}
		a, b := gen(), gen()
		if got, want := comparePaths(a, b), bySegments(a, b); got != want {
			t.Fatalf("comparePaths(%q, %q) = %d, segment order says %d", a, b, got, want)
		}
	}
}

func TestSorterSpillsAndMergesInPathOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var want []string
	s := newSorter(t.TempDir(), 4<<10) // about 40 entries per run
	s.fanIn = 3                        // several merge passes
	for i := range 5000 {
		p := fmt.Sprintf("/t%d/n%d/x%d", rng.IntN(50), rng.IntN(50), i)
		want = append(want, p)
		e := entry{path: p, kind: kindManagedLedger, kept: []int64{int64(i), -1}, doc: []byte(p)}
		if err := s.add(&e); err != nil {
			t.Fatal(err)
		}
	}
	defer s.close()
	if len(s.runs) < 10 {
		t.Fatalf("only %d runs: the test does not spill", len(s.runs))
	}
	it, err := s.sorted()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, comparePaths[string])
	var got []string
	for {
		e, err := it.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(e.doc) != e.path || e.kept[1] != -1 || e.kind != kindManagedLedger {
			t.Fatalf("entry %s came back as %+v", e.path, e)
		}
		got = append(got, e.path)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d entries back, want %d, in path order", len(got), len(want))
	}
}

// twoTrees are the records of two backups of one cluster with known changes between them.
func twoTrees(t testing.TB) (from, to []znode.Record) {
	common := []znode.Record{
		rec("/", "", 4),
		rec("/admin", "", 3),
		rec("/admin/clusters", "", 1),
		rec("/admin/clusters/c1", `{"serviceUrl":"http://a:8080"}`, 0),
		rec("/admin/policies", "", 3),
		rec("/admin/policies/t1", `{"adminRoles":["a"]}`, 2),
		rec("/admin/partitioned-topics", "", 1),
		rec("/admin/partitioned-topics/t1", "", 1),
		rec("/admin/partitioned-topics/t1/ns1", "", 1),
		rec("/admin/partitioned-topics/t1/ns1/persistent", "", 1),
		rec("/managed-ledgers", "", 1),
		rec("/managed-ledgers/t1", "", 1),
		rec("/managed-ledgers/t1/ns1", "", 1),
		rec("/managed-ledgers/t1/ns1/persistent", "", 2),
		rec("/managed-ledgers/t1/ns1/persistent/a/sub", "cursor", 0),
		rec("/ledgers", "", 1),
		rec("/ledgers/00", "", 1),
		rec("/ledgers/00/0000", "", 1),
	}
	from = append(slices.Clone(common),
		rec("/admin/policies/t1/ns1", `{"ttl":60,"retention":{"sizeMB":10},"big":9007199254740993}`, 0),
		rec("/admin/policies/t1/ns2", `{"ttl":1}`, 0),
		rec("/admin/policies/t2", `{}`, 1),
		rec("/admin/policies/t2/ns1", `{}`, 0),
		rec("/admin/partitioned-topics/t1/ns1/persistent/p1", `{"partitions":2}`, 0),
		ml(t, "/managed-ledgers/t1/ns1/persistent/a", []int64{1, 2, 3}, 1, 2),
		ml(t, "/managed-ledgers/t1/ns1/persistent/b", []int64{5}),
		rec("/ledgers/00/0000/L0001", "ledger", 0),
	)
	locked := rec("/ledgers/00/0000/L0001", "ledger", 0)
	locked.ACL = []znode.ACL{{Perms: 1, Scheme: "world", ID: "anyone"}}
	to = append(slices.Clone(common),
		rec("/admin/policies/t1/ns1", `{"ttl":120,"big":9007199254740995,"x":1}`, 0),
		rec("/admin/policies/t3", `{}`, 1),
		rec("/admin/policies/t3/x", `{}`, 0),
		rec("/admin/partitioned-topics/t1/ns1/persistent/p1", `{"partitions":4}`, 0),
		rec("/admin/partitioned-topics/t1/ns1/persistent/p2", `{"partitions":1}`, 0),
		ml(t, "/managed-ledgers/t1/ns1/persistent/a", []int64{2, 3, 4}, 2, 3),
		ml(t, "/managed-ledgers/t1/ns1/persistent/c", []int64{6}, 6),
		locked,
	)
	return from, to
}

// namesOf is a Names of exactly s.
func namesOf(s ...string) Names { return Names{Count: int64(len(s)), First: append([]string{}, s...)} }

// checkEqual fails t unless got deeply equals want.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkTwoTreesNames checks the tenants, namespaces and topics a diff of twoTrees adds and
// removes, however the trees are stored.
func checkTwoTreesNames(t *testing.T, res Result) {
	t.Helper()
	checkEqual(t, "tenants", res.Tenants, AddedRemoved{Added: namesOf("t3"), Removed: namesOf("t2")})
	checkEqual(t, "namespaces", res.Namespaces, AddedRemoved{Added: namesOf("t3/x"), Removed: namesOf("t1/ns2", "t2/ns1")})
	checkEqual(t, "topics", res.Topics, AddedRemoved{Added: namesOf("persistent://t1/ns1/c"), Removed: namesOf("persistent://t1/ns1/b")})
}

func TestDiffReportsWhatChanged(t *testing.T) {
	from, to := twoTrees(t)
	a, b := pack(t, shuffledParentsFirst(from, 1)), pack(t, shuffledParentsFirst(to, 2))
	res, err := diffBytes(t, a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) { t.Helper(); checkEqual(t, what, got, want) }
	checkTwoTreesNames(t, res)
	check("partitioned topics", res.PartitionedTopics, AddedRemoved{Added: namesOf("persistent://t1/ns1/p2"), Removed: namesOf()})
	// Added: t3, t3/x, p2, c. Removed: ns2, t2, t2/ns1, b. Changed: ns1 and p1 (data), a
	// (data), L0001 (ACL).
	check("znodes", res.Znodes, Changes{Added: 4, Removed: 4, Changed: 4, DataChanged: 3, ACLChanged: 1, Unchanged: int64(len(from) - 8)})
	sub := map[string]Changes{}
	for _, s := range res.BySubtree {
		sub[s.Path] = s.Changes
	}
	check("subtrees", sub, map[string]Changes{
		"/admin":                    {Added: 3, Removed: 3, Changed: 2, DataChanged: 2},
		"/admin/policies":           {Added: 2, Removed: 3, Changed: 1, DataChanged: 1},
		"/admin/partitioned-topics": {Added: 1, Changed: 1, DataChanged: 1},
		"/managed-ledgers":          {Added: 1, Removed: 1, Changed: 1, DataChanged: 1},
		"/managed-ledgers/t1":       {Added: 1, Removed: 1, Changed: 1, DataChanged: 1},
		"/ledgers":                  {Changed: 1, ACLChanged: 1},
		"/ledgers/00":               {Changed: 1, ACLChanged: 1},
	})
	check("ledgers", res.ManagedLedgers, LedgerChanges{Count: 1, Gained: 1, Lost: 1, Undecodable: namesOf(), Changes: []LedgerChange{{
		Topic: "persistent://t1/ns1/a", Path: "/managed-ledgers/t1/ns1/persistent/a", Gained: []int64{3}, Lost: []int64{1}, GainedCount: 1, LostCount: 1,
	}}})

	if res.Policies.Count != 2 || len(res.Policies.Changes) != 2 {
		t.Fatalf("policies %+v", res.Policies)
	}
	// The policies come in path order; the patch is RFC 6902 with the old values tested,
	// keys in order, numbers exact.
	raw, err := json.Marshal(res.Policies.Changes)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"path":"/admin/partitioned-topics/t1/ns1/persistent/p1","kind":"partitioned-topic","name":"persistent://t1/ns1/p1","patch":[` +
		`{"value":2,"op":"test","path":"/partitions"},{"value":4,"op":"replace","path":"/partitions"}]},` +
		`{"path":"/admin/policies/t1/ns1","kind":"namespace","name":"t1/ns1","patch":[` +
		`{"value":9007199254740993,"op":"test","path":"/big"},{"value":9007199254740995,"op":"replace","path":"/big"},` +
		`{"value":{"sizeMB":10},"op":"test","path":"/retention"},{"op":"remove","path":"/retention"},` +
		`{"value":60,"op":"test","path":"/ttl"},{"value":120,"op":"replace","path":"/ttl"},` +
		`{"value":1,"op":"add","path":"/x"}]}]`
	if string(raw) != want {
		t.Errorf("policies:\n got %s\nwant %s", raw, want)
	}
	if res.Truncated {
		t.Error("truncated")
	}

	// The text names the same things.
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("text:\n%s", text.String())
	for _, s := range []string{"+ t3", "- t2", "- t1/ns2", "+ persistent://t1/ns1/c", "~ /ttl: 60 -> 120", "- /retention: {\"sizeMB\":10}", "+ /x: 1",
		"persistent://t1/ns1/a  +1 [3]  -1 [1]"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
}

// shuffledParentsFirst orders records as a walk with many reads in flight may: any order
// that keeps each parent before its children.
func shuffledParentsFirst(recs []znode.Record, seed uint64) []znode.Record {
	s := shuffled(recs, seed)
	slices.SortStableFunc(s, func(a, b znode.Record) int { return strings.Count(a.Path, "/") - strings.Count(b.Path, "/") })
	return s
}

func TestDiffIsTheSameInMemoryAndSpilledToDisk(t *testing.T) {
	from, to := twoTrees(t)
	// Pad both with the same 3000 znodes so that the small budget spills.
	for i := range 3000 {
		r := rec(fmt.Sprintf("/pad/%04d/x", i), "data", 0)
		from, to = append(from, r), append(to, r)
	}
	from = append(from, rec("/pad", "", 3000))
	to = append(to, rec("/pad", "", 3000))
	for i := range 3000 {
		from = append(from, rec(fmt.Sprintf("/pad/%04d", i), "", 1))
		to = append(to, rec(fmt.Sprintf("/pad/%04d", i), "", 1))
	}
	a, b := pack(t, shuffled(from, 3)), pack(t, shuffled(to, 4))
	mem, err := diffBytes(t, a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk, err := diffBytes(t, a, b, Options{Budget: 8 << 10, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mj, _ := json.Marshal(mem)
	dj, _ := json.Marshal(disk)
	if !bytes.Equal(mj, dj) {
		t.Fatalf("in memory:\n%s\nspilled:\n%s", mj, dj)
	}
	if mem.Znodes.Unchanged != int64(len(from)-8) {
		t.Fatalf("unchanged %d", mem.Znodes.Unchanged)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestDiffRefusesBadArchivesWithOneLine(t *testing.T) {
	good := pack(t, []znode.Record{rec("/a", "x", 0)})
	dup := pack(t, []znode.Record{rec("/a", "x", 0), rec("/b", "", 0), rec("/a", "y", 0)})
	truncated := good[:len(good)-20]
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	for name, c := range map[string]struct {
		a, b []byte
		want string
	}{
		"duplicate path": {good, dup, "b: corrupt archive: /a appears twice"},
		"truncated":      {truncated, good, "a: corrupt archive"},
		"flipped byte":   {good, flipped, "b: corrupt archive"},
		"not an archive": {[]byte("hello"), good, "a: corrupt archive: not gzip"},
		"empty":          {good, nil, "b: corrupt archive: not gzip"},
		"gzip, not tar":  {good, gzipped("hello"), "b: corrupt archive"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := diffBytes(t, c.a, c.b, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line starting %q", err, c.want)
			}
			if !errors.Is(err, archive.ErrCorrupt) {
				t.Fatalf("%v does not wrap ErrCorrupt", err)
			}
		})
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestDiffOfUndecodableManagedLedgerAndNonJSONPolicy(t *testing.T) {
	a := pack(t, []znode.Record{
		rec("/admin", "", 1), rec("/admin/policies", "", 1), rec("/admin/policies/t", "not json", 0),
		rec("/managed-ledgers", "", 1), rec("/managed-ledgers/t", "", 1), rec("/managed-ledgers/t/n", "", 1),
		rec("/managed-ledgers/t/n/persistent", "", 1), rec("/managed-ledgers/t/n/persistent/x", "\xff\xff\xff", 0),
	})
	b := pack(t, []znode.Record{
		rec("/admin", "", 1), rec("/admin/policies", "", 1), rec("/admin/policies/t", `{"a":1}`, 0),
		rec("/managed-ledgers", "", 1), rec("/managed-ledgers/t", "", 1), rec("/managed-ledgers/t/n", "", 1),
		rec("/managed-ledgers/t/n/persistent", "", 1), rec("/managed-ledgers/t/n/persistent/x", "\xff\xff", 0),
	})
	res, err := diffBytes(t, a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Policies.Changes) != 1 || !res.Policies.Changes[0].NotJSON || res.Policies.Changes[0].Patch != nil {
		t.Errorf("policies %+v", res.Policies)
	}
	if u := res.ManagedLedgers.Undecodable; u.Count != 1 || u.First[0] != "/managed-ledgers/t/n/persistent/x" || res.ManagedLedgers.Count != 0 {
		t.Errorf("managed ledgers %+v", res.ManagedLedgers)
	}
}

// splitStores splits a tree as Pulsar does with a configuration store apart: clusters,
// tenants, namespaces and partitioned topics there (the PulsarResources constructor), the
// rest local. The root and /admin are in both, as in two real stores.
func splitStores(recs []znode.Record) (local, conf []znode.Record) {
	for _, r := range recs {
		switch {
		case r.Path == "/" || r.Path == "/admin":
			local, conf = append(local, r), append(conf, r)
		case znode.Under(r.Path, "/admin/clusters") || znode.Under(r.Path, "/admin/policies") || znode.Under(r.Path, "/admin/partitioned-topics"):
			conf = append(conf, r)
		default:
			local = append(local, r)
		}
	}
	return local, conf
}

// TestDiffOfTwoStores compares archives of a cluster with a configuration store apart: both
// stores are compared, each with its own, a path both stores hold is two znodes, and the
// configuration store's subtrees and policy documents say so.
func TestDiffOfTwoStores(t *testing.T) {
	from, to := twoTrees(t)
	fl, fc := splitStores(shuffledParentsFirst(from, 3))
	tl, tc := splitStores(shuffledParentsFirst(to, 4))
	res, err := diffBytes(t, archivetest.Roles(t, fl, fc), archivetest.Roles(t, tl, tc), Options{Budget: 512})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) { t.Helper(); checkEqual(t, what, got, want) }
	// The same changes as in one store: tenants and namespaces come from the configuration
	// store, topics from the local one.
	checkTwoTreesNames(t, res)
	// "/" and "/admin" are two znodes each, unchanged in both stores.
	check("znodes", res.Znodes, Changes{Added: 4, Removed: 4, Changed: 4, DataChanged: 3, ACLChanged: 1, Unchanged: int64(len(from)-8) + 2})
	type key struct{ role, path string }
	sub := map[key]Changes{}
	for _, s := range res.BySubtree {
		sub[key{s.Role, s.Path}] = s.Changes
	}
	check("subtrees", sub, map[key]Changes{
		{"configuration", "/admin"}:                    {Added: 3, Removed: 3, Changed: 2, DataChanged: 2},
		{"configuration", "/admin/policies"}:           {Added: 2, Removed: 3, Changed: 1, DataChanged: 1},
		{"configuration", "/admin/partitioned-topics"}: {Added: 1, Changed: 1, DataChanged: 1},
		{"", "/managed-ledgers"}:                       {Added: 1, Removed: 1, Changed: 1, DataChanged: 1},
		{"", "/managed-ledgers/t1"}:                    {Added: 1, Removed: 1, Changed: 1, DataChanged: 1},
		{"", "/ledgers"}:                               {Changed: 1, ACLChanged: 1},
		{"", "/ledgers/00"}:                            {Changed: 1, ACLChanged: 1},
	})
	// Local subtrees come first, then the configuration store's.
	if first := res.BySubtree[0]; first.Role != "" || res.BySubtree[len(res.BySubtree)-1].Role != "configuration" {
		t.Errorf("subtree order: %+v", res.BySubtree)
	}
	var policies []string
	for _, c := range res.Policies.Changes {
		policies = append(policies, c.Role+":"+c.Path)
	}
	check("policies", policies, []string{"configuration:/admin/partitioned-topics/t1/ns1/persistent/p1", "configuration:/admin/policies/t1/ns1"})
	check("ledgers", res.ManagedLedgers.Count, int64(1))

	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"configuration:/admin/policies/t1/ns1 (namespace t1/ns1)", "  configuration:/admin/policies ", "\n  /managed-ledgers "} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}

	// A store moved apart between the two backups: the configuration store's tree is all
	// added, and what it holds is gone from the local store, without a path being taken for
	// the other store's.
	res, err = diffBytes(t, pack(t, from), archivetest.Roles(t, fl, fc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	check("moved apart", res.Znodes, Changes{Added: int64(len(fc)), Removed: int64(len(fc) - 2), Unchanged: int64(len(fl))})
	check("moved apart, tenants", res.Tenants, AddedRemoved{Added: namesOf("t1", "t2"), Removed: namesOf("t1", "t2")})
}
