// Package billing runs billing cycles: it bills what the stream has not
// and writes the invoices.
//
// # Intervals
//
// A cycle covers a period of transaction creation times, [start, end),
// named by an interval (ParseInterval, Between):
//
//	24h, 90m, ...   a Go duration d: [now-d, now)
//	daily           the previous UTC calendar day
//	weekly          the previous ISO week, Monday 00:00 UTC to Monday 00:00 UTC
//	monthly         the previous calendar month, UTC
//	FROM/TO         explicit RFC 3339 bounds, FROM < TO
//
// No period is longer than 366 days (MaxPeriod); times are kept to the
// millisecond.
//
// # Running a cycle
//
// Cycles.Run stores the cycle (RUNNING), then pages through every APPROVED
// transaction created in the period, 500 at a time in (created_at,
// transaction_id) order, and bills them through the store's billing path
// (store.DB.Bill with Ref "cycle:<id>", publishing each BILLED version
// through the outbox to the transactions topic, where the status table,
// transactions.billed and the email plugin see it). Then it writes the
// invoices (store.DB.WriteInvoices: one per client and currency with
// every billed charge and pending credit created before the period's end
// that is on no invoice yet) and marks the cycle COMPLETED with its
// counts, or FAILED with the error. Work done stays done: billing and
// invoicing are idempotent, so running a cycle again, or two overlapping
// cycles at once, bills each transaction once and invoices it once.
package billing
