package managedledger

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
)

// Magic starts a compressed payload (Pulsar's MetaStoreImpl MAGIC_MANAGED_INFO_METADATA). A
// plain protobuf payload never starts with it: 0x47 would be field 8 with wire type 7, which
// does not exist.
const Magic = 0x4778

// headerLen is the magic and the metadata length.
const headerLen = 2 + 4

// MaxUncompressedSize is the largest decompressed message this package accepts. A znode holds
// at most about 1 MiB (jute.maxbuffer); 64 times that leaves room for any real compression
// ratio while refusing a hostile header that declares gigabytes.
const MaxUncompressedSize = 64 << 20

// maxMetadataLen bounds the header's metadata message, which holds two small fields.
const maxMetadataLen = 1 << 10

// Compress wraps a serialized message in the compressed form with codec c, always with the
// header (NONE included). It is what a broker writes with managed*InfoCompressionType set;
// a broker with NONE writes the plain message instead, as Encode does.
//
// ZLIB output matches Pulsar's CompressionCodecZLib: a zlib header and a sync-flushed deflate
// stream with neither a final block nor the Adler-32 trailer. LZ4 is one raw LZ4 block,
// ZSTD one zstd frame, SNAPPY one raw (unframed) snappy block.
func Compress(plain []byte, c mlpb.CompressionType) ([]byte, error) {
	if len(plain) > MaxUncompressedSize {
		return nil, fmt.Errorf("compress: message of %d bytes exceeds %d", len(plain), MaxUncompressedSize)
	}
	body, err := compressBody(plain, c)
	if err != nil {
		return nil, fmt.Errorf("compress %s: %w", codecName(c), err)
	}
	md := &mlpb.ManagedLedgerInfoMetadata{CompressionType: c.Enum(), UncompressedSize: ptr(int32(len(plain)))}
	mdBytes, err := marshalOpts.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("compress: metadata: %w", err)
	}
	out := make([]byte, headerLen, headerLen+len(mdBytes)+len(body))
	binary.BigEndian.PutUint16(out, Magic)
	binary.BigEndian.PutUint32(out[2:], uint32(len(mdBytes)))
	out = append(out, mdBytes...)
	return append(out, body...), nil
}

func compressBody(plain []byte, c mlpb.CompressionType) ([]byte, error) {
	switch c {
	case mlpb.CompressionType_NONE:
		return plain, nil
	case mlpb.CompressionType_LZ4:
		return lz4Block(plain)
	case mlpb.CompressionType_ZLIB:
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		if _, err := w.Write(plain); err != nil {
			return nil, err
		}
		// Flush, not Close: Java's Deflater with SYNC_FLUSH and no finish(), as the broker does.
		if err := w.Flush(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case mlpb.CompressionType_ZSTD:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(plain, nil), nil
	case mlpb.CompressionType_SNAPPY:
		return snappy.Encode(nil, plain), nil
	default:
		return nil, fmt.Errorf("unknown compression type %d", int32(c))
	}
}

// lz4Block is one raw LZ4 block, as Pulsar's CompressionCodecLZ4 writes.
func lz4Block(plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		// The one-token block a reference compressor writes for empty input; pierrec
		// returns nothing for it.
		return []byte{0}, nil
	}
	dst := make([]byte, lz4.CompressBlockBound(len(plain)))
	var c lz4.Compressor
	n, err := c.CompressBlock(plain, dst)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("lz4 compressor wrote nothing")
	}
	return dst[:n], nil
}

// decompress reads a payload's compressed form when it has the header; otherwise it returns
// the payload as it is with Plain. what names the message in errors ("managed-ledger info").
//
// Pulsar falls back to parsing the payload as plain protobuf when the compressed form fails
// to decode; that fallback cannot succeed (see Magic), so the compressed form's error is
// returned instead.
func decompress(what string, payload []byte) ([]byte, Format, error) {
	if len(payload) < 2 || binary.BigEndian.Uint16(payload) != Magic {
		return payload, Plain, nil
	}
	if len(payload) < headerLen {
		return nil, Format{}, fmt.Errorf("%s: truncated compression header: %d bytes", what, len(payload))
	}
	mdLen := binary.BigEndian.Uint32(payload[2:])
	rest := payload[headerLen:]
	if mdLen > maxMetadataLen || uint64(mdLen) > uint64(len(rest)) {
		return nil, Format{}, fmt.Errorf("%s: compression metadata length %d exceeds the %d bytes left", what, mdLen, min(len(rest), maxMetadataLen))
	}
	var md mlpb.ManagedLedgerInfoMetadata // wire-identical to ManagedCursorInfoMetadata
	if err := unmarshalOpts.Unmarshal(rest[:mdLen], &md); err != nil {
		return nil, Format{}, fmt.Errorf("%s: compression metadata: %w", what, err)
	}
	if md.CompressionType == nil {
		return nil, Format{}, fmt.Errorf("%s: compression metadata names no compression type", what)
	}
	if _, known := mlpb.CompressionType_name[int32(md.GetCompressionType())]; !known {
		return nil, Format{}, fmt.Errorf("%s: compression metadata names unknown compression type %d", what, int32(md.GetCompressionType()))
	}
	f := Format{Header: true, Compression: md.GetCompressionType()}
	body := rest[mdLen:]
	if f.Compression == mlpb.CompressionType_NONE {
		// Pulsar's CompressionCodecNone ignores the declared size, so this does too.
		return body, f, nil
	}
	if md.UncompressedSize == nil {
		return nil, f, fmt.Errorf("%s: compression metadata has no uncompressed size", what)
	}
	size := md.GetUncompressedSize()
	if size < 0 || size > MaxUncompressedSize {
		return nil, f, fmt.Errorf("%s: declared uncompressed size %d is outside 0..%d", what, size, MaxUncompressedSize)
	}
	plain, err := decompressBody(f.Compression, body, int(size))
	if err != nil {
		return nil, f, fmt.Errorf("%s: %s: %w", what, codecName(f.Compression), err)
	}
	return plain, f, nil
}

// codecName names a codec in errors the way the issue does: "lz4 block", "zlib", ...
func codecName(c mlpb.CompressionType) string {
	switch c {
	case mlpb.CompressionType_LZ4:
		return "lz4 block"
	case mlpb.CompressionType_SNAPPY:
		return "snappy block"
	case mlpb.CompressionType_ZSTD:
		return "zstd"
	case mlpb.CompressionType_ZLIB:
		return "zlib"
	case mlpb.CompressionType_NONE:
		return "none"
	}
	return fmt.Sprintf("compression type %d", int32(c))
}

// decompressBody returns exactly size bytes or an error: Pulsar's codecs fail, or produce a
// message that does not parse, when the data is shorter or longer than declared.
//
// Memory stays near what the data really holds: LZ4 and Snappy check the declared size
// against the most their format can expand body to before allocating it, and ZLIB and ZSTD
// grow their output as they go, never past MaxUncompressedSize.
func decompressBody(c mlpb.CompressionType, body []byte, size int) ([]byte, error) {
	switch c {
	case mlpb.CompressionType_LZ4:
		if size == 0 {
			if len(body) == 1 && body[0] == 0 {
				return []byte{}, nil
			}
			return nil, errors.New("data for an empty message is not the empty block")
		}
		// Each input byte yields at most 255 output bytes (a 0xFF match-length byte).
		if size > 255*len(body)+16 {
			return nil, fmt.Errorf("header declares %d bytes, more than a %d-byte block can hold", size, len(body))
		}
		out := make([]byte, size)
		n, err := lz4.UncompressBlock(body, out)
		if err != nil {
			return nil, err
		}
		if n != size {
			return nil, fmt.Errorf("decompressed to %d bytes, header declares %d", n, size)
		}
		return out, nil

	case mlpb.CompressionType_ZLIB:
		r, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		buf.Grow(min(size, 4*len(body)+512))
		// Brokers end the stream with a sync flush, not a final block, so io.ErrUnexpectedEOF
		// is the normal end; a finished stream ends with io.EOF once its checksum is checked.
		_, err = io.Copy(&buf, io.LimitReader(r, int64(size)+1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		if buf.Len() != size {
			return nil, sizeMismatch(buf.Len(), size)
		}
		return buf.Bytes(), nil

	case mlpb.CompressionType_ZSTD:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		out, err := dec.DecodeAll(body, make([]byte, 0, min(size, 4*len(body)+512)))
		if err != nil {
			return nil, err
		}
		if len(out) != size {
			return nil, sizeMismatch(len(out), size)
		}
		return out, nil

	case mlpb.CompressionType_SNAPPY:
		n, err := snappy.DecodedLen(body)
		if err != nil {
			return nil, err
		}
		if n != size {
			return nil, fmt.Errorf("block holds %d bytes, header declares %d", n, size)
		}
		// A 3-byte copy element yields at most 64 bytes.
		if size > 32*len(body)+16 {
			return nil, fmt.Errorf("header declares %d bytes, more than a %d-byte block can hold", size, len(body))
		}
		out, err := snappy.Decode(make([]byte, size), body)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression type %d", int32(c))
}

func sizeMismatch(got, declared int) error {
	if got > declared {
		return fmt.Errorf("decompresses to more than the %d bytes the header declares", declared)
	}
	return fmt.Errorf("decompressed to %d bytes, header declares %d", got, declared)
}

// One encoder and one decoder serve every call: both are safe for concurrent EncodeAll and
// DecodeAll, and building them allocates much more than a znode.
var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		// MaxMemory bounds both the window and what DecodeAll may produce.
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxUncompressedSize))
	})
)

func ptr[T any](v T) *T { return &v }
