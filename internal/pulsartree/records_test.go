package pulsartree

import (
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

func TestRecordsParentsFirstWithLiveState(t *testing.T) {
	o := Sized(2000)
	seen := map[string]bool{"/": true}
	n, brokers := 0, 0
	ephemeral := 0
	sum, err := Records(o, func(r znode.Record) bool {
		n++
		if r.Mode == znode.ModeEphemeral {
			ephemeral++
		}
		if seen[r.Path] {
			t.Fatalf("%s twice", r.Path)
		}
		if !seen[znode.Parent(r.Path)] {
			t.Fatalf("%s before its parent", r.Path)
		}
		seen[r.Path] = true
		if strings.HasPrefix(r.Path, "/loadbalance/brokers/") {
			if r.Mode != znode.ModeEphemeral {
				t.Fatalf("broker registration %s is %s", r.Path, r.Mode)
			}
			brokers++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Persistent+sum.Ephemeral != n || sum.Ephemeral != ephemeral || len(sum.Topics) == 0 {
		t.Fatalf("summary %d persistent, %d ephemeral, %d topics; %d records yielded, %d ephemeral", sum.Persistent, sum.Ephemeral, len(sum.Topics), n, ephemeral)
	}
	if brokers != o.Brokers || n < 1500 || n > 2500 {
		t.Fatalf("%d records, %d brokers (want about 2000 and %d)", n, brokers, o.Brokers)
	}
	stop := 0
	if _, err := Records(o, func(znode.Record) bool { stop++; return stop < 10 }); err != nil || stop != 10 {
		t.Fatalf("stop after 10: %d %v", stop, err)
	}
	if _, err := Records(Options{Awkward: true}, func(znode.Record) bool { return true }); err == nil {
		t.Fatal("Awkward accepted")
	}
}
