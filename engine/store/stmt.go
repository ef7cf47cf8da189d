package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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
	db.batch.m = map[string]*sql.Stmt{}
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

// maxBatchStmts bounds the batch statements a store keeps prepared. Each
// is prepared on every connection that runs it, and the server bounds the
// prepared statements of all its clients (MySQL's max_prepared_stmt_count,
// 16,382 by default), so the cache keeps the first shapes used and runs
// the others unprepared.
const maxBatchStmts = 32

// batchStmts holds prepared statements of the batch queries: multi-row
// INSERTs and SELECTs over a list of ids, whose text depends on the number
// of rows. A batch of the same size as an earlier one (the emails-sent
// log's records, of 25 messages each; full batches of 500) then costs one
// execution instead of a prepare, an execution and a close.
type batchStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
	// full: the cache holds maxBatchStmts statements.
	full bool
}

// batchStmt returns query prepared on db.w, or nil: for SQLite (whose
// prepares cost no round trip), when the cache is full, or when the
// prepare fails (the caller then runs query unprepared: a prepare that
// fails here fails again there, with the error to report). It prepares
// only with create, which a caller inside a transaction must not set: the
// prepare takes a connection of the pool, which may have none left.
func (db *DB) batchStmt(ctx context.Context, query string, create bool) *sql.Stmt {
	c := &db.batch
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if !create || c.full || c.m == nil || db.r != db.w {
		return nil
	}
	st, err := db.w.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	c.full = len(c.m) >= maxBatchStmts
	return st
}

// warmBatch prepares queries for the cache (see batchStmt), before a
// transaction that runs them. The caller must hold no connection.
func (db *DB) warmBatch(ctx context.Context, queries ...string) {
	for _, q := range queries {
		db.batchStmt(ctx, q, true)
	}
}

func (c *batchStmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		_ = st.Close()
	}
	c.m, c.full = nil, true
	return nil
}

// batchExec runs a batch statement in tx (or, with tx nil, on its own),
// prepared when the cache has it (or, with tx nil, takes it).
func (db *DB) batchExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st := db.batchStmt(ctx, query, tx == nil)
	switch {
	case st != nil && tx != nil:
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	case st != nil:
		return st.ExecContext(ctx, args...)
	case tx != nil:
		return tx.ExecContext(ctx, query, args...)
	}
	return db.w.ExecContext(ctx, query, args...)
}

// batchQuery runs a batch query in tx (or, with tx nil, on the read pool
// without a transaction), prepared when the cache has it (or, with tx
// nil, takes it).
func (db *DB) batchQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if tx == nil && db.r != db.w {
		// SQLite's reads go to its read-only connections, which the
		// cache does not prepare on.
		return db.r.QueryContext(ctx, query, args...)
	}
	st := db.batchStmt(ctx, query, tx == nil)
	switch {
	case st != nil && tx != nil:
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	case st != nil:
		return st.QueryContext(ctx, args...)
	case tx != nil:
		return tx.QueryContext(ctx, query, args...)
	}
	return db.r.QueryContext(ctx, query, args...)
}
