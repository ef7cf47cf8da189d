package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Idempotency is the first answer to a request that carried an
// Idempotency-Key, kept so that a repeat of the request gets it again.
type Idempotency struct {
	// Scope is the route the key belongs to, e.g. "POST /api/v1/clients":
	// the same key on two routes names two requests.
	Scope string
	// Key is the client's Idempotency-Key (1 to 255 printable ASCII).
	Key string
	// Fingerprint identifies the request's content, so that a key reused
	// for a different request can be refused (at most 64 characters).
	Fingerprint string
	// Status and Body are the answer.
	Status int
	Body   []byte
	// CreatedAt is when it was stored.
	CreatedAt time.Time
}

// Idempotent returns the answer stored for key in scope, or ErrNotFound.
func (db *DB) Idempotent(ctx context.Context, scope, key string) (Idempotency, error) {
	i := Idempotency{Scope: scope, Key: key}
	var created dbTime
	err := db.r.QueryRowContext(ctx, "SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
		scope, key).Scan(&i.Fingerprint, &i.Status, &i.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return i, fmt.Errorf("%w: idempotency key", ErrNotFound)
	}
	if err != nil {
		return i, fmt.Errorf("store: idempotency key: %w", err)
	}
	i.CreatedAt = created.t
	return i, nil
}

const insertIdempotencySQL = "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)"

// putIdempotency stores i in tx; nil stores nothing.
func (db *DB) putIdempotency(ctx context.Context, tx *sql.Tx, i *Idempotency) error {
	if i == nil {
		return nil
	}
	if i.Scope == "" || len(i.Scope) > 64 || i.Key == "" || len(i.Key) > 255 || len(i.Fingerprint) > 64 {
		return fmt.Errorf("%w: idempotency scope, key or fingerprint size", ErrInvalid)
	}
	_, err := db.txExec(ctx, tx, insertIdempotencySQL,
		i.Scope, i.Key, i.Fingerprint, i.Status, i.Body, db.d.t(db.clock()))
	if db.d.isDuplicate(err) {
		return fmt.Errorf("%w: %s", ErrKeyUsed, i.Scope)
	}
	if err != nil {
		return fmt.Errorf("store: idempotency key: %w", err)
	}
	return nil
}

// PutIdempotency stores i on its own, for an answer that is known only
// after its work was committed (a billing cycle). Prefer passing the
// record to the call that does the work, which stores both at once.
// Errors: ErrKeyUsed when the key was stored first by another request,
// ErrInvalid for a scope, key or fingerprint too long.
func (db *DB) PutIdempotency(ctx context.Context, i Idempotency) error {
	return db.write(ctx, func(tx *sql.Tx) error { return db.putIdempotency(ctx, tx, &i) })
}
