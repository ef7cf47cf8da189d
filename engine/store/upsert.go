package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// upsertChunk bounds the rows of one INSERT statement and the ids of one
// SELECT: a batch of the engine's (500 records by default) takes one.
const upsertChunk = 500

// UpsertTransactions writes ts, as they arrived on the stream, in one
// database transaction: a transaction not in the store is inserted; one
// that is replaces the stored row only when its updated_at is newer, and
// never clears billed_at or billing_cycle_id (billed once is billed for
// good). Rows are written in id order, the order Bill locks them in. The
// state machine does not apply, and nothing goes to the outbox. Equal
// updated_at keeps the stored row, so a replay changes nothing. Every
// element must pass Check; the first that does not fails the call with
// ErrInvalid before anything is written.
//
// The stored versions are read first, without locks, and only the
// elements newer than the stored row (or with no row) are written: a
// version the store has already, such as the BILLED version the billing
// plugin wrote before emitting it, costs a read, takes no row lock that
// Bill would wait for, and a batch of them writes nothing. The write
// itself still keeps the newer version, so a row changed between the read
// and the write is never overwritten by an older one.
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
	stored, err := db.storedVersions(ctx, rows)
	if err != nil {
		return err
	}
	rows = slices.DeleteFunc(rows, func(t Transaction) bool {
		at, ok := stored[t.ID]
		return ok && !t.UpdatedAt.After(at)
	})
	if len(rows) == 0 {
		return nil
	}
	for start := 0; start < len(rows); start += upsertChunk {
		db.warmBatch(ctx, db.upsertSQL(min(upsertChunk, len(rows)-start)))
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(rows); start += upsertChunk {
			chunk := rows[start:min(start+upsertChunk, len(rows))]
			args := make([]any, 0, len(chunk)*10)
			for i := range chunk {
				args = append(args, db.txArgs(&chunk[i])...)
			}
			if _, err := db.batchExec(ctx, tx, db.upsertSQL(len(chunk)), args...); err != nil {
				return fmt.Errorf("store: upsert transactions: %w", err)
			}
		}
		return nil
	})
}

// upsertSQL is the upsert of n transactions.
func (db *DB) upsertSQL(n int) string {
	return "INSERT INTO transactions (" + txCols + ") VALUES " + rowsOf(n, 10) + db.d.upsertTx
}

// storedVersions returns the updated_at of the stored rows of ts (sorted
// by id), by id, read without locks.
func (db *DB) storedVersions(ctx context.Context, ts []Transaction) (map[string]time.Time, error) {
	ids := make([]string, 0, len(ts))
	for _, t := range ts {
		if len(ids) == 0 || ids[len(ids)-1] != t.ID {
			ids = append(ids, t.ID)
		}
	}
	at := make(map[string]time.Time, len(ids))
	for start := 0; start < len(ids); start += upsertChunk {
		chunk := ids[start:min(start+upsertChunk, len(ids))]
		rs, err := db.batchQuery(ctx, nil, "SELECT transaction_id, updated_at FROM transactions WHERE transaction_id IN "+placeholders(len(chunk)), idArgs(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("store: upsert transactions: %w", err)
		}
		for rs.Next() {
			var id string
			var t dbTime
			if err := rs.Scan(&id, &t); err != nil {
				rs.Close()
				return nil, fmt.Errorf("store: upsert transactions: %w", err)
			}
			at[id] = t.t
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, fmt.Errorf("store: upsert transactions: %w", err)
		}
	}
	return at, nil
}
