package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/billing-engine/billing/engine/store"
)

// CRUDStore is what the client and transaction handlers need from the
// store; *store.DB implements it. See package store for the contract of
// each method and its errors.
type CRUDStore interface {
	CreateClient(ctx context.Context, c store.Client, idem *store.Idempotency) error
	GetClient(ctx context.Context, id string) (store.Client, error)
	ListClients(ctx context.Context, f store.ClientFilter) (store.Page[store.Client], error)
	UpdateClient(ctx context.Context, id string, fn func(store.Client) (store.Client, error)) (store.Client, error)
	DeleteClient(ctx context.Context, id string) error

	CreateTransaction(ctx context.Context, t store.Transaction, idem *store.Idempotency) error
	GetTransaction(ctx context.Context, id string) (store.Transaction, error)
	ListTransactions(ctx context.Context, f store.TransactionFilter) (store.Page[store.Transaction], error)
	UpdateTransaction(ctx context.Context, id string, fn func(store.Transaction) (store.Transaction, error)) (store.Transaction, error)
	DeleteTransaction(ctx context.Context, id string) error

	Idempotent(ctx context.Context, scope, key string) (store.Idempotency, error)

	// Ping tells a database that cannot be reached from other failures.
	Ping(ctx context.Context) error
}

// List paging limits.
const (
	// DefaultLimit is the page size when a list request names none.
	DefaultLimit = 50
	// MaxLimit is the largest page size a list request may ask for.
	MaxLimit = 500
	// MaxAmountMinor is the largest amount_minor a transaction may carry:
	// 10^12 minor units (ten billion in a two-decimal currency).
	MaxAmountMinor = 1_000_000_000_000
)

// CRUDOption configures RegisterCRUD.
type CRUDOption func(*crud)

// CRUDLogger sets where server errors are logged. Default: discard.
func CRUDLogger(l *slog.Logger) CRUDOption { return func(c *crud) { c.log = l } }

// CRUDClock sets the clock that stamps new rows. Default time.Now.
func CRUDClock(now func() time.Time) CRUDOption { return func(c *crud) { c.now = now } }

// crud serves the client and transaction endpoints.
type crud struct {
	st      CRUDStore
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration // of each request's store calls
}

// RegisterCRUD registers the client and transaction endpoints on s:
//
//	POST   /api/v1/clients              GET /api/v1/clients
//	GET    /api/v1/clients/{id}         PUT /api/v1/clients/{id}    DELETE /api/v1/clients/{id}
//	POST   /api/v1/transactions         GET /api/v1/transactions
//	GET    /api/v1/transactions/{id}    PUT /api/v1/transactions/{id}    DELETE /api/v1/transactions/{id}
//
// docs/api.md describes the bodies, rules and errors.
func RegisterCRUD(s *Server, st CRUDStore, opts ...CRUDOption) {
	c := &crud{st: st, log: slog.New(slog.DiscardHandler), now: time.Now, timeout: DefaultStoreTimeout}
	for _, o := range opts {
		o(c)
	}
	// Each request's store calls are bounded, so that a database that
	// does not answer makes a 503, not a request that hangs.
	handle := func(pattern string, h http.HandlerFunc) { s.Handle(pattern, bounded(c.timeout, h)) }
	handle("POST /api/v1/clients", c.createClient)
	handle("GET /api/v1/clients", c.listClients)
	handle("GET /api/v1/clients/{id}", c.getClient)
	handle("PUT /api/v1/clients/{id}", c.updateClient)
	handle("DELETE /api/v1/clients/{id}", c.deleteClient)
	handle("POST /api/v1/transactions", c.createTransaction)
	handle("GET /api/v1/transactions", c.listTransactions)
	handle("GET /api/v1/transactions/{id}", c.getTransaction)
	handle("PUT /api/v1/transactions/{id}", c.updateTransaction)
	handle("DELETE /api/v1/transactions/{id}", c.deleteTransaction)
}

// clock returns now in the store's precision.
func (c *crud) clock() time.Time { return c.now().UTC().Truncate(time.Millisecond) }

// fieldErrors is a set of validation problems; as an error it is answered
// with 422 and every problem named.
type fieldErrors []FieldError

func (f fieldErrors) Error() string { return fmt.Sprintf("%d invalid fields", len(f)) }

func (f *fieldErrors) add(field, rule string) { *f = append(*f, FieldError{Field: field, Rule: rule}) }

// conflict is an answer of 409 naming a field and a rule.
type conflict struct {
	detail string
	field  FieldError
}

func (c *conflict) Error() string { return c.detail }

// writeFieldErrors answers 422 listing fe.
func writeFieldErrors(w http.ResponseWriter, r *http.Request, fe fieldErrors) {
	detail := "1 field is invalid"
	if len(fe) > 1 {
		detail = fmt.Sprintf("%d fields are invalid", len(fe))
	}
	WriteProblem(w, r, http.StatusUnprocessableEntity, detail, fe...)
}

// fail answers a store (or validation) error with its problem.
func (c *crud) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe fieldErrors
	var cf *conflict
	switch {
	case errors.As(err, &fe):
		writeFieldErrors(w, r, fe)
	case errors.As(err, &cf):
		WriteProblem(w, r, http.StatusConflict, cf.detail, cf.field)
	case errors.Is(err, store.ErrIllegalTransition):
		WriteProblem(w, r, http.StatusConflict, "the status change is not allowed",
			FieldError{Field: "status", Rule: strings.TrimPrefix(err.Error(), "store: illegal status transition: ")})
	case errors.Is(err, store.ErrNotFound):
		WriteProblem(w, r, http.StatusNotFound, strings.TrimPrefix(err.Error(), "store: not found: ")+" not found")
	case errors.Is(err, store.ErrBadCursor):
		WriteProblem(w, r, http.StatusBadRequest, "invalid query parameter", FieldError{Field: "cursor", Rule: "must be a next_cursor returned by this API"})
	case errors.Is(err, store.ErrInvalid):
		WriteProblem(w, r, http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), "store: invalid value: "))
	case errors.Is(err, context.Canceled) && errors.Is(context.Cause(r.Context()), context.Canceled):
		// The client went away; nobody reads the answer.
	case databaseUnavailable(r, c.st, err):
		c.log.Warn("api: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, r)
	default:
		c.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteProblem(w, r, http.StatusInternalServerError, "internal error")
	}
}

// jsonBody decodes the body like DecodeJSON. The Content-Type is not
// checked (curl -d sends a form type): the body must be JSON whatever it
// says. On failure it has answered and returns false.
func jsonBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	return DecodeJSON(w, r, dst)
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// idRule is the rule a caller-supplied id must follow.
const idRule = "must be 1 to 64 characters: letters, digits, '.', '_', ':' or '-', starting with a letter or digit"

// validID reports whether a caller-supplied id follows idRule.
func validID(id string) bool {
	if id == "" || len(id) > store.MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		if !alnum && (i == 0 || (ch != '.' && ch != '_' && ch != ':' && ch != '-')) {
			return false
		}
	}
	return true
}

// pathID returns the {id} path value; an id no row can have is answered
// 404 here.
func pathID(w http.ResponseWriter, r *http.Request, kind string) (string, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > store.MaxIDLen {
		WriteProblem(w, r, http.StatusNotFound, kind+" not found")
		return "", false
	}
	return id, true
}

// listQuery is the query of a list request.
type listQuery struct {
	limit    int
	cursor   string
	from, to time.Time
	values   url.Values
}

// parseList reads limit, cursor, created_from and created_to, and rejects
// query parameters not in allowed. On failure it has answered.
func parseList(w http.ResponseWriter, r *http.Request, allowed ...string) (listQuery, bool) {
	q := r.URL.Query()
	lq := listQuery{limit: DefaultLimit, values: q}
	var fe fieldErrors
	known := map[string]bool{"limit": true, "cursor": true, "created_from": true, "created_to": true}
	for _, a := range allowed {
		known[a] = true
	}
	for k, v := range q {
		switch {
		case !known[k]:
			fe.add(k, "unknown query parameter")
		case len(v) > 1:
			fe.add(k, "must be given once")
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			fe.add("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxLimit))
		}
		lq.limit = n
	}
	lq.cursor = q.Get("cursor")
	if lq.cursor != "" && store.ParseCursor(lq.cursor) != nil {
		fe.add("cursor", "must be a next_cursor returned by this API")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"created_from", &lq.from}, {"created_to", &lq.to}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				fe.add(p.name, "must be an RFC 3339 timestamp, e.g. 2026-01-31T00:00:00Z")
			}
			*p.dst = t
		}
	}
	if !lq.from.IsZero() && !lq.to.IsZero() && !lq.to.After(lq.from) {
		fe.add("created_to", "must be later than created_from")
	}
	if len(fe) > 0 {
		WriteProblem(w, r, http.StatusBadRequest, "invalid query parameters", fe...)
		return lq, false
	}
	return lq, true
}

// page is the JSON answer of a list request.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// idempotency is the Idempotency-Key handling of one POST.
type idempotency struct {
	scope, key, fingerprint string
}

// idempotencyKey reads the Idempotency-Key header of a POST to route
// scope and the request it carries (decoded into req). ok is false when
// the request has been answered: a malformed key, or a replay of the
// stored answer. A nil *idempotency means no key was given.
func (c *crud) idempotencyKey(w http.ResponseWriter, r *http.Request, scope string, req any) (*idempotency, bool) {
	return readIdempotencyKey(w, r, c.st, c.fail, scope, req)
}

// replay answers with the stored answer for ik, if there is one, and
// reports whether it answered.
func (c *crud) replay(w http.ResponseWriter, r *http.Request, ik *idempotency) bool {
	return replayIdempotent(w, r, c.st, c.fail, ik)
}

// idempotentStore reads the answers stored for Idempotency-Keys.
type idempotentStore interface {
	Idempotent(ctx context.Context, scope, key string) (store.Idempotency, error)
}

// failFunc answers a request with the problem of err.
type failFunc func(w http.ResponseWriter, r *http.Request, err error)

// readIdempotencyKey is idempotencyKey for any route: it reads stored
// answers from st and answers errors with fail.
func readIdempotencyKey(w http.ResponseWriter, r *http.Request, st idempotentStore, fail failFunc, scope string, req any) (*idempotency, bool) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return nil, true
	}
	if len(key) > 255 || strings.IndexFunc(key, func(ch rune) bool { return ch < '!' || ch > '~' }) >= 0 {
		WriteProblem(w, r, http.StatusBadRequest, "invalid Idempotency-Key header",
			FieldError{Field: "Idempotency-Key", Rule: "must be 1 to 255 printable ASCII characters without spaces"})
		return nil, false
	}
	b, err := json.Marshal(req)
	if err != nil {
		fail(w, r, err)
		return nil, false
	}
	sum := sha256.Sum256(b)
	ik := &idempotency{scope: scope, key: key, fingerprint: hex.EncodeToString(sum[:])}
	return ik, !replayIdempotent(w, r, st, fail, ik)
}

// replayIdempotent is replay for any route.
func replayIdempotent(w http.ResponseWriter, r *http.Request, st idempotentStore, fail failFunc, ik *idempotency) bool {
	rec, err := st.Idempotent(r.Context(), ik.scope, ik.key)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		fail(w, r, err)
		return true
	}
	if rec.Fingerprint != ik.fingerprint {
		WriteProblem(w, r, http.StatusUnprocessableEntity, "the Idempotency-Key was used for a different request",
			FieldError{Field: "Idempotency-Key", Rule: "must not be reused for a different request"})
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
	return true
}

// record returns the store record of ik's answer; nil for no key.
func (ik *idempotency) record(status int, body []byte) *store.Idempotency {
	if ik == nil {
		return nil
	}
	return &store.Idempotency{Scope: ik.scope, Key: ik.key, Fingerprint: ik.fingerprint, Status: status, Body: body}
}

// created answers 201 with body (JSON, newline-terminated) and Location.
func created(w http.ResponseWriter, location string, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// marshal renders v as WriteJSON does.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
