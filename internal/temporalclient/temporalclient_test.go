package temporalclient

import (
	"context"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// TestEnsureAttributes registers what is missing with its type on a real dev server, leaves
// what is there, and refuses an attribute registered with another type, naming it.
func TestEnsureAttributes(t *testing.T) {
	tp := testenv.StartTemporal(t, temporal.NewSearchAttributeKeyKeyword("Present"), temporal.NewSearchAttributeKeyKeyword("WrongType"))
	c := tp.Client(t)
	ctx := context.Background()
	registered := func() map[string]enumspb.IndexedValueType {
		t.Helper()
		list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: tp.Namespace})
		if err != nil {
			t.Fatal(err)
		}
		return list.GetCustomAttributes()
	}

	keys := []temporal.SearchAttributeKey{
		temporal.NewSearchAttributeKeyKeyword("Present"),
		temporal.NewSearchAttributeKeyKeyword("NewKeyword"),
		temporal.NewSearchAttributeKeyString("NewText"),
	}
	for range 2 { // the second call finds everything registered
		if err := EnsureAttributes(ctx, c, tp.Namespace, keys...); err != nil {
			t.Fatal(err)
		}
		got := registered()
		for name, want := range map[string]enumspb.IndexedValueType{
			"Present": enumspb.INDEXED_VALUE_TYPE_KEYWORD, "NewKeyword": enumspb.INDEXED_VALUE_TYPE_KEYWORD, "NewText": enumspb.INDEXED_VALUE_TYPE_TEXT,
		} {
			if got[name] != want {
				t.Fatalf("%s registered as %s, want %s (all: %v)", name, got[name], want, got)
			}
		}
	}

	err := EnsureAttributes(ctx, c, tp.Namespace, temporal.NewSearchAttributeKeyString("WrongType"), temporal.NewSearchAttributeKeyString("NotAdded"))
	if err == nil || !strings.Contains(err.Error(), "search attribute WrongType is registered in namespace default as Keyword, this tool needs Text") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := registered()["NotAdded"]; ok {
		t.Fatal("a refused call registered NotAdded")
	}
}
