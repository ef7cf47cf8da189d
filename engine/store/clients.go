package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const clientCols = "client_id, name, email, status, created_at, updated_at"

func scanClient(row interface{ Scan(...any) error }) (Client, error) {
	var c Client
	var created, updated dbTime
	if err := row.Scan(&c.ID, &c.Name, &c.Email, &c.Status, &created, &updated); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = created.t, updated.t
	return c, nil
}

// CreateClient inserts c as given (the caller sets the id and the
// timestamps; zero timestamps become now). With idem, the idempotency
// record is stored in the same database transaction. Errors: ErrExists
// for a taken id, ErrKeyUsed when idem's key was stored first by another
// request, ErrInvalid for a value that does not fit.
func (db *DB) CreateClient(ctx context.Context, c Client, idem *Idempotency) error {
	c.normalize()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = db.clock()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	if err := c.check(); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := db.putIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		_, err := db.txExec(ctx, tx, "INSERT INTO clients ("+clientCols+") VALUES "+placeholders(6),
			c.ID, c.Name, c.Email, string(c.Status), db.d.t(c.CreatedAt), db.d.t(c.UpdatedAt))
		if db.d.isDuplicate(err) {
			return fmt.Errorf("%w: client %s", ErrExists, c.ID)
		}
		if err != nil {
			return fmt.Errorf("store: create client: %w", err)
		}
		return nil
	})
}

// GetClient returns the client with the given id, or ErrNotFound.
func (db *DB) GetClient(ctx context.Context, id string) (Client, error) {
	c, err := scanClient(db.r.QueryRowContext(ctx, "SELECT "+clientCols+" FROM clients WHERE client_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w: client %s", ErrNotFound, id)
	}
	if err != nil {
		return c, fmt.Errorf("store: get client: %w", err)
	}
	return c, nil
}

// GetClients returns the clients with the given ids that exist, by id,
// with one query per chunk of a few hundred ids.
func (db *DB) GetClients(ctx context.Context, ids []string) (map[string]Client, error) {
	out := make(map[string]Client, len(ids))
	for start := 0; start < len(ids); start += billChunk {
		chunk := ids[start:min(start+billChunk, len(ids))]
		rows, err := db.r.QueryContext(ctx, "SELECT "+clientCols+" FROM clients WHERE client_id IN "+placeholders(len(chunk)), idArgs(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("store: get clients: %w", err)
		}
		for rows.Next() {
			c, err := scanClient(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: get clients: %w", err)
			}
			out[c.ID] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: get clients: %w", err)
		}
	}
	return out, nil
}

// ListClients returns one page of the clients f selects, in (created_at,
// client_id) order. Errors: ErrBadCursor.
func (db *DB) ListClients(ctx context.Context, f ClientFilter) (Page[Client], error) {
	var p Page[Client]
	var w where
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if err := db.page(&w, "client_id", f.CreatedFrom, f.CreatedTo, f.After); err != nil {
		return p, err
	}
	limit := max(f.Limit, 1)
	rows, err := db.r.QueryContext(ctx, "SELECT "+clientCols+" FROM clients WHERE "+w.sql()+
		" ORDER BY created_at, client_id LIMIT ?", append(w.args, limit+1)...)
	if err != nil {
		return p, fmt.Errorf("store: list clients: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return p, fmt.Errorf("store: list clients: %w", err)
		}
		p.Items = append(p.Items, c)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("store: list clients: %w", err)
	}
	if len(p.Items) > limit {
		p.Items = p.Items[:limit]
		last := p.Items[limit-1]
		p.Next = cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode()
	}
	return p, nil
}

// UpdateClient changes the client with the given id to what fn returns,
// given the current row, in one database transaction that holds the row.
// fn may return an error to change nothing; UpdateClient returns it as
// is. The id and created_at cannot change; updated_at is set to now
// (always later than before) unless nothing changed, in which case nothing
// is written. Errors: ErrNotFound, ErrInvalid, and fn's.
func (db *DB) UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) (Client, error) {
	var out Client
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := scanClient(tx.QueryRowContext(ctx, "SELECT "+clientCols+" FROM clients WHERE client_id = ?"+db.d.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: client %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: update client: %w", err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.CreatedAt, next.UpdatedAt = cur.ID, cur.CreatedAt, cur.UpdatedAt
		if next == cur {
			out = cur
			return nil
		}
		next.UpdatedAt = later(db.clock(), cur.UpdatedAt)
		if err := next.check(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE clients SET name = ?, email = ?, status = ?, updated_at = ? WHERE client_id = ?",
			next.Name, next.Email, string(next.Status), db.d.t(next.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("store: update client: %w", err)
		}
		out = next
		return nil
	})
	return out, err
}

// DeleteClient deletes the client with the given id. Errors: ErrNotFound,
// ErrHasTransactions when any transaction names the client.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM clients WHERE client_id = ?"+db.d.forUpdate, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: client %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: delete client: %w", err)
		}
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM transactions WHERE client_id = ? LIMIT 1"+db.d.forShare, id).Scan(&one)
		if err == nil {
			return fmt.Errorf("%w: client %s", ErrHasTransactions, id)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: delete client: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM clients WHERE client_id = ?", id); err != nil {
			return fmt.Errorf("store: delete client: %w", err)
		}
		return nil
	})
}
