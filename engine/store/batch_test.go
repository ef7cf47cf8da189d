package store_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// batchN is more than two of the store's statement chunks (500 rows), so
// that every batch below straddles chunk boundaries.
const batchN = 1_100

// streamTx is transaction i of the batch tests as the stream carries it.
func streamTx(i int) store.Transaction {
	id := fmt.Sprintf("t-%05d", i)
	return store.Transaction{ID: id, ClientID: "c-1", AmountMinor: int64(100 + i), Currency: "USD",
		Status: store.StatusApproved, Description: "order " + id, CreatedAt: t0, UpdatedAt: t0}
}

// TestBillBatch bills one batch of more than two chunks holding
// duplicates, transactions billed already by another reference, declined
// ones, ones stored and ones only the stream has; then the same batch
// again, as a retry after its Kafka transaction failed.
func TestBillBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		var stored, cycle []store.Transaction
		var reqs []store.BillRequest
		want := map[string]store.BillOutcome{}
		for i := range batchN {
			tx := streamTx(i)
			switch {
			case i%7 == 0: // declined since
				tx.Status = store.StatusDeclined
				stored = append(stored, tx)
				want[tx.ID] = store.NotBillable
				tx.Status = store.StatusApproved
			case i%5 == 0: // billed first by a cycle
				stored = append(stored, tx)
				cycle = append(cycle, tx)
				want[tx.ID] = store.AlreadyBilled
			case i%3 == 0: // only on the stream so far
				want[tx.ID] = store.Billed
			default:
				stored = append(stored, tx)
				want[tx.ID] = store.Billed
			}
			reqs = append(reqs, store.BillRequest{Transaction: tx, Ref: fmt.Sprintf("transactions.approved/0/%d", i)})
		}
		// Every 10th record comes twice in the batch, under another offset:
		// the second finds the first's work.
		for i := 0; i < batchN; i += 10 {
			dup := reqs[i]
			dup.Ref = fmt.Sprintf("transactions.approved/0/%d", batchN+i)
			reqs = append(reqs, dup)
		}
		if err := db.UpsertTransactions(ctx, stored); err != nil {
			t.Fatal(err)
		}
		var cycleReqs []store.BillRequest
		for _, tx := range cycle {
			cycleReqs = append(cycleReqs, store.BillRequest{Transaction: store.Transaction{ID: tx.ID}, Ref: "cycle:cy-1", CycleID: "cy-1"})
		}
		if _, err := db.Bill(ctx, cycleReqs, store.BillOptions{}); err != nil {
			t.Fatal(err)
		}

		first, err := db.Bill(ctx, reqs, store.BillOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != len(reqs) {
			t.Fatalf("got %d results for %d requests", len(first), len(reqs))
		}
		for i, r := range first {
			id := reqs[i].Transaction.ID
			w := want[id]
			if i >= batchN && w == store.Billed {
				w = store.AlreadyBilled // the duplicate: billed by the first
			}
			if r.Outcome != w {
				t.Errorf("request %d (%s): got %s, want %s", i, id, r.Outcome, w)
			}
		}

		// The retry finds its own work: the same BILLED versions again,
		// and nothing else changes.
		again, err := db.Bill(ctx, reqs, store.BillOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range again {
			w := first[i].Outcome
			if w == store.Billed {
				w = store.BilledBefore
			}
			if r.Outcome != w {
				t.Errorf("retry of request %d (%s): got %s, want %s", i, reqs[i].Transaction.ID, r.Outcome, w)
			}
			if first[i].Outcome == store.Billed && r.Transaction != first[i].Transaction {
				t.Errorf("retry of request %d: got version %+v, want %+v", i, r.Transaction, first[i].Transaction)
			}
		}
		for i := range batchN {
			id := streamTx(i).ID
			got, err := db.GetTransaction(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			switch want[id] {
			case store.NotBillable:
				if got.Status != store.StatusDeclined || !got.BilledAt.IsZero() {
					t.Errorf("%s: got %s billed at %v, want DECLINED and not billed", id, got.Status, got.BilledAt)
				}
			case store.AlreadyBilled:
				if got.Status != store.StatusBilled || got.BillingCycleID != "cy-1" {
					t.Errorf("%s: got %s on cycle %q, want BILLED by the cycle", id, got.Status, got.BillingCycleID)
				}
			default:
				if got.Status != store.StatusBilled || got.BilledAt.IsZero() || got.BillingCycleID != "" || got.AmountMinor != int64(100+i) || got.Currency != "USD" {
					t.Errorf("%s: got %+v, want BILLED by the stream, amount %d USD", id, got, 100+i)
				}
			}
		}
	})
}

// TestBillBatchFailsWhole: a batch with one request that cannot be billed
// (its version fails Check), past the first chunk, writes nothing; the
// batch without it then bills every other one.
func TestBillBatchFailsWhole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mustClient(t, db, "c-1")
		var reqs []store.BillRequest
		var stored []store.Transaction
		for i := range batchN {
			tx := streamTx(i)
			if i%2 == 0 {
				stored = append(stored, tx)
			}
			reqs = append(reqs, store.BillRequest{Transaction: tx, Ref: fmt.Sprintf("transactions.approved/1/%d", i)})
		}
		if err := db.UpsertTransactions(ctx, stored); err != nil {
			t.Fatal(err)
		}
		bad := streamTx(batchN)
		bad.Currency = "usd"
		withBad := slices.Insert(slices.Clone(reqs), 700, store.BillRequest{Transaction: bad, Ref: "transactions.approved/1/bad"})
		if _, err := db.Bill(ctx, withBad, store.BillOptions{}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("a batch with a bad version: got %v, want ErrInvalid", err)
		}
		counts, err := db.CountByStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.StatusBilled] != 0 || counts[store.StatusApproved] != int64(len(stored)) {
			t.Fatalf("after the failed batch: got %v, want %d APPROVED and nothing billed", counts, len(stored))
		}
		res, err := db.Bill(ctx, reqs, store.BillOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome != store.Billed {
				t.Errorf("request %d: got %s, want billed", i, r.Outcome)
			}
		}
		if counts, err := db.CountByStatus(ctx); err != nil || counts[store.StatusBilled] != batchN {
			t.Errorf("after the batch: got %v, %v; want %d BILLED", counts, err, batchN)
		}
	})
}

// TestUpsertBatch upserts a batch of more than two chunks against stored
// rows that are older, as new, and newer than the batch's versions, with
// several versions of one transaction in the batch: the newest version of
// each stays, an equal one keeps the stored row, and billed stays billed.
func TestUpsertBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		var stored, batch []store.Transaction
		want := map[string]store.Transaction{}
		for i := range batchN {
			tx := streamTx(i)
			in := tx
			in.UpdatedAt = t0.Add(time.Minute)
			in.Description = "from the batch"
			switch i % 4 {
			case 0: // not stored: inserted
				want[tx.ID] = in
			case 1: // stored older: replaced
				stored = append(stored, tx)
				want[tx.ID] = in
			case 2: // stored as new: kept
				tx.UpdatedAt, tx.Description = in.UpdatedAt, "stored"
				stored = append(stored, tx)
				want[tx.ID] = tx
			case 3: // stored newer and billed: kept
				tx.UpdatedAt, tx.Status, tx.BilledAt = t0.Add(time.Hour), store.StatusBilled, t0.Add(time.Hour)
				stored = append(stored, tx)
				want[tx.ID] = tx
			}
			batch = append(batch, in)
		}
		// Three versions of t-00001 in the batch, the newest in the middle;
		// a refund of the billed t-00003 keeps its billed_at.
		v2 := want["t-00001"]
		v2.UpdatedAt, v2.Status = t0.Add(2*time.Minute), store.StatusRefunded
		refund := want["t-00003"]
		refund.UpdatedAt, refund.Status, refund.BilledAt = t0.Add(2*time.Hour), store.StatusRefunded, time.Time{}
		batch = append(batch, v2, streamTx(1), refund)
		want["t-00001"] = v2
		billedAt := want["t-00003"].BilledAt
		refund.BilledAt = billedAt
		want["t-00003"] = refund
		if err := db.UpsertTransactions(ctx, stored); err != nil {
			t.Fatal(err)
		}
		if err := db.UpsertTransactions(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// A replay changes nothing.
		if err := db.UpsertTransactions(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, id := range slices.Sorted(maps.Keys(want)) {
			got, err := db.GetTransaction(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if w := want[id]; got != w {
				t.Errorf("%s: got %+v, want %+v", id, got, w)
			}
		}
	})
}

// TestUpsertWhileBilling mirrors the stream into the store while the same
// transactions are billed, as the store and billing pipelines do: each is
// billed once, and the store ends with every BILLED version.
func TestUpsertWhileBilling(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		const n = 600
		var txs []store.Transaction
		for i := range n {
			txs = append(txs, streamTx(i))
		}
		billed := make([]store.Transaction, n)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the store pipeline: the APPROVED versions, in batches
			defer wg.Done()
			for lo := 0; lo < n; lo += 100 {
				if err := db.UpsertTransactions(ctx, txs[lo:lo+100]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // the billing pipeline, in batches of another size
			defer wg.Done()
			for lo := 0; lo < n; lo += 150 {
				var reqs []store.BillRequest
				for i := lo; i < lo+150; i++ {
					reqs = append(reqs, store.BillRequest{Transaction: txs[i], Ref: fmt.Sprintf("a/0/%d", i)})
				}
				res, err := db.Bill(ctx, reqs, store.BillOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				for j, r := range res {
					if r.Outcome != store.Billed {
						t.Errorf("%s: got %s, want billed", reqs[j].Transaction.ID, r.Outcome)
					}
					billed[lo+j] = r.Transaction
				}
			}
		}()
		wg.Wait()
		// The BILLED versions come back from the stream: nothing changes.
		if err := db.UpsertTransactions(ctx, billed); err != nil {
			t.Fatal(err)
		}
		for i, w := range billed {
			got, err := db.GetTransaction(ctx, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("transaction %d: got %+v, want the BILLED version %+v", i, got, w)
			}
		}
	})
}

// TestClaimEmailsTakesOverMany: claims of an owner that stopped, more
// than two chunks of them, expire and are all taken over by another.
func TestClaimEmailsTakesOverMany(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		var ids []string
		for i := range batchN {
			ids = append(ids, streamTx(i).ID)
		}
		if _, err := db.ClaimEmails(ctx, "billed", ids, "a", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkEmailsSent(ctx, []store.EmailSent{{RefID: ids[600], Kind: "billed", Recipient: "x@example.com", MessageID: "<x>"}}); err != nil {
			t.Fatal(err)
		}
		b, err := db.ClaimEmails(ctx, "billed", ids, "b", 0) // a's claims have expired
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Claimed) != batchN-1 || len(b.TakenOver) != batchN-1 || !b.Sent[ids[600]] || len(b.Busy) != 0 {
			t.Fatalf("b: %d claimed, %d taken over, sent %v, %d busy; want %d, %d, [%s], 0",
				len(b.Claimed), len(b.TakenOver), slices.Collect(maps.Keys(b.Sent)), len(b.Busy), batchN-1, batchN-1, ids[600])
		}
		a, err := db.ClaimEmails(ctx, "billed", ids, "a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Busy) != batchN-1 || len(a.Claimed) != 0 {
			t.Errorf("a again: %d busy, %d claimed; want %d busy (b holds them)", len(a.Busy), len(a.Claimed), batchN-1)
		}
		if err := db.ReleaseEmails(ctx, "billed", ids, "b"); err != nil {
			t.Fatal(err)
		}
		if a, err := db.ClaimEmails(ctx, "billed", ids, "a", time.Hour); err != nil || len(a.Claimed) != batchN-1 || len(a.TakenOver) != 0 {
			t.Errorf("after b released: %d claimed, %d taken over, %v; want %d new claims", len(a.Claimed), len(a.TakenOver), err, batchN-1)
		}
	})
}

// TestMarkEmailsSentManySizes records batches of many different sizes,
// more than the store keeps prepared statements for, single statements
// and multi-chunk ones: each is recorded whole, and recording again
// changes nothing.
func TestMarkEmailsSentManySizes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		next := 0
		var all []store.EmailSent
		for size := 1; size <= 80; size++ {
			var batch []store.EmailSent
			for range size {
				id := fmt.Sprintf("e-%05d", next)
				next++
				batch = append(batch, store.EmailSent{RefID: id, Kind: "billed", Recipient: id + "@example.com", MessageID: "<" + id + ">"})
			}
			if err := db.MarkEmailsSent(ctx, batch); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			all = append(all, batch...)
		}
		if err := db.MarkEmailsSent(ctx, all); err != nil { // 3,240 entries, recorded already
			t.Fatal(err)
		}
		if n, err := db.CountEmailsSent(ctx, "billed"); err != nil || n != int64(len(all)) {
			t.Errorf("got %d recorded, %v; want %d", n, err, len(all))
		}
		e, err := db.GetEmailSent(ctx, "e-00077", "billed")
		if err != nil || e.Recipient != "e-00077@example.com" || !strings.HasPrefix(e.MessageID, "<e-00077") {
			t.Errorf("e-00077: %+v, %v", e, err)
		}
	})
}
