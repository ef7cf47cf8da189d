package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

func outcomes(rs []store.BillResult) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += string(r.Outcome)
	}
	return s
}

func TestBill(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		a := mustTx(t, db, newTx("a", "c-1"))
		d := newTx("d", "c-1")
		d.Status = store.StatusDeclined
		mustTx(t, db, d)
		// A version only the stream has: the database mirror is behind.
		streamOnly := newTx("s", "c-1")
		streamOnly.CreatedAt = time.Now().Add(-time.Minute)
		streamOnly.UpdatedAt = streamOnly.CreatedAt
		refBefore := len(pending(t, db))

		reqs := []store.BillRequest{
			{Transaction: store.Transaction{ID: "a"}, Ref: "approved/0/1"},
			{Transaction: store.Transaction{ID: "d"}, Ref: "approved/0/2"},
			{Transaction: streamOnly, Ref: "approved/0/3"},
			{Transaction: store.Transaction{ID: "a"}, Ref: "approved/0/4"}, // a duplicate in the batch
		}
		res, err := db.Bill(ctx, reqs, store.BillOptions{})
		if err != nil {
			t.Fatalf("bill: %v", err)
		}
		if got, want := outcomes(res), "billed not_billable billed already_billed"; got != want {
			t.Fatalf("outcomes: got %s, want %s", got, want)
		}
		billed := res[0].Transaction
		if billed.Status != store.StatusBilled || billed.BilledAt.IsZero() || !billed.UpdatedAt.After(a.UpdatedAt) {
			t.Errorf("billed version: %+v", billed)
		}
		for _, id := range []string{"a", "s"} {
			got, err := db.GetTransaction(ctx, id)
			if err != nil || got.Status != store.StatusBilled || got.BilledAt.IsZero() {
				t.Errorf("%s in the store: %+v, %v; want BILLED with billed_at", id, got, err)
			}
		}
		if got, err := db.GetTransaction(ctx, "a"); err == nil && got != billed {
			t.Errorf("stored a: got %+v, want the version Bill returned %+v", got, billed)
		}
		if n := len(pending(t, db)); n != refBefore {
			t.Errorf("outbox: %d entries written without Publish", n-refBefore)
		}

		// A retry of the same record gets its own version back; a replay
		// (another record) or a cycle gets nothing to emit.
		res, err = db.Bill(ctx, []store.BillRequest{
			{Transaction: store.Transaction{ID: "a"}, Ref: "approved/0/1"},
			{Transaction: store.Transaction{ID: "a"}, Ref: "approved/5/9"},
			{Transaction: store.Transaction{ID: "s"}, Ref: "cycle:x", CycleID: "x"},
		}, store.BillOptions{Publish: true})
		if err != nil {
			t.Fatalf("bill again: %v", err)
		}
		if got, want := outcomes(res), "billed_before already_billed already_billed"; got != want {
			t.Errorf("outcomes again: got %s, want %s", got, want)
		}
		if res[0].Transaction != billed {
			t.Errorf("retry: got %+v, want the same version %+v", res[0].Transaction, billed)
		}
		if n := len(pending(t, db)); n != refBefore {
			t.Errorf("outbox: %d entries written for nothing billed", n-refBefore)
		}

		// An older stream version does not override a newer stored one.
		r := newTx("r", "c-1")
		r.Status = store.StatusApproved
		stale := mustTx(t, db, r)
		if _, _, err := db.ChangeStatus(ctx, store.StatusChange{ID: "r", To: store.StatusRefunded}); err != nil {
			t.Fatal(err)
		}
		res, err = db.Bill(ctx, []store.BillRequest{{Transaction: stale, Ref: "approved/0/7"}}, store.BillOptions{})
		if err != nil || outcomes(res) != "not_billable" {
			t.Errorf("stale APPROVED of a REFUNDED row: got %s, %v; want not_billable", outcomes(res), err)
		}

		// A cycle publishes what it bills, with its id.
		mustTx(t, db, newTx("c", "c-1"))
		res, err = db.Bill(ctx, []store.BillRequest{{Transaction: store.Transaction{ID: "c"}, Ref: "cycle:bc_1", CycleID: "bc_1"}}, store.BillOptions{Publish: true})
		if err != nil || outcomes(res) != "billed" || res[0].Transaction.BillingCycleID != "bc_1" {
			t.Fatalf("cycle bill: %s %+v, %v", outcomes(res), res, err)
		}
		p := pending(t, db)
		if last := p[len(p)-1].Transaction; last != res[0].Transaction {
			t.Errorf("outbox: got %+v, want the billed version %+v", last, res[0].Transaction)
		}
	})
}

func pending(t *testing.T, db *store.DB) []store.OutboxEntry {
	t.Helper()
	p, err := db.PendingOutbox(t.Context(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBillErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		bad := newTx("bad", "c-1")
		bad.Currency = "usd"
		bad.CreatedAt, bad.UpdatedAt = time.Now(), time.Now()
		for _, tc := range []struct {
			name string
			req  store.BillRequest
			want error
		}{
			{"unknown id without a version", store.BillRequest{Transaction: store.Transaction{ID: "nope"}}, store.ErrNotFound},
			{"bad version", store.BillRequest{Transaction: bad}, store.ErrInvalid},
			{"empty id", store.BillRequest{}, store.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := db.Bill(ctx, []store.BillRequest{tc.req}, store.BillOptions{}); !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
			})
		}
	})
}

// TestBillConcurrently bills the same transactions from several
// goroutines with different refs, as overlapping cycles and the stream
// would: each is billed exactly once.
func TestBillConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		const n = 60
		var all []store.BillRequest
		for i := range n {
			id := fmt.Sprintf("t-%03d", i)
			mustTx(t, db, newTx(id, "c-1"))
			all = append(all, store.BillRequest{Transaction: store.Transaction{ID: id}})
		}
		var mu sync.Mutex
		billed := map[string]int{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reqs := make([]store.BillRequest, n)
				for i := range reqs { // each worker in its own order
					reqs[i] = all[(i*(w+1)+w)%n]
					reqs[i].Ref = fmt.Sprintf("worker-%d", w)
				}
				res, err := db.Bill(ctx, reqs, store.BillOptions{})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range res {
					if r.Outcome == store.Billed {
						billed[r.Transaction.ID]++
					}
				}
			}()
		}
		wg.Wait()
		for _, r := range all {
			if billed[r.Transaction.ID] != 1 {
				t.Errorf("%s billed %d times, want 1", r.Transaction.ID, billed[r.Transaction.ID])
			}
		}
	})
}

func TestCredit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		mustTx(t, db, newTx("billed", "c-1"))
		mustTx(t, db, newTx("unbilled", "c-1"))
		if _, err := db.Bill(ctx, []store.BillRequest{{Transaction: store.Transaction{ID: "billed"}, Ref: "x"}}, store.BillOptions{}); err != nil {
			t.Fatal(err)
		}
		refund := func(id string) store.Transaction {
			tx, _, err := db.ChangeStatus(ctx, store.StatusChange{ID: id, To: store.StatusRefunded})
			if err != nil {
				t.Fatalf("refund %s: %v", id, err)
			}
			return tx
		}
		b, u := refund("billed"), refund("unbilled")
		// A refund record from another producer may not carry billed_at
		// (the store's row says it was billed), nor the amount billed: the
		// credit is what was charged.
		b.BilledAt, b.AmountMinor = time.Time{}, 1
		approved := newTx("other", "c-1")
		approved.CreatedAt, approved.UpdatedAt = time.Now(), time.Now()
		got, err := db.Credit(ctx, []store.Transaction{b, u, approved, b})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[true false false false]" {
			t.Errorf("credited: got %v, want [true false false false]", got)
		}
		got, err = db.Credit(ctx, []store.Transaction{b})
		if err != nil || fmt.Sprint(got) != "[false]" {
			t.Errorf("replay: got %v, %v; want [false]", got, err)
		}
		invs, err := db.WriteInvoices(ctx, store.BillingCycle{ID: "bc-credit", Interval: "test",
			PeriodStart: time.Now().Add(-time.Hour), PeriodEnd: time.Now().Add(time.Second)})
		if err != nil || len(invs) != 1 {
			t.Fatalf("invoices: %d, %v", len(invs), err)
		}
		if inv := invs[0]; inv.SubtotalMinor != 1250 || inv.CreditsMinor != 1250 || inv.TotalMinor != 0 {
			t.Errorf("invoice: subtotal %d credits %d total %d; want the 1250 charged, credited in full",
				inv.SubtotalMinor, inv.CreditsMinor, inv.TotalMinor)
		}
	})
}

func TestCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		for i, s := range []store.TxStatus{store.StatusApproved, store.StatusApproved, store.StatusDeclined} {
			tx := newTx(fmt.Sprintf("t-%d", i), "c-1")
			tx.Status = s
			mustTx(t, db, tx)
		}
		got, err := db.CountByStatus(ctx)
		if err != nil || fmt.Sprint(got) != "map[APPROVED:2 DECLINED:1]" {
			t.Errorf("CountByStatus: got %v, %v", got, err)
		}
		if err := db.MarkEmailsSent(ctx, []store.EmailSent{{RefID: "t-0", Kind: "billed", Recipient: "a@b", MessageID: "<x>"}}); err != nil {
			t.Fatal(err)
		}
		for kind, want := range map[string]int64{"billed": 1, "invoice": 0} {
			if n, err := db.CountEmailsSent(ctx, kind); err != nil || n != want {
				t.Errorf("CountEmailsSent(%s): got %d, %v; want %d", kind, n, err, want)
			}
		}
	})
}

func TestGetClients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := mustClient(t, db, "c-a"), mustClient(t, db, "c-b")
		got, err := db.GetClients(t.Context(), []string{"c-a", "c-b", "c-none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["c-a"] != a || got["c-b"] != b {
			t.Errorf("got %+v, want c-a and c-b as stored", got)
		}
	})
}

// TestRefundBeforeBillingWins: a refund made after the approval but still
// on its way to the database when the APPROVED record is billed is newer
// than the BILLED version, so the database ends REFUNDED; billed_at stays,
// so the charge is invoiced and credited. A newer APPROVED version of a
// billed transaction does not bill it again.
func TestRefundBeforeBillingWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		u0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
		approved := newTx("r-1", "c-1")
		approved.CreatedAt, approved.UpdatedAt = u0, u0
		refunded := approved
		refunded.Status, refunded.UpdatedAt = store.StatusRefunded, u0.Add(10*time.Second)

		res, err := db.Bill(ctx, []store.BillRequest{{Transaction: approved, Ref: "a/0/1"}}, store.BillOptions{})
		if err != nil || outcomes(res) != "billed" {
			t.Fatalf("bill: %s, %v", outcomes(res), err)
		}
		if got := res[0].Transaction.UpdatedAt; !got.Equal(u0.Add(time.Millisecond)) {
			t.Errorf("BILLED updated_at %v, want the APPROVED version's plus 1ms (%v)", got, u0.Add(time.Millisecond))
		}
		if err := db.UpsertTransactions(ctx, []store.Transaction{approved, refunded}); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetTransaction(ctx, "r-1")
		if err != nil || got.Status != store.StatusRefunded || got.BilledAt.IsZero() {
			t.Fatalf("after the mirror: %+v, %v; want REFUNDED with billed_at kept", got, err)
		}
		created, err := db.Credit(ctx, []store.Transaction{refunded})
		if err != nil || !created[0] {
			t.Errorf("credit: %v, %v; want one", created, err)
		}

		// A newer APPROVED version of a billed transaction bills nothing.
		mustTx(t, db, newTx("n-1", "c-1"))
		if _, err := db.Bill(ctx, []store.BillRequest{{Transaction: store.Transaction{ID: "n-1"}, Ref: "a/0/2"}}, store.BillOptions{}); err != nil {
			t.Fatal(err)
		}
		newer := newTx("n-1", "c-1")
		newer.CreatedAt, newer.UpdatedAt = time.Now().Add(-time.Second), time.Now().Add(time.Hour)
		res, err = db.Bill(ctx, []store.BillRequest{{Transaction: newer, Ref: "a/0/3"}}, store.BillOptions{})
		if err != nil || outcomes(res) != "already_billed" {
			t.Errorf("newer APPROVED of a billed transaction: %s, %v; want already_billed", outcomes(res), err)
		}
	})
}
