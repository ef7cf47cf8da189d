package store

import "errors"

// Sentinel errors. Every error returned by this package starts with
// "store: "; check them with errors.Is.
var (
	// ErrNotFound: no row has the given id.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a row with the given id exists already.
	ErrExists = errors.New("store: already exists")
	// ErrHasTransactions: a client that has transactions cannot be deleted.
	ErrHasTransactions = errors.New("store: client has transactions")
	// ErrIllegalTransition: the status change is not in the state machine.
	ErrIllegalTransition = errors.New("store: illegal status transition")
	// ErrUnknownClient: a new transaction names a client that does not exist.
	ErrUnknownClient = errors.New("store: unknown client")
	// ErrClientClosed: a new transaction names a CLOSED client.
	ErrClientClosed = errors.New("store: client is closed")
	// ErrBilled: a transaction that has been billed cannot be deleted.
	ErrBilled = errors.New("store: transaction has been billed")
	// ErrKeyUsed: the idempotency key was stored by another request first.
	ErrKeyUsed = errors.New("store: idempotency key already used")
	// ErrBadCursor: a page cursor that this package did not write.
	ErrBadCursor = errors.New("store: bad cursor")
	// ErrBadDSN: a database setting that cannot be used.
	ErrBadDSN = errors.New("store: bad dsn")
	// ErrInvalid: a value does not fit the schema (a size or a format).
	ErrInvalid = errors.New("store: invalid value")
	// ErrOverflow: a sum of money does not fit in int64 minor units; no
	// wrong total is ever written.
	ErrOverflow = errors.New("store: amount overflow")
)
