package managedledger

import (
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode feeds arbitrary payloads to every entry point that takes one: none may panic,
// and whatever decodes must survive a re-encode unchanged.
func FuzzDecode(f *testing.F) {
	ml, _ := proto.Marshal(sampleLedger())
	cur, _ := proto.Marshal(sampleCursor())
	for _, c := range allCodecs {
		for _, plain := range [][]byte{ml, cur, nil} {
			b, err := Compress(plain, c)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add(ml)
	f.Add(cur)
	f.Add([]byte(mlWire(false, true)))
	f.Add([]byte(cursorWire(1, 2, 3)))
	f.Add([]byte{0x47, 0x78})
	f.Add([]byte{0x47, 0x78, 0, 0, 0, 4, 0x08, 0x01, 0x10, 0x7f, 0xff})
	f.Add(header(1, 60<<20))
	f.Add(append(header(3, 100), 0x28, 0xb5, 0x2f, 0xfd, 0x00))
	kept := []KeptLedger{{10, 100}, {30, 50}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if info, _, err := Decode(payload); err == nil {
			re, err := Encode(info, mlpb.CompressionType_ZSTD)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := Decode(re)
			if err != nil || !proto.Equal(info, again) {
				t.Fatalf("re-encoded info does not decode to itself: %v", err)
			}
		}
		_, _, _ = DecodeCursor(payload)
		_, _, _ = RewriteLedger(payload)
		_, _, _ = RewriteCursor(payload, kept, CursorOptions{Compaction: true, LastActive: 1})
		_, _ = SchemaLedgers(payload)
	})
}
