package managedledger

import (
	"slices"
	"testing"
)

func TestSchemaLedgers(t *testing.T) {
	entry := func(version, ledger, entryID int64) wire {
		return wire{}.varint(1, version).bytes(2, wire{}.varint(1, ledger).varint(2, entryID)).bytes(3, []byte{0xab, 0xcd})
	}
	// SchemaStorageFormat.proto: SchemaLocator { required IndexEntry info = 1; repeated IndexEntry index = 2; }
	loc := wire{}.bytes(1, entry(2, 7, 0)).bytes(2, entry(0, 5, 0)).bytes(2, entry(1, 3, 4)).bytes(2, entry(2, 7, 0)).varint(99, 1)
	ids, err := SchemaLedgers(loc)
	if err != nil || !slices.Equal(ids, []int64{3, 5, 7}) {
		t.Errorf("SchemaLedgers = %v, %v", ids, err)
	}
	if ids, err := SchemaLedgers(nil); err != nil || len(ids) != 0 {
		t.Errorf("empty locator: %v, %v", ids, err)
	}
	if _, err := SchemaLedgers([]byte{0x0a, 0x05, 0x01}); err == nil {
		t.Error("truncated locator accepted")
	}
}
