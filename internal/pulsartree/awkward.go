package pulsartree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
)

// Names of the awkward cases, fixed so tests and docs can name them.
const (
	awkwardRoot     = "/pulsar/awkward"
	unicodeTenant   = "tenant-ünïcödé-日本"
	unicodeNS       = "ns-ü"
	unicodeTopic    = "tópico-日本"
	unicodeCursor   = "suscripción-ü"
	codecsTenant    = "awkward"
	codecsNamespace = "codecs"
	shapesNamespace = "shapes"
	secureTenant    = "secure-tenant"
	secureNamespace = "secure-ns"
	deepLevels      = 40
	sequentialNodes = 3
)

// binaryData is bytes 0..255 twice: NULs, invalid UTF-8, everything.
func binaryData() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// largeData is LargeSize pseudo-random (incompressible) bytes, the same for a given seed.
func largeData(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x1a26e))
	b := make([]byte, LargeSize)
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// deepPath is a znode deepLevels levels below the root.
func deepPath() string {
	path := awkwardRoot + "/deep"
	for depth := strings.Count(path, "/") + 1; depth <= deepLevels; depth++ {
		path += fmt.Sprintf("/d%02d", depth)
	}
	return path
}

func (p *plan) awkward() {
	sp := &p.sum.Special

	// One managed ledger per format, and a compressed cursor.
	p.tenant(codecsTenant)
	p.create(fmt.Sprintf("/admin/policies/%s/%s", codecsTenant, codecsNamespace), namespacePolicies(p.rng))
	p.namespaces = append(p.namespaces, codecsTenant+"/"+codecsNamespace)
	for _, c := range []mlpb.CompressionType{mlpb.CompressionType_LZ4, mlpb.CompressionType_ZLIB, mlpb.CompressionType_ZSTD, mlpb.CompressionType_SNAPPY, mlpb.CompressionType_NONE} {
		f := managedledger.Format{Header: true, Compression: c}
		local := strings.ToLower(c.String())
		if c == mlpb.CompressionType_NONE {
			local = "none-header"
		}
		t := p.topic(codecsTenant, codecsNamespace, local, f)
		sp.Compressed[f] = t.Path // this topic, not an earlier one of the same format
	}
	lz4 := &p.sum.Topics[len(p.sum.Topics)-5]
	ledgers := p.genLedgersOf(lz4)
	c := p.cursor(lz4.Path, "compressed-cursor", ledgers, lz4.Kept,
		managedledger.Format{Header: true, Compression: mlpb.CompressionType_LZ4}, codecsTenant, codecsNamespace, "lz4", 0)
	lz4.Cursors = append(lz4.Cursors, c)
	sp.CompressedCursor = c.Path

	// A tenant, namespace, topic and cursor with non-ASCII names.
	p.tenant(unicodeTenant)
	p.create(fmt.Sprintf("/admin/policies/%s/%s", unicodeTenant, unicodeNS), namespacePolicies(p.rng))
	p.namespaces = append(p.namespaces, unicodeTenant+"/"+unicodeNS)
	ut := p.topic(unicodeTenant, unicodeNS, unicodeTopic, managedledger.Plain)
	uc := p.cursor(ut.Path, unicodeCursor, p.genLedgersOf(ut), ut.Kept, managedledger.Plain, unicodeTenant, unicodeNS, unicodeTopic, 0)
	ut.Cursors = append(ut.Cursors, uc)
	sp.Unicode = []string{"/admin/policies/" + unicodeTenant, ut.Path, uc.Path}

	// Topics whose shape decides what a broker's load keeps: one offloaded ledger and the
	// open one; terminated and offloaded to the end (the highest ledger is kept); and none.
	p.create(fmt.Sprintf("/admin/policies/%s/%s", codecsTenant, shapesNamespace), namespacePolicies(p.rng))
	p.namespaces = append(p.namespaces, codecsTenant+"/"+shapesNamespace)
	sp.OneKept = p.topicOf(codecsTenant, shapesNamespace, "one-kept", managedledger.Plain, []int{ledgerOffloaded, ledgerOpen}, false).Path
	sp.AllOffloaded = p.topicOf(codecsTenant, shapesNamespace, "all-offloaded", managedledger.Format{Header: true, Compression: mlpb.CompressionType_ZSTD},
		[]int{ledgerOffloadedDeleted, ledgerOffloaded, ledgerOffloadedDeleted}, true).Path
	sp.NoLedgers = p.topicOf(codecsTenant, shapesNamespace, "no-ledgers", managedledger.Plain, nil, false).Path

	// A tenant and namespace only the digest user may touch.
	digest := zk.DigestACL(zk.PermAll, p.o.DigestUser, p.o.DigestPassword)
	tenantPath := "/admin/policies/" + secureTenant
	nsPath := tenantPath + "/" + secureNamespace
	p.add(op{kind: opCreate, path: tenantPath, data: tenantInfo(), acl: digest})
	p.add(op{kind: opCreate, path: nsPath, data: namespacePolicies(p.rng), acl: digest})
	sp.Digest = []string{tenantPath, nsPath}

	// A parent locked to READ after its child exists.
	sp.Locked, sp.LockedChild = awkwardRoot+"/locked", awkwardRoot+"/locked/child"
	p.create(sp.Locked, []byte("read-only parent"))
	p.create(sp.LockedChild, []byte("created before the parent was locked"))
	p.add(op{kind: opSetACL, path: sp.Locked, acl: zk.WorldACL(zk.PermRead)})

	sp.Binary = awkwardRoot + "/binary"
	p.create(sp.Binary, binaryData())
	sp.Large = awkwardRoot + "/large"
	p.add(op{kind: opLarge, path: sp.Large, data: largeData(p.o.Seed), acl: openACL})
	sp.Empty = []string{awkwardRoot + "/empty"}
	p.create(sp.Empty[0], nil)
	sp.Deep = deepPath()
	p.create(sp.Deep, []byte("bottom"))
	for range sequentialNodes {
		p.add(op{kind: opCreate, path: awkwardRoot + "/sequential/item-", data: []byte("sequential"), acl: openACL, flags: zk.FlagSequence})
	}
	sp.Container, sp.ContainerChild = awkwardRoot+"/container", awkwardRoot+"/container/child"
	p.add(op{kind: opContainer, path: sp.Container, data: []byte("container"), acl: openACL, flags: zk.FlagContainer})
	p.create(sp.ContainerChild, []byte("keeps the container from being reaped"))
	sp.TTLNode = awkwardRoot + "/ttl"
	p.add(op{kind: opTTL, path: sp.TTLNode, data: []byte("expires"), acl: openACL, flags: zk.FlagTTL})
}

// genLedgersOf rebuilds a generated topic's ledgers from its summary, for extra cursors.
func (p *plan) genLedgersOf(t *Topic) []genLedger {
	kept := map[int64]int64{}
	for _, k := range t.Kept {
		kept[k.ID] = k.Entries
	}
	var out []genLedger
	for _, id := range t.Ledgers {
		if e, ok := kept[id]; ok {
			out = append(out, genLedger{id: id, entries: e, kind: ledgerOffloaded})
		} else {
			// Dropped ledgers' entry counts are not in the summary; -1 keeps positions at
			// the ledger's start, which is still a dropped position.
			out = append(out, genLedger{id: id, kind: ledgerBookKeeper})
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
