package managedledger

import (
	"bytes"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// wire builds protobuf bytes field by field, so tests do not depend on the code under test to
// produce their inputs.
type wire []byte

func (w wire) varint(num protowire.Number, v int64) wire {
	w = protowire.AppendTag(w, num, protowire.VarintType)
	return protowire.AppendVarint(w, uint64(v))
}

func (w wire) bytes(num protowire.Number, b []byte) wire {
	w = protowire.AppendTag(w, num, protowire.BytesType)
	return protowire.AppendBytes(w, b)
}

func (w wire) fixed64(num protowire.Number, v uint64) wire {
	w = protowire.AppendTag(w, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(w, v)
}

func (w wire) fixed32(num protowire.Number, v uint32) wire {
	w = protowire.AppendTag(w, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(w, v)
}

func (w wire) group(num protowire.Number, inner wire) wire {
	w = protowire.AppendTag(w, num, protowire.StartGroupType)
	w = append(w, inner...)
	return protowire.AppendTag(w, num, protowire.EndGroupType)
}

func (w wire) raw(b []byte) wire { return append(w, b...) }

// Unknown fields a fork or a newer broker might add, at each level. Known fields come first
// and in number order, unknown ones last: how every protobuf runtime writes a message, so
// decoding and re-encoding must give back the very same bytes.
var (
	unknownOffload = wire{}.varint(40, 7).bytes(41, []byte("fork\x00data"))
	unknownLedger  = wire{}.fixed64(50, 0x0102030405060708).fixed32(51, 0xdeadbeef)
	unknownTop     = wire{}.bytes(60, []byte("top-level")).group(61, wire{}.varint(1, 1).bytes(2, []byte("g")))
	unknownRange   = wire{}.varint(9, 3)
	unknownCursor  = wire{}.bytes(30, []byte("cursor-ext")).varint(31, -5)
)

func driver() wire {
	return wire{}.bytes(1, []byte("aws-s3")).bytes(2, wire{}.bytes(1, []byte("bucket")).bytes(2, []byte("b")))
}

func offloadCtx(bkDeleted bool) wire {
	w := wire{}.varint(1, 11).varint(2, -12).varint(3, 1)
	if bkDeleted {
		w = w.varint(4, 1)
	}
	return w.varint(5, 1_700_000_000_000).bytes(6, driver()).raw(unknownOffload)
}

func ledgerWire(bkDeleted bool) wire {
	return wire{}.varint(1, 10).varint(2, 100).varint(3, 4096).varint(4, 1_700_000_000_000).
		bytes(5, offloadCtx(bkDeleted)).bytes(6, wire{}.bytes(1, []byte("k")).bytes(2, []byte("v"))).raw(unknownLedger)
}

func mlWire(bkDeleted, withDropped bool) wire {
	w := wire{}.bytes(1, ledgerWire(bkDeleted))
	if withDropped {
		w = w.bytes(1, wire{}.varint(1, 20).varint(2, 5).raw(unknownLedger))
	}
	return w.bytes(2, wire{}.varint(1, 20).varint(2, 4)).
		bytes(3, wire{}.bytes(1, []byte("prop")).bytes(2, []byte("value"))).
		raw(unknownTop)
}

func cursorWire(cursorsLedger, mdLedger, mdEntry int64) wire {
	pos := func(l, e int64) []byte { return wire{}.varint(1, l).varint(2, e) }
	return wire{}.varint(1, cursorsLedger).varint(2, mdLedger).varint(3, mdEntry).
		bytes(4, wire{}.bytes(1, pos(10, 3)).bytes(2, pos(10, 6)).raw(unknownRange)).
		varint(6, 1_700_000_000_000).
		raw(unknownCursor)
}

func TestUnknownFieldsRoundTripByteForByte(t *testing.T) {
	for _, c := range allCodecs {
		in := mlWire(false, true)
		payload, err := Compress(in, c)
		if err != nil {
			t.Fatal(err)
		}
		info, _, err := Decode(payload)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if len(info.ProtoReflect().GetUnknown()) == 0 || len(info.LedgerInfo[0].ProtoReflect().GetUnknown()) == 0 ||
			len(info.LedgerInfo[0].OffloadContext.ProtoReflect().GetUnknown()) == 0 {
			t.Fatalf("%s: unknown fields not kept", c)
		}
		out, err := marshalOpts.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Errorf("%s: re-encoded\n% x\nwant\n% x", c, out, []byte(in))
		}
	}
	cursor := cursorWire(77, 10, 2)
	ci, _, err := DecodeCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := marshalOpts.Marshal(ci); !bytes.Equal(out, cursor) {
		t.Errorf("cursor re-encoded\n% x\nwant\n% x", out, []byte(cursor))
	}
}

func TestRewriteLedgerPreservesUnknownFields(t *testing.T) {
	out, r, err := RewriteLedger(mlWire(false, true))
	if err != nil {
		t.Fatal(err)
	}
	// Kept ledger 10 (bookkeeperDeleted set), the tail at dropped ledger 20, and the
	// terminated position 20:4 clamped to the last kept entry, 10:99.
	want := wire{}.bytes(1, ledgerWire(true)).bytes(1, wire{}.varint(1, 20).varint(2, 0)).
		bytes(2, wire{}.varint(1, 10).varint(2, 99)).
		bytes(3, wire{}.bytes(1, []byte("prop")).bytes(2, []byte("value"))).
		raw(unknownTop)
	if !bytes.Equal(out, want) {
		t.Errorf("rewritten\n% x\nwant\n% x", out, []byte(want))
	}
	if len(r.Kept) != 1 || r.Dropped[0] != 20 {
		t.Errorf("%+v", r)
	}
}

func TestRewriteCursorPreservesUnknownFields(t *testing.T) {
	// Mark-delete (20, 2) is in a dropped ledger and moves to the end of kept ledger 10.
	out, r, err := RewriteCursor(cursorWire(77, 20, 2), []KeptLedger{{10, 100}}, CursorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := cursorWire(-1, 10, 99); !bytes.Equal(out, want) {
		t.Errorf("rewritten\n% x\nwant\n% x", out, []byte(want))
	}
	if !r.Moved {
		t.Errorf("%+v", r)
	}
}

func TestUnknownFieldsOutOfOrderKeepTheirBytes(t *testing.T) {
	// Unknown fields between known ones move behind them on re-encoding (as in Java's
	// runtime), byte for byte.
	in := wire{}.raw(unknownTop).bytes(1, ledgerWire(false)).raw(unknownCursor).bytes(3, wire{}.bytes(1, []byte("p")).bytes(2, []byte("q")))
	out, _, err := RewriteLedger(in)
	if err != nil {
		t.Fatal(err)
	}
	info := &mlpb.ManagedLedgerInfo{}
	if err := proto.Unmarshal(out, info); err != nil {
		t.Fatal(err)
	}
	if got, want := []byte(info.ProtoReflect().GetUnknown()), append(append([]byte{}, unknownTop...), unknownCursor...); !bytes.Equal(got, want) {
		t.Errorf("unknown bytes\n% x\nwant\n% x", got, want)
	}
}
