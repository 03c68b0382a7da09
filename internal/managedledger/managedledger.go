// Package managedledger reads and rewrites the managed-ledger metadata Apache Pulsar brokers
// keep in ZooKeeper: the ManagedLedgerInfo at <managedLedgerPath>/<tenant>/<ns>/persistent/<topic>,
// the ManagedCursorInfo of each of its children (one per subscription), and the SchemaLocator
// under /schemas.
//
// A payload is either plain protobuf or, when the broker sets managedLedgerInfoCompressionType
// or managedCursorInfoCompressionType, the compressed form
//
//	[uint16 BE magic 0x4778][uint32 BE metadata length][...InfoMetadata][compressed message]
//
// Decode and DecodeCursor read both; Encode and Compress write the forms a broker writes.
//
// Restore runs the tiered-storage rewrite: a new cluster has a new, empty BookKeeper, so only
// ledgers fully offloaded to tiered storage can still be read (RewriteLedger), and cursors
// must stop pointing into BookKeeper (RewriteCursor).
//
// Fields this package does not declare (added by forks or newer brokers) are kept as unknown
// fields and written back byte for byte. Required fields are not enforced on either side: a
// payload is carried as the broker wrote it.
//
// Nothing here talks to ZooKeeper.
package managedledger

import (
	"fmt"
	"strings"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/proto"
)

// Format is how a payload was stored.
type Format struct {
	// Header is true when the payload had the 0x4778 compression header, even one naming
	// NONE (brokers do not write that, but read it).
	Header bool
	// Compression is the codec named in the header; NONE for a plain payload.
	Compression mlpb.CompressionType
}

// Plain is the format of an uncompressed protobuf payload.
var Plain = Format{}

// String is "plain", or the codec in lower case ("lz4", "zlib", "zstd", "snappy", "none")
// with a header.
func (f Format) String() string {
	if !f.Header {
		return "plain"
	}
	return strings.ToLower(f.Compression.String())
}

// Position is a managed-ledger position: an entry in a ledger. EntryID -1 is the position
// before the ledger's first entry.
type Position struct {
	LedgerID int64
	EntryID  int64
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.LedgerID, p.EntryID) }

// Less orders positions as Pulsar does: by ledger, then by entry.
func (p Position) Less(q Position) bool {
	if p.LedgerID != q.LedgerID {
		return p.LedgerID < q.LedgerID
	}
	return p.EntryID < q.EntryID
}

// Decoding is lenient about required fields (see the package comment); encoding keeps
// whatever the message holds, unknown fields included.
var (
	unmarshalOpts = proto.UnmarshalOptions{AllowPartial: true}
	marshalOpts   = proto.MarshalOptions{AllowPartial: true}
)
