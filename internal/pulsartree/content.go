package pulsartree

// The data of the generated znodes, shaped like what Pulsar 3.x and BookKeeper 4.16 write.
// Only the managed-ledger and schema payloads must be exact (a restore decodes them); the
// rest is realistic filler of realistic size.

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/encoding/protowire"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("pulsartree: marshal %T: %v", v, err)) // maps of plain values always marshal
	}
	return b
}

// round2 keeps generated rates short in JSON.
func round2(f float64) float64 { return math.Round(f*100) / 100 }

func uuidFrom(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

func clusterData() []byte {
	return mustJSON(map[string]any{
		"serviceUrl":       "http://pulsar-broker:8080",
		"brokerServiceUrl": "pulsar://pulsar-broker:6650",
		"peerClusterNames": nil,
	})
}

func tenantInfo() []byte {
	return mustJSON(map[string]any{"adminRoles": []string{"admin"}, "allowedClusters": []string{clusterName}})
}

func namespacePolicies(rng *rand.Rand) []byte {
	return mustJSON(map[string]any{
		"auth_policies":        map[string]any{"namespace_auth": map[string]any{}, "destination_auth": map[string]any{}, "subscription_auth_roles": map[string]any{}},
		"replication_clusters": []string{clusterName},
		"bundles":              map[string]any{"boundaries": []string{"0x00000000", "0xffffffff"}, "numBundles": 1},
		"backlog_quota_map": map[string]any{
			"destination_storage": map[string]any{"limitSize": 10 << 30, "limitTime": -1, "policy": "producer_request_hold"},
		},
		"message_ttl_in_seconds":                    3600 * (1 + rng.IntN(72)),
		"retention_policies":                        map[string]any{"retentionTimeInMinutes": 60 * (1 + rng.IntN(168)), "retentionSizeInMB": 1024 * (1 + rng.IntN(100))},
		"deleted":                                   false,
		"encryption_required":                       false,
		"subscription_auth_mode":                    "None",
		"offload_threshold":                         1 << 30,
		"schema_auto_update_compatibility_strategy": "Full",
		"is_allow_auto_update_schema":               true,
		"offload_policies": map[string]any{
			"managedLedgerOffloadDriver":            "aws-s3",
			"s3ManagedLedgerOffloadBucket":          "pulsar-offload",
			"s3ManagedLedgerOffloadRegion":          "eu-west-1",
			"s3ManagedLedgerOffloadServiceEndpoint": "https://s3.eu-west-1.amazonaws.com",
			"managedLedgerOffloadedReadPriority":    "TIERED_STORAGE_FIRST",
		},
	})
}

func partitionedTopic(partitions int) []byte {
	return mustJSON(map[string]any{"partitions": partitions, "deleted": false})
}

func bundleData(rng *rand.Rand) []byte {
	sample := func() map[string]any {
		return map[string]any{
			"maxSamples":       1000,
			"numSamples":       rng.IntN(1000),
			"msgThroughputIn":  round2(rng.Float64() * 1e6),
			"msgThroughputOut": round2(rng.Float64() * 2e6),
			"msgRateIn":        round2(rng.Float64() * 1e3),
			"msgRateOut":       round2(rng.Float64() * 2e3),
		}
	}
	return mustJSON(map[string]any{"shortTermData": sample(), "longTermData": sample(), "topics": 1 + rng.IntN(20)})
}

func resourceQuota() []byte {
	return mustJSON(map[string]any{"msgRateIn": 40, "msgRateOut": 120, "bandwidthIn": 100000, "bandwidthOut": 300000, "memory": 80, "dynamic": true})
}

func localBrokerData(rng *rand.Rand, host string) []byte {
	usage := func(limit float64) map[string]any {
		return map[string]any{"usage": round2(rng.Float64() * limit), "limit": limit}
	}
	return mustJSON(map[string]any{
		"webServiceUrl":              "http://" + host + ":8080",
		"pulsarServiceUrl":           "pulsar://" + host + ":6650",
		"persistentTopicsEnabled":    true,
		"nonPersistentTopicsEnabled": true,
		"cpu":                        usage(400),
		"memory":                     usage(4096),
		"directMemory":               usage(4096),
		"bandwidthIn":                usage(1e6),
		"bandwidthOut":               usage(1e6),
		"msgThroughputIn":            round2(rng.Float64() * 1e6),
		"msgThroughputOut":           round2(rng.Float64() * 1e6),
		"msgRateIn":                  round2(rng.Float64() * 1e3),
		"msgRateOut":                 round2(rng.Float64() * 1e3),
		"lastUpdate":                 baseTime + 86_400_000,
		"numTopics":                  rng.IntN(1000),
		"numBundles":                 rng.IntN(64),
		"brokerVersionString":        "3.0.7",
		"advertisedListeners":        map[string]any{},
	})
}

func timeAverage(rng *rand.Rand) []byte {
	return mustJSON(map[string]any{
		"shortTermMsgThroughputIn": round2(rng.Float64() * 1e6), "shortTermMsgThroughputOut": round2(rng.Float64() * 1e6),
		"longTermMsgThroughputIn": round2(rng.Float64() * 1e6), "longTermMsgThroughputOut": round2(rng.Float64() * 1e6),
	})
}

func ownership(host string) []byte {
	return mustJSON(map[string]any{
		"nativeUrl": "pulsar://" + host + ":6650", "httpUrl": "http://" + host + ":8080",
		"disabled": false, "advertisedListeners": map[string]any{},
	})
}

func bookieCookie(bookie, instanceID string) []byte {
	return fmt.Appendf(nil, "4\nbookieHost: %q\njournalDir: \"/pulsar/data/bookkeeper/journal\"\nledgerDirs: \"1\\t/pulsar/data/bookkeeper/ledgers\"\ninstanceId: %q\n", bookie, instanceID)
}

func bookieRacks(bookies []string) []byte {
	group := map[string]any{}
	for i, b := range bookies {
		group[b] = map[string]any{"rack": fmt.Sprintf("/rack-%d", i%2), "hostname": fmt.Sprintf("bookie-%d", i)}
	}
	return mustJSON(map[string]any{"default": group})
}

// bookKeeperLedger is BookKeeper's ledger metadata format 3: a version line, then a
// length-delimited LedgerMetadataFormat protobuf (quorumSize 1, ensembleSize 2, length 3,
// lastEntryId 4, state 5, segment 6, digestType 7, password 8, ackQuorumSize 9, ctime 10,
// customMetadata 11).
func bookKeeperLedger(rng *rand.Rand, id, entries int64, open bool, bookies []string, custom map[string]string) []byte {
	ensemble := min(len(bookies), 3)
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(min(ensemble, 2)))
	m = protowire.AppendTag(m, 2, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(ensemble))
	m = protowire.AppendTag(m, 3, protowire.VarintType)
	length := int64(0)
	if !open {
		length = entries * (200 + rng.Int64N(2000))
	}
	m = protowire.AppendVarint(m, uint64(length))
	state := uint64(1) // OPEN
	if !open {
		m = protowire.AppendTag(m, 4, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(entries-1))
		state = 3 // CLOSED
	}
	m = protowire.AppendTag(m, 5, protowire.VarintType)
	m = protowire.AppendVarint(m, state)
	var seg []byte
	for i := range ensemble {
		seg = protowire.AppendTag(seg, 1, protowire.BytesType)
		seg = protowire.AppendString(seg, bookies[(int(id)+i)%len(bookies)])
	}
	seg = protowire.AppendTag(seg, 2, protowire.VarintType)
	seg = protowire.AppendVarint(seg, 0)
	m = protowire.AppendTag(m, 6, protowire.BytesType)
	m = protowire.AppendBytes(m, seg)
	m = protowire.AppendTag(m, 7, protowire.VarintType)
	m = protowire.AppendVarint(m, 3) // CRC32C
	m = protowire.AppendTag(m, 8, protowire.BytesType)
	m = protowire.AppendBytes(m, nil)
	m = protowire.AppendTag(m, 9, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(min(ensemble, 2)))
	m = protowire.AppendTag(m, 10, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(baseTime+id*60_000))
	for _, k := range sortedKeys(custom) {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, custom[k])
		m = protowire.AppendTag(m, 11, protowire.BytesType)
		m = protowire.AppendBytes(m, e)
	}
	out := []byte("BookieMetadataFormatVersion\t3\n")
	out = protowire.AppendVarint(out, uint64(len(m)))
	return append(out, m...)
}
