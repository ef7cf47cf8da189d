package httpapi

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"net/http"
	"time"
)

// DefaultStoreTimeout is how long a client or transaction request waits
// for the database before it is answered 503 (see CRUDStoreTimeout): as
// long as SQLite waits for a lock, and well under the engine's 30s write
// timeout, past which a client would get no answer at all.
const DefaultStoreTimeout = 10 * time.Second

// pingTimeout bounds the ping that tells a database that is down from
// another failure.
const pingTimeout = time.Second

// errStoreTimeout is the cause of a request context whose store timeout
// passed.
var errStoreTimeout = errors.New("httpapi: the database did not answer in time")

// CRUDStoreTimeout bounds how long one client or transaction request
// waits for the database; past it the request is answered 503, as when
// the database cannot be reached. Default DefaultStoreTimeout. d <= 0
// leaves requests unbounded (the server's write timeout still applies).
func CRUDStoreTimeout(d time.Duration) CRUDOption { return func(c *crud) { c.timeout = d } }

// bounded runs h with a request context that ends, with cause
// errStoreTimeout, after timeout.
func bounded(timeout time.Duration, h http.HandlerFunc) http.HandlerFunc {
	if timeout <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeoutCause(r.Context(), timeout, errStoreTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	}
}

// pinger is a database that can say whether it answers; *store.DB is one.
type pinger interface {
	Ping(ctx context.Context) error
}

// databaseUnavailable reports whether err, a store failure of the request
// r, comes from a database that cannot be reached or does not answer,
// rather than from a bug: the request's store timeout passed, the error is
// a network or broken-connection error, or the database does not answer a
// ping within a second now.
func databaseUnavailable(r *http.Request, db pinger, err error) bool {
	if errors.Is(context.Cause(r.Context()), errStoreTimeout) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	if db == nil {
		return false
	}
	// The driver's own words for a dropped connection differ between
	// drivers: ask the database instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), pingTimeout)
	defer cancel()
	return db.Ping(ctx) != nil
}

// writeUnavailable answers 503 with Retry-After: the database is away.
func writeUnavailable(w http.ResponseWriter, r *http.Request) {
	RetryAfter(w, 1)
	WriteProblem(w, r, http.StatusServiceUnavailable,
		"the database is unavailable: retry later; a POST retried with the same Idempotency-Key is applied at most once")
}
