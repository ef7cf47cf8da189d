package store

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// cursor is the key of the last row of a page: lists are in (created_at,
// id) order, and the next page starts after it.
type cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

// encode returns the opaque form: base64url of the key as JSON.
func (c cursor) encode() string {
	b, _ := json.Marshal(c) //nolint:errchkjson // a time and a string always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor checks a page cursor; it returns an error wrapping
// ErrBadCursor for one this package did not write.
func ParseCursor(s string) error {
	_, err := decodeCursor(s)
	return err
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	if len(s) > 512 {
		return c, fmt.Errorf("%w: too long", ErrBadCursor)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.CreatedAt.IsZero() {
		return c, fmt.Errorf("%w: not a cursor", ErrBadCursor)
	}
	c.CreatedAt = millis(c.CreatedAt)
	return c, nil
}

// where collects the conditions of a list query and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "1=1"
	}
	s := w.conds[0]
	for _, c := range w.conds[1:] {
		s += " AND " + c
	}
	return s
}

// page adds the created range and the keyset condition (the rows after
// the cursor) to w; idCol is the table's id column.
func (db *DB) page(w *where, idCol string, from, to time.Time, after string) error {
	if !from.IsZero() {
		w.add("created_at >= ?", db.d.t(millis(from)))
	}
	if !to.IsZero() {
		w.add("created_at < ?", db.d.t(millis(to)))
	}
	if after != "" {
		c, err := decodeCursor(after)
		if err != nil {
			return err
		}
		t := db.d.t(c.CreatedAt)
		w.add("(created_at > ? OR (created_at = ? AND "+idCol+" > ?))", t, t, c.ID)
	}
	return nil
}
