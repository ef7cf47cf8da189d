package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

var (
	day0 = date("2026-03-01T00:00:00Z")
	day1 = day0.Add(24 * time.Hour)
)

// seed writes, as the stream would, APPROVED transactions inside and
// around [day0, day1), a DECLINED one and one billed by the stream. It
// returns the ids of the APPROVED ones in the period.
func seed(t *testing.T, db *store.DB, n int) []string {
	t.Helper()
	// The client is c-0 or c-1, as the id's last digit is even or odd.
	tx := func(id string, status store.TxStatus, created time.Time) store.Transaction {
		return store.Transaction{ID: id, ClientID: fmt.Sprintf("c-%d", (id[len(id)-1]-'0')%2), AmountMinor: 100, Currency: "USD",
			Status: status, CreatedAt: created, UpdatedAt: created}
	}
	var rows []store.Transaction
	var approved []string
	for i := range n {
		id := fmt.Sprintf("a-%03d", i)
		rows = append(rows, tx(id, store.StatusApproved, day0.Add(time.Duration(i)*time.Minute)))
		approved = append(approved, id)
	}
	rows = append(rows,
		tx("before-0", store.StatusApproved, day0.Add(-time.Millisecond)),
		tx("at-end-0", store.StatusApproved, day1),
		tx("declined-1", store.StatusDeclined, day0.Add(time.Hour)))
	billed := tx("billed-1", store.StatusBilled, day0.Add(-time.Hour))
	billed.BilledAt = billed.CreatedAt
	rows = append(rows, billed)
	if err := db.UpsertTransactions(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	return approved
}

func between(t *testing.T, from, to time.Time) billing.Interval {
	t.Helper()
	iv, err := billing.Between(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return iv
}

func TestCycleBillsAndInvoices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		approved := seed(t, db, 23)
		cycles := billing.NewCycles(db, billing.PageSize(5)) // several pages
		c, err := cycles.Run(ctx, between(t, day0, day1))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if c.Status != store.CycleCompleted || c.Billed != int64(len(approved)) || c.Invoices != 2 || c.Interval != "2026-03-01T00:00:00Z/2026-03-02T00:00:00Z" {
			t.Errorf("cycle: got %+v, want COMPLETED, %d billed, 2 invoices", c, len(approved))
		}
		if got, err := db.GetCycle(ctx, c.ID); err != nil || got != c {
			t.Errorf("stored cycle: got %+v, %v; want %+v", got, err, c)
		}
		for _, id := range append(approved, "before-0", "at-end-0", "declined-1", "billed-1") {
			tx, err := db.GetTransaction(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			inPeriod := strings.HasPrefix(id, "a-")
			switch {
			case inPeriod && (tx.Status != store.StatusBilled || tx.BillingCycleID != c.ID || tx.BilledAt.IsZero()):
				t.Errorf("%s: got %s, cycle %q; want BILLED by %s", id, tx.Status, tx.BillingCycleID, c.ID)
			case !inPeriod && tx.BillingCycleID != "":
				t.Errorf("%s: billed by cycle %s, want untouched", id, tx.BillingCycleID)
			}
		}
		// Every transaction billed went to the outbox as BILLED, then the
		// invoices.
		kinds := map[store.OutboxKind]int{}
		for _, e := range pendingOutbox(t, db) {
			kinds[e.Kind]++
			if e.Kind == store.OutboxTransaction && (e.Transaction.Status != store.StatusBilled || e.Transaction.BillingCycleID != c.ID) {
				t.Errorf("outbox: %+v", e.Transaction)
			}
		}
		if kinds[store.OutboxTransaction] != len(approved) || kinds[store.OutboxInvoice] != 2 {
			t.Errorf("outbox: got %v, want %d transactions and 2 invoices", kinds, len(approved))
		}
		// One invoice for c-0, one for c-1; billed-1, billed by the stream
		// before the period, is on c-1's.
		p, err := db.ListInvoices(ctx, store.InvoiceFilter{CycleID: c.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, inv := range p.Items {
			lines += len(inv.Lines)
			if inv.TotalMinor != int64(100*len(inv.Lines)) {
				t.Errorf("invoice %s of %s: total %d for %d lines of 100", inv.Number, inv.ClientID, inv.TotalMinor, len(inv.Lines))
			}
		}
		if lines != len(approved)+1 {
			t.Errorf("got %d invoice lines, want %d", lines, len(approved)+1)
		}

		// Again: nothing is billed or invoiced twice.
		again, err := cycles.Run(ctx, between(t, day0, day1))
		if err != nil || again.Status != store.CycleCompleted || again.Billed != 0 || again.Invoices != 0 || again.ID == c.ID {
			t.Errorf("again: got %+v, %v; want a new COMPLETED cycle with nothing done", again, err)
		}
	})
}

func pendingOutbox(t *testing.T, db *store.DB) []store.OutboxEntry {
	t.Helper()
	es, err := db.PendingOutbox(t.Context(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// brokenInvoices is a store whose invoices cannot be written.
type brokenInvoices struct{ *store.DB }

var errDiskOnFire = errors.New("disk on fire")

func (brokenInvoices) WriteInvoices(context.Context, store.BillingCycle) ([]store.Invoice, error) {
	return nil, errDiskOnFire
}

func TestFailedCycleKeepsItsWork(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		approved := seed(t, db, 4)
		c, err := billing.NewCycles(brokenInvoices{db}).Run(ctx, between(t, day0, day1))
		if !errors.Is(err, errDiskOnFire) {
			t.Fatalf("run: got %v, want the invoice error", err)
		}
		if c.Status != store.CycleFailed || c.Billed != int64(len(approved)) || c.Invoices != 0 ||
			!strings.Contains(c.Error, "disk on fire") || !strings.Contains(c.Error, c.ID) || c.FinishedAt.IsZero() {
			t.Errorf("failed cycle: got %+v", c)
		}
		// The next cycle bills nothing again and writes the invoices.
		next, err := billing.NewCycles(db).Run(ctx, between(t, day0, day1))
		if err != nil || next.Billed != 0 || next.Invoices != 2 {
			t.Errorf("next cycle: got %+v, %v; want 0 billed and 2 invoices", next, err)
		}
	})
}

func TestCycleOutlivesItsCaller(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	approved := seed(t, db, 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the client hung up
	c, err := billing.NewCycles(db).Run(ctx, between(t, day0, day1))
	if err != nil || c.Status != store.CycleCompleted || c.Billed != int64(len(approved)) {
		t.Errorf("got %+v, %v; want a COMPLETED cycle that billed %d", c, err, len(approved))
	}
}

func TestRelativeIntervalUsesTheClock(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	seed(t, db, 2)
	iv, err := billing.ParseInterval("daily")
	if err != nil {
		t.Fatal(err)
	}
	c, err := billing.NewCycles(db, billing.Clock(func() time.Time { return day1.Add(5 * time.Hour) })).Run(t.Context(), iv)
	if err != nil || !c.PeriodStart.Equal(day0) || !c.PeriodEnd.Equal(day1) || c.Interval != "daily" || c.Billed != 2 {
		t.Errorf("got %+v, %v; want daily over [%s, %s) billing 2", c, err, day0, day1)
	}
	if _, err := billing.NewCycles(db).Run(t.Context(), billing.Interval{}); !errors.Is(err, billing.ErrInvalid) {
		t.Errorf("zero interval: got %v, want ErrInvalid", err)
	}
}

// slowInvoices is a store whose invoice writing waits for release.
type slowInvoices struct {
	*store.DB
	started, release chan struct{}
}

func (s slowInvoices) WriteInvoices(ctx context.Context, c store.BillingCycle) ([]store.Invoice, error) {
	close(s.started)
	<-s.release
	return s.DB.WriteInvoices(ctx, c)
}

func TestWaitForRunningCycles(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	seed(t, db, 2)
	st := slowInvoices{DB: db, started: make(chan struct{}), release: make(chan struct{})}
	cycles := billing.NewCycles(st)
	if err := cycles.Wait(t.Context()); err != nil {
		t.Fatalf("wait with none running: %v", err)
	}
	done := make(chan store.BillingCycle, 1)
	go func() {
		c, _ := cycles.Run(t.Context(), between(t, day0, day1))
		done <- c
	}()
	<-st.started
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := cycles.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait while one runs: got %v, want DeadlineExceeded", err)
	}
	close(st.release)
	if err := cycles.Wait(t.Context()); err != nil {
		t.Errorf("wait: %v", err)
	}
	if c := <-done; c.Status != store.CycleCompleted {
		t.Errorf("cycle: got %+v", c)
	}
}
