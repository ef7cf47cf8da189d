package biller_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/sdktest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
	"github.com/billing-engine/billing/plugins/billing/biller"
)

func schemas(t testing.TB) string { return filepath.Join(enginetest.RepoRoot(t), "schemas") }

// start opens a fresh store of dialect d and serves the biller on it over
// gRPC, as the engine runs it.
func start(t *testing.T, d store.Dialect) (*sdktest.Harness, *store.DB) {
	t.Helper()
	dsn := storetest.DSN(t, d)
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := sdktest.Start(t, biller.New, sdk.Config{
		Name: biller.Name, Pipeline: "billing", Stage: "bill", SchemasDir: schemas(t), Schema: "billing.Transaction",
		Settings: map[string]any{"dsn": dsn},
	})
	return h, db
}

func txRecord(t store.Transaction) map[string]any { return t.Record() }

func TestBiller(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			h, db := start(t, d)
			ctx := t.Context()
			if err := db.CreateClient(ctx, store.Client{ID: "c", Name: "C", Email: "c@example.com", Status: store.ClientActive}, nil); err != nil {
				t.Fatal(err)
			}
			at := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
			tx := func(id string, status store.TxStatus, amount int64) store.Transaction {
				return store.Transaction{ID: id, ClientID: "c", AmountMinor: amount, Currency: "USD", Status: status,
					Description: "order " + id, CreatedAt: at, UpdatedAt: at}
			}
			inDB := tx("in-db", store.StatusApproved, 1999)
			if err := db.UpsertTransactions(ctx, []store.Transaction{inDB}); err != nil {
				t.Fatal(err)
			}
			bad := tx("bad", store.StatusApproved, 5).Record()
			bad["currency"] = "usd"
			values := []map[string]any{
				txRecord(inDB),
				txRecord(tx("stream-only", store.StatusApproved, 250)),
				txRecord(tx("declined", store.StatusDeclined, 300)),
				bad,
			}
			batch := sdktest.Records(t, schemas(t), "Transaction", values...)
			res, err := h.Process(ctx, batch)
			if err != nil {
				t.Fatalf("process: %v", err)
			}
			reg, err := avro.LoadDir(schemas(t))
			if err != nil {
				t.Fatal(err)
			}
			schema, _ := reg.Schema("billing.Transaction")
			emitted := func(r sdk.Result) store.Transaction {
				t.Helper()
				if len(r.Emits) != 1 || r.Emits[0].Output != biller.Output {
					t.Fatalf("emits: %+v, want one to %q", r.Emits, biller.Output)
				}
				rec, err := reg.Decode(schema, r.Emits[0].Value)
				if err != nil {
					t.Fatal(err)
				}
				got, err := store.TransactionFromRecord(rec)
				if err != nil {
					t.Fatal(err)
				}
				if string(r.Emits[0].Key) != got.ID {
					t.Errorf("key %q, want the transaction id %q", r.Emits[0].Key, got.ID)
				}
				return got
			}
			first := map[string]store.Transaction{}
			for i, id := range []string{"in-db", "stream-only"} {
				got := emitted(res[i])
				stored, err := db.GetTransaction(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != store.StatusBilled || got.BilledAt.IsZero() || got != stored || got.AmountMinor != int64(values[i]["amount_minor"].(int64)) {
					t.Errorf("%s: emitted %+v, stored %+v; want the same BILLED version", id, got, stored)
				}
				first[id] = got
			}
			if len(res[2].Emits) != 0 || res[2].DLQ != "" {
				t.Errorf("declined: got %+v, want nothing", res[2])
			}
			if res[3].DLQ == "" || len(res[3].Emits) != 0 {
				t.Errorf("bad currency: got %+v, want a DLQ reason", res[3])
			}

			// The engine retries the same records: the same versions again.
			res, err = h.Process(ctx, batch[:2])
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range []string{"in-db", "stream-only"} {
				if got := emitted(res[i]); got != first[id] {
					t.Errorf("retry %s: emitted %+v, want %+v", id, got, first[id])
				}
			}
			// The same transactions replayed at other offsets: nothing.
			replay := sdktest.Records(t, schemas(t), "Transaction", values[:2]...)
			for i := range replay {
				replay[i].Offset += 100
			}
			res, err = h.Process(ctx, replay)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if len(r.Emits) != 0 || r.DLQ != "" {
					t.Errorf("replay %d: got %+v, want nothing", i, r)
				}
			}

			// A refund of a billed transaction becomes a credit, once.
			refunded := first["in-db"]
			refunded.Status, refunded.UpdatedAt = store.StatusRefunded, refunded.UpdatedAt.Add(time.Second)
			for range 2 {
				res, err = h.Process(ctx, sdktest.Records(t, schemas(t), "Transaction", refunded.Record()))
				if err != nil || len(res[0].Emits) != 0 || res[0].DLQ != "" {
					t.Fatalf("refund: %+v, %v", res, err)
				}
			}
			if n := countCredits(t, db); n != 1 {
				t.Errorf("credits: got %d, want 1", n)
			}
		})
	}
}

// countCredits counts credit rows through a refund replayed with Credit:
// a credit already there is reported as not created.
func countCredits(t *testing.T, db *store.DB) int {
	t.Helper()
	tx, err := db.GetTransaction(t.Context(), "in-db")
	if err != nil {
		t.Fatal(err)
	}
	tx.Status = store.StatusRefunded
	created, err := db.Credit(t.Context(), []store.Transaction{tx})
	if err != nil {
		t.Fatal(err)
	}
	if created[0] {
		return 0
	}
	return 1
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]any
		schema   string
		want     string
	}{
		{"unknown setting", map[string]any{"dns": "x"}, "billing.Transaction", `unknown setting "dns"`},
		{"wrong type", map[string]any{"dsn": 5}, "billing.Transaction", "setting dsn: want a string"},
		{"wrong schema", nil, "billing.Invoice", "reads billing.Transaction records"},
		{"bad dsn", map[string]any{"dsn": "postgres://x"}, "billing.Transaction", "dsn:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sdktest.New(t, biller.New, biller.Info)
			err := h.Configure(t.Context(), sdk.Config{Name: biller.Name, SchemasDir: schemas(t), Schema: tc.schema, Settings: tc.settings})
			if err == nil || !contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
