package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const txCols = "transaction_id, client_id, amount_minor, currency, status, description, created_at, updated_at, billed_at, billing_cycle_id"

func scanTransaction(row interface{ Scan(...any) error }) (Transaction, error) {
	var t Transaction
	var created, updated, billed dbTime
	var cycle sql.NullString
	err := row.Scan(&t.ID, &t.ClientID, &t.AmountMinor, &t.Currency, &t.Status, &t.Description,
		&created, &updated, &billed, &cycle)
	if err != nil {
		return t, err
	}
	t.CreatedAt, t.UpdatedAt, t.BilledAt, t.BillingCycleID = created.t, updated.t, billed.t, cycle.String
	return t, nil
}

func (db *DB) txArgs(t *Transaction) []any {
	var cycle any
	if t.BillingCycleID != "" {
		cycle = t.BillingCycleID
	}
	return []any{t.ID, t.ClientID, t.AmountMinor, t.Currency, string(t.Status), t.Description,
		db.d.t(t.CreatedAt), db.d.t(t.UpdatedAt), db.d.nt(t.BilledAt), cycle}
}

const updateTxSQL = `UPDATE transactions SET client_id = ?, amount_minor = ?, currency = ?, status = ?,
  description = ?, updated_at = ?, billed_at = ?, billing_cycle_id = ? WHERE transaction_id = ?`

// later returns now, or just after prev when the clock has not passed it,
// so that updated_at always grows.
func later(now, prev time.Time) time.Time {
	if now.After(prev) {
		return now
	}
	return prev.Add(time.Millisecond)
}

// CreateTransaction inserts t as given (the caller sets the id; zero
// timestamps become now) and an outbox entry for it, in one database
// transaction; with idem, also the idempotency record. The client must
// exist and not be CLOSED. Errors: ErrExists for a taken id,
// ErrUnknownClient, ErrClientClosed, ErrKeyUsed, ErrInvalid.
func (db *DB) CreateTransaction(ctx context.Context, t Transaction, idem *Idempotency) error {
	t.normalize()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.clock()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	if err := t.Check(); err != nil {
		return err
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var status ClientStatus
		err := db.txQueryRow(ctx, tx, "SELECT status FROM clients WHERE client_id = ?"+db.d.forShare, t.ClientID).Scan(&status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: %s", ErrUnknownClient, t.ClientID)
		case err != nil:
			return fmt.Errorf("store: create transaction: %w", err)
		case status == ClientClosed:
			return fmt.Errorf("%w: %s", ErrClientClosed, t.ClientID)
		}
		if err := db.putIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, "INSERT INTO transactions ("+txCols+") VALUES "+placeholders(10), db.txArgs(&t)...)
		if db.d.isDuplicate(err) {
			return fmt.Errorf("%w: transaction %s", ErrExists, t.ID)
		}
		if err != nil {
			return fmt.Errorf("store: create transaction: %w", err)
		}
		return db.putOutbox(ctx, tx, t)
	})
	if err == nil {
		db.signalOutbox()
	}
	return err
}

// GetTransaction returns the transaction with the given id, or
// ErrNotFound.
func (db *DB) GetTransaction(ctx context.Context, id string) (Transaction, error) {
	t, err := scanTransaction(db.r.QueryRowContext(ctx, "SELECT "+txCols+" FROM transactions WHERE transaction_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: transaction %s", ErrNotFound, id)
	}
	if err != nil {
		return t, fmt.Errorf("store: get transaction: %w", err)
	}
	return t, nil
}

// ListTransactions returns one page of the transactions f selects, in
// (created_at, transaction_id) order. Errors: ErrBadCursor.
func (db *DB) ListTransactions(ctx context.Context, f TransactionFilter) (Page[Transaction], error) {
	var p Page[Transaction]
	var w where
	if f.ClientID != "" {
		w.add("client_id = ?", f.ClientID)
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if err := db.page(&w, "transaction_id", f.CreatedFrom, f.CreatedTo, f.After); err != nil {
		return p, err
	}
	limit := max(f.Limit, 1)
	rows, err := db.r.QueryContext(ctx, "SELECT "+txCols+" FROM transactions WHERE "+w.sql()+
		" ORDER BY created_at, transaction_id LIMIT ?", append(w.args, limit+1)...)
	if err != nil {
		return p, fmt.Errorf("store: list transactions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTransaction(rows)
		if err != nil {
			return p, fmt.Errorf("store: list transactions: %w", err)
		}
		p.Items = append(p.Items, t)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("store: list transactions: %w", err)
	}
	if len(p.Items) > limit {
		p.Items = p.Items[:limit]
		last := p.Items[limit-1]
		p.Next = cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode()
	}
	return p, nil
}

// UpdateTransaction changes the transaction with the given id to what fn
// returns, given the current row, and writes an outbox entry for the new
// version, in one database transaction that holds the row. fn may return
// an error to change nothing; UpdateTransaction returns it as is.
//
// The id and created_at cannot change; a status change must be legal
// (CanTransition); billed_at is set when the status becomes BILLED;
// updated_at is set to now (always later than before). When fn changes
// nothing, nothing is written. Errors: ErrNotFound, ErrIllegalTransition,
// ErrInvalid, and fn's.
func (db *DB) UpdateTransaction(ctx context.Context, id string, fn func(Transaction) (Transaction, error)) (Transaction, error) {
	out, _, err := db.updateTransaction(ctx, id, true, fn)
	return out, err
}

func (db *DB) updateTransaction(ctx context.Context, id string, publish bool, fn func(Transaction) (Transaction, error)) (Transaction, bool, error) {
	var out Transaction
	var changed bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		changed = false
		cur, err := scanTransaction(db.txQueryRow(ctx, tx, "SELECT "+txCols+" FROM transactions WHERE transaction_id = ?"+db.d.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: transaction %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: update transaction: %w", err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.normalize()
		next.ID, next.CreatedAt, next.UpdatedAt = cur.ID, cur.CreatedAt, cur.UpdatedAt
		if err := checkTransition(cur.Status, next.Status); err != nil {
			return err
		}
		now := db.clock()
		if next.Status == StatusBilled && next.BilledAt.IsZero() {
			next.BilledAt = now
		}
		if next == cur {
			out = cur
			return nil
		}
		next.UpdatedAt = later(now, cur.UpdatedAt)
		if err := next.Check(); err != nil {
			return err
		}
		a := db.txArgs(&next)
		_, err = db.txExec(ctx, tx, updateTxSQL,
			a[1], a[2], a[3], a[4], a[5], a[7], a[8], a[9], id)
		if err != nil {
			return fmt.Errorf("store: update transaction: %w", err)
		}
		if publish {
			if err := db.putOutbox(ctx, tx, next); err != nil {
				return err
			}
		}
		out, changed = next, true
		return nil
	})
	if err == nil && changed && publish {
		db.signalOutbox()
	}
	return out, changed, err
}

// StatusChange is a change of one transaction's status by id, as the
// billing plugin makes it.
type StatusChange struct {
	// ID is the transaction's id.
	ID string
	// To is the new status.
	To TxStatus
	// BillingCycleID is recorded when To is BILLED.
	BillingCycleID string
	// Publish also writes an outbox entry for the new version, so that
	// the relay publishes it to the transactions topic. Leave it false
	// when the caller emits the record itself.
	Publish bool
}

// ChangeStatus applies c. Setting the status the transaction already has
// changes nothing and reports changed false, so a replay is harmless.
// Errors: ErrNotFound, ErrIllegalTransition.
func (db *DB) ChangeStatus(ctx context.Context, c StatusChange) (t Transaction, changed bool, err error) {
	return db.updateTransaction(ctx, c.ID, c.Publish, func(cur Transaction) (Transaction, error) {
		if cur.Status == c.To {
			return cur, nil
		}
		cur.Status = c.To
		if c.To == StatusBilled && c.BillingCycleID != "" {
			cur.BillingCycleID = c.BillingCycleID
		}
		return cur, nil
	})
}

// DeleteTransaction deletes the transaction with the given id. It is not
// published: the transactions topic carries no deletions. Errors:
// ErrNotFound, ErrBilled for a transaction that has been billed.
func (db *DB) DeleteTransaction(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var billed dbTime
		err := tx.QueryRowContext(ctx, "SELECT billed_at FROM transactions WHERE transaction_id = ?"+db.d.forUpdate, id).Scan(&billed)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: transaction %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: delete transaction: %w", err)
		}
		if billed.valid {
			return fmt.Errorf("%w: transaction %s", ErrBilled, id)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM transactions WHERE transaction_id = ?", id); err != nil {
			return fmt.Errorf("store: delete transaction: %w", err)
		}
		return nil
	})
}

// CountByStatus returns how many transactions the store holds in each
// status; statuses with none are absent.
func (db *DB) CountByStatus(ctx context.Context) (map[TxStatus]int64, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT status, COUNT(*) FROM transactions GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("store: count transactions: %w", err)
	}
	defer rows.Close()
	out := map[TxStatus]int64{}
	for rows.Next() {
		var s TxStatus
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("store: count transactions: %w", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count transactions: %w", err)
	}
	return out, nil
}
