package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/billing-engine/billing/engine/store"
)

// Store is what a billing cycle needs from the database; *store.DB
// implements it. See package store for the contract of each method.
type Store interface {
	CreateCycle(ctx context.Context, c store.BillingCycle) (store.BillingCycle, error)
	ApprovedBetween(ctx context.Context, from, to time.Time, after store.TxKey, limit int) ([]store.Transaction, error)
	Bill(ctx context.Context, reqs []store.BillRequest, opt store.BillOptions) ([]store.BillResult, error)
	WriteInvoices(ctx context.Context, c store.BillingCycle) ([]store.Invoice, error)
	FinishCycle(ctx context.Context, id string, r store.CycleResult) (store.BillingCycle, error)
}

// DefaultPageSize is how many transactions a cycle reads and bills at
// once.
const DefaultPageSize = 500

// Option configures NewCycles.
type Option func(*Cycles)

// Logger sets where cycles are logged. Default: discard.
func Logger(l *slog.Logger) Option { return func(c *Cycles) { c.log = l } }

// Clock sets the clock that places relative intervals ("24h", "daily").
// Default time.Now.
func Clock(now func() time.Time) Option { return func(c *Cycles) { c.now = now } }

// PageSize sets how many transactions are read and billed at once, each
// page in one database transaction. Default DefaultPageSize.
func PageSize(n int) Option { return func(c *Cycles) { c.pageSize = n } }

// Cycles runs billing cycles on a store. It is safe for concurrent use;
// cycles that run at once, even over overlapping periods, bill each
// transaction once and invoice it once.
type Cycles struct {
	st       Store
	log      *slog.Logger
	now      func() time.Time
	pageSize int
	running  atomic.Int64 // cycles in Run
}

// NewCycles returns a runner of billing cycles on st.
func NewCycles(st Store, opts ...Option) *Cycles {
	c := &Cycles{st: st, log: slog.New(slog.DiscardHandler), now: time.Now, pageSize: DefaultPageSize}
	for _, o := range opts {
		o(c)
	}
	c.pageSize = max(c.pageSize, 1)
	c.log = c.log.With("component", "billing-cycles")
	return c
}

// Run runs one billing cycle over the period iv names now, and returns
// when it is done (see the package documentation for what a cycle does).
// It runs detached from ctx's cancellation (its values are kept): a
// caller that goes away does not stop a cycle half way.
//
// It returns the finished cycle: COMPLETED with its counts, or FAILED with
// the error, which Run also returns (the work done before the failure
// stays done; a later cycle does the rest). When the cycle could not even
// be stored, it returns the zero BillingCycle and the error. Errors wrap
// ErrInvalid for the zero Interval, store.ErrOverflow for an invoice
// whose sums do not fit in int64, and the store's errors.
func (c *Cycles) Run(ctx context.Context, iv Interval) (store.BillingCycle, error) {
	c.running.Add(1)
	defer c.running.Add(-1)
	ctx = context.WithoutCancel(ctx)
	start, end := iv.Period(c.now())
	if start.IsZero() {
		return store.BillingCycle{}, &IntervalError{Field: "interval", Rule: intervalRule}
	}
	cycle, err := c.st.CreateCycle(ctx, store.BillingCycle{Interval: iv.String(), PeriodStart: start, PeriodEnd: end})
	if err != nil {
		return store.BillingCycle{}, fmt.Errorf("billing: start cycle: %w", err)
	}
	log := c.log.With("cycle", cycle.ID)
	log.Info("billing cycle started", "interval", cycle.Interval,
		"period_start", cycle.PeriodStart.Format(time.RFC3339Nano), "period_end", cycle.PeriodEnd.Format(time.RFC3339Nano))
	began := time.Now()
	var res store.CycleResult
	res.Billed, res.Err = c.bill(ctx, cycle)
	if res.Err == nil {
		var invs []store.Invoice
		invs, res.Err = c.st.WriteInvoices(ctx, cycle)
		res.Invoices = int64(len(invs))
	}
	if res.Err != nil {
		res.Err = fmt.Errorf("billing: cycle %s: %w", cycle.ID, res.Err)
	}
	done, err := c.st.FinishCycle(ctx, cycle.ID, res)
	if err != nil {
		cycle.Billed, cycle.Invoices = res.Billed, res.Invoices
		return cycle, errors.Join(res.Err, fmt.Errorf("billing: finish cycle %s: %w", cycle.ID, err))
	}
	if res.Err != nil {
		log.Error("billing cycle failed", "billed", done.Billed, "invoices", done.Invoices, "err", res.Err)
		return done, res.Err
	}
	log.Info("billing cycle completed", "billed", done.Billed, "invoices", done.Invoices, "took", time.Since(began).Round(time.Millisecond))
	return done, nil
}

// Wait waits until no cycle is running, or ctx ends; then it returns
// ctx's error. A process that stops calls it after it stopped taking
// requests and before it closes the store, so that cycles finish: a
// cycle cut short stays RUNNING (its work so far is kept, and a later
// cycle does the rest).
func (c *Cycles) Wait(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n := c.running.Load()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("billing: %d cycles still running: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// bill bills every APPROVED transaction of the cycle's period, a page at
// a time, and returns how many it billed.
func (c *Cycles) bill(ctx context.Context, cycle store.BillingCycle) (int64, error) {
	var billed int64
	var after store.TxKey
	for {
		page, err := c.st.ApprovedBetween(ctx, cycle.PeriodStart, cycle.PeriodEnd, after, c.pageSize)
		if err != nil {
			return billed, err
		}
		if len(page) == 0 {
			return billed, nil
		}
		reqs := make([]store.BillRequest, len(page))
		for i, t := range page {
			reqs[i] = store.BillRequest{Transaction: t, Ref: "cycle:" + cycle.ID, CycleID: cycle.ID}
		}
		results, err := c.st.Bill(ctx, reqs, store.BillOptions{Publish: true})
		if err != nil {
			return billed, err
		}
		for _, r := range results {
			if r.Outcome == store.Billed {
				billed++
			}
		}
		if len(page) < c.pageSize {
			return billed, nil
		}
		after = page[len(page)-1].Key()
	}
}
