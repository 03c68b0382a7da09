package pulsartree

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func TestPlanIsDeterministic(t *testing.T) {
	o := Sized(500)
	o.Awkward = true
	o.Compression = mlpb.CompressionType_LZ4
	a, err := buildPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := buildPlan(o)
	if !reflect.DeepEqual(a.ops, b.ops) || !reflect.DeepEqual(a.sum, b.sum) {
		t.Fatal("two plans from the same options differ")
	}
	o.Seed = 2
	c, _ := buildPlan(o)
	if reflect.DeepEqual(a.ops, c.ops) {
		t.Error("another seed gives the same tree")
	}
}

func TestPlanCreatesParentsFirstAndValidPaths(t *testing.T) {
	o := Sized(300)
	o.Awkward = true
	o.ManagedLedgerPath = "/pulsar/ml"
	p, err := buildPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{"/": true}
	for _, op := range p.ops {
		if err := znode.ValidatePath(op.path); err != nil {
			t.Error(err)
		}
		if op.kind == opSetACL {
			if !seen[op.path] {
				t.Errorf("ACL set on %s before it exists", op.path)
			}
			continue
		}
		if !seen[znode.Parent(op.path)] {
			t.Errorf("%s comes before its parent", op.path)
		}
		seen[op.path] = true
	}
	for _, top := range p.sum.Topics {
		if !strings.HasPrefix(top.Path, "/pulsar/ml/") {
			t.Errorf("topic %s outside ManagedLedgerPath", top.Path)
		}
	}
}

func TestSizedIsRoughlyN(t *testing.T) {
	for _, n := range []int{100, 2000, 20000} {
		p, err := buildPlan(Sized(n))
		if err != nil {
			t.Fatal(err)
		}
		got := p.persistent + p.ephemeral
		if n >= 1000 && (got < n*9/10 || got > n*11/10) {
			t.Errorf("Sized(%d) gives %d znodes", n, got)
		}
		t.Logf("Sized(%d): %d znodes", n, got)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Tenants: -1},
		{Compression: mlpb.CompressionType(42)},
		{ManagedLedgerPath: "relative"},
		{ManagedLedgerPath: "/"},
	} {
		if _, err := buildPlan(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestLedgerPath(t *testing.T) {
	for id, want := range map[int64]string{1: "/ledgers/00/0000/L0001", 123456: "/ledgers/00/0012/L3456", 2147483646: "/ledgers/21/4748/L3646", 9876543210: "/ledgers/000/0000/0098/7654/L3210"} {
		if got := ledgerPath(id); got != want {
			t.Errorf("ledgerPath(%d) = %s, want %s", id, got, want)
		}
	}
}

func TestPlanLongLedgerIDs(t *testing.T) {
	o := Sized(300)
	o.LongLedgerIDs = true
	p, err := buildPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, op := range p.ops {
		paths[op.path] = true
	}
	if !paths["/ledgers/idgen-long/HOB-0000000005"] {
		t.Error("no idgen-long HOB node")
	}
	if p.sum.HighestLedgerID != SourceHOB<<32|0xffffffff {
		t.Errorf("highest ledger id %d", p.sum.HighestLedgerID)
	}
	for _, tp := range p.sum.Topics {
		for _, id := range tp.Ledgers {
			if id>>32 != SourceHOB {
				t.Fatalf("%s: ledger %d is not in HOB %d", tp.Path, id, SourceHOB)
			}
			if lp := ledgerPath(id); len(tp.Dropped) > 0 && id == tp.Dropped[0] && !paths[lp] {
				t.Errorf("%s: no metadata at %s", tp.Path, lp)
			}
		}
	}
	// 21474836481 is HOB 5, low 1: nineteen digits split 3/4/4/4/4.
	if got := ledgerPath(5<<32 | 1); got != "/ledgers/000/0000/0214/7483/L6481" {
		t.Errorf("long path %s", got)
	}
	if got := ledgerPath(1); got != "/ledgers/00/0000/L0001" {
		t.Errorf("legacy path %s", got)
	}
}
