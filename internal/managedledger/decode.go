package managedledger

import (
	"fmt"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/proto"
)

const (
	ledgerWhat = "managed-ledger info"
	cursorWhat = "managed-cursor info"
)

// Decode parses a managed ledger's znode payload, plain or compressed, and says which form it
// had. An empty payload is an empty ManagedLedgerInfo: a broker creates the znode empty.
// Errors are one line, starting "managed-ledger info: ".
func Decode(payload []byte) (*mlpb.ManagedLedgerInfo, Format, error) {
	plain, f, err := decompress(ledgerWhat, payload)
	if err != nil {
		return nil, f, err
	}
	info := &mlpb.ManagedLedgerInfo{}
	if err := unmarshalOpts.Unmarshal(plain, info); err != nil {
		return nil, f, protoError(ledgerWhat, f, err)
	}
	return info, f, nil
}

// DecodeCursor parses a cursor's znode payload, plain or compressed, like Decode. Errors start
// "managed-cursor info: ".
func DecodeCursor(payload []byte) (*mlpb.ManagedCursorInfo, Format, error) {
	plain, f, err := decompress(cursorWhat, payload)
	if err != nil {
		return nil, f, err
	}
	info := &mlpb.ManagedCursorInfo{}
	if err := unmarshalOpts.Unmarshal(plain, info); err != nil {
		return nil, f, protoError(cursorWhat, f, err)
	}
	return info, f, nil
}

// Encode serializes msg (a ManagedLedgerInfo or ManagedCursorInfo; any message works) the
// way a broker configured with compression c writes it: plain protobuf for NONE, the
// compressed form otherwise. Use Compress for the header form with NONE. Unknown fields in
// msg are written as they are.
func Encode(msg proto.Message, c mlpb.CompressionType) ([]byte, error) {
	plain, err := marshalOpts.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", msg.ProtoReflect().Descriptor().Name(), err)
	}
	if c == mlpb.CompressionType_NONE {
		return plain, nil
	}
	return Compress(plain, c)
}

func protoError(what string, f Format, err error) error {
	if f.Header {
		return fmt.Errorf("%s: protobuf after %s decompression: %w", what, f, err)
	}
	return fmt.Errorf("%s: protobuf: %w", what, err)
}
