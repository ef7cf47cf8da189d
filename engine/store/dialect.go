package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names a SQL dialect the store speaks.
type Dialect string

// The dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// sqliteTime is how SQLite columns hold timestamps: fixed width, so text
// order is time order.
const sqliteTime = "2006-01-02T15:04:05.000Z"

// dialect holds what differs between MySQL and SQLite. Both use ? for
// placeholders.
type dialect struct {
	name Dialect
	// forUpdate and forShare end a SELECT that locks the rows it reads
	// until the transaction ends; SQLite has one writer and needs none.
	forUpdate, forShare string
	// txOptions start read-write transactions. MySQL's are nil: its
	// connections are READ COMMITTED for their whole session (see
	// readCommitted), which spares a statement per transaction.
	txOptions *sql.TxOptions
	// upsertTx ends the transactions upsert: update a row only when the
	// incoming updated_at is newer, keeping billed_at and
	// billing_cycle_id once set (a newer version from a producer that did
	// not know them must not unbill a transaction).
	upsertTx string
	// replaceTx ends an insert of transactions with billed_by: the row,
	// locked by the caller, is replaced whole.
	replaceTx string
	// insertKeep and keepSuffix make an INSERT keep the rows already
	// there: insertKeep + " INTO t (...) VALUES ..." + keepSuffix. MySQL's
	// IGNORE also turns other errors into warnings, so callers check their
	// values first.
	insertKeep, keepSuffix string
	// markSent ends an insert into emails_sent: a claim (SENDING) becomes
	// the record; a record (SENT) stays as it is.
	markSent string
}

var mysqlDialect = dialect{
	name:       MySQL,
	forUpdate:  " FOR UPDATE",
	forShare:   " LOCK IN SHARE MODE",
	insertKeep: "INSERT IGNORE",
	markSent: ` ON DUPLICATE KEY UPDATE
  recipient = IF(state = 'SENDING', VALUES(recipient), recipient),
  message_id = IF(state = 'SENDING', VALUES(message_id), message_id),
  sent_at = IF(state = 'SENDING', VALUES(sent_at), sent_at),
  owner = IF(state = 'SENDING', NULL, owner),
  claimed_at = IF(state = 'SENDING', NULL, claimed_at),
  state = 'SENT'`,
	// MySQL applies the assignments left to right, so updated_at, which
	// the conditions read, is assigned last.
	upsertTx: ` ON DUPLICATE KEY UPDATE
  client_id = IF(VALUES(updated_at) > updated_at, VALUES(client_id), client_id),
  amount_minor = IF(VALUES(updated_at) > updated_at, VALUES(amount_minor), amount_minor),
  currency = IF(VALUES(updated_at) > updated_at, VALUES(currency), currency),
  status = IF(VALUES(updated_at) > updated_at, VALUES(status), status),
  description = IF(VALUES(updated_at) > updated_at, VALUES(description), description),
  created_at = IF(VALUES(updated_at) > updated_at, VALUES(created_at), created_at),
  billed_at = IF(VALUES(updated_at) > updated_at, COALESCE(billed_at, VALUES(billed_at)), billed_at),
  billing_cycle_id = IF(VALUES(updated_at) > updated_at, COALESCE(billing_cycle_id, VALUES(billing_cycle_id)), billing_cycle_id),
  updated_at = IF(VALUES(updated_at) > updated_at, VALUES(updated_at), updated_at)`,
	replaceTx: ` ON DUPLICATE KEY UPDATE client_id = VALUES(client_id), amount_minor = VALUES(amount_minor),
  currency = VALUES(currency), status = VALUES(status), description = VALUES(description),
  created_at = VALUES(created_at), updated_at = VALUES(updated_at), billed_at = VALUES(billed_at),
  billing_cycle_id = VALUES(billing_cycle_id), billed_by = VALUES(billed_by)`,
}

var sqliteDialect = dialect{
	name:       SQLite,
	insertKeep: "INSERT",
	keepSuffix: " ON CONFLICT DO NOTHING",
	markSent: ` ON CONFLICT (ref_id, kind) DO UPDATE SET
  recipient = excluded.recipient, message_id = excluded.message_id, sent_at = excluded.sent_at,
  state = 'SENT', owner = NULL, claimed_at = NULL
WHERE emails_sent.state = 'SENDING'`,
	upsertTx: ` ON CONFLICT (transaction_id) DO UPDATE SET
  client_id = excluded.client_id, amount_minor = excluded.amount_minor,
  currency = excluded.currency, status = excluded.status,
  description = excluded.description, created_at = excluded.created_at,
  updated_at = excluded.updated_at,
  billed_at = COALESCE(transactions.billed_at, excluded.billed_at),
  billing_cycle_id = COALESCE(transactions.billing_cycle_id, excluded.billing_cycle_id)
WHERE excluded.updated_at > transactions.updated_at`,
	replaceTx: ` ON CONFLICT (transaction_id) DO UPDATE SET
  client_id = excluded.client_id, amount_minor = excluded.amount_minor,
  currency = excluded.currency, status = excluded.status,
  description = excluded.description, created_at = excluded.created_at,
  updated_at = excluded.updated_at, billed_at = excluded.billed_at,
  billing_cycle_id = excluded.billing_cycle_id, billed_by = excluded.billed_by`,
}

// t returns the bound form of a timestamp (already in UTC milliseconds).
func (d dialect) t(t time.Time) any {
	if d.name == SQLite {
		return t.UTC().Format(sqliteTime)
	}
	return t.UTC()
}

// nt is t for a nullable timestamp: the zero time is NULL.
func (d dialect) nt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.t(t)
}

// isDuplicate reports a primary or unique key violation.
func (d dialect) isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// isRetryable reports an error after which the whole transaction may be
// run again: a deadlock or lock wait timeout, or SQLite busy.
func (d dialect) isRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// dbTime scans a timestamp column of either dialect.
type dbTime struct {
	t     time.Time
	valid bool
}

// Scan implements sql.Scanner.
func (s *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		s.t, s.valid = time.Time{}, false
		return nil
	case time.Time:
		s.t, s.valid = v.UTC(), true
		return nil
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	}
	return fmt.Errorf("store: cannot scan %T as a timestamp", v)
}

func (s *dbTime) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t, err = time.Parse("2006-01-02 15:04:05.999999999", v)
	}
	if err != nil {
		return fmt.Errorf("store: timestamp %q: %w", v, err)
	}
	s.t, s.valid = t.UTC(), true
	return nil
}

// rowsOf returns n rows of cols marks each, "(?, ?), (?, ?)", for a
// multi-row INSERT.
func rowsOf(n, cols int) string {
	return strings.TrimSuffix(strings.Repeat(placeholders(cols)+", ", n), ", ")
}

// idArgs returns the query arguments lead..., then ids.
func idArgs(ids []string, lead ...any) []any {
	args := make([]any, 0, len(lead)+len(ids))
	args = append(args, lead...)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// placeholders returns "(?, ?, ...)" with n marks.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}
