package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stepClock returns a clock that starts at t0 and moves 1ms per call.
func stepClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func mustClient(t *testing.T, db *store.DB, id string) store.Client {
	t.Helper()
	c := store.Client{ID: id, Name: "Client " + id, Email: id + "@example.com", Status: store.ClientActive}
	if err := db.CreateClient(t.Context(), c, nil); err != nil {
		t.Fatalf("create client %s: %v", id, err)
	}
	got, err := db.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("get client %s: %v", id, err)
	}
	return got
}

func newTx(id, client string) store.Transaction {
	return store.Transaction{ID: id, ClientID: client, AmountMinor: 1250, Currency: "EUR", Status: store.StatusApproved, Description: "order " + id}
}

func mustTx(t *testing.T, db *store.DB, tx store.Transaction) store.Transaction {
	t.Helper()
	if err := db.CreateTransaction(t.Context(), tx, nil); err != nil {
		t.Fatalf("create transaction %s: %v", tx.ID, err)
	}
	got, err := db.GetTransaction(t.Context(), tx.ID)
	if err != nil {
		t.Fatalf("get transaction %s: %v", tx.ID, err)
	}
	return got
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			dsn := storetest.DSN(t, d)
			var wg sync.WaitGroup
			errs := make([]error, 3)
			dbs := make([]*store.DB, 3)
			for i := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dbs[i], errs[i] = store.Open(t.Context(), dsn)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				defer dbs[i].Close()
			}
			v, err := dbs[0].SchemaVersion(t.Context())
			if err != nil || v != 2 {
				t.Fatalf("schema version: got %d, %v; want 2", v, err)
			}
			if got := dbs[0].Dialect(); got != d {
				t.Errorf("dialect: got %s, want %s", got, d)
			}
		})
	}
}

func TestClientCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		c := mustClient(t, db, "c-1")
		if c.CreatedAt.IsZero() || !c.CreatedAt.Equal(c.UpdatedAt) {
			t.Errorf("timestamps: got created %v updated %v, want equal and set", c.CreatedAt, c.UpdatedAt)
		}
		if err := db.CreateClient(ctx, c, nil); !errors.Is(err, store.ErrExists) {
			t.Errorf("create twice: got %v, want ErrExists", err)
		}
		if _, err := db.GetClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get unknown: got %v, want ErrNotFound", err)
		}
		up, err := db.UpdateClient(ctx, "c-1", func(c store.Client) (store.Client, error) {
			c.Email = "new@example.com"
			c.Status = store.ClientSuspended
			return c, nil
		})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if up.Email != "new@example.com" || up.Status != store.ClientSuspended || !up.UpdatedAt.After(c.UpdatedAt) || !up.CreatedAt.Equal(c.CreatedAt) {
			t.Errorf("update: got %+v", up)
		}
		same, err := db.UpdateClient(ctx, "c-1", func(c store.Client) (store.Client, error) { return c, nil })
		if err != nil || !same.UpdatedAt.Equal(up.UpdatedAt) {
			t.Errorf("no-op update: got %v, %v; want updated_at unchanged %v", same.UpdatedAt, err, up.UpdatedAt)
		}
		boom := errors.New("boom")
		if _, err := db.UpdateClient(ctx, "c-1", func(c store.Client) (store.Client, error) { return c, boom }); !errors.Is(err, boom) {
			t.Errorf("update fn error: got %v, want boom", err)
		}
		if _, err := db.UpdateClient(ctx, "nope", func(c store.Client) (store.Client, error) { return c, nil }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update unknown: got %v, want ErrNotFound", err)
		}
		if err := db.DeleteClient(ctx, "c-1"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := db.DeleteClient(ctx, "c-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete twice: got %v, want ErrNotFound", err)
		}
	})
}

func TestDeleteClientWithTransactions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mustClient(t, db, "c-1")
		mustTx(t, db, newTx("t-1", "c-1"))
		if err := db.DeleteClient(t.Context(), "c-1"); !errors.Is(err, store.ErrHasTransactions) {
			t.Fatalf("got %v, want ErrHasTransactions", err)
		}
		if err := db.DeleteTransaction(t.Context(), "t-1"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteClient(t.Context(), "c-1"); err != nil {
			t.Fatalf("after the transaction is gone: %v", err)
		}
	})
}

func TestCreateTransactionRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		mustClient(t, db, "c-closed")
		if _, err := db.UpdateClient(ctx, "c-closed", func(c store.Client) (store.Client, error) {
			c.Status = store.ClientClosed
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		mustTx(t, db, newTx("t-1", "c-1"))
		long := newTx("t-2", "c-1")
		long.Description = string(make([]rune, store.MaxDescriptionLen+1))
		for _, tc := range []struct {
			name string
			tx   store.Transaction
			want error
		}{
			{"duplicate id", newTx("t-1", "c-1"), store.ErrExists},
			{"unknown client", newTx("t-2", "nope"), store.ErrUnknownClient},
			{"closed client", newTx("t-2", "c-closed"), store.ErrClientClosed},
			{"bad currency", func() store.Transaction { x := newTx("t-2", "c-1"); x.Currency = "eu"; return x }(), store.ErrInvalid},
			{"bad status", func() store.Transaction { x := newTx("t-2", "c-1"); x.Status = "PENDING"; return x }(), store.ErrInvalid},
			{"id with space", newTx("t 2", "c-1"), store.ErrInvalid},
			{"description too long", long, store.ErrInvalid},
		} {
			if err := db.CreateTransaction(ctx, tc.tx, nil); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}
		pending, err := db.PendingOutbox(ctx, 10)
		if err != nil || len(pending) != 1 || pending[0].Transaction.ID != "t-1" {
			t.Fatalf("outbox: got %+v, %v; want one entry for t-1", pending, err)
		}
	})
}

func TestTransactionStatusChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		cur := mustTx(t, db, newTx("t-1", "c-1"))
		set := func(s store.TxStatus) (store.Transaction, error) {
			return db.UpdateTransaction(ctx, "t-1", func(t store.Transaction) (store.Transaction, error) {
				t.Status = s
				return t, nil
			})
		}
		if _, err := set(store.StatusApproved); err != nil {
			t.Fatalf("same status: %v", err)
		}
		billed, err := set(store.StatusBilled)
		if err != nil {
			t.Fatalf("APPROVED -> BILLED: %v", err)
		}
		if billed.BilledAt.IsZero() || !billed.UpdatedAt.After(cur.UpdatedAt) {
			t.Errorf("billed: got billed_at %v updated_at %v", billed.BilledAt, billed.UpdatedAt)
		}
		if _, err := set(store.StatusDeclined); !errors.Is(err, store.ErrIllegalTransition) {
			t.Errorf("BILLED -> DECLINED: got %v, want ErrIllegalTransition", err)
		}
		if err := db.DeleteTransaction(ctx, "t-1"); !errors.Is(err, store.ErrBilled) {
			t.Errorf("delete billed: got %v, want ErrBilled", err)
		}
		if _, err := set(store.StatusRefunded); err != nil {
			t.Errorf("BILLED -> REFUNDED: %v", err)
		}
		pending, err := db.PendingOutbox(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []store.TxStatus
		for _, e := range pending {
			got = append(got, e.Transaction.Status)
		}
		if fmt.Sprint(got) != "[APPROVED BILLED REFUNDED]" {
			t.Errorf("outbox statuses: got %v, want [APPROVED BILLED REFUNDED]", got)
		}
	})
}

func TestChangeStatusIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		mustTx(t, db, newTx("t-1", "c-1"))
		ch := store.StatusChange{ID: "t-1", To: store.StatusBilled, BillingCycleID: "cycle-1"}
		first, changed, err := db.ChangeStatus(ctx, ch)
		if err != nil || !changed || first.BillingCycleID != "cycle-1" || first.BilledAt.IsZero() {
			t.Fatalf("first: got %+v changed=%v err=%v", first, changed, err)
		}
		again, changed, err := db.ChangeStatus(ctx, ch)
		if err != nil || changed || !again.UpdatedAt.Equal(first.UpdatedAt) {
			t.Fatalf("replay: got changed=%v err=%v updated %v, want unchanged", changed, err, again.UpdatedAt)
		}
		pending, _ := db.PendingOutbox(ctx, 10)
		if len(pending) != 1 {
			t.Errorf("outbox: got %d entries, want 1 (ChangeStatus without Publish writes none)", len(pending))
		}
		if _, _, err := db.ChangeStatus(ctx, store.StatusChange{ID: "t-1", To: store.StatusDeclined}); !errors.Is(err, store.ErrIllegalTransition) {
			t.Errorf("BILLED -> DECLINED: got %v", err)
		}
		if _, _, err := db.ChangeStatus(ctx, store.StatusChange{ID: "nope", To: store.StatusBilled}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown: got %v", err)
		}
	})
}

func TestStateMachine(t *testing.T) {
	legal := map[[2]store.TxStatus]bool{
		{store.StatusApproved, store.StatusBilled}:   true,
		{store.StatusApproved, store.StatusDeclined}: true,
		{store.StatusApproved, store.StatusRefunded}: true,
		{store.StatusBilled, store.StatusRefunded}:   true,
	}
	for _, from := range store.TxStatuses {
		for _, to := range store.TxStatuses {
			want := from == to || legal[[2]store.TxStatus{from, to}]
			if got := store.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s): got %v, want %v", from, to, got, want)
			}
		}
	}
	if store.CanTransition("PENDING", "PENDING") {
		t.Error("unknown status may change to itself")
	}
}

func TestListPagingWalksEveryRowOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-a")
		mustClient(t, db, "c-b")
		// Five transactions share each created_at, so paging must order
		// by id within a timestamp.
		want := map[string]bool{}
		for i := range 37 {
			tx := newTx(fmt.Sprintf("t-%02d", 36-i), []string{"c-a", "c-b"}[i%2])
			tx.CreatedAt = t0.Add(time.Duration(i/5) * time.Second)
			if i%3 == 0 {
				tx.Status = store.StatusDeclined
			}
			mustTx(t, db, tx)
			want[tx.ID] = true
		}
		for _, tc := range []struct {
			name string
			f    store.TransactionFilter
			want func(store.Transaction) bool
		}{
			{"all", store.TransactionFilter{}, func(store.Transaction) bool { return true }},
			{"client", store.TransactionFilter{ClientID: "c-b"}, func(x store.Transaction) bool { return x.ClientID == "c-b" }},
			{"status", store.TransactionFilter{Status: store.StatusDeclined}, func(x store.Transaction) bool { return x.Status == store.StatusDeclined }},
			{"created range", store.TransactionFilter{CreatedFrom: t0.Add(2 * time.Second), CreatedTo: t0.Add(5 * time.Second)},
				func(x store.Transaction) bool {
					return !x.CreatedAt.Before(t0.Add(2*time.Second)) && x.CreatedAt.Before(t0.Add(5*time.Second))
				}},
		} {
			for _, limit := range []int{1, 4, 5, 100} {
				f := tc.f
				f.Limit = limit
				seen := map[string]int{}
				var prev store.Transaction
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatalf("%s limit %d: paging does not end", tc.name, limit)
					}
					p, err := db.ListTransactions(ctx, f)
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					if len(p.Items) > limit {
						t.Fatalf("%s: page of %d, limit %d", tc.name, len(p.Items), limit)
					}
					for _, x := range p.Items {
						seen[x.ID]++
						if !tc.want(x) {
							t.Errorf("%s: %s does not match the filter", tc.name, x.ID)
						}
						if prev.ID != "" && (x.CreatedAt.Before(prev.CreatedAt) || x.CreatedAt.Equal(prev.CreatedAt) && x.ID <= prev.ID) {
							t.Errorf("%s: %s after %s: out of order", tc.name, x.ID, prev.ID)
						}
						prev = x
					}
					if p.Next == "" {
						break
					}
					f.After = p.Next
				}
				for id := range want {
					x, _ := db.GetTransaction(ctx, id)
					wantN := 0
					if tc.want(x) {
						wantN = 1
					}
					if seen[id] != wantN {
						t.Errorf("%s limit %d: %s seen %d times, want %d", tc.name, limit, id, seen[id], wantN)
					}
				}
			}
		}
		if _, err := db.ListTransactions(ctx, store.TransactionFilter{Limit: 5, After: "garbage!"}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("bad cursor: got %v, want ErrBadCursor", err)
		}
		cp, err := db.ListClients(ctx, store.ClientFilter{Limit: 1})
		if err != nil || len(cp.Items) != 1 || cp.Next == "" {
			t.Fatalf("clients page 1: %+v %v", cp, err)
		}
		cp, err = db.ListClients(ctx, store.ClientFilter{Limit: 1, After: cp.Next})
		if err != nil || len(cp.Items) != 1 || cp.Items[0].ID != "c-b" || cp.Next != "" {
			t.Fatalf("clients page 2: %+v %v", cp, err)
		}
	})
}

func TestUpsertNewerWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		base := store.Transaction{ID: "s-1", ClientID: "anyone", AmountMinor: -500, Currency: "USD",
			Status: store.StatusApproved, CreatedAt: t0, UpdatedAt: t0}
		newer := base
		newer.Status, newer.UpdatedAt, newer.BilledAt, newer.BillingCycleID = store.StatusBilled, t0.Add(time.Second), t0.Add(time.Second), "cy-1"
		older := base
		older.Status, older.UpdatedAt = store.StatusDeclined, t0.Add(-time.Second)
		sameTime := newer
		sameTime.Status = store.StatusRefunded
		// In one batch and across batches: the newest version stays.
		if err := db.UpsertTransactions(ctx, []store.Transaction{base, newer, older}); err != nil {
			t.Fatal(err)
		}
		if err := db.UpsertTransactions(ctx, []store.Transaction{older, base, sameTime}); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetTransaction(ctx, "s-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusBilled || !got.UpdatedAt.Equal(newer.UpdatedAt) || got.BillingCycleID != "cy-1" || !got.BilledAt.Equal(newer.BilledAt) || got.AmountMinor != -500 {
			t.Errorf("got %+v, want the BILLED version", got)
		}
		many := make([]store.Transaction, 450)
		for i := range many {
			many[i] = base
			many[i].ID = fmt.Sprintf("m-%03d", i)
		}
		if err := db.UpsertTransactions(ctx, many); err != nil {
			t.Fatal(err)
		}
		p, err := db.ListTransactions(ctx, store.TransactionFilter{ClientID: "anyone", Limit: 500})
		if err != nil || len(p.Items) != 451 {
			t.Errorf("after a batch of 450: got %d rows, %v; want 451", len(p.Items), err)
		}
		pending, _ := db.PendingOutbox(ctx, 10)
		if len(pending) != 0 {
			t.Errorf("upserts wrote %d outbox entries, want 0", len(pending))
		}
		bad := base
		bad.Currency = "euro"
		if err := db.UpsertTransactions(ctx, []store.Transaction{bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad currency: got %v, want ErrInvalid", err)
		}
	})
}

func TestIdempotencyRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		idem := &store.Idempotency{Scope: "POST /api/v1/clients", Key: "k-1", Fingerprint: "f1", Status: 201, Body: []byte(`{"a":1}`)}
		c := store.Client{ID: "c-1", Name: "A", Email: "a@example.com", Status: store.ClientActive}
		if err := db.CreateClient(ctx, c, idem); err != nil {
			t.Fatal(err)
		}
		got, err := db.Idempotent(ctx, idem.Scope, "k-1")
		if err != nil || got.Status != 201 || string(got.Body) != `{"a":1}` || got.Fingerprint != "f1" {
			t.Fatalf("stored: got %+v, %v", got, err)
		}
		if _, err := db.Idempotent(ctx, "POST /api/v1/transactions", "k-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other scope: got %v, want ErrNotFound", err)
		}
		c.ID = "c-2"
		if err := db.CreateClient(ctx, c, idem); !errors.Is(err, store.ErrKeyUsed) {
			t.Errorf("same key again: got %v, want ErrKeyUsed", err)
		}
		if _, err := db.GetClient(ctx, "c-2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused create wrote its row: %v", err)
		}
	})
}

func TestOutboxMarkSentAndPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		for i := range 5 {
			mustTx(t, db, newTx(fmt.Sprintf("t-%d", i), "c-1"))
		}
		select {
		case <-db.OutboxWritten():
		default:
			t.Error("no outbox signal after a create")
		}
		p, err := db.PendingOutbox(ctx, 3)
		if err != nil || len(p) != 3 || p[0].ID >= p[1].ID || p[1].ID >= p[2].ID {
			t.Fatalf("pending: %+v, %v", p, err)
		}
		if err := db.MarkSent(ctx, []int64{p[0].ID, p[1].ID, p[0].ID}); err != nil {
			t.Fatal(err)
		}
		pending, sent, err := db.OutboxCounts(ctx)
		if err != nil || pending != 3 || sent != 2 {
			t.Errorf("counts: got %d pending %d sent, %v; want 3 and 2", pending, sent, err)
		}
		n, err := db.Purge(ctx, time.Now().Add(time.Hour))
		if err != nil || n != 2 {
			t.Errorf("purge: got %d, %v; want 2", n, err)
		}
	})
}

func TestLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for _, step := range []struct {
			owner string
			ttl   time.Duration
			want  bool
		}{
			{"a", time.Hour, true},
			{"b", time.Hour, false},
			{"a", -time.Second, true}, // renewed, already expired
			{"b", time.Hour, true},    // taken over
			{"a", time.Hour, false},
		} {
			got, err := db.AcquireLease(ctx, "relay", step.owner, step.ttl)
			if err != nil || got != step.want {
				t.Fatalf("acquire by %s: got %v, %v; want %v", step.owner, got, err, step.want)
			}
		}
		if err := db.ReleaseLease(ctx, "relay", "b"); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.AcquireLease(ctx, "relay", "a", time.Hour); !got {
			t.Error("not acquired after release")
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mustClient(t, db, "c-1")
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					errs <- db.CreateTransaction(t.Context(), newTx(fmt.Sprintf("w%d-%d", w, i), "c-1"), nil)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if pending, _, _ := db.OutboxCounts(t.Context()); pending != 200 {
			t.Errorf("outbox: got %d pending, want 200", pending)
		}
	})
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{"postgres://x", "mysql://nodb@tcp(127.0.0.1:3306)/", "mysql://::bad", "sqlite:"} {
		if _, err := store.Open(context.Background(), dsn); !errors.Is(err, store.ErrBadDSN) {
			t.Errorf("%q: got %v, want ErrBadDSN", dsn, err)
		}
	}
}
