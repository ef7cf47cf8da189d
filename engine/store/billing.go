package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// billChunk bounds the ids of one SELECT and the rows of one INSERT of a
// Bill or Credit call: a batch of the engine's (500 records by default)
// takes one statement of each.
const billChunk = 500

// MaxBillRefLen bounds BillRequest.Ref: a Kafka topic name (249
// characters at most) with a partition and an offset fits.
const MaxBillRefLen = 320

// BillRequest asks Bill to bill one transaction.
type BillRequest struct {
	// Transaction is the version the caller holds: a record from the
	// stream, or a row read from the store. Only ID is required when the
	// store has the row. When the store has no row for it, or an older
	// version (the stream is ahead of the database), this version is the
	// one billed and written; it must then pass Check.
	Transaction Transaction
	// Ref names this billing attempt, so that a retry finds its own
	// earlier work: the stream record it comes from
	// ("transactions.approved/3/1234") or the cycle ("cycle:<id>").
	// At most MaxBillRefLen ASCII characters.
	Ref string
	// CycleID is recorded as the billing_cycle_id of a transaction this
	// request bills.
	CycleID string
}

// BillOutcome says what Bill did with one request.
type BillOutcome string

// The outcomes of a BillRequest.
const (
	// Billed: the transaction was APPROVED and is now BILLED; Transaction
	// is the new version.
	Billed BillOutcome = "billed"
	// BilledBefore: an earlier call with the same Ref billed it (this is
	// a retry); Transaction is that BILLED version, unchanged, so the
	// caller can emit exactly what it would have emitted then.
	BilledBefore BillOutcome = "billed_before"
	// AlreadyBilled: it was billed by another Ref (a replay, or a billing
	// cycle); nothing changed and there is nothing to emit.
	AlreadyBilled BillOutcome = "already_billed"
	// NotBillable: its status is DECLINED or REFUNDED; nothing changed.
	NotBillable BillOutcome = "not_billable"
)

// BillResult is Bill's answer for one request.
type BillResult struct {
	Outcome BillOutcome
	// Transaction is the stored version after the call.
	Transaction Transaction
}

// BillOptions tune a Bill call.
type BillOptions struct {
	// Publish writes an outbox entry for each transaction billed, so
	// that the relay publishes the BILLED version to the transactions
	// topic. Leave it false when the caller emits the records itself (the
	// billing plugin emits them in its Kafka transaction).
	Publish bool
}

// billRow is a transaction as Bill reads it: the row and who billed it.
type billRow struct {
	t        Transaction
	billedBy string
	// insert: the store had no row when it was read.
	insert bool
}

// Bill moves each requested transaction from APPROVED to BILLED, setting
// billed_at and updated_at to now, in one database transaction that holds
// the rows. It is idempotent: a transaction billed already changes
// nothing, and the outcome tells a retry of the same Ref (BilledBefore,
// whose version the caller may emit again) from a replay or a transaction
// billed elsewhere (AlreadyBilled: emit nothing). Requests are answered in
// order; a repeated id sees the effect of the earlier request.
//
// A request whose transaction is missing from the store, or stored in an
// older version than the request carries, is decided on the request's
// version, which is then written with the result: the stream may reach the
// billing plugin before the database mirror. Errors: ErrInvalid for a
// request whose version is needed and fails Check (nothing is written);
// ErrNotFound for a request with neither a stored row nor a full version.
func (db *DB) Bill(ctx context.Context, reqs []BillRequest, opt BillOptions) ([]BillResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	for i := range reqs {
		if err := checkID("transaction_id", reqs[i].Transaction.ID); err != nil {
			return nil, fmt.Errorf("bill request %d: %w", i, err)
		}
		if len(reqs[i].Ref) > MaxBillRefLen {
			return nil, fmt.Errorf("%w: bill request %d: ref longer than %d characters", ErrInvalid, i, MaxBillRefLen)
		}
	}
	db.warmBill(ctx, reqs)
	var results []BillResult
	published := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		results, published = make([]BillResult, len(reqs)), false
		rows, err := db.lockBillRows(ctx, tx, reqs)
		if err != nil {
			return err
		}
		now := db.clock()
		var writes []billRow
		for i, req := range reqs {
			row, stored := rows[req.Transaction.ID]
			cur := row.t
			if !stored || req.Transaction.UpdatedAt.After(row.t.UpdatedAt) {
				in := req.Transaction
				in.normalize()
				if in.ClientID == "" && !stored {
					return fmt.Errorf("%w: transaction %s", ErrNotFound, in.ID)
				}
				if in.ClientID != "" {
					if err := in.Check(); err != nil {
						return fmt.Errorf("bill request %d (%s): %w", i, in.ID, err)
					}
					cur = in
				}
			}
			switch {
			case stored && !row.t.BilledAt.IsZero():
				// Billed once is billed for good, whatever version the
				// request carries (a newer APPROVED one would bill again).
				if req.Ref != "" && row.billedBy == req.Ref {
					results[i] = BillResult{Outcome: BilledBefore, Transaction: row.t}
				} else {
					results[i] = BillResult{Outcome: AlreadyBilled, Transaction: row.t}
				}
			case cur.Status == StatusApproved:
				next := cur
				next.Status, next.BilledAt = StatusBilled, now
				prev := cur.UpdatedAt
				if row.t.UpdatedAt.After(prev) {
					prev = row.t.UpdatedAt
				}
				// The BILLED version follows the version it bills by one
				// millisecond, not by the wall clock: a refund or decline
				// made after the approval but not yet in the database (the
				// stream is ahead of it) is newer, and wins in the database
				// mirror and the status table, which keep billed_at.
				next.UpdatedAt = prev.Add(time.Millisecond)
				if req.CycleID != "" {
					next.BillingCycleID = req.CycleID
				}
				// A repeated id finds this row billed (above): each id is
				// written once.
				nr := billRow{t: next, billedBy: req.Ref, insert: !stored}
				rows[next.ID] = nr
				writes = append(writes, nr)
				results[i] = BillResult{Outcome: Billed, Transaction: next}
			case cur.Status == StatusBilled:
				results[i] = BillResult{Outcome: AlreadyBilled, Transaction: cur}
			default:
				results[i] = BillResult{Outcome: NotBillable, Transaction: cur}
			}
		}
		if err := db.writeBilled(ctx, tx, writes); err != nil {
			return err
		}
		if opt.Publish {
			for _, w := range writes {
				if err := db.putOutbox(ctx, tx, w.t); err != nil {
					return err
				}
				published = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if published {
		db.signalOutbox()
	}
	return results, nil
}

// billIDs returns the ids of reqs, sorted, once each: the order Bill
// locks rows in, the same for every caller, so that batches never
// deadlock each other.
func billIDs(reqs []BillRequest) []string {
	ids := make([]string, 0, len(reqs))
	for _, r := range reqs {
		ids = append(ids, r.Transaction.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// lockBillSQL reads and locks n rows for Bill.
func (db *DB) lockBillSQL(n int) string {
	return "SELECT " + txCols + ", billed_by FROM transactions WHERE transaction_id IN " +
		placeholders(n) + " ORDER BY transaction_id" + db.d.forUpdate
}

// writeBilledSQL writes n rows for Bill: inserts them, or with
// db.d.replaceTx for suffix, replaces them.
func writeBilledSQL(n int, suffix string) string {
	return "INSERT INTO transactions (" + txCols + ", billed_by) VALUES " + rowsOf(n, 11) + suffix
}

// warmBill prepares the statements a Bill of reqs is likely to run, before
// its transaction (see warmBatch): the reads of its rows, and the writes
// of as many rows, stored or not.
func (db *DB) warmBill(ctx context.Context, reqs []BillRequest) {
	n := len(billIDs(reqs))
	for start := 0; start < n; start += billChunk {
		size := min(billChunk, n-start)
		db.warmBatch(ctx, db.lockBillSQL(size), writeBilledSQL(size, db.d.replaceTx), writeBilledSQL(size, ""))
	}
}

// lockBillRows reads the rows of reqs, locking them, by id.
func (db *DB) lockBillRows(ctx context.Context, tx *sql.Tx, reqs []BillRequest) (map[string]billRow, error) {
	ids := billIDs(reqs)
	rows := make(map[string]billRow, len(ids))
	for start := 0; start < len(ids); start += billChunk {
		chunk := ids[start:min(start+billChunk, len(ids))]
		rs, err := db.batchQuery(ctx, tx, db.lockBillSQL(len(chunk)), idArgs(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("store: bill: %w", err)
		}
		for rs.Next() {
			var by sql.NullString
			t, err := scanTransaction(scanPlus{rs, &by})
			if err != nil {
				rs.Close()
				return nil, fmt.Errorf("store: bill: %w", err)
			}
			rows[t.ID] = billRow{t: t, billedBy: by.String}
		}
		if err := rs.Close(); err != nil {
			return nil, fmt.Errorf("store: bill: %w", err)
		}
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("store: bill: %w", err)
		}
	}
	return rows, nil
}

// scanPlus scans the transaction columns and then extra ones.
type scanPlus struct {
	row   interface{ Scan(...any) error }
	extra *sql.NullString
}

func (s scanPlus) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra)...) }

// writeBilled writes rows whole: those the store had, locked by the
// caller, are replaced; those it had not are inserted, and one that
// appeared meanwhile (READ COMMITTED locks no missing row) fails the
// transaction with errConflict, so that db.write runs it again with the
// row read and locked.
func (db *DB) writeBilled(ctx context.Context, tx *sql.Tx, rows []billRow) error {
	var replace, insert []billRow
	for _, r := range rows {
		if r.insert {
			insert = append(insert, r)
		} else {
			replace = append(replace, r)
		}
	}
	for _, part := range []struct {
		rows   []billRow
		suffix string
	}{{replace, db.d.replaceTx}, {insert, ""}} {
		for start := 0; start < len(part.rows); start += billChunk {
			chunk := part.rows[start:min(start+billChunk, len(part.rows))]
			args := make([]any, 0, len(chunk)*11)
			for i := range chunk {
				args = append(args, db.txArgs(&chunk[i].t)...)
				args = append(args, chunk[i].billedBy)
			}
			_, err := db.batchExec(ctx, tx, writeBilledSQL(len(chunk), part.suffix), args...)
			if part.suffix == "" && db.d.isDuplicate(err) {
				return fmt.Errorf("store: bill: %w: %w", errConflict, err)
			}
			if err != nil {
				return fmt.Errorf("store: bill: %w", err)
			}
		}
	}
	return nil
}

// Credit records a credit for each refunded transaction in ts that had
// been billed (its billed_at is set, on the record or in the store), for
// the client's next invoice: the full amount it was billed (the stored
// row's client, currency and amount when the store has it billed, else
// the record's), once per transaction, ever.
// It answers, in order, whether each call created the credit; a replay
// creates nothing. Transactions whose status is not REFUNDED are ignored.
func (db *DB) Credit(ctx context.Context, ts []Transaction) ([]bool, error) {
	created := make([]bool, len(ts))
	if len(ts) == 0 {
		return created, nil
	}
	for i := range ts {
		if err := ts[i].Check(); err != nil {
			return nil, fmt.Errorf("credit %d (%s): %w", i, ts[i].ID, err)
		}
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		clear(created)
		ids := make([]string, 0, len(ts))
		for _, t := range ts {
			if t.Status == StatusRefunded {
				ids = append(ids, t.ID)
			}
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		billed, credited, err := db.creditState(ctx, tx, ids)
		if err != nil {
			return err
		}
		now := db.clock()
		var args []any
		n := 0
		flush := func() error {
			if n == 0 {
				return nil
			}
			q := "INSERT INTO credits (transaction_id, client_id, currency, amount_minor, description, created_at) VALUES " +
				rowsOf(n, 6)
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("store: credit: %w", err)
			}
			args, n = args[:0], 0
			return nil
		}
		for i, t := range ts {
			row, stored := billed[t.ID]
			if t.Status != StatusRefunded || credited[t.ID] || (t.BilledAt.IsZero() && !stored) {
				continue
			}
			if stored { // credit what was charged: the billed row's client, amount and currency
				t.ClientID, t.Currency, t.AmountMinor = row.ClientID, row.Currency, row.AmountMinor
			}
			credited[t.ID], created[i] = true, true
			desc := "Refund of " + t.ID
			if t.Description != "" {
				desc = "Refund: " + t.Description
			}
			args = append(args, t.ID, t.ClientID, t.Currency, t.AmountMinor, truncateRunes(desc, MaxDescriptionLen), db.d.t(now))
			if n++; n == billChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// creditState returns, of ids, the rows the store has as billed (their
// client, currency and amount) and which have a credit already. It locks
// the rows and credits it reads.
func (db *DB) creditState(ctx context.Context, tx *sql.Tx, ids []string) (billed map[string]Transaction, credited map[string]bool, err error) {
	billed, credited = map[string]Transaction{}, map[string]bool{}
	for start := 0; start < len(ids); start += billChunk {
		chunk := ids[start:min(start+billChunk, len(ids))]
		args := idArgs(chunk)
		in := placeholders(len(chunk))
		rows, err := tx.QueryContext(ctx, "SELECT transaction_id, client_id, currency, amount_minor FROM transactions"+
			" WHERE billed_at IS NOT NULL AND transaction_id IN "+in+" ORDER BY transaction_id"+db.d.forUpdate, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("store: credit: %w", err)
		}
		for rows.Next() {
			var t Transaction
			if err := rows.Scan(&t.ID, &t.ClientID, &t.Currency, &t.AmountMinor); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("store: credit: %w", err)
			}
			billed[t.ID] = t
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("store: credit: %w", err)
		}
		if err := collectIDs(ctx, tx, "SELECT transaction_id FROM credits WHERE transaction_id IN "+in+db.d.forUpdate, args, credited); err != nil {
			return nil, nil, err
		}
	}
	return billed, credited, nil
}

func collectIDs(ctx context.Context, tx *sql.Tx, q string, args []any, into map[string]bool) error {
	rs, err := tx.QueryContext(ctx, q, args...)
	if err == nil {
		err = scanRefIDs(rs, into)
	}
	if err != nil {
		return fmt.Errorf("store: credit: %w", err)
	}
	return nil
}

// truncateRunes cuts s to at most n characters.
func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
