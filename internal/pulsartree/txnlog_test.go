package pulsartree

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// ZooKeeper transaction types of the creates a client cannot tell apart afterwards.
const (
	txnCreateContainer = 19
	txnCreateTTL       = 21
)

type loggedCreate struct {
	txnType int32
	ttl     int64
}

// extendedCreates reads a ZooKeeper data directory's transaction logs and returns the
// container and TTL creates in them by path: the only record of those modes, since the
// server reports their ephemeralOwner as 0.
//
// A log is a 16-byte file header, then records of [crc int64][length int32][txn][0x42]; a
// txn is a 32-byte TxnHeader (type last) and a jute body that starts with the path (an int32
// length and bytes). The file is preallocated with zeros, so length 0 ends it.
func extendedCreates(t *testing.T, dataDir string) map[string]loggedCreate {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dataDir, "version-2", "log.*"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no transaction logs in %s: %v", dataDir, err)
	}
	out := map[string]loggedCreate{}
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		be := binary.BigEndian
		for pos := 16; pos+12 <= len(b); {
			n := int(int32(be.Uint32(b[pos+8:])))
			if n <= 0 || pos+12+n > len(b) {
				break
			}
			txn := b[pos+12 : pos+12+n]
			pos += 12 + n + 1
			if len(txn) < 36 {
				continue
			}
			typ := int32(be.Uint32(txn[28:]))
			if typ != txnCreateContainer && typ != txnCreateTTL {
				continue
			}
			r := jute{b: txn[32:]}
			path := string(r.buffer())
			c := loggedCreate{txnType: typ}
			if typ == txnCreateTTL {
				r.buffer() // data
				for range r.int32() {
					r.int32()  // perms
					r.buffer() // scheme
					r.buffer() // id
				}
				r.int32() // parentCVersion
				c.ttl = r.int64()
			}
			if r.err {
				t.Fatalf("%s: short %d-byte txn at %s", name, len(txn), path)
			}
			out[path] = c
		}
	}
	return out
}

type jute struct {
	b   []byte
	err bool
}

func (j *jute) take(n int) []byte {
	if n < 0 || n > len(j.b) {
		j.err = true
		j.b = nil
		return nil
	}
	v := j.b[:n]
	j.b = j.b[n:]
	return v
}

func (j *jute) int32() int32 {
	v := j.take(4)
	if v == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(v))
}

func (j *jute) int64() int64 {
	v := j.take(8)
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (j *jute) buffer() []byte {
	n := j.int32()
	if n == -1 {
		return nil
	}
	return j.take(int(n))
}
