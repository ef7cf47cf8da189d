package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the store: clients, transactions, the outbox, idempotency keys and
// leases in one SQL database. Create it with Open; the caller MUST call
// Close. A DB is safe for concurrent use.
type DB struct {
	// w runs writes and r reads. For MySQL they are the same pool; for
	// SQLite w holds one connection (SQLite has one writer at a time) and
	// r several read-only ones.
	w, r  *sql.DB
	d     dialect
	stmts stmts
	batch batchStmts
	desc  string
	now   func() time.Time
	// outboxWritten is signalled (without blocking) after every commit
	// that wrote an outbox entry.
	outboxWritten chan struct{}
}

// Option configures Open.
type Option func(*config)

type config struct {
	dataDir string
	now     func() time.Time
	maxConn int
}

// DataDir sets the directory of the embedded SQLite database
// (<dir>/billing.db), created when missing. Default "./data".
func DataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// Clock sets the clock that stamps created_at and updated_at. Default
// time.Now.
func Clock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// MaxConns bounds the open connections of the pool (MySQL) or of the read
// pool (SQLite). Default 32.
func MaxConns(n int) Option { return func(c *config) { c.maxConn = n } }

// Open connects to the database dsn names ("embedded", "sqlite:PATH" or
// "mysql://user:pass@tcp(host:3306)/db"), applies the migrations it lacks
// and returns the store. Errors wrap ErrBadDSN for a setting that cannot be
// used.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	cfg := config{dataDir: "./data", now: time.Now, maxConn: 32}
	for _, o := range opts {
		o(&cfg)
	}
	tg, err := parseDSN(dsn, cfg.dataDir)
	if err != nil {
		return nil, err
	}
	db := &DB{desc: tg.desc, now: cfg.now, outboxWritten: make(chan struct{}, 1)}
	switch tg.dialect {
	case SQLite:
		err = db.openSQLite(tg.path, cfg.maxConn)
	default:
		err = db.openMySQL(tg.mysql, cfg.maxConn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.ping(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := db.migrate(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := db.prepare(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

func (db *DB) openSQLite(path string, maxConn int) error {
	if strings.ContainsRune(path, '?') {
		return fmt.Errorf("%w: sqlite: file path %q contains '?'", ErrBadDSN, path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("store: sqlite: %w", err)
		}
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	// The writer connection goes first: it switches the file to WAL. Several
	// processes open the file at once when the engine starts its plugins,
	// and switching the journal mode can answer SQLITE_BUSY without waiting
	// for the busy timeout: the first connection is retried a while.
	if err := pingBusy(w, 10*time.Second); err != nil {
		_ = w.Close()
		return fmt.Errorf("store: sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("store: sqlite: %w", err)
	}
	r.SetMaxOpenConns(maxConn)
	r.SetMaxIdleConns(maxConn)
	db.w, db.r, db.d = w, r, sqliteDialect
	return nil
}

// pingBusy pings p, again while SQLite answers busy, for up to wait.
func pingBusy(p *sql.DB, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	backoff := 5 * time.Millisecond
	for {
		err := p.Ping()
		if err == nil || !sqliteDialect.isRetryable(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

func (db *DB) openMySQL(cfg *mysql.Config, maxConn int) error {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("%w: mysql: %w", ErrBadDSN, err)
	}
	p := sql.OpenDB(readCommitted{conn})
	p.SetMaxOpenConns(maxConn)
	p.SetMaxIdleConns(maxConn)
	p.SetConnMaxLifetime(5 * time.Minute)
	db.w, db.r, db.d = p, p, mysqlDialect
	return nil
}

// readCommitted opens MySQL connections whose transactions run at READ
// COMMITTED, the level every write transaction of the store is written
// for (see db.write): set once per connection, with the standard
// statement that MySQL and MariaDB both accept, rather than before every
// transaction, which would cost a round trip each.
type readCommitted struct{ driver.Connector }

// readCommittedSQL sets the isolation level of a connection's session.
const readCommittedSQL = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

// Connect implements driver.Connector.
func (c readCommitted) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("store: mysql: the driver's connection cannot execute statements")
	}
	if _, err := ex.ExecContext(ctx, readCommittedSQL, nil); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("store: mysql: set isolation level: %w", err)
	}
	return conn, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.ping(ctx) }

func (db *DB) ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: connect to %s: %w", db.desc, err)
	}
	return nil
}

// Close closes the connections. Calls in flight fail.
func (db *DB) Close() error {
	errs := []error{db.stmts.close(), db.batch.close(), db.w.Close()}
	if db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	return errors.Join(errs...)
}

// Dialect returns the SQL dialect of the database.
func (db *DB) Dialect() Dialect { return db.d.name }

// String describes the database for logs, without secrets, e.g.
// "embedded SQLite ./data/billing.db" or "MySQL billing@db:3306/billing".
func (db *DB) String() string { return db.desc }

// clock returns the time now in the store's precision.
func (db *DB) clock() time.Time { return millis(db.now()) }

// errConflict fails a write transaction that met a row written
// concurrently where it expected none; write runs it again.
var errConflict = errors.New("store: conflicting concurrent write")

// write runs fn in a read-write transaction and commits it, running it
// again (up to 5 times) after a deadlock, a busy database or errConflict. fn must not
// keep tx or have effects outside it.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.retry(ctx, func() error { return db.writeOnce(ctx, fn) })
}

// writeStmt runs one write statement (a batch statement: see batchExec)
// on its own, outside an explicit transaction: the statement is atomic and
// commits by itself, which spares the round trips of a begin and a
// commit. Like write, it runs it again after a deadlock or a busy
// database.
func (db *DB) writeStmt(ctx context.Context, query string, args ...any) error {
	return db.retry(ctx, func() error {
		_, err := db.batchExec(ctx, nil, query, args...)
		return err
	})
}

// retry runs once until it succeeds, fails for good or has run 5 times;
// it runs it again after a deadlock, a busy database or errConflict.
func (db *DB) retry(ctx context.Context, once func() error) error {
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := once()
		if err == nil || attempt == 5 || !(db.d.isRetryable(err) || errors.Is(err, errConflict)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (db *DB) writeOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, db.d.txOptions)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// OutboxWritten is signalled after each commit that wrote outbox entries.
// It has room for one signal, so a slow receiver sees one signal for many
// commits; entries committed by other processes are not signalled. It is
// meant for the one outbox relay of the process.
func (db *DB) OutboxWritten() <-chan struct{} { return db.outboxWritten }

func (db *DB) signalOutbox() {
	select {
	case db.outboxWritten <- struct{}{}:
	default:
	}
}
