package pulsartree

import (
	"fmt"
	"math/rand/v2"

	"github.com/go-zookeeper/zk"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
	"google.golang.org/protobuf/proto"
)

// opKind says how an op reaches the server: creates go in zk.Multi batches; the rest alone.
type opKind int

const (
	opCreate    opKind = iota // persistent, ephemeral or sequential, batched
	opLarge                   // persistent, too large to share a request
	opContainer               // conn.CreateContainer
	opTTL                     // conn.CreateTTL
	opSetACL                  // conn.SetACL on an existing znode
)

type op struct {
	kind  opKind
	path  string
	data  []byte
	acl   []zk.ACL
	flags int32
}

// plan is the whole tree as an ordered list of operations, parents before children, built
// without a server so that Sized can count it.
type plan struct {
	o      Options
	ops    []op
	exists map[string]bool
	rng    *rand.Rand
	ledger int64 // the last BookKeeper ledger id handed out

	persistent, ephemeral int
	sum                   Summary
	topicIndex            int      // across the tree, to pick codecs
	topicCount            int      // across the tree, to pick compacted topics
	namespaces            []string // "<tenant>/<ns>" with a bundle a live broker owns
}

var openACL = zk.WorldACL(zk.PermAll)

const (
	clusterName = "pulsar-cluster"
	bundle      = "0x00000000_0xffffffff"
	// baseTime is the clock the generated timestamps are based on (2024-01-01T00:00:00Z),
	// so the tree does not depend on when it is generated.
	baseTime = int64(1_704_067_200_000)
)

func buildPlan(o Options) (*plan, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	p := &plan{
		o:      o,
		exists: map[string]bool{"/": true, "/zookeeper": true},
		rng:    rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
	}
	if o.LongLedgerIDs {
		p.ledger = SourceHOB << 32
	}
	p.clusterWide()
	for t := range o.Tenants {
		tenant := "public"
		if t > 0 {
			tenant = fmt.Sprintf("tenant-%d", t)
		}
		p.tenant(tenant)
		for n := range o.NamespacesPerTenant {
			ns := "default"
			if t > 0 || n > 0 {
				ns = fmt.Sprintf("ns-%d", n)
			}
			p.namespace(tenant, ns, o.TopicsPerNamespace)
		}
	}
	if o.Awkward {
		p.awkward()
	}
	p.liveBrokers()
	p.sum.HighestLedgerID = p.ledger
	if o.LongLedgerIDs {
		p.sum.HighestLedgerID = max(p.ledger, SourceHOB<<32|0xffffffff)
	}
	return p, nil
}

// mkdirs creates path and its missing ancestors as empty persistent znodes.
func (p *plan) mkdirs(path string) {
	if p.exists[path] {
		return
	}
	p.mkdirs(znode.Parent(path))
	p.add(op{kind: opCreate, path: path, acl: openACL})
}

func (p *plan) add(o op) {
	if o.kind != opSetACL {
		p.mkdirs(znode.Parent(o.path))
		if o.flags != zk.FlagSequence {
			p.exists[o.path] = true
		}
		if o.kind == opCreate && o.flags == zk.FlagEphemeral {
			p.ephemeral++
		} else {
			p.persistent++
		}
	}
	p.ops = append(p.ops, o)
}

// create adds a persistent znode with an open ACL.
func (p *plan) create(path string, data []byte) {
	p.add(op{kind: opCreate, path: path, data: data, acl: openACL})
}

func (p *plan) createEphemeral(path string, data []byte) {
	p.add(op{kind: opCreate, path: path, data: data, acl: openACL, flags: zk.FlagEphemeral})
}

// newLedger hands out the next BookKeeper ledger id.
func (p *plan) newLedger() int64 {
	p.ledger++
	return p.ledger
}

// ledgerPath is the HierarchicalLedgerManager path of a ledger. Below Integer.MAX_VALUE it
// is the legacy layout, the id as ten digits split 2/4/4 with the last part prefixed with L
// (ledger 1 is /ledgers/00/0000/L0001); above, the long layout, nineteen digits split
// 3/4/4/4/4 (LongHierarchicalLedgerManager).
func ledgerPath(id int64) string {
	if id < 1<<31-1 {
		s := fmt.Sprintf("%010d", id)
		return fmt.Sprintf("/ledgers/%s/%s/L%s", s[:2], s[2:6], s[6:])
	}
	s := fmt.Sprintf("%019d", id)
	return fmt.Sprintf("/ledgers/%s/%s/%s/%s/L%s", s[:3], s[3:7], s[7:11], s[11:15], s[15:])
}

func (p *plan) bookies() []string {
	n := max(p.o.Brokers, 1)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.1.%d:3181", 10+i)
	}
	return out
}

func brokerHost(i int) string { return fmt.Sprintf("10.0.0.%d", 10+i) }

func (p *plan) clusterWide() {
	p.create("/admin/clusters/"+clusterName, clusterData())
	p.mkdirs("/admin/policies")
	p.mkdirs("/admin/partitioned-topics")
	p.mkdirs(p.o.ManagedLedgerPath)
	p.mkdirs("/schemas")
	p.mkdirs("/namespace")

	instanceID := uuidFrom(p.rng)
	p.create("/ledgers/LAYOUT", []byte("2\norg.apache.bookkeeper.meta.HierarchicalLedgerManagerFactory:1\n"))
	p.create("/ledgers/INSTANCEID", []byte(instanceID))
	p.mkdirs("/ledgers/available/readonly")
	p.mkdirs("/ledgers/underreplication/ledgers")
	p.mkdirs("/ledgers/underreplication/locks")
	for _, b := range p.bookies() {
		p.create("/ledgers/cookies/"+b, bookieCookie(b, instanceID))
	}
	p.create("/bookies", bookieRacks(p.bookies()))

	if p.o.LongLedgerIDs {
		p.create(fmt.Sprintf("/ledgers/idgen-long/HOB-%010d", SourceHOB), nil)
	}

	p.mkdirs("/loadbalance/brokers")
	p.mkdirs("/loadbalance/bundle-data")
	// Quotas an admin set (`pulsar-admin resource-quotas`): the default one, in the
	// current layout and the older ResourceQuotaCache one, and one bundle's.
	for _, q := range []string{"/loadbalance/resource-quota/default", "/loadbalance/resource-quota/namespace/default",
		"/loadbalance/resource-quota/public/default/" + bundle} {
		p.create(q, resourceQuota())
		p.sum.Quotas = append(p.sum.Quotas, q)
	}
	p.create("/counters/producer-name", nil)
	p.bookKeeperBound()
}

// bookKeeperBound adds what Functions, the packages service and stream storage keep in
// ZooKeeper about data in the source's BookKeeper: DistributedLog namespaces
// (/pulsar/functions, /pulsar/packages, whose znode data is the namespace's BKDLConfig and
// whose children are logs) and stream storage's cluster metadata (/stream).
func (p *plan) bookKeeperBound() {
	dlConfig := []byte("\n\x0fzk-0:2181/ledgers\x12\x0fzk-0:2181/ledgers\x1a\x08/ledgers")
	add := func(path string, data []byte) {
		p.create(path, data)
		p.sum.BookKeeperBound = append(p.sum.BookKeeperBound, path)
	}
	add("/pulsar/functions", dlConfig)
	add("/pulsar/functions/public", nil)
	add("/pulsar/functions/public/default", nil)
	add("/pulsar/functions/public/default/word-count", nil)
	add("/pulsar/functions/public/default/word-count/1700000000000-word-count.jar", []byte("log segment metadata"))
	add("/pulsar/packages", dlConfig)
	add("/pulsar/packages/function", nil)
	add("/pulsar/packages/function/public", nil)
	add("/pulsar/packages/function/public/default", nil)
	add("/pulsar/packages/function/public/default/word-count", nil)
	add("/pulsar/packages/function/public/default/word-count/v1", []byte("log segment metadata"))
	add("/stream", nil)
	add("/stream/metadata", []byte{0x08, 0x10}) // ClusterMetadata{numStorageContainers: 16}
	add("/stream/assignment", nil)
	add("/stream/servers", nil)
	add("/stream/servers/available", nil)
	add("/stream/storage", dlConfig)
}

func (p *plan) tenant(tenant string) {
	p.create("/admin/policies/"+tenant, tenantInfo())
}

// namespace adds a namespace with its policies, bundle statistics and topics: a partitioned
// topic "events" with a third of the topics as partitions, and plain topics for the rest.
func (p *plan) namespace(tenant, ns string, topics int) {
	p.create(fmt.Sprintf("/admin/policies/%s/%s", tenant, ns), namespacePolicies(p.rng))
	p.create(fmt.Sprintf("/loadbalance/bundle-data/%s/%s/%s", tenant, ns, bundle), bundleData(p.rng))
	p.namespaces = append(p.namespaces, tenant+"/"+ns)

	partitions := (topics + 1) / 3
	if partitions > 0 {
		p.create(fmt.Sprintf("/admin/partitioned-topics/%s/%s/persistent/events", tenant, ns), partitionedTopic(partitions))
		p.schema(tenant, ns, "events")
	}
	for i := range partitions {
		p.topic(tenant, ns, fmt.Sprintf("events-partition-%d", i), p.regularFormat())
	}
	for i := range topics - partitions {
		local := fmt.Sprintf("topic-%d", i)
		p.topic(tenant, ns, local, p.regularFormat())
		if i%2 == 0 {
			p.schema(tenant, ns, local)
		}
	}
}

// regularFormat is the format of the next ordinary topic: every third one is compressed
// when Options.Compression is set, cycling through the codecs with Awkward.
func (p *plan) regularFormat() managedledger.Format {
	i := p.topicIndex
	p.topicIndex++
	if p.o.Compression == mlpb.CompressionType_NONE || i%3 != 0 {
		return managedledger.Plain
	}
	if !p.o.Awkward {
		return managedledger.Format{Header: true, Compression: p.o.Compression}
	}
	codecs := []mlpb.CompressionType{mlpb.CompressionType_LZ4, mlpb.CompressionType_ZLIB, mlpb.CompressionType_ZSTD, mlpb.CompressionType_SNAPPY, mlpb.CompressionType_NONE}
	return managedledger.Format{Header: true, Compression: codecs[(i/3)%len(codecs)]}
}

// Ledger kinds in a generated managed ledger.
const (
	ledgerOffloaded        = iota // offloadContext.complete: kept by a restore
	ledgerOffloadedDeleted        // the same, already deleted from BookKeeper
	ledgerOffloading              // offload started, not complete
	ledgerBookKeeper              // never offloaded
	ledgerOpen                    // the ledger being written
)

type genLedger struct {
	id, entries int64
	kind        int
	bkDeleted   bool // offloaded and already deleted from BookKeeper
}

// topic adds a managed ledger with LedgersPerTopic ledgers of random kinds, the last one
// open unless the topic is terminated (one in twenty).
func (p *plan) topic(tenant, ns, local string, f managedledger.Format) *Topic {
	n := p.o.LedgersPerTopic
	terminated := n > 0 && p.rng.IntN(20) == 0
	kinds := make([]int, n)
	for i := range kinds {
		switch r := p.rng.IntN(100); {
		case i == n-1 && !terminated:
			kinds[i] = ledgerOpen
		case r < 55:
			kinds[i] = ledgerOffloaded
			if r < 20 {
				kinds[i] = ledgerOffloadedDeleted
			}
		case r < 70:
			kinds[i] = ledgerOffloading
		default:
			kinds[i] = ledgerBookKeeper
		}
	}
	return p.topicOf(tenant, ns, local, f, kinds, terminated)
}

// topicOf adds a managed ledger with ledgers of the given kinds, its BookKeeper ledgers'
// metadata and its cursors, and records what a restore must make of them. A terminated
// topic's terminatedPosition is its last ledger's last entry. Every seventh topic is
// compacted: it has a __compaction cursor naming a compacted ledger.
func (p *plan) topicOf(tenant, ns, local string, f managedledger.Format, kinds []int, terminated bool) *Topic {
	path := fmt.Sprintf("%s/%s/%s/persistent/%s", p.o.ManagedLedgerPath, tenant, ns, local)
	t := Topic{Name: fmt.Sprintf("persistent://%s/%s/%s", tenant, ns, local), Path: path, Format: f}
	compacted := p.topicCount%7 == 3
	p.topicCount++

	ledgers := make([]genLedger, len(kinds))
	for i, k := range kinds {
		l := genLedger{id: p.newLedger(), kind: k}
		if k == ledgerOffloadedDeleted {
			l.kind, l.bkDeleted = ledgerOffloaded, true
		}
		if l.kind != ledgerOpen {
			l.entries = 1 + p.rng.Int64N(5000)
		}
		ledgers[i] = l
	}

	info := &mlpb.ManagedLedgerInfo{}
	for _, l := range ledgers {
		info.LedgerInfo = append(info.LedgerInfo, p.ledgerInfo(l))
		t.Ledgers = append(t.Ledgers, l.id)
		if l.kind == ledgerOffloaded {
			t.Kept = append(t.Kept, managedledger.KeptLedger{ID: l.id, Entries: l.entries})
		} else {
			t.Dropped = append(t.Dropped, l.id)
		}
		if !l.bkDeleted {
			p.create(ledgerPath(l.id), bookKeeperLedger(p.rng, l.id, l.entries, l.kind == ledgerOpen, p.bookies(),
				map[string]string{"application": "pulsar", "component": "managed-ledger", "pulsar/managed-ledger": fmt.Sprintf("%s/%s/persistent/%s", tenant, ns, local)}))
		}
	}
	if terminated && len(ledgers) > 0 {
		last := ledgers[len(ledgers)-1]
		info.TerminatedPosition = position(last.id, last.entries-1)
		t.Terminated = &managedledger.Position{LedgerID: last.id, EntryID: last.entries - 1}
	}
	if p.rng.IntN(3) == 0 {
		info.Properties = append(info.Properties, keyValue("pulsar.ml.offload.threshold", "1073741824"))
	}
	p.create(path, encode(info, f))
	if f != managedledger.Plain {
		if p.sum.Special.Compressed == nil {
			p.sum.Special.Compressed = map[managedledger.Format]string{}
		}
		if _, ok := p.sum.Special.Compressed[f]; !ok {
			p.sum.Special.Compressed[f] = path
		}
	}

	for s := range p.o.SubscriptionsPerTopic {
		t.Cursors = append(t.Cursors, p.cursor(path, fmt.Sprintf("sub-%d", s), ledgers, t.Kept, managedledger.Plain, tenant, ns, local, 0))
	}
	if compacted && len(ledgers) > 0 {
		t.CompactedLedger = p.newLedger()
		p.create(ledgerPath(t.CompactedLedger), bookKeeperLedger(p.rng, t.CompactedLedger, 1+p.rng.Int64N(100), false, p.bookies(),
			map[string]string{"application": "pulsar", "component": "compacted-ledger", "compactedTopic": t.Name}))
		c := p.cursor(path, managedledger.CompactionCursor, ledgers, t.Kept, managedledger.Plain, tenant, ns, local, t.CompactedLedger)
		t.Cursors = append(t.Cursors, c)
	}
	p.sum.Topics = append(p.sum.Topics, t)
	return &p.sum.Topics[len(p.sum.Topics)-1]
}

func (p *plan) ledgerInfo(l genLedger) *mlpb.ManagedLedgerInfo_LedgerInfo {
	li := &mlpb.ManagedLedgerInfo_LedgerInfo{LedgerId: &l.id}
	if l.kind == ledgerOpen {
		li.Timestamp = ptr(int64(0))
		return li
	}
	li.Entries = ptr(l.entries)
	li.Size = ptr(l.entries * (200 + p.rng.Int64N(2000)))
	li.Timestamp = ptr(baseTime + l.id*60_000)
	if l.kind == ledgerBookKeeper {
		return li
	}
	oc := &mlpb.OffloadContext{
		UidMsb:         ptr(int64(p.rng.Uint64())),
		UidLsb:         ptr(int64(p.rng.Uint64())),
		Complete:       ptr(l.kind == ledgerOffloaded),
		DriverMetadata: s3Driver(),
	}
	if l.kind == ledgerOffloaded {
		oc.Timestamp = ptr(baseTime + l.id*60_000 + 3_600_000)
		if l.bkDeleted {
			oc.BookkeeperDeleted = ptr(true)
		}
		if p.rng.IntN(4) == 0 {
			// Newer brokers also record the offload as segments.
			oc.OffloadSegment = []*mlpb.OffloadSegment{{
				UidMsb: oc.UidMsb, UidLsb: oc.UidLsb, Complete: ptr(true),
				AssignedTimestamp: ptr(baseTime + l.id*60_000 + 3_000_000), OffloadedTimestamp: oc.Timestamp,
				EndEntryId: ptr(l.entries - 1), DriverMetadata: s3Driver(),
			}}
		}
	}
	li.OffloadContext = oc
	if p.rng.IntN(5) == 0 {
		li.Properties = []*mlpb.KeyValue{keyValue("pulsar.ledger.created-by", "broker-0")}
	}
	return li
}

// cursor adds a cursor znode and its cursor ledger's metadata. Its mark-delete position is
// in a random ledger of the topic, kept or dropped.
//
// One cursor in four keeps its position in the znode only (cursorsLedgerId -1, as a broker
// writes it for a cursor persisted to the metadata store); the others have their own ledger.
// A compactedLedger other than 0 goes into the CompactedTopicLedger property, as the
// compactor's cursor (managedledger.CompactionCursor) holds it.
func (p *plan) cursor(mlPath, name string, ledgers []genLedger, kept []managedledger.KeptLedger, f managedledger.Format, tenant, ns, local string, compactedLedger int64) Cursor {
	c := Cursor{Path: mlPath + "/" + name, Format: f, CursorsLedgerID: -1}
	if p.rng.IntN(4) != 0 {
		c.CursorsLedgerID = p.newLedger()
		p.create(ledgerPath(c.CursorsLedgerID), bookKeeperLedger(p.rng, c.CursorsLedgerID, 1+p.rng.Int64N(50), false, p.bookies(),
			map[string]string{"application": "pulsar", "component": "managed-ledger", "pulsar/managed-ledger": fmt.Sprintf("%s/%s/persistent/%s", tenant, ns, local), "pulsar/cursor": name}))
	}

	info := &mlpb.ManagedCursorInfo{
		CursorsLedgerId: ptr(c.CursorsLedgerID),
		LastActive:      ptr(baseTime + 86_400_000 + p.rng.Int64N(86_400_000)),
	}
	if len(ledgers) > 0 {
		l := ledgers[p.rng.IntN(len(ledgers))]
		entry := int64(-1)
		if l.entries > 0 {
			entry = p.rng.Int64N(l.entries+1) - 1
		}
		c.MarkDelete = managedledger.Position{LedgerID: l.id, EntryID: entry}
		info.MarkDeleteLedgerId = ptr(l.id)
		info.MarkDeleteEntryId = ptr(entry)
		if l.entries > entry+6 && p.rng.IntN(3) == 0 {
			info.IndividualDeletedMessages = []*mlpb.MessageRange{{
				LowerEndpoint: position(l.id, entry+2), UpperEndpoint: position(l.id, entry+5),
			}}
		}
		if l.entries > entry+2 && p.rng.IntN(5) == 0 {
			info.BatchedEntryDeletionIndexInfo = []*mlpb.BatchedEntryDeletionIndexInfo{{
				Position: position(l.id, entry+1), DeleteSet: []int64{0b1011},
			}}
		}
	}
	c.Restored = expectedRestore(c.MarkDelete, kept)
	if p.rng.IntN(4) == 0 {
		info.Properties = []*mlpb.LongProperty{{Name: ptr("#pulsar.internal.replicated.subscription"), Value: ptr(int64(1))}}
	}
	if compactedLedger != 0 {
		info.Properties = append(info.Properties, &mlpb.LongProperty{Name: ptr(managedledger.CompactedTopicLedgerProperty), Value: ptr(compactedLedger)})
	}
	if p.rng.IntN(4) == 0 {
		info.CursorProperties = []*mlpb.StringProperty{{Name: ptr("team"), Value: ptr("billing")}}
	}
	p.create(c.Path, encode(info, f))
	return c
}

// expectedRestore is where the restore rewrite must move a mark-delete position, worked out
// from the rules directly rather than with the managedledger package, so tests can check one
// against the other.
func expectedRestore(pos managedledger.Position, kept []managedledger.KeptLedger) managedledger.Position {
	if len(kept) == 0 {
		return pos
	}
	var prev, first *managedledger.KeptLedger
	for i := range kept {
		k := &kept[i]
		if k.ID == pos.LedgerID {
			return pos
		}
		if k.ID < pos.LedgerID && (prev == nil || k.ID > prev.ID) {
			prev = k
		}
		if first == nil || k.ID < first.ID {
			first = k
		}
	}
	if prev != nil {
		return managedledger.Position{LedgerID: prev.ID, EntryID: prev.Entries - 1}
	}
	return managedledger.Position{LedgerID: first.ID, EntryID: -1}
}

// schema adds a schema locator with one to three versions, each in its own ledger.
func (p *plan) schema(tenant, ns, local string) {
	path := fmt.Sprintf("/schemas/%s/%s/%s", tenant, ns, local)
	s := Schema{Path: path}
	loc := &mlpb.SchemaLocator{}
	for v := range 1 + p.rng.IntN(3) {
		id := p.newLedger()
		p.create(ledgerPath(id), bookKeeperLedger(p.rng, id, 1, false, p.bookies(),
			map[string]string{"application": "pulsar", "component": "schema", "pulsar/schemaId": fmt.Sprintf("%s/%s/%s", tenant, ns, local)}))
		hash := make([]byte, 32)
		for i := range hash {
			hash[i] = byte(p.rng.Uint32())
		}
		e := &mlpb.IndexEntry{Version: ptr(int64(v)), Position: &mlpb.PositionInfo{LedgerId: ptr(id), EntryId: ptr(int64(0))}, Hash: hash}
		loc.Index = append(loc.Index, e)
		loc.Info = e
		s.Ledgers = append(s.Ledgers, id)
	}
	p.create(path, encode(loc, managedledger.Plain))
	p.sum.Schemas = append(p.sum.Schemas, s)
}

// liveBrokers adds what running brokers and bookies hold: ephemerals on the caller's session,
// and the persistent load data they leave behind.
func (p *plan) liveBrokers() {
	for i := range p.o.Brokers {
		host := brokerHost(i)
		p.createEphemeral(fmt.Sprintf("/loadbalance/brokers/%s:8080", host), localBrokerData(p.rng, host))
		p.create(fmt.Sprintf("/loadbalance/broker-time-average/%s:8080", host), timeAverage(p.rng))
	}
	for _, b := range p.bookies()[:p.o.Brokers] {
		p.createEphemeral("/ledgers/available/"+b, nil)
	}
	if p.o.Brokers == 0 {
		return
	}
	p.createEphemeral("/loadbalance/leader", []byte(fmt.Sprintf(`{"serviceUrl":"http://%s:8080"}`, brokerHost(0))))
	// Every namespace's single bundle is owned by a broker, round robin.
	for i, ns := range p.namespaces {
		p.createEphemeral(fmt.Sprintf("/namespace/%s/%s", ns, bundle), ownership(brokerHost(i%p.o.Brokers)))
	}
}

// encode writes a generated message in format f; NONE with a header is what a broker never
// writes but must read.
func encode(m proto.Message, f managedledger.Format) []byte {
	var (
		b   []byte
		err error
	)
	if f.Header && f.Compression == mlpb.CompressionType_NONE {
		var plain []byte
		if plain, err = proto.Marshal(m); err == nil {
			b, err = managedledger.Compress(plain, mlpb.CompressionType_NONE)
		}
	} else {
		b, err = managedledger.Encode(m, f.Compression)
	}
	if err != nil {
		panic(fmt.Sprintf("pulsartree: encode generated %T: %v", m, err)) // generated messages always encode
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func position(l, e int64) *mlpb.NestedPositionInfo {
	return &mlpb.NestedPositionInfo{LedgerId: ptr(l), EntryId: ptr(e)}
}

func keyValue(k, v string) *mlpb.KeyValue { return &mlpb.KeyValue{Key: ptr(k), Value: ptr(v)} }

func s3Driver() *mlpb.OffloadDriverMetadata {
	return &mlpb.OffloadDriverMetadata{
		Name: ptr("aws-s3"),
		Properties: []*mlpb.KeyValue{
			keyValue("bucket", "pulsar-offload"),
			keyValue("region", "eu-west-1"),
			keyValue("endpoint", "https://s3.eu-west-1.amazonaws.com"),
		},
	}
}
