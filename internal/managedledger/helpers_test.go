package managedledger

import (
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/proto"
)

var allCodecs = []mlpb.CompressionType{
	mlpb.CompressionType_NONE,
	mlpb.CompressionType_LZ4,
	mlpb.CompressionType_ZLIB,
	mlpb.CompressionType_ZSTD,
	mlpb.CompressionType_SNAPPY,
}

func kv(k, v string) *mlpb.KeyValue {
	return &mlpb.KeyValue{Key: proto.String(k), Value: proto.String(v)}
}

func pos(l, e int64) *mlpb.NestedPositionInfo {
	return &mlpb.NestedPositionInfo{LedgerId: proto.Int64(l), EntryId: proto.Int64(e)}
}

// offloaded is a ledger offloaded to S3; complete says whether the offload finished.
func offloaded(id, entries int64, complete bool) *mlpb.ManagedLedgerInfo_LedgerInfo {
	return &mlpb.ManagedLedgerInfo_LedgerInfo{
		LedgerId:  proto.Int64(id),
		Entries:   proto.Int64(entries),
		Size:      proto.Int64(entries * 1024),
		Timestamp: proto.Int64(1_700_000_000_000 + id),
		OffloadContext: &mlpb.OffloadContext{
			UidMsb:    proto.Int64(0x1234_5678_9abc_def0),
			UidLsb:    proto.Int64(-42 - id),
			Complete:  proto.Bool(complete),
			Timestamp: proto.Int64(1_700_000_100_000 + id),
			DriverMetadata: &mlpb.OffloadDriverMetadata{
				Name: proto.String("aws-s3"),
				Properties: []*mlpb.KeyValue{
					kv("bucket", "pulsar-offload"), kv("region", "eu-west-1"), kv("endpoint", "https://s3.eu-west-1.amazonaws.com"),
				},
			},
		},
	}
}

// inBookKeeper is a ledger never offloaded.
func inBookKeeper(id, entries int64) *mlpb.ManagedLedgerInfo_LedgerInfo {
	return &mlpb.ManagedLedgerInfo_LedgerInfo{
		LedgerId:  proto.Int64(id),
		Entries:   proto.Int64(entries),
		Size:      proto.Int64(entries * 512),
		Timestamp: proto.Int64(1_700_000_000_000 + id),
	}
}

// sampleLedger has ledgers 10 (offloaded), 20 (offload incomplete), 30 (offloaded), 40 (only
// in BookKeeper) and 50 (the open ledger, no entries known).
func sampleLedger() *mlpb.ManagedLedgerInfo {
	return &mlpb.ManagedLedgerInfo{
		LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{
			offloaded(10, 100, true),
			offloaded(20, 80, false),
			offloaded(30, 50, true),
			inBookKeeper(40, 25),
			{LedgerId: proto.Int64(50), Timestamp: proto.Int64(0)},
		},
		TerminatedPosition: pos(40, 24),
		Properties:         []*mlpb.KeyValue{kv("pulsar.ml.owner", "broker-1")},
	}
}

func sampleCursor() *mlpb.ManagedCursorInfo {
	return &mlpb.ManagedCursorInfo{
		CursorsLedgerId:    proto.Int64(77),
		MarkDeleteLedgerId: proto.Int64(30),
		MarkDeleteEntryId:  proto.Int64(9),
		IndividualDeletedMessages: []*mlpb.MessageRange{
			{LowerEndpoint: pos(30, 11), UpperEndpoint: pos(30, 14)},
		},
		Properties:       []*mlpb.LongProperty{{Name: proto.String("#pulsar.internal.seq"), Value: proto.Int64(7)}},
		LastActive:       proto.Int64(1_700_000_200_000),
		CursorProperties: []*mlpb.StringProperty{{Name: proto.String("app"), Value: proto.String("billing")}},
	}
}
