package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/store"
)

// BillingStore is what the billing endpoints read from the store;
// *store.DB implements it. See package store for the contract of each
// method and its errors.
type BillingStore interface {
	GetCycle(ctx context.Context, id string) (store.BillingCycle, error)
	GetInvoice(ctx context.Context, id string) (store.Invoice, error)
	ListInvoices(ctx context.Context, f store.InvoiceFilter) (store.Page[store.Invoice], error)
	Idempotent(ctx context.Context, scope, key string) (store.Idempotency, error)
	PutIdempotency(ctx context.Context, i store.Idempotency) error

	// Ping tells a database that cannot be reached from other failures.
	Ping(ctx context.Context) error
}

// CycleRunner runs a billing cycle to its end; *billing.Cycles implements
// it. Run returns the finished cycle, and an error when the cycle failed
// (the cycle then has an id and status FAILED) or could not start (the
// zero cycle).
type CycleRunner interface {
	Run(ctx context.Context, iv billing.Interval) (store.BillingCycle, error)
}

// BillingOption configures RegisterBilling.
type BillingOption func(*billingAPI)

// BillingLogger sets where server errors are logged. Default: discard.
func BillingLogger(l *slog.Logger) BillingOption { return func(b *billingAPI) { b.log = l } }

// cycleWriteTimeout is how long the answer to a request that runs a cycle
// may take to be written: the server's write timeout is for ordinary
// calls, and a cycle over many transactions takes longer.
const cycleWriteTimeout = time.Hour

// billingScope is the Idempotency-Key scope of POST /api/v1/billing-cycles.
const billingScope = "POST /api/v1/billing-cycles"

// billingAPI serves the billing cycle and invoice endpoints.
type billingAPI struct {
	st     BillingStore
	cycles CycleRunner
	log    *slog.Logger
	keys   keyLocks
}

// keyLocks serializes the requests that carry one Idempotency-Key, so
// that a repeat sent while the first runs waits for its answer instead of
// running a cycle of its own. (Processes that share the database do not
// share these locks: there, the first answer stored wins, and a second
// cycle finds nothing left to do.)
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu      sync.Mutex
	waiters int // guarded by keyLocks.mu
}

// lock locks key and returns its unlock.
func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.waiters++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.waiters--; l.waiters == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// RegisterBilling registers the billing endpoints on s:
//
//	POST /api/v1/billing-cycles          run a cycle; 201 with the cycle when it is done
//	GET  /api/v1/billing-cycles/{id}     a cycle
//	GET  /api/v1/invoices                invoices (client_id, billing_cycle_id, limit, cursor)
//	GET  /api/v1/invoices/{id}           an invoice with its lines
//	GET  /executeBillingCycle/{interval} the original path: run a cycle; 200 with it
//
// The POST body is {"interval": "24h"} (a Go duration, daily, weekly or
// monthly: see package billing) or {"from": RFC 3339, "to": RFC 3339}; it
// honours Idempotency-Key like POST /api/v1/transactions. A cycle runs to
// its end even when the caller goes away. /executeBillingCycle/ needs the
// API token (WithToken), like /api/, and not the read token: a GET there
// changes things. Money is integer minor units plus the currency code.
func RegisterBilling(s *Server, st BillingStore, cycles CycleRunner, opts ...BillingOption) {
	b := &billingAPI{st: st, cycles: cycles, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	s.Handle("POST /api/v1/billing-cycles", b.createCycle)
	s.Handle("GET /api/v1/billing-cycles/{id}", b.getCycle)
	s.Handle("GET /api/v1/invoices", b.listInvoices)
	s.Handle("GET /api/v1/invoices/{id}", b.getInvoice)
	s.Handle("GET /executeBillingCycle/{interval...}", b.executeCycle)
	s.RequireToken("/executeBillingCycle/")
}

// cycleJSON is a billing cycle as the API shows it.
type cycleJSON struct {
	BillingCycleID string     `json:"billing_cycle_id"`
	Interval       string     `json:"interval"`
	PeriodStart    timestamp  `json:"period_start"`
	PeriodEnd      timestamp  `json:"period_end"`
	Status         string     `json:"status"`
	Billed         int64      `json:"billed"`
	Invoices       int64      `json:"invoices"`
	Error          string     `json:"error,omitempty"`
	CreatedAt      timestamp  `json:"created_at"`
	FinishedAt     *timestamp `json:"finished_at"`
}

func toCycleJSON(c store.BillingCycle) cycleJSON {
	out := cycleJSON{BillingCycleID: c.ID, Interval: c.Interval, PeriodStart: timestamp(c.PeriodStart), PeriodEnd: timestamp(c.PeriodEnd),
		Status: string(c.Status), Billed: c.Billed, Invoices: c.Invoices, Error: c.Error, CreatedAt: timestamp(c.CreatedAt)}
	if !c.FinishedAt.IsZero() {
		f := timestamp(c.FinishedAt)
		out.FinishedAt = &f
	}
	return out
}

// invoiceJSON is an invoice as the API shows it.
type invoiceJSON struct {
	InvoiceID      string     `json:"invoice_id"`
	InvoiceNumber  string     `json:"invoice_number"`
	ClientID       string     `json:"client_id"`
	BillingCycleID string     `json:"billing_cycle_id"`
	Currency       string     `json:"currency"`
	PeriodStart    timestamp  `json:"period_start"`
	PeriodEnd      timestamp  `json:"period_end"`
	SubtotalMinor  int64      `json:"subtotal_minor"`
	CreditsMinor   int64      `json:"credits_minor"`
	TotalMinor     int64      `json:"total_minor"`
	CreatedAt      timestamp  `json:"created_at"`
	Lines          []lineJSON `json:"lines"`
}

// lineJSON is an invoice line; created_at is when the transaction (or
// the credit) was created.
type lineJSON struct {
	LineNo        int       `json:"line_no"`
	Kind          string    `json:"kind"`
	TransactionID string    `json:"transaction_id"`
	Description   string    `json:"description"`
	AmountMinor   int64     `json:"amount_minor"`
	CreatedAt     timestamp `json:"created_at"`
}

func toInvoiceJSON(inv store.Invoice) invoiceJSON {
	out := invoiceJSON{InvoiceID: inv.ID, InvoiceNumber: inv.Number, ClientID: inv.ClientID, BillingCycleID: inv.CycleID,
		Currency: inv.Currency, PeriodStart: timestamp(inv.PeriodStart), PeriodEnd: timestamp(inv.PeriodEnd),
		SubtotalMinor: inv.SubtotalMinor, CreditsMinor: inv.CreditsMinor, TotalMinor: inv.TotalMinor,
		CreatedAt: timestamp(inv.CreatedAt), Lines: make([]lineJSON, len(inv.Lines))}
	for i, l := range inv.Lines {
		out.Lines[i] = lineJSON{LineNo: l.No, Kind: string(l.Kind), TransactionID: l.TransactionID,
			Description: l.Description, AmountMinor: l.AmountMinor, CreatedAt: timestamp(l.CreatedAt)}
	}
	return out
}

// cycleInput is the body of POST /api/v1/billing-cycles.
type cycleInput struct {
	Interval *string `json:"interval"`
	From     *string `json:"from"`
	To       *string `json:"to"`
}

// timestampRule is the rule of an RFC 3339 field.
const timestampRule = "must be an RFC 3339 timestamp, e.g. 2026-03-01T00:00:00Z"

// interval reads the interval the body names, or the problems with it.
func (in *cycleInput) interval() (billing.Interval, fieldErrors) {
	var fe fieldErrors
	switch {
	case in.Interval != nil && (in.From != nil || in.To != nil):
		fe.add("interval", "give either interval, or from and to, not both")
	case in.Interval != nil:
		iv, err := billing.ParseInterval(*in.Interval)
		if err != nil {
			return iv, intervalProblem(err)
		}
		return iv, nil
	case in.From == nil && in.To == nil:
		fe.add("interval", "required (or from and to): a Go duration such as 24h, daily, weekly or monthly")
	default:
		from := bound(&fe, "from", "to", in.From)
		to := bound(&fe, "to", "from", in.To)
		if len(fe) > 0 {
			return billing.Interval{}, fe
		}
		iv, err := billing.Between(from, to)
		if err != nil {
			return iv, intervalProblem(err)
		}
		return iv, nil
	}
	return billing.Interval{}, fe
}

// bound reads the RFC 3339 field name, which goes with the field other.
func bound(fe *fieldErrors, name, other string, v *string) time.Time {
	if v == nil {
		fe.add(name, ruleRequired+" with "+other)
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		fe.add(name, timestampRule)
	}
	return t
}

// intervalProblem turns an interval error into the field it names.
func intervalProblem(err error) fieldErrors {
	var ie *billing.IntervalError
	if errors.As(err, &ie) {
		return fieldErrors{{Field: ie.Field, Rule: ie.Rule}}
	}
	return fieldErrors{{Field: "interval", Rule: err.Error()}}
}

// badInterval answers 400 naming the fields at fault.
func badInterval(w http.ResponseWriter, r *http.Request, fe fieldErrors) {
	WriteProblem(w, r, http.StatusBadRequest, "invalid billing cycle interval", fe...)
}

func (b *billingAPI) createCycle(w http.ResponseWriter, r *http.Request) {
	var in cycleInput
	if !DecodeJSON(w, r, &in) {
		return
	}
	ik, ok := readIdempotencyKey(w, r, b.st, b.fail, billingScope, &in)
	if !ok {
		return
	}
	if ik != nil {
		defer b.keys.lock(ik.key)()
		if replayIdempotent(w, r, b.st, b.fail, ik) {
			return // the request that held the key has answered
		}
	}
	iv, fe := in.interval()
	if len(fe) > 0 {
		badInterval(w, r, fe)
		return
	}
	c, ok := b.run(w, r, iv)
	if !ok {
		return
	}
	body, err := marshal(toCycleJSON(c))
	if err != nil {
		b.fail(w, r, err)
		return
	}
	if rec := ik.record(http.StatusCreated, body); rec != nil {
		err := b.st.PutIdempotency(context.WithoutCancel(r.Context()), *rec)
		switch {
		case errors.Is(err, store.ErrKeyUsed) && replayIdempotent(w, r, b.st, b.fail, ik):
			return // a concurrent request with the key finished first: its answer
		case err != nil:
			// The cycle is done; a retry with the key runs another one,
			// which finds nothing left to do.
			b.log.Warn("billing cycle: idempotency key not stored", "cycle", c.ID, "err", err)
		}
	}
	created(w, "/api/v1/billing-cycles/"+url.PathEscape(c.ID), body)
}

// executeCycle serves the seed's GET /executeBillingCycle/{interval}.
func (b *billingAPI) executeCycle(w http.ResponseWriter, r *http.Request) {
	iv, err := billing.ParseInterval(r.PathValue("interval"))
	if err != nil {
		badInterval(w, r, intervalProblem(err))
		return
	}
	if c, ok := b.run(w, r, iv); ok {
		w.Header().Set("Content-Location", "/api/v1/billing-cycles/"+url.PathEscape(c.ID))
		WriteJSON(w, http.StatusOK, toCycleJSON(c))
	}
}

// run runs a cycle over iv. When it fails, run answers and returns false.
func (b *billingAPI) run(w http.ResponseWriter, r *http.Request, iv billing.Interval) (store.BillingCycle, bool) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(cycleWriteTimeout)) // not every writer supports it
	c, err := b.cycles.Run(r.Context(), iv)
	switch {
	case err == nil:
		return c, true
	case c.ID != "":
		b.log.Error("billing cycle failed", "cycle", c.ID, "err", err)
		w.Header().Set("Location", "/api/v1/billing-cycles/"+url.PathEscape(c.ID))
		WriteProblem(w, r, http.StatusInternalServerError, "billing cycle "+c.ID+" failed: its work so far is kept, and running a cycle again does the rest; GET /api/v1/billing-cycles/"+c.ID+" shows the error")
	default:
		b.fail(w, r, err)
	}
	return c, false
}

func (b *billingAPI) getCycle(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "billing cycle")
	if !ok {
		return
	}
	c, err := b.st.GetCycle(r.Context(), id)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toCycleJSON(c))
}

func (b *billingAPI) getInvoice(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "invoice")
	if !ok {
		return
	}
	inv, err := b.st.GetInvoice(r.Context(), id)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toInvoiceJSON(inv))
}

func (b *billingAPI) listInvoices(w http.ResponseWriter, r *http.Request) {
	lq, ok := parseList(w, r, "client_id", "billing_cycle_id")
	if !ok {
		return
	}
	p, err := b.st.ListInvoices(r.Context(), store.InvoiceFilter{ClientID: lq.values.Get("client_id"), CycleID: lq.values.Get("billing_cycle_id"),
		CreatedFrom: lq.from, CreatedTo: lq.to, After: lq.cursor, Limit: lq.limit})
	if err != nil {
		b.fail(w, r, err)
		return
	}
	out := page[invoiceJSON]{Items: make([]invoiceJSON, len(p.Items)), NextCursor: p.Next}
	for i, inv := range p.Items {
		out.Items[i] = toInvoiceJSON(inv)
	}
	WriteJSON(w, http.StatusOK, out)
}

// fail answers a store error with its problem.
func (b *billingAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteProblem(w, r, http.StatusNotFound, strings.TrimPrefix(err.Error(), "store: not found: ")+" not found")
	case errors.Is(err, store.ErrBadCursor):
		WriteProblem(w, r, http.StatusBadRequest, "invalid query parameter", FieldError{Field: "cursor", Rule: "must be a next_cursor returned by this API"})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	case databaseUnavailable(r, b.st, err):
		b.log.Warn("api: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, r)
	default:
		b.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteProblem(w, r, http.StatusInternalServerError, "internal error")
	}
}
