package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AcquireLease takes or renews the lease name for owner until now + ttl,
// and reports whether owner holds it. A lease held by another owner is
// taken only once it has expired. Several processes sharing the database
// use it to run a singleton job (the outbox relay); clocks must agree to
// well within ttl.
func (db *DB) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := db.clock()
	until := db.d.t(now.Add(ttl))
	var held bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		var cur string
		var expires dbTime
		err := tx.QueryRowContext(ctx, "SELECT owner, expires_at FROM leases WHERE name = ?"+db.d.forUpdate, name).Scan(&cur, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)", name, owner, until)
			if db.d.isDuplicate(err) {
				return nil // another process took it just now
			}
		case err != nil:
		case cur == owner || !expires.t.After(now):
			_, err = tx.ExecContext(ctx, "UPDATE leases SET owner = ?, expires_at = ? WHERE name = ?", owner, until, name)
		default:
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: lease %s: %w", name, err)
		}
		held = true
		return nil
	})
	return held, err
}

// ReleaseLease gives up the lease name if owner holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, owner string) error {
	_, err := db.w.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND owner = ?", name, owner)
	if err != nil {
		return fmt.Errorf("store: lease %s: %w", name, err)
	}
	return nil
}
