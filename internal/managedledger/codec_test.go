package managedledger

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestEncodeDecodeRoundTripEveryCodec(t *testing.T) {
	big := sampleLedger()
	for i := int64(0); i < 500; i++ {
		big.LedgerInfo = append(big.LedgerInfo, offloaded(1000+i, i, i%2 == 0))
	}
	msgs := map[string]*mlpb.ManagedLedgerInfo{"empty": {}, "sample": sampleLedger(), "big": big}
	for _, c := range allCodecs {
		for name, msg := range msgs {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				payload, err := Encode(msg, c)
				if err != nil {
					t.Fatal(err)
				}
				wantHeader := c != mlpb.CompressionType_NONE
				if got := len(payload) >= 2 && binary.BigEndian.Uint16(payload) == Magic; got != wantHeader {
					t.Fatalf("header present = %v, want %v", got, wantHeader)
				}
				got, f, err := Decode(payload)
				if err != nil {
					t.Fatal(err)
				}
				if want := (Format{Header: wantHeader, Compression: c}); f != want {
					t.Errorf("format = %+v, want %+v", f, want)
				}
				if !proto.Equal(got, msg) {
					t.Errorf("decoded message differs")
				}
			})
		}
	}
}

func TestCompressCursorEveryCodecWithHeader(t *testing.T) {
	msg := sampleCursor()
	plain, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range allCodecs {
		payload, err := Compress(plain, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		got, f, err := DecodeCursor(payload)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !f.Header || f.Compression != c {
			t.Errorf("%s: format %v", c, f)
		}
		if !proto.Equal(got, msg) {
			t.Errorf("%s: decoded cursor differs", c)
		}
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{
		Plain: "plain",
		{Header: true, Compression: mlpb.CompressionType_NONE}: "none",
		{Header: true, Compression: mlpb.CompressionType_ZSTD}: "zstd",
	} {
		if got := f.String(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}

// header builds the compressed form's header by hand: magic, metadata length, and a metadata
// message with the given fields (a negative codec or size leaves that field out).
func header(codec, size int64) []byte {
	var md []byte
	if codec >= 0 {
		md = protowire.AppendTag(md, 1, protowire.VarintType)
		md = protowire.AppendVarint(md, uint64(codec))
	}
	if size != -1 {
		md = protowire.AppendTag(md, 2, protowire.VarintType)
		md = protowire.AppendVarint(md, uint64(size))
	}
	out := []byte{0x47, 0x78}
	out = binary.BigEndian.AppendUint32(out, uint32(len(md)))
	return append(out, md...)
}

// Bodies built without the libraries the package uses, from the formats' specifications.
func handLZ4(p []byte) []byte { // one literal-only sequence
	n := len(p)
	var out []byte
	if n < 15 {
		out = append(out, byte(n<<4))
	} else {
		out = append(out, 0xF0)
		rest := n - 15
		for ; rest >= 255; rest -= 255 {
			out = append(out, 255)
		}
		out = append(out, byte(rest))
	}
	return append(out, p...)
}

func handSnappy(p []byte) []byte { // varint length, then one literal element (len <= 60)
	out := binary.AppendUvarint(nil, uint64(len(p)))
	out = append(out, byte(len(p)-1)<<2)
	return append(out, p...)
}

func handZstd(p []byte) []byte { // single-segment frame, 1-byte content size, one raw block
	out := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x20, byte(len(p))}
	bh := uint32(1) | uint32(len(p))<<3 // last block, raw
	out = append(out, byte(bh), byte(bh>>8), byte(bh>>16))
	return append(out, p...)
}

// javaZlib is what Java's Deflater writes with SYNC_FLUSH and no finish(): a zlib header,
// deflate data ending in an empty stored block, no final block and no Adler-32.
func javaZlib(t *testing.T, p []byte) []byte {
	var buf bytes.Buffer
	buf.Write([]byte{0x78, 0x9C})
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	return buf.Bytes()
}

func TestDecodeHandBuiltCompressedForms(t *testing.T) {
	msg := &mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{inBookKeeper(7, 3)}}
	plain, _ := proto.Marshal(msg)
	if len(plain) > 60 {
		t.Fatalf("sample too long for the hand-built snappy literal: %d", len(plain))
	}
	n := int64(len(plain))
	cases := map[string][]byte{
		"none":        append(header(0, n), plain...),
		"none-nosize": append(header(0, -1), plain...),
		"lz4":         append(header(1, n), handLZ4(plain)...),
		"lz4-long":    nil, // filled below
		"zlib-java":   append(header(2, n), javaZlib(t, plain)...),
		"zstd-raw":    append(header(3, n), handZstd(plain)...),
		"snappy":      append(header(4, n), handSnappy(plain)...),
	}
	// A literal run of 15+ bytes needs the extended length bytes.
	long := &mlpb.ManagedLedgerInfo{Properties: []*mlpb.KeyValue{kv(strings.Repeat("k", 300), strings.Repeat("v", 300))}}
	longPlain, _ := proto.Marshal(long)
	cases["lz4-long"] = append(header(1, int64(len(longPlain))), handLZ4(longPlain)...)

	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			got, f, err := Decode(payload)
			if err != nil {
				t.Fatal(err)
			}
			want := msg
			if name == "lz4-long" {
				want = long
			}
			if !proto.Equal(got, want) {
				t.Errorf("decoded %v", got)
			}
			if !f.Header {
				t.Errorf("format %v has no header", f)
			}
		})
	}
}

func TestEncodeZlibLikeJava(t *testing.T) {
	// The encoder's ZLIB body must be what the broker writes: decodable by a plain inflater
	// and not finished (no final block), which a reader expecting a closed stream rejects.
	payload, err := Encode(sampleLedger(), mlpb.CompressionType_ZLIB)
	if err != nil {
		t.Fatal(err)
	}
	mdLen := binary.BigEndian.Uint32(payload[2:])
	body := payload[headerLen+mdLen:]
	if body[0] != 0x78 {
		t.Fatalf("zlib header byte %#x", body[0])
	}
	if !bytes.HasSuffix(body, []byte{0, 0, 0xff, 0xff}) {
		t.Errorf("body does not end with a sync flush marker: % x", body[len(body)-8:])
	}
}

func TestDecodeHostileInputs(t *testing.T) {
	plain, _ := proto.Marshal(sampleLedger())
	n := int64(len(plain))
	lz4Body, _ := lz4Block(plain)
	zstdBody, _ := compressBody(plain, mlpb.CompressionType_ZSTD)
	snappyBody, _ := compressBody(plain, mlpb.CompressionType_SNAPPY)
	zlibBody, _ := compressBody(plain, mlpb.CompressionType_ZLIB)

	hugeMD := []byte{0x47, 0x78, 0xff, 0xff, 0xff, 0xff, 0x08, 0x01}
	cases := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"magic only", []byte{0x47, 0x78}, "truncated compression header"},
		{"truncated length", []byte{0x47, 0x78, 0, 0, 0}, "truncated compression header"},
		{"metadata longer than payload", []byte{0x47, 0x78, 0, 0, 0, 9, 0x08, 0x01}, "compression metadata length 9"},
		{"metadata length 4 GiB", hugeMD, "compression metadata length 4294967295"},
		{"metadata garbage", append([]byte{0x47, 0x78, 0, 0, 0, 2}, 0xff, 0xff), "compression metadata"},
		{"unknown codec", append(header(9, n), plain...), "unknown compression type 9"},
		{"no codec", append(header(-1, n), plain...), "names no compression type"},
		{"lz4 without size", append(header(1, -1), lz4Body...), "no uncompressed size"},
		{"negative size", append(header(1, -5), lz4Body...), "outside 0..67108864"},
		{"size over the cap", append(header(2, MaxUncompressedSize+1), zlibBody...), "outside 0..67108864"},
		{"lz4 huge declared size", append(header(1, 60<<20), lz4Body...), "lz4 block: header declares"},
		{"lz4 size too small", append(header(1, n-1), lz4Body...), "lz4 block:"},
		{"lz4 size too large", append(header(1, n+1), lz4Body...), "lz4 block:"},
		{"lz4 garbage", append(header(1, n), 0xff, 0xff, 0xff), "lz4 block:"},
		{"lz4 truncated", append(header(1, n), lz4Body[:len(lz4Body)/2]...), "lz4 block:"},
		{"zlib garbage", append(header(2, n), 0x01, 0x02, 0x03), "zlib:"},
		{"zlib truncated", append(header(2, n), zlibBody[:len(zlibBody)/2]...), "zlib:"},
		{"zlib size too small", append(header(2, n-1), zlibBody...), "more than the"},
		{"zlib size too large", append(header(2, n+1), zlibBody...), "zlib: decompressed to"},
		{"zstd garbage", append(header(3, n), 0x28, 0xb5, 0x2f, 0xfd, 0xff), "zstd:"},
		{"zstd size mismatch", append(header(3, n+3), zstdBody...), "zstd:"},
		{"snappy garbage", append(header(4, n), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "snappy block:"},
		{"snappy size mismatch", append(header(4, n+1), snappyBody...), "snappy block: block holds"},
		{"snappy huge declared", append(header(4, 50<<20), 0x80, 0x80, 0x80, 0x19, 0x00), "snappy block:"},
		{"plain garbage", []byte{0xff, 0xff, 0xff, 0xff}, "managed-ledger info: protobuf:"},
		{"plain truncated", plain[:len(plain)-3], "managed-ledger info: protobuf:"},
		{"none body garbage", append(header(0, 3), 0x0a, 0xff, 0x01), "protobuf after none decompression"},
		{"wire type 7", []byte{0x47}, "managed-ledger info: protobuf:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(tc.payload)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "managed-ledger info: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line starting %q containing %q", msg, "managed-ledger info: ", tc.want)
			}
			_, _, err = DecodeCursor(tc.payload)
			if err == nil || !strings.HasPrefix(err.Error(), "managed-cursor info: ") {
				t.Errorf("cursor error %v", err)
			}
		})
	}
}

func TestDecodeEmptyPayload(t *testing.T) {
	// Brokers create the managed ledger's znode empty before the first update.
	info, f, err := Decode(nil)
	if err != nil || f != Plain || len(info.GetLedgerInfo()) != 0 {
		t.Fatalf("Decode(empty) = %v, %v, %v", info, f, err)
	}
}

func TestErrorNamesCodec(t *testing.T) {
	_, _, err := Decode(append(header(1, 10), 0xff))
	if err == nil || !strings.HasPrefix(err.Error(), "managed-ledger info: lz4 block: ") {
		t.Errorf("error %v", err)
	}
}

func TestCompressRefusesUnknownCodec(t *testing.T) {
	if _, err := Compress([]byte{1}, mlpb.CompressionType(9)); err == nil {
		t.Error("no error")
	}
}
