package store_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// The period of the invoice tests' main cycle: the day of t0.
var (
	invFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	invTo   = invFrom.Add(24 * time.Hour)
)

// billedAt is a transaction as the stream carries it once billed.
func billedAt(id, client, currency string, amount int64, created time.Time, desc string) store.Transaction {
	return store.Transaction{ID: id, ClientID: client, AmountMinor: amount, Currency: currency, Status: store.StatusBilled,
		Description: desc, CreatedAt: created, UpdatedAt: created.Add(time.Minute), BilledAt: created.Add(time.Minute)}
}

// refundedOf is t refunded after it was billed.
func refundedOf(t store.Transaction) store.Transaction {
	t.Status, t.UpdatedAt = store.StatusRefunded, t.UpdatedAt.Add(time.Minute)
	return t
}

func upsert(t *testing.T, db *store.DB, ts ...store.Transaction) {
	t.Helper()
	if err := db.UpsertTransactions(t.Context(), ts); err != nil {
		t.Fatalf("upsert: %v", err)
	}
}

func credit(t *testing.T, db *store.DB, ts ...store.Transaction) {
	t.Helper()
	created, err := db.Credit(t.Context(), ts)
	if err != nil || slices.Contains(created, false) {
		t.Fatalf("credit: got %v, %v; want every credit created", created, err)
	}
}

// cycleOf returns a cycle over [from, to) without storing it: invoices
// name their cycle but need no row.
func cycleOf(id string, from, to time.Time) store.BillingCycle {
	return store.BillingCycle{ID: id, Interval: "test", PeriodStart: from, PeriodEnd: to}
}

// wantInvoice is an invoice as a test expects it.
type wantInvoice struct {
	client, currency         string
	lines                    []string // "KIND transaction amount description"
	subtotal, credits, total int64
}

func lineStrings(inv store.Invoice) []string {
	var out []string
	for i, l := range inv.Lines {
		if l.No != i+1 {
			out = append(out, fmt.Sprintf("line %d numbered %d", i+1, l.No))
		}
		out = append(out, fmt.Sprintf("%s %s %d %s", l.Kind, l.TransactionID, l.AmountMinor, l.Description))
	}
	return out
}

func checkInvoices(t *testing.T, got []store.Invoice, want []wantInvoice) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d invoices, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ClientID != w.client || g.Currency != w.currency {
			t.Errorf("invoice %d: got %s in %s, want %s in %s", i, g.ClientID, g.Currency, w.client, w.currency)
		}
		if gl := lineStrings(g); !slices.Equal(gl, w.lines) {
			t.Errorf("invoice %d (%s %s) lines:\n got %q\nwant %q", i, w.client, w.currency, gl, w.lines)
		}
		if g.SubtotalMinor != w.subtotal || g.CreditsMinor != w.credits || g.TotalMinor != w.total {
			t.Errorf("invoice %d (%s %s): got subtotal %d, credits %d, total %d; want %d, %d, %d", i, w.client, w.currency,
				g.SubtotalMinor, g.CreditsMinor, g.TotalMinor, w.subtotal, w.credits, w.total)
		}
		if !strings.HasPrefix(g.ID, "inv_") || g.Number != store.InvoiceNumber(g.Seq) || len(g.Number) != 12 {
			t.Errorf("invoice %d: id %q, number %q, seq %d", i, g.ID, g.Number, g.Seq)
		}
	}
}

func TestWriteInvoices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		// b-1 was billed and invoiced by an earlier cycle, then refunded:
		// its credit is all b has this time (a credit note).
		b1 := billedAt("b-1", "b", "EUR", 2500, invFrom.Add(-72*time.Hour), "Hosting")
		upsert(t, db, b1)
		early, err := db.WriteInvoices(ctx, cycleOf("bc_early", invFrom.Add(-96*time.Hour), invFrom.Add(-48*time.Hour)))
		if err != nil {
			t.Fatalf("early cycle: %v", err)
		}
		checkInvoices(t, early, []wantInvoice{{"b", "EUR", []string{"CHARGE b-1 2500 Hosting"}, 2500, 0, 2500}})

		// a-3 is older than the period and was billed by the stream after
		// the last cycle: it is charged now. It was refunded since, so its
		// credit appears too.
		a3 := billedAt("a-3", "a", "USD", 500, invFrom.Add(-24*time.Hour), "Gift card")
		upsert(t, db,
			billedAt("a-1", "a", "USD", 1999, invFrom.Add(time.Hour), "Coffee beans"),
			billedAt("a-2", "a", "USD", 1, invFrom.Add(2*time.Hour), ""),
			refundedOf(a3),
			billedAt("a-jpy", "a", "JPY", 1500, invFrom.Add(3*time.Hour), "Matcha"),
			billedAt("a-at-end", "a", "USD", 700, invTo, "next cycle's"),
			store.Transaction{ID: "a-approved", ClientID: "a", AmountMinor: 300, Currency: "USD", Status: store.StatusApproved,
				CreatedAt: invFrom.Add(time.Hour), UpdatedAt: invFrom.Add(time.Hour)},
			store.Transaction{ID: "a-declined", ClientID: "a", AmountMinor: 400, Currency: "USD", Status: store.StatusDeclined,
				CreatedAt: invFrom.Add(time.Hour), UpdatedAt: invFrom.Add(time.Hour)},
			refundedOf(b1),
		)
		credit(t, db, refundedOf(a3), refundedOf(b1))

		got, err := db.WriteInvoices(ctx, cycleOf("bc_main", invFrom, invTo))
		if err != nil {
			t.Fatalf("write invoices: %v", err)
		}
		want := []wantInvoice{
			{"a", "JPY", []string{"CHARGE a-jpy 1500 Matcha"}, 1500, 0, 1500},
			{"a", "USD", []string{
				"CHARGE a-3 500 Gift card",
				"CHARGE a-1 1999 Coffee beans",
				"CHARGE a-2 1 a-2",
				"CREDIT a-3 -500 Refund: Gift card",
			}, 2500, 500, 2000},
			{"b", "EUR", []string{"CREDIT b-1 -2500 Refund: Hosting"}, 0, 2500, -2500},
		}
		checkInvoices(t, got, want)
		for i, inv := range got {
			if inv.CycleID != "bc_main" || !inv.PeriodStart.Equal(invFrom) || !inv.PeriodEnd.Equal(invTo) {
				t.Errorf("invoice %d: cycle %s, period [%v, %v)", i, inv.CycleID, inv.PeriodStart, inv.PeriodEnd)
			}
			if i > 0 && inv.Seq <= got[i-1].Seq {
				t.Errorf("invoice %d: seq %d after %d", i, inv.Seq, got[i-1].Seq)
			}
			stored, err := db.GetInvoice(ctx, inv.ID)
			if err != nil || !reflect.DeepEqual(stored, inv) {
				t.Errorf("GetInvoice(%s):\n got %+v, %v\nwant %+v", inv.ID, stored, err, inv)
			}
		}

		// Each invoice went to the outbox with its lines.
		var fromOutbox []store.Invoice
		for _, e := range pending(t, db) {
			if e.Kind == store.OutboxInvoice {
				fromOutbox = append(fromOutbox, e.Invoice)
			} else if e.Kind != store.OutboxTransaction {
				t.Errorf("outbox entry %d: kind %q", e.ID, e.Kind)
			}
		}
		if !reflect.DeepEqual(fromOutbox, append(early, got...)) {
			t.Errorf("invoices in the outbox:\n got %+v\nwant %+v", fromOutbox, append(early, got...))
		}

		// Nothing is invoiced twice: the same cycle again, or a later one
		// before anything new, writes nothing.
		for _, c := range []store.BillingCycle{cycleOf("bc_main", invFrom, invTo), cycleOf("bc_again", invFrom, invTo)} {
			again, err := db.WriteInvoices(ctx, c)
			if err != nil || len(again) != 0 {
				t.Errorf("%s again: got %d invoices, %v; want none", c.ID, len(again), err)
			}
		}
		// The next day's cycle takes the charge at the end of this one.
		next, err := db.WriteInvoices(ctx, cycleOf("bc_next", invTo, invTo.Add(24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		checkInvoices(t, next, []wantInvoice{{"a", "USD", []string{"CHARGE a-at-end 700 next cycle's"}, 700, 0, 700}})

		if _, err := db.GetInvoice(ctx, "inv_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get unknown: got %v, want ErrNotFound", err)
		}
	}, store.Clock(stepClock()))
}

func TestListInvoices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for day := range 3 {
			from := invFrom.Add(time.Duration(day) * 24 * time.Hour)
			upsert(t, db,
				billedAt(fmt.Sprintf("a-%d", day), "a", "USD", int64(100+day), from, ""),
				billedAt(fmt.Sprintf("b-%d", day), "b", "USD", int64(200+day), from, ""))
			if _, err := db.WriteInvoices(ctx, cycleOf(fmt.Sprintf("bc_%d", day), from, from.Add(24*time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			filter store.InvoiceFilter
			want   string // the transaction on each invoice, in order
		}{
			{store.InvoiceFilter{ClientID: "a", Limit: 2}, "a-0 a-1 a-2"},
			{store.InvoiceFilter{ClientID: "b", Limit: 1}, "b-0 b-1 b-2"},
			{store.InvoiceFilter{CycleID: "bc_1", Limit: 5}, "a-1 b-1"},
			{store.InvoiceFilter{Limit: 4}, "a-0 b-0 a-1 b-1 a-2 b-2"},
			{store.InvoiceFilter{ClientID: "nobody", Limit: 4}, ""},
		} {
			var got []string
			f := tc.filter
			for range 10 {
				p, err := db.ListInvoices(ctx, f)
				if err != nil {
					t.Fatalf("%+v: %v", f, err)
				}
				for _, inv := range p.Items {
					if len(inv.Lines) != 1 {
						t.Fatalf("%+v: invoice %s has %d lines, want 1", f, inv.ID, len(inv.Lines))
					}
					got = append(got, inv.Lines[0].TransactionID)
				}
				if p.Next == "" {
					break
				}
				f.After = p.Next
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("%+v: got %q, want %q", tc.filter, g, tc.want)
			}
		}
		if _, err := db.ListInvoices(ctx, store.InvoiceFilter{After: "garbage", Limit: 1}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("bad cursor: got %v, want ErrBadCursor", err)
		}
	}, store.Clock(stepClock()))
}

// TestInvoiceTotalsOverflow checks that sums that do not fit in int64
// fail the invoice (and only it) instead of writing a wrong total.
func TestInvoiceTotalsOverflow(t *testing.T) {
	cases := []struct {
		client   string
		charges  []int64
		credits  []int64
		overflow bool
		total    int64
	}{
		{"max", []int64{math.MaxInt64 - 1, 1}, nil, false, math.MaxInt64},
		{"max-plus-one", []int64{math.MaxInt64, 1}, nil, true, 0},
		{"negative-charges", []int64{-5, 3}, nil, false, -2},
		{"credit-min", nil, []int64{math.MinInt64}, true, 0},
		{"credits-sum", nil, []int64{math.MaxInt64, 1}, true, 0},
		{"total", []int64{-math.MaxInt64}, []int64{2}, true, 0},
		{"credit-max", nil, []int64{math.MaxInt64}, false, -math.MaxInt64},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for _, c := range cases {
			for i, amount := range c.charges {
				upsert(t, db, billedAt(fmt.Sprintf("%s-c%d", c.client, i), c.client, "USD", amount, invFrom, ""))
			}
			for i, amount := range c.credits {
				tx := billedAt(fmt.Sprintf("%s-r%d", c.client, i), c.client, "USD", amount, invFrom.Add(-48*time.Hour), "")
				upsert(t, db, tx)
				// Its charge goes on an invoice of its own, before the credit.
				if _, err := db.WriteInvoices(ctx, cycleOf("bc_charge", invFrom.Add(-72*time.Hour), invFrom.Add(-24*time.Hour))); err != nil {
					t.Fatal(err)
				}
				upsert(t, db, refundedOf(tx))
				credit(t, db, refundedOf(tx))
			}
		}
		for range 2 { // a failed invoice is tried again by the next cycle, and fails again
			got, err := db.WriteInvoices(ctx, cycleOf("bc_main", invFrom, invTo))
			if !errors.Is(err, store.ErrOverflow) {
				t.Fatalf("got %v, want ErrOverflow", err)
			}
			byClient := map[string]store.Invoice{}
			for _, inv := range got {
				byClient[inv.ClientID] = inv
			}
			for _, c := range cases {
				inv, ok := byClient[c.client]
				switch {
				case c.overflow && ok:
					t.Errorf("%s: got an invoice with total %d, want none", c.client, inv.TotalMinor)
				case c.overflow && !strings.Contains(err.Error(), "invoice "+c.client+" in USD"):
					t.Errorf("%s: the error does not name it: %v", c.client, err)
				case !c.overflow && ok && inv.TotalMinor != c.total:
					t.Errorf("%s: got total %d, want %d", c.client, inv.TotalMinor, c.total)
				}
			}
		}
	}, store.Clock(stepClock()))
}

// TestWriteInvoicesConcurrently runs overlapping cycles at once: every
// charge and credit ends up on exactly one invoice.
func TestWriteInvoicesConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		want := map[string]int64{} // client -> total
		var txs []store.Transaction
		for i := range 300 {
			client := fmt.Sprintf("c-%02d", i%17)
			amount := int64(101 + i*7)
			txs = append(txs, billedAt(fmt.Sprintf("t-%03d", i), client, "EUR", amount, invFrom.Add(time.Duration(i)*time.Minute), ""))
			want[client] += amount
		}
		upsert(t, db, txs...)
		var wg sync.WaitGroup
		results := make([][]store.Invoice, 6)
		errs := make([]error, len(results))
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Cycles of different lengths, all ending after every charge.
				from := invFrom.Add(time.Duration(i) * time.Hour)
				results[i], errs[i] = db.WriteInvoices(ctx, cycleOf(fmt.Sprintf("bc_%d", i), from, invTo.Add(time.Duration(i)*time.Hour)))
			}()
		}
		wg.Wait()
		got := map[string]int64{}
		lines := map[string]int{}
		for i, invs := range results {
			if errs[i] != nil {
				t.Errorf("cycle %d: %v", i, errs[i])
			}
			for _, inv := range invs {
				got[inv.ClientID] += inv.TotalMinor
				for _, l := range inv.Lines {
					lines[l.TransactionID]++
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("totals per client: got %v, want %v", got, want)
		}
		for _, tx := range txs {
			if lines[tx.ID] != 1 {
				t.Errorf("%s is on %d invoice lines, want 1", tx.ID, lines[tx.ID])
			}
		}
	})
}

// TestInvoiceRecordEncodes checks that Record fits the billing.Invoice
// Avro schema.
func TestInvoiceRecordEncodes(t *testing.T) {
	reg, err := avro.LoadDir(filepath.Join(enginetest.RepoRoot(t), "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := reg.Schema("Invoice")
	if err != nil {
		t.Fatal(err)
	}
	inv := store.Invoice{ID: "inv_1", Seq: 42, Number: store.InvoiceNumber(42), ClientID: "a", CycleID: "bc_1", Currency: "USD",
		PeriodStart: invFrom, PeriodEnd: invTo, SubtotalMinor: 2000, CreditsMinor: 500, TotalMinor: 1500, CreatedAt: t0,
		Lines: []store.InvoiceLine{
			{No: 1, Kind: store.LineCharge, TransactionID: "t-1", Description: "Beans", AmountMinor: 2000},
			{No: 2, Kind: store.LineCredit, TransactionID: "t-0", Description: "Refund", AmountMinor: -500},
		}}
	b, err := schema.Encode(inv.Record())
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	rec, err := reg.Decode(schema, b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if rec["invoice_number"] != "INV-00000042" || rec["total_minor"] != int64(1500) || rec["credits_minor"] != int64(500) {
		t.Errorf("decoded: %v", rec)
	}
	lines, _ := rec["lines"].([]any)
	if len(lines) != 2 || lines[1].(map[string]any)["amount_minor"] != int64(-500) {
		t.Errorf("decoded lines: %v", rec["lines"])
	}
}

// TestLargeGroupsSplit: a client with more uninvoiced lines than one
// invoice holds gets several invoices, each line on exactly one, with the
// credits after the charges, and the totals add up to the cent.
func TestLargeGroupsSplit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 2*store.MaxInvoiceLines + 345
		var ts []store.Transaction
		var want int64
		for i := range n {
			tx := billedAt(fmt.Sprintf("big-%05d", i), "c-big", "EUR", int64(100+i), invFrom.Add(time.Duration(i)*time.Second), "")
			ts = append(ts, tx)
			want += tx.AmountMinor
		}
		upsert(t, db, ts...)
		refunded := []store.Transaction{refundedOf(ts[0]), refundedOf(ts[1])}
		upsert(t, db, refunded...)
		credit(t, db, refunded...)
		want -= ts[0].AmountMinor + ts[1].AmountMinor

		invs, err := db.WriteInvoices(t.Context(), cycleOf("bc-big", invFrom, time.Now().Add(time.Second))) // the credits are made now
		if err != nil {
			t.Fatal(err)
		}
		if len(invs) != 3 {
			t.Fatalf("got %d invoices, want 3", len(invs))
		}
		seen := map[string]int{}
		var total int64
		for _, inv := range invs {
			if len(inv.Lines) > store.MaxInvoiceLines {
				t.Errorf("%s: %d lines, more than %d", inv.Number, len(inv.Lines), store.MaxInvoiceLines)
			}
			for _, l := range inv.Lines {
				seen[string(l.Kind)+" "+l.TransactionID]++
			}
			total += inv.TotalMinor
		}
		if len(seen) != n+2 || total != want {
			t.Errorf("got %d distinct lines and total %d, want %d and %d", len(seen), total, n+2, want)
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("line %s on %d invoices", k, c)
			}
		}
		again, err := db.WriteInvoices(t.Context(), cycleOf("bc-big-2", invFrom, time.Now().Add(time.Second)))
		if err != nil || len(again) != 0 {
			t.Errorf("second run: %d invoices, %v; want none", len(again), err)
		}
	})
}
