package managedledger

import (
	"fmt"
	"slices"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
)

// SchemaLedgers returns the BookKeeper ledger ids, sorted and without duplicates, that a
// /schemas/<tenant>/<ns>/<topic> payload (Pulsar's SchemaLocator: info = 1, repeated
// index = 2, each an IndexEntry whose position = 2 holds ledgerId = 1) points into. On a
// new BookKeeper those ledgers are gone, so a restore reports the schema as lost. Schema
// locators are never compressed.
func SchemaLedgers(payload []byte) ([]int64, error) {
	var loc mlpb.SchemaLocator
	if err := unmarshalOpts.Unmarshal(payload, &loc); err != nil {
		return nil, fmt.Errorf("schema locator: protobuf: %w", err)
	}
	var ids []int64
	for _, e := range append([]*mlpb.IndexEntry{loc.GetInfo()}, loc.GetIndex()...) {
		if pos := e.GetPosition(); pos != nil && pos.LedgerId != nil {
			ids = append(ids, pos.GetLedgerId())
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
