package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Column sizes. Values longer than these are rejected with ErrInvalid.
const (
	// MaxIDLen bounds client, transaction and billing cycle ids (ASCII).
	MaxIDLen = 64
	// MaxNameLen bounds a client's name, in characters.
	MaxNameLen = 200
	// MaxEmailLen bounds a client's email, in characters (RFC 5321).
	MaxEmailLen = 254
	// MaxDescriptionLen bounds a transaction's description, in characters.
	MaxDescriptionLen = 1000
)

// TxStatus is a transaction's lifecycle status.
type TxStatus string

// The transaction statuses. See the package documentation for the state
// machine.
const (
	StatusApproved TxStatus = "APPROVED"
	StatusDeclined TxStatus = "DECLINED"
	StatusRefunded TxStatus = "REFUNDED"
	StatusBilled   TxStatus = "BILLED"
)

// TxStatuses lists every transaction status.
var TxStatuses = []TxStatus{StatusApproved, StatusDeclined, StatusRefunded, StatusBilled}

// Valid reports whether s is a known status.
func (s TxStatus) Valid() bool {
	switch s {
	case StatusApproved, StatusDeclined, StatusRefunded, StatusBilled:
		return true
	}
	return false
}

// ClientStatus is a client account's status.
type ClientStatus string

// The client statuses. Any status may change to any other; a CLOSED client
// takes no new transactions.
const (
	ClientActive    ClientStatus = "ACTIVE"
	ClientSuspended ClientStatus = "SUSPENDED"
	ClientClosed    ClientStatus = "CLOSED"
)

// ClientStatuses lists every client status.
var ClientStatuses = []ClientStatus{ClientActive, ClientSuspended, ClientClosed}

// Valid reports whether s is a known status.
func (s ClientStatus) Valid() bool {
	switch s {
	case ClientActive, ClientSuspended, ClientClosed:
		return true
	}
	return false
}

// Client is a billed account holder.
type Client struct {
	ID        string
	Name      string
	Email     string
	Status    ClientStatus
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Transaction is a client's transaction: an integer amount in minor units
// of an ISO 4217 currency, and a status.
type Transaction struct {
	ID          string
	ClientID    string
	AmountMinor int64
	Currency    string
	Status      TxStatus
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// BilledAt is when the transaction was billed; zero until then.
	BilledAt time.Time
	// BillingCycleID is the cycle that billed it; empty until then.
	BillingCycleID string
}

// Page is one page of a list, in (created_at, id) order. Next, when not
// empty, is the cursor of the following page.
type Page[T any] struct {
	Items []T
	Next  string
}

// ClientFilter selects clients for ListClients. Zero fields select all.
type ClientFilter struct {
	Status ClientStatus
	// CreatedFrom (inclusive) and CreatedTo (exclusive) bound created_at.
	CreatedFrom, CreatedTo time.Time
	// After is the cursor of the page to read ("" for the first page).
	After string
	// Limit is the page size; it must be positive.
	Limit int
}

// TransactionFilter selects transactions for ListTransactions. Zero fields
// select all.
type TransactionFilter struct {
	ClientID string
	Status   TxStatus
	// CreatedFrom (inclusive) and CreatedTo (exclusive) bound created_at.
	CreatedFrom, CreatedTo time.Time
	// After is the cursor of the page to read ("" for the first page).
	After string
	// Limit is the page size; it must be positive.
	Limit int
}

// millis truncates t to the milliseconds the store keeps, in UTC.
func millis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// checkID reports an id that is empty, too long or not printable ASCII.
func checkID(field, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s: want 1 to %d characters, got %d", ErrInvalid, field, MaxIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("%w: %s: want printable ASCII without spaces", ErrInvalid, field)
		}
	}
	return nil
}

func checkLen(field, s string, max int) error {
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s: want at most %d characters, got %d", ErrInvalid, field, max, n)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%w: %s: want valid UTF-8 without NUL", ErrInvalid, field)
	}
	return nil
}

// check reports the first value of c that does not fit the schema.
func (c *Client) check() error {
	if err := checkID("client_id", c.ID); err != nil {
		return err
	}
	if err := checkLen("name", c.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkLen("email", c.Email, MaxEmailLen); err != nil {
		return err
	}
	if !c.Status.Valid() {
		return fmt.Errorf("%w: status %q", ErrInvalid, c.Status)
	}
	return nil
}

// Check reports the first value of t that does not fit the schema: ids,
// currency (three upper-case letters), status, description size and
// timestamps. It does not check the currency against ISO 4217 or the sign
// of the amount: the stream may carry credits.
func (t *Transaction) Check() error {
	if err := checkID("transaction_id", t.ID); err != nil {
		return err
	}
	if err := checkID("client_id", t.ClientID); err != nil {
		return err
	}
	if len(t.Currency) != 3 || strings.ToUpper(t.Currency) != t.Currency || strings.Trim(t.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fmt.Errorf("%w: currency %q: want 3 upper-case letters", ErrInvalid, t.Currency)
	}
	if !t.Status.Valid() {
		return fmt.Errorf("%w: status %q", ErrInvalid, t.Status)
	}
	if err := checkLen("description", t.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if t.BillingCycleID != "" {
		if err := checkID("billing_cycle_id", t.BillingCycleID); err != nil {
			return err
		}
	}
	if t.CreatedAt.IsZero() || t.UpdatedAt.IsZero() {
		return fmt.Errorf("%w: created_at and updated_at are required", ErrInvalid)
	}
	if y := t.UpdatedAt.Year(); y < 1970 || y > 9999 || t.CreatedAt.Year() < 1970 || t.CreatedAt.Year() > 9999 {
		return fmt.Errorf("%w: timestamps must lie in the years 1970 to 9999", ErrInvalid)
	}
	return nil
}

func (t *Transaction) normalize() {
	t.CreatedAt = millis(t.CreatedAt)
	t.UpdatedAt = millis(t.UpdatedAt)
	t.BilledAt = millis(t.BilledAt)
}

func (c *Client) normalize() {
	c.CreatedAt = millis(c.CreatedAt)
	c.UpdatedAt = millis(c.UpdatedAt)
}
