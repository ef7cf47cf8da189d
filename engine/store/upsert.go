package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// upsertChunk bounds the rows of one INSERT statement.
const upsertChunk = 200

// UpsertTransactions writes ts, as they arrived on the stream, in one
// database transaction: a transaction not in the store is inserted; one
// that is replaces the stored row only when its updated_at is newer, and
// never clears billed_at or billing_cycle_id (billed once is billed for
// good). Rows are written in id order, the order Bill locks them in. The
// state machine does not apply, and nothing goes to the outbox. Equal
// updated_at keeps the stored row, so a replay changes nothing. Every
// element must pass Check; the first that does not fails the call with
// ErrInvalid before anything is written.
func (db *DB) UpsertTransactions(ctx context.Context, ts []Transaction) error {
	if len(ts) == 0 {
		return nil
	}
	rows := make([]Transaction, len(ts))
	for i, t := range ts {
		t.normalize()
		if err := t.Check(); err != nil {
			return fmt.Errorf("transaction %d (%s): %w", i, t.ID, err)
		}
		rows[i] = t
	}
	slices.SortStableFunc(rows, func(a, b Transaction) int { return strings.Compare(a.ID, b.ID) })
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(rows); start += upsertChunk {
			chunk := rows[start:min(start+upsertChunk, len(rows))]
			args := make([]any, 0, len(chunk)*10)
			for i := range chunk {
				args = append(args, db.txArgs(&chunk[i])...)
			}
			q := "INSERT INTO transactions (" + txCols + ") VALUES " + rowsOf(len(chunk), 10) + db.d.upsertTx
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("store: upsert transactions: %w", err)
			}
		}
		return nil
	})
}
