package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Sizes of the emails-sent log's columns.
const (
	// MaxEmailKindLen bounds EmailSent.Kind (ASCII).
	MaxEmailKindLen = 16
	// MaxMessageIDLen bounds EmailSent.MessageID, in characters.
	MaxMessageIDLen = 255
)

// emailChunk bounds the ids of one SELECT and the rows of one INSERT of
// the emails-sent log: a batch of the engine's (500 records by default)
// takes one statement.
const emailChunk = 500

// EmailSent is one entry of the log of emails sent: at most one email of
// each kind is ever sent for a transaction or an invoice.
type EmailSent struct {
	// RefID is what the email is about: a transaction or invoice id. It
	// has the form of an id (see MaxIDLen).
	RefID string
	// Kind says which email it is, e.g. "billed" or "invoice": 1 to
	// MaxEmailKindLen characters of printable ASCII.
	Kind string
	// Recipient is the address the email went to.
	Recipient string
	// MessageID is the email's Message-ID header, for finding it in a mail
	// log.
	MessageID string
	// SentAt is when it was sent; the zero time means now.
	SentAt time.Time
}

// Check reports, with ErrInvalid, the first value of e that the log
// cannot hold. MarkEmailsSent checks every entry; a caller that learns of
// a bad value only then has sent an email it cannot record, so check
// first.
func (e *EmailSent) Check() error {
	if err := checkID("ref_id", e.RefID); err != nil {
		return err
	}
	if len(e.Kind) > MaxEmailKindLen {
		return fmt.Errorf("%w: kind: want 1 to %d characters, got %d", ErrInvalid, MaxEmailKindLen, len(e.Kind))
	}
	if err := checkID("kind", e.Kind); err != nil {
		return err
	}
	if err := checkLen("recipient", e.Recipient, MaxEmailLen); err != nil {
		return err
	}
	if err := checkLen("message_id", e.MessageID, MaxMessageIDLen); err != nil {
		return err
	}
	return nil
}

// EmailsSent reports which of refIDs already have an email of kind in the
// log: the map holds true for each of those and nothing for the others.
// It reads in chunks of a few hundred ids, one query each.
func (db *DB) EmailsSent(ctx context.Context, kind string, refIDs []string) (map[string]bool, error) {
	sent := make(map[string]bool)
	for start := 0; start < len(refIDs); start += emailChunk {
		chunk := refIDs[start:min(start+emailChunk, len(refIDs))]
		rows, err := db.r.QueryContext(ctx, "SELECT ref_id FROM emails_sent WHERE kind = ? AND state = 'SENT' AND ref_id IN "+placeholders(len(chunk)), idArgs(chunk, kind)...)
		if err != nil {
			return nil, fmt.Errorf("store: emails sent: %w", err)
		}
		err = scanRefIDs(rows, sent)
		if err != nil {
			return nil, fmt.Errorf("store: emails sent: %w", err)
		}
	}
	return sent, nil
}

func scanRefIDs(rows *sql.Rows, into map[string]bool) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		into[id] = true
	}
	return rows.Err()
}

// MarkEmailsSent records sent in the log, in one database transaction with
// one multi-row INSERT per chunk of a few hundred entries; a claim on an
// entry (ClaimEmails) becomes its record. An entry whose (RefID, Kind) is
// recorded as sent already, or earlier in sent, is left out: the first
// record of an email stays. Every entry must pass Check; the
// first that does not fails the call with ErrInvalid before anything is
// written.
func (db *DB) MarkEmailsSent(ctx context.Context, sent []EmailSent) error {
	if len(sent) == 0 {
		return nil
	}
	now := db.clock()
	rows := make([]EmailSent, len(sent))
	for i, e := range sent {
		if err := e.Check(); err != nil {
			return fmt.Errorf("email sent %d (%s %s): %w", i, e.Kind, e.RefID, err)
		}
		e.SentAt = millis(e.SentAt)
		if e.SentAt.IsZero() {
			e.SentAt = now
		}
		rows[i] = e
	}
	if len(rows) <= emailChunk {
		// One statement: atomic on its own, no transaction around it.
		q, args := db.markSentSQL(rows)
		if err := db.writeStmt(ctx, q, args...); err != nil {
			return fmt.Errorf("store: mark emails sent: %w", err)
		}
		return nil
	}
	for start := 0; start < len(rows); start += emailChunk {
		db.warmBatch(ctx, db.markSentQuery(min(emailChunk, len(rows)-start)))
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(rows); start += emailChunk {
			q, args := db.markSentSQL(rows[start:min(start+emailChunk, len(rows))])
			if _, err := db.batchExec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("store: mark emails sent: %w", err)
			}
		}
		return nil
	})
}

// markSentSQL returns the statement that records rows in the log, and its
// arguments.
func (db *DB) markSentSQL(rows []EmailSent) (string, []any) {
	args := make([]any, 0, len(rows)*5)
	for _, e := range rows {
		args = append(args, e.RefID, e.Kind, e.Recipient, e.MessageID, db.d.t(e.SentAt))
	}
	return db.markSentQuery(len(rows)), args
}

// markSentQuery records n emails in the log.
func (db *DB) markSentQuery(n int) string {
	return "INSERT INTO emails_sent (ref_id, kind, recipient, message_id, sent_at) VALUES " + rowsOf(n, 5) + db.d.markSent
}

// claimSQL returns the statements of ClaimEmails for n emails: the
// claims, and the read of the log that locks them.
func (db *DB) claimSQL(n int) (claim, read string) {
	return db.d.insertKeep + " INTO emails_sent (ref_id, kind, recipient, message_id, sent_at, state, owner, claimed_at) VALUES " +
			rowsOf(n, 8) + db.d.keepSuffix,
		"SELECT ref_id, state, owner, claimed_at FROM emails_sent WHERE kind = ? AND ref_id IN " +
			placeholders(n) + " ORDER BY ref_id" + db.d.forUpdate
}

// GetEmailSent returns the log entry of the email of kind about refID, or
// ErrNotFound when none was recorded.
func (db *DB) GetEmailSent(ctx context.Context, refID, kind string) (EmailSent, error) {
	e := EmailSent{RefID: refID, Kind: kind}
	var at dbTime
	err := db.r.QueryRowContext(ctx, "SELECT recipient, message_id, sent_at FROM emails_sent WHERE ref_id = ? AND kind = ? AND state = 'SENT'", refID, kind).
		Scan(&e.Recipient, &e.MessageID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("%w: email %s %s", ErrNotFound, kind, refID)
	}
	if err != nil {
		return e, fmt.Errorf("store: get email sent: %w", err)
	}
	e.SentAt = at.t
	return e, nil
}

// CountEmailsSent returns how many emails of kind the log holds.
func (db *DB) CountEmailsSent(ctx context.Context, kind string) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM emails_sent WHERE kind = ? AND state = 'SENT'", kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count emails sent: %w", err)
	}
	return n, nil
}

// EmailClaims is ClaimEmails' answer, by ref id.
type EmailClaims struct {
	// Sent have been sent: nothing to do.
	Sent map[string]bool
	// Claimed are this owner's to send now: new claims, its own earlier
	// ones, and claims of other owners that expired.
	Claimed map[string]bool
	// Busy are claimed by another owner whose claim has not expired: it
	// may be sending them right now.
	Busy map[string]bool
	// TakenOver are the Claimed ones whose expired claim belonged to
	// another owner: that owner may have sent them before it stopped.
	TakenOver map[string]bool
}

// ClaimEmails claims the emails of kind for refIDs for owner, before it
// sends them, in one database transaction: each is either sent already,
// or now claimed by owner (a new claim, owner's own, or another owner's
// older than lease), or busy with another owner. Two senders of the same
// emails, such as a plugin finishing its batch after its engine died and
// the restarted engine retrying that batch, therefore never send one
// email both. MarkEmailsSent turns a claim into the record of the email;
// ReleaseEmails gives up the claims of emails not sent.
func (db *DB) ClaimEmails(ctx context.Context, kind string, refIDs []string, owner string, lease time.Duration) (EmailClaims, error) {
	var c EmailClaims
	for start := 0; start < len(refIDs); start += emailChunk {
		claim, read := db.claimSQL(min(emailChunk, len(refIDs)-start))
		db.warmBatch(ctx, claim, read)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		c = EmailClaims{Sent: map[string]bool{}, Claimed: map[string]bool{}, Busy: map[string]bool{}, TakenOver: map[string]bool{}}
		now := db.clock()
		for start := 0; start < len(refIDs); start += emailChunk {
			chunk := refIDs[start:min(start+emailChunk, len(refIDs))]
			args := make([]any, 0, len(chunk)*8)
			for _, id := range chunk {
				args = append(args, id, kind, "", "", db.d.t(now), "SENDING", owner, db.d.t(now))
			}
			claim, read := db.claimSQL(len(chunk))
			if _, err := db.batchExec(ctx, tx, claim, args...); err != nil {
				return fmt.Errorf("store: claim emails: %w", err)
			}
			rows, err := db.batchQuery(ctx, tx, read, idArgs(chunk, kind)...)
			if err != nil {
				return fmt.Errorf("store: claim emails: %w", err)
			}
			var take []string
			for rows.Next() {
				var id, state string
				var by sql.NullString
				var at dbTime
				if err := rows.Scan(&id, &state, &by, &at); err != nil {
					rows.Close()
					return fmt.Errorf("store: claim emails: %w", err)
				}
				switch {
				case state == "SENT":
					c.Sent[id] = true
				case by.String == owner:
					c.Claimed[id] = true
				case !at.valid || !at.t.Add(lease).After(now): // expired
					c.Claimed[id], c.TakenOver[id] = true, true
					take = append(take, id)
				default:
					c.Busy[id] = true
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("store: claim emails: %w", err)
			}
			if len(take) > 0 { // the rows are locked: one statement takes them all
				if _, err := tx.ExecContext(ctx, "UPDATE emails_sent SET owner = ?, claimed_at = ? WHERE kind = ? AND state = 'SENDING' AND ref_id IN "+
					placeholders(len(take)), idArgs(take, owner, db.d.t(now), kind)...); err != nil {
					return fmt.Errorf("store: claim emails: %w", err)
				}
			}
		}
		return nil
	})
	return c, err
}

// ReleaseEmails gives up owner's claims on the emails of kind for refIDs
// that were not sent, so that another sender may take them at once.
func (db *DB) ReleaseEmails(ctx context.Context, kind string, refIDs []string, owner string) error {
	if len(refIDs) == 0 {
		return nil
	}
	q := func(n int) string {
		return "DELETE FROM emails_sent WHERE kind = ? AND owner = ? AND state = 'SENDING' AND ref_id IN " + placeholders(n)
	}
	if len(refIDs) <= emailChunk {
		if err := db.writeStmt(ctx, q(len(refIDs)), idArgs(refIDs, kind, owner)...); err != nil {
			return fmt.Errorf("store: release emails: %w", err)
		}
		return nil
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(refIDs); start += emailChunk {
			chunk := refIDs[start:min(start+emailChunk, len(refIDs))]
			if _, err := db.batchExec(ctx, tx, q(len(chunk)), idArgs(chunk, kind, owner)...); err != nil {
				return fmt.Errorf("store: release emails: %w", err)
			}
		}
		return nil
	})
}
