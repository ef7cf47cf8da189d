package store_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

func transactionSchema(t *testing.T) (*avro.Registry, *avro.Schema) {
	t.Helper()
	reg, err := avro.LoadDir(filepath.Join(enginetest.RepoRoot(t), "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	return reg, s
}

func TestRecordRoundTripsThroughAvro(t *testing.T) {
	reg, schema := transactionSchema(t)
	for _, tx := range []store.Transaction{
		{ID: "t-1", ClientID: "c-1", AmountMinor: 1999, Currency: "JPY", Status: store.StatusApproved, CreatedAt: t0, UpdatedAt: t0},
		{ID: "t-2", ClientID: "c-1", AmountMinor: -5, Currency: "EUR", Status: store.StatusBilled, Description: "ü",
			CreatedAt: t0, UpdatedAt: t0.Add(time.Second), BilledAt: t0.Add(time.Second), BillingCycleID: "cy"},
	} {
		b, err := schema.Encode(tx.Record())
		if err != nil {
			t.Fatalf("encode %s: %v", tx.ID, err)
		}
		rec, err := reg.Decode(schema, b)
		if err != nil {
			t.Fatalf("decode %s: %v", tx.ID, err)
		}
		got, err := store.TransactionFromRecord(rec)
		if err != nil {
			t.Fatalf("from record %s: %v", tx.ID, err)
		}
		if got != tx {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, tx)
		}
	}
}

func TestUpsertProcessor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		p := store.NewUpsertProcessor(db)
		good := store.Transaction{ID: "k-1", ClientID: "c-1", AmountMinor: 100, Currency: "EUR", Status: store.StatusApproved, CreatedAt: t0, UpdatedAt: t0}
		unknown := good
		unknown.ID, unknown.Status = "k-2", "PENDING"
		longID := good
		longID.ID = strings.Repeat("x", 65)
		batch := []sdk.Record{{Data: good.Record()}, {Data: unknown.Record()}, {Data: longID.Record()}, {Data: nil}, {Data: map[string]any{"transaction_id": 1}}}
		res, err := p.Process(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(batch) {
			t.Fatalf("got %d results, want %d", len(res), len(batch))
		}
		for i, want := range []string{"", "status", "transaction_id", "not decoded", "transaction_id"} {
			if want == "" && res[i].DLQ != "" || !strings.Contains(res[i].DLQ, want) {
				t.Errorf("record %d: got DLQ %q, want it to mention %q", i, res[i].DLQ, want)
			}
			if len(res[i].Emits) != 0 {
				t.Errorf("record %d: got %d emits, want none", i, len(res[i].Emits))
			}
		}
		if _, err := db.GetTransaction(t.Context(), "k-1"); err != nil {
			t.Errorf("k-1 not stored: %v", err)
		}
	})
}
