package outbox_test

import (
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/outbox"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// TestRelayPublishesInvoices writes invoices beside transaction versions
// and checks that each is published once to the invoices topic, keyed by
// invoice_id, as billing.Invoice, while the transactions go on as before.
func TestRelayPublishesInvoices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newFixture(t, db, 12) // t-000, t-003, ... are billed, then refunded
		var refunded []store.Transaction
		for _, id := range []string{"t-000", "t-003"} {
			tx, err := db.GetTransaction(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			refunded = append(refunded, tx)
		}
		if _, err := db.Credit(ctx, refunded); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		invs, err := db.WriteInvoices(ctx, store.BillingCycle{ID: "bc_relay", Interval: "test", PeriodStart: now.Add(-time.Hour), PeriodEnd: now.Add(time.Hour)})
		if err != nil || len(invs) != 1 {
			t.Fatalf("write invoices: got %d, %v; want 1", len(invs), err)
		}
		invoice, err := f.reg.Schema("Invoice")
		if err != nil {
			t.Fatal(err)
		}
		r, err := outbox.New(outbox.Config{
			Brokers: []string{f.broker.Addr()}, Sarama: f.cfg, Store: db, Schema: f.schema, InvoiceSchema: invoice,
			ApplicationID: "test", CreateTopic: true, LeaseTTL: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, r)
		f.waitSent(t)
		f.check(t)
		if got, want := r.Published(), int64(f.n+1); got != want {
			t.Errorf("Published: got %d, want %d", got, want)
		}
		recs := enginetest.ReadAll(t, f.broker.Addr(), "invoices", 1, time.Second, 30*time.Second)
		if len(recs) != 1 {
			t.Fatalf("got %d records on invoices, want 1", len(recs))
		}
		want := invs[0]
		if string(recs[0].Key) != want.ID || recs[0].Headers[outbox.HeaderOutboxID] == "" {
			t.Errorf("invoice record: key %q, headers %v; want key %s and the outbox id", recs[0].Key, recs[0].Headers, want.ID)
		}
		rec, err := f.reg.Decode(invoice, recs[0].Value)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		lines, _ := rec["lines"].([]any)
		// Four charges (t-000, t-003, t-006, t-009) and two credits.
		if rec["invoice_id"] != want.ID || rec["invoice_number"] != want.Number || rec["total_minor"] != want.TotalMinor ||
			rec["credits_minor"] != want.CreditsMinor || len(lines) != 6 || want.CreditsMinor != 100+103 {
			t.Errorf("invoice record: got %v, want %+v", rec, want)
		}
	})
}
