package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

func TestCycleLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		start := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
		c, err := db.CreateCycle(ctx, store.BillingCycle{Interval: "daily", PeriodStart: start, PeriodEnd: start.Add(24 * time.Hour)})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if !strings.HasPrefix(c.ID, "bc_") || len(c.ID) != 19 || c.Status != store.CycleRunning || c.CreatedAt.IsZero() || !c.FinishedAt.IsZero() {
			t.Errorf("created: got %+v, want a RUNNING cycle with id bc_<16 hex>", c)
		}
		got, err := db.GetCycle(ctx, c.ID)
		if err != nil || got != c {
			t.Errorf("get: got %+v, %v; want %+v", got, err, c)
		}
		done, err := db.FinishCycle(ctx, c.ID, store.CycleResult{Billed: 7, Invoices: 2})
		if err != nil {
			t.Fatalf("finish: %v", err)
		}
		if done.Status != store.CycleCompleted || done.Billed != 7 || done.Invoices != 2 || done.Error != "" || done.FinishedAt.Before(done.CreatedAt) {
			t.Errorf("finished: got %+v", done)
		}
		if got, _ := db.GetCycle(ctx, c.ID); got != done {
			t.Errorf("get after finish: got %+v, want %+v", got, done)
		}
		if _, err := db.FinishCycle(ctx, c.ID, store.CycleResult{}); !errors.Is(err, store.ErrIllegalTransition) {
			t.Errorf("finish twice: got %v, want ErrIllegalTransition", err)
		}
		if _, err := db.FinishCycle(ctx, "bc_nope", store.CycleResult{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("finish unknown: got %v, want ErrNotFound", err)
		}
		if _, err := db.GetCycle(ctx, "bc_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get unknown: got %v, want ErrNotFound", err)
		}

		failed, err := db.CreateCycle(ctx, store.BillingCycle{Interval: "24h", PeriodStart: start, PeriodEnd: start.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		long := errors.New(strings.Repeat("é", store.MaxCycleErrorLen+10))
		failed, err = db.FinishCycle(ctx, failed.ID, store.CycleResult{Billed: 3, Err: fmt.Errorf("boom: %w", long)})
		if err != nil {
			t.Fatalf("finish failed: %v", err)
		}
		if failed.Status != store.CycleFailed || failed.Billed != 3 || !strings.HasPrefix(failed.Error, "boom: éé") ||
			len([]rune(failed.Error)) != store.MaxCycleErrorLen {
			t.Errorf("failed cycle: got status %s, billed %d, error of %d characters", failed.Status, failed.Billed, len([]rune(failed.Error)))
		}
		if got, _ := db.GetCycle(ctx, failed.ID); got != failed {
			t.Errorf("get failed: got %+v, want %+v", got, failed)
		}
	})
}

func TestCreateCycleRejects(t *testing.T) {
	start := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tc := range []struct {
			name string
			c    store.BillingCycle
		}{
			{"no interval", store.BillingCycle{PeriodStart: start, PeriodEnd: start.Add(time.Hour)}},
			{"interval too long", store.BillingCycle{Interval: strings.Repeat("x", store.MaxIntervalLen+1), PeriodStart: start, PeriodEnd: start.Add(time.Hour)}},
			{"empty period", store.BillingCycle{Interval: "x", PeriodStart: start, PeriodEnd: start}},
			{"reversed period", store.BillingCycle{Interval: "x", PeriodStart: start, PeriodEnd: start.Add(-time.Hour)}},
			{"sub-millisecond period", store.BillingCycle{Interval: "x", PeriodStart: start, PeriodEnd: start.Add(time.Microsecond)}},
			{"before 1970", store.BillingCycle{Interval: "x", PeriodStart: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), PeriodEnd: start}},
		} {
			if _, err := db.CreateCycle(t.Context(), tc.c); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
			}
		}
	})
}

func TestApprovedBetweenPages(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		var rows []store.Transaction
		put := func(id string, status store.TxStatus, created time.Time) {
			rows = append(rows, store.Transaction{ID: id, ClientID: "c-1", AmountMinor: 100, Currency: "USD", Status: status,
				CreatedAt: created, UpdatedAt: created})
		}
		put("before", store.StatusApproved, from.Add(-time.Millisecond))
		put("at-start", store.StatusApproved, from)
		put("tie-b", store.StatusApproved, from.Add(time.Hour))
		put("tie-a", store.StatusApproved, from.Add(time.Hour))
		put("declined", store.StatusDeclined, from.Add(2*time.Hour))
		put("refunded", store.StatusRefunded, from.Add(2*time.Hour))
		put("last", store.StatusApproved, to.Add(-time.Millisecond))
		put("at-end", store.StatusApproved, to)
		billed := store.Transaction{ID: "billed", ClientID: "c-1", AmountMinor: 100, Currency: "USD", Status: store.StatusBilled,
			CreatedAt: from.Add(3 * time.Hour), UpdatedAt: from.Add(3 * time.Hour), BilledAt: from.Add(3 * time.Hour)}
		rows = append(rows, billed)
		if err := db.UpsertTransactions(ctx, rows); err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 2, 3, 500} {
			var got []string
			var after store.TxKey
			for pages := 0; ; pages++ {
				page, err := db.ApprovedBetween(ctx, from, to, after, limit)
				if err != nil {
					t.Fatalf("limit %d: %v", limit, err)
				}
				if len(page) > limit || pages > 10 {
					t.Fatalf("limit %d: page of %d after %d pages", limit, len(page), pages)
				}
				for _, tx := range page {
					got = append(got, tx.ID)
				}
				if len(page) < limit {
					break
				}
				after = page[len(page)-1].Key()
			}
			if want := "at-start tie-a tie-b last"; strings.Join(got, " ") != want {
				t.Errorf("limit %d: got %v, want %s", limit, got, want)
			}
		}
	})
}
