package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CycleStatus is a billing cycle's status.
type CycleStatus string

// The billing cycle statuses: a cycle is created RUNNING and finished
// COMPLETED or FAILED, once.
const (
	CycleRunning   CycleStatus = "RUNNING"
	CycleCompleted CycleStatus = "COMPLETED"
	CycleFailed    CycleStatus = "FAILED"
)

// Sizes of the billing_cycles columns.
const (
	// MaxIntervalLen bounds BillingCycle.Interval (ASCII).
	MaxIntervalLen = 64
	// MaxCycleErrorLen bounds BillingCycle.Error, in characters; a longer
	// error text is cut.
	MaxCycleErrorLen = 1000
)

// BillingCycle is one run of billing: it bills the APPROVED transactions
// created in [PeriodStart, PeriodEnd) and invoices every billed charge
// created before PeriodEnd that no invoice has yet (see WriteInvoices).
type BillingCycle struct {
	// ID is "bc_" and 16 hex digits, set by CreateCycle.
	ID string
	// Interval is the interval as the caller named it: "24h", "daily",
	// "weekly", "monthly", or "FROM/TO" for explicit bounds.
	Interval string
	// PeriodStart (inclusive) and PeriodEnd (exclusive) bound the
	// created_at of the transactions the cycle bills.
	PeriodStart, PeriodEnd time.Time
	Status                 CycleStatus
	// Billed counts the transactions the cycle moved APPROVED -> BILLED.
	Billed int64
	// Invoices counts the invoices the cycle wrote.
	Invoices int64
	// Error is why a FAILED cycle failed; empty otherwise.
	Error string
	// CreatedAt is when the cycle started; FinishedAt when it ended (zero
	// while RUNNING).
	CreatedAt, FinishedAt time.Time
}

// CycleResult is how a cycle ended, for FinishCycle.
type CycleResult struct {
	// Billed and Invoices are the counts of what the cycle did, also when
	// it failed part way.
	Billed, Invoices int64
	// Err, when not nil, marks the cycle FAILED with its text.
	Err error
}

// TxKey is a transaction's place in (created_at, transaction_id) order,
// the order of keyset paging. The zero TxKey is before every transaction.
type TxKey struct {
	CreatedAt time.Time
	ID        string
}

// Key returns t's place in (created_at, transaction_id) order.
func (t Transaction) Key() TxKey { return TxKey{CreatedAt: t.CreatedAt, ID: t.ID} }

const cycleCols = "cycle_id, interval_spec, period_start, period_end, status, billed, invoices, error, created_at, finished_at"

func scanCycle(row interface{ Scan(...any) error }) (BillingCycle, error) {
	var c BillingCycle
	var start, end, created, finished dbTime
	err := row.Scan(&c.ID, &c.Interval, &start, &end, &c.Status, &c.Billed, &c.Invoices, &c.Error, &created, &finished)
	c.PeriodStart, c.PeriodEnd, c.CreatedAt, c.FinishedAt = start.t, end.t, created.t, finished.t
	return c, err
}

// randomID returns prefix followed by 16 random hex digits.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}

// checkPeriod reports bounds that are not in order or that the store
// cannot hold.
func checkPeriod(start, end time.Time) error {
	if start.IsZero() || end.IsZero() || !start.Before(end) {
		return fmt.Errorf("%w: period: want start before end, got [%s, %s)", ErrInvalid,
			start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	}
	if start.Year() < 1970 || end.Year() > 9999 {
		return fmt.Errorf("%w: period: must lie in the years 1970 to 9999", ErrInvalid)
	}
	return nil
}

// CreateCycle stores a new RUNNING cycle for the interval and period of c
// (other fields are ignored) and returns it with its id and created_at
// set. The period is kept in milliseconds. Errors: ErrInvalid for an
// empty or over-long interval or a period that is empty or outside the
// years 1970 to 9999.
func (db *DB) CreateCycle(ctx context.Context, c BillingCycle) (BillingCycle, error) {
	out := BillingCycle{
		ID: randomID("bc_"), Interval: c.Interval, Status: CycleRunning,
		PeriodStart: millis(c.PeriodStart), PeriodEnd: millis(c.PeriodEnd), CreatedAt: db.clock(),
	}
	if out.Interval == "" || len(out.Interval) > MaxIntervalLen {
		return BillingCycle{}, fmt.Errorf("%w: interval: want 1 to %d characters", ErrInvalid, MaxIntervalLen)
	}
	if err := checkLen("interval", out.Interval, MaxIntervalLen); err != nil {
		return BillingCycle{}, err
	}
	if err := checkPeriod(out.PeriodStart, out.PeriodEnd); err != nil {
		return BillingCycle{}, err
	}
	_, err := db.w.ExecContext(ctx, "INSERT INTO billing_cycles (cycle_id, interval_spec, period_start, period_end, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		out.ID, out.Interval, db.d.t(out.PeriodStart), db.d.t(out.PeriodEnd), string(out.Status), db.d.t(out.CreatedAt))
	if err != nil {
		return BillingCycle{}, fmt.Errorf("store: create billing cycle: %w", err)
	}
	return out, nil
}

// GetCycle returns the billing cycle with the given id, or ErrNotFound.
func (db *DB) GetCycle(ctx context.Context, id string) (BillingCycle, error) {
	c, err := scanCycle(db.r.QueryRowContext(ctx, "SELECT "+cycleCols+" FROM billing_cycles WHERE cycle_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return BillingCycle{}, fmt.Errorf("%w: billing cycle %s", ErrNotFound, id)
	}
	if err != nil {
		return BillingCycle{}, fmt.Errorf("store: get billing cycle: %w", err)
	}
	return c, nil
}

// FinishCycle records how the RUNNING cycle id ended: COMPLETED, or
// FAILED with the text of r.Err (cut to MaxCycleErrorLen characters), its
// counts and finished_at = now. It returns the finished cycle. Errors:
// ErrNotFound; ErrIllegalTransition when the cycle is already finished.
func (db *DB) FinishCycle(ctx context.Context, id string, r CycleResult) (BillingCycle, error) {
	status, text := CycleCompleted, ""
	if r.Err != nil {
		status = CycleFailed
		text = truncateRunes(strings.ToValidUTF8(r.Err.Error(), "?"), MaxCycleErrorLen)
	}
	var out BillingCycle
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := scanCycle(tx.QueryRowContext(ctx, "SELECT "+cycleCols+" FROM billing_cycles WHERE cycle_id = ?"+db.d.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: billing cycle %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: finish billing cycle: %w", err)
		}
		if cur.Status != CycleRunning {
			return fmt.Errorf("%w: billing cycle %s is %s already", ErrIllegalTransition, id, cur.Status)
		}
		cur.Status, cur.Billed, cur.Invoices, cur.Error = status, r.Billed, r.Invoices, text
		cur.FinishedAt = db.clock()
		if cur.FinishedAt.Before(cur.CreatedAt) {
			cur.FinishedAt = cur.CreatedAt // a clock that went back
		}
		_, err = tx.ExecContext(ctx, "UPDATE billing_cycles SET status = ?, billed = ?, invoices = ?, error = ?, finished_at = ? WHERE cycle_id = ?",
			string(cur.Status), cur.Billed, cur.Invoices, cur.Error, db.d.t(cur.FinishedAt), id)
		if err != nil {
			return fmt.Errorf("store: finish billing cycle: %w", err)
		}
		out = cur
		return nil
	})
	return out, err
}

// ApprovedBetween returns up to limit APPROVED transactions with
// created_at in [from, to), in (created_at, transaction_id) order,
// starting after the key after (the zero TxKey: from the first). A caller
// pages through them by passing the Key of the last one it got; rows that
// change status meanwhile simply drop out of later pages.
func (db *DB) ApprovedBetween(ctx context.Context, from, to time.Time, after TxKey, limit int) ([]Transaction, error) {
	var w where
	w.add("status = ?", string(StatusApproved))
	w.add("created_at >= ?", db.d.t(millis(from)))
	w.add("created_at < ?", db.d.t(millis(to)))
	if after.ID != "" {
		t := db.d.t(millis(after.CreatedAt))
		w.add("(created_at > ? OR (created_at = ? AND transaction_id > ?))", t, t, after.ID)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+txCols+" FROM transactions WHERE "+w.sql()+
		" ORDER BY created_at, transaction_id LIMIT ?", append(w.args, max(limit, 1))...)
	if err != nil {
		return nil, fmt.Errorf("store: approved transactions: %w", err)
	}
	defer rows.Close()
	var out []Transaction
	for rows.Next() {
		t, err := scanTransaction(rows)
		if err != nil {
			return nil, fmt.Errorf("store: approved transactions: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: approved transactions: %w", err)
	}
	return out, nil
}
