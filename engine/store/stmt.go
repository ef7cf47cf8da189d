package store

import (
	"context"
	"database/sql"
	"fmt"
)

// stmts holds the prepared statements of the hot write paths, prepared on
// the writer pool when the store opens, so that a write costs one round
// trip per statement instead of a prepare, an execute and a close.
// database/sql prepares each on a connection the first time it runs
// there. The map is not changed after Open.
type stmts map[string]*sql.Stmt

// hotQueries returns the queries prepared at Open.
func (d dialect) hotQueries() []string {
	return []string{
		"INSERT INTO clients (" + clientCols + ") VALUES " + placeholders(6),
		"SELECT status FROM clients WHERE client_id = ?" + d.forShare,
		"INSERT INTO transactions (" + txCols + ") VALUES " + placeholders(10),
		"SELECT " + txCols + " FROM transactions WHERE transaction_id = ?" + d.forUpdate,
		updateTxSQL,
		insertOutboxSQL,
		insertIdempotencySQL,
	}
}

// prepare prepares the dialect's hot queries on db.w.
func (db *DB) prepare(ctx context.Context) error {
	db.stmts = stmts{}
	for _, q := range db.d.hotQueries() {
		st, err := db.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: prepare: %w", err)
		}
		db.stmts[q] = st
	}
	return nil
}

func (s stmts) close() error {
	for _, st := range s {
		_ = st.Close()
	}
	return nil
}

// txExec runs query in tx, prepared when it is one of the hot queries.
func (db *DB) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := db.stmts[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// txQueryRow runs a single-row query in tx, prepared when it is one of the
// hot queries.
func (db *DB) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := db.stmts[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
