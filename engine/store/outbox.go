package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// OutboxKind says what an outbox entry carries, and so where the relay
// publishes it.
type OutboxKind string

// The kinds of outbox entry.
const (
	// OutboxTransaction: a version of a transaction, for the transactions
	// topic (Avro billing.Transaction).
	OutboxTransaction OutboxKind = "transaction"
	// OutboxInvoice: an invoice with its lines, for the invoices topic
	// (Avro billing.Invoice).
	OutboxInvoice OutboxKind = "invoice"
)

// OutboxEntry is a version of a transaction, or an invoice, waiting to be
// published.
type OutboxEntry struct {
	// ID orders the entries: entries of one transaction are numbered in
	// the order they were committed.
	ID int64
	// Kind says which of Transaction and Invoice the entry carries. An
	// entry of a kind this version does not know carries neither; a relay
	// should report and skip it.
	Kind OutboxKind
	// Transaction is the version to publish (Kind OutboxTransaction).
	Transaction Transaction
	// Invoice is the invoice to publish, with its lines (Kind
	// OutboxInvoice).
	Invoice Invoice
	// CreatedAt is when the entry was written.
	CreatedAt time.Time
}

// outboxPayload is the JSON form of a transaction in the outbox.
type outboxPayload struct {
	ID             string    `json:"transaction_id"`
	ClientID       string    `json:"client_id"`
	AmountMinor    int64     `json:"amount_minor"`
	Currency       string    `json:"currency"`
	Status         TxStatus  `json:"status"`
	Description    string    `json:"description"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	BilledAt       time.Time `json:"billed_at,omitzero"`
	BillingCycleID string    `json:"billing_cycle_id,omitempty"`
}

const insertOutboxSQL = "INSERT INTO outbox (aggregate_id, payload, created_at) VALUES (?, ?, ?)"

func (db *DB) putOutbox(ctx context.Context, tx *sql.Tx, t Transaction) error {
	payload, err := json.Marshal(outboxPayload(t))
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	_, err = db.txExec(ctx, tx, insertOutboxSQL,
		t.ID, payload, db.d.t(db.clock()))
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// PendingOutbox returns up to limit entries not yet marked sent, oldest
// (lowest id) first.
//
// Ids are assigned when an entry is written and entries become visible
// when their database transaction commits, so an entry with a lower id may
// appear after one with a higher id was returned (never for the same
// transaction: its versions are written one after the other, holding its
// row). A relay must therefore not treat "every id up to the last one
// published" as published.
func (db *DB) PendingOutbox(ctx context.Context, limit int) ([]OutboxEntry, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT outbox_id, kind, payload, created_at FROM outbox WHERE sent_at IS NULL ORDER BY outbox_id LIMIT ?", max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		var payload []byte
		var created dbTime
		if err := rows.Scan(&e.ID, &e.Kind, &payload, &created); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		e.CreatedAt = created.t
		if err := e.decode(payload); err != nil {
			return nil, fmt.Errorf("store: outbox entry %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// decode sets the field of e that its kind names from the JSON payload.
func (e *OutboxEntry) decode(payload []byte) error {
	switch e.Kind {
	case OutboxTransaction:
		var p outboxPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return err
		}
		e.Transaction = Transaction(p)
	case OutboxInvoice:
		var p invoicePayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return err
		}
		e.Invoice = p.invoice()
	}
	return nil
}

// MarkSent marks the outbox entries with the given ids sent. Ids already
// marked, or unknown, are ignored.
func (db *DB) MarkSent(ctx context.Context, ids []int64) error {
	now := db.d.t(db.clock())
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(ids); start += 500 {
			chunk := ids[start:min(start+500, len(ids))]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, now)
			for _, id := range chunk {
				args = append(args, id)
			}
			q := "UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND outbox_id IN " + placeholders(len(chunk))
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("store: mark outbox sent: %w", err)
			}
		}
		return nil
	})
}

// OutboxCounts returns how many outbox entries are pending and sent.
func (db *DB) OutboxCounts(ctx context.Context) (pending, sent int64, err error) {
	err = db.r.QueryRowContext(ctx, "SELECT COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END), 0) FROM outbox").Scan(&pending, &sent)
	if err != nil {
		return 0, 0, fmt.Errorf("store: outbox counts: %w", err)
	}
	return pending, sent, nil
}

// OutboxPending returns how many outbox entries wait to be published.
func (db *DB) OutboxPending(ctx context.Context) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: outbox pending: %w", err)
	}
	return n, nil
}

// Purge deletes outbox entries sent before before (always keeping the
// newest entry, so that ids are never reused) and idempotency records
// stored before before. It returns how many rows it deleted.
func (db *DB) Purge(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		var maxID sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(outbox_id) FROM outbox").Scan(&maxID); err != nil {
			return fmt.Errorf("store: purge: %w", err)
		}
		b := db.d.t(millis(before))
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ? AND outbox_id < ?", []any{b, maxID.Int64}},
			{"DELETE FROM idempotency_keys WHERE created_at < ?", []any{b}},
		} {
			res, err := tx.ExecContext(ctx, q.sql, q.args...)
			if err != nil {
				return fmt.Errorf("store: purge: %w", err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}
