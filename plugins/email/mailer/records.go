package mailer

import (
	"fmt"
	"strings"
	"time"

	"github.com/billing-engine/billing/engine/iso4217"
	"github.com/billing-engine/billing/engine/store"
)

// request is what one record asks for: an email of a kind about refID to
// the client clientID, with the template data made from the record (its
// Client is filled in once the client is known).
type request struct {
	index    int
	refID    string
	clientID string
	billed   *BilledEmail
	invoice  *InvoiceEmail
}

// setClient fills in the recipient of the template data.
func (r *request) setClient(c Recipient) {
	if r.billed != nil {
		r.billed.Client = c
	} else {
		r.invoice.Client = c
	}
}

// data returns the template data.
func (r *request) data() any {
	if r.billed != nil {
		return *r.billed
	}
	return *r.invoice
}

// billedRequest reads a decoded billing.Transaction. It returns nil and
// no error for a transaction that is not BILLED: it gets no email.
func billedRequest(data map[string]any) (*request, error) {
	t, err := store.TransactionFromRecord(data)
	if err != nil {
		return nil, err
	}
	if t.Status != store.StatusBilled {
		return nil, nil
	}
	b := &BilledEmail{
		TransactionID: t.ID, Description: t.Description,
		Amount: iso4217.Format(t.AmountMinor, t.Currency), AmountMinor: t.AmountMinor, Currency: t.Currency,
		CreatedAt: t.CreatedAt.UTC(), BilledAt: t.BilledAt.UTC(), BillingCycleID: t.BillingCycleID,
	}
	return &request{refID: t.ID, clientID: t.ClientID, billed: b}, nil
}

// fields reads typed fields of a decoded record, collecting every
// problem.
type fields struct {
	rec  map[string]any
	errs []string
}

func (f *fields) str(name string) string {
	switch v := f.rec[name].(type) {
	case string:
		return v
	case nil:
		f.errs = append(f.errs, name+": missing")
	default:
		f.errs = append(f.errs, fmt.Sprintf("%s: want a string, got %T", name, v))
	}
	return ""
}

func (f *fields) long(name string) int64 {
	switch v := f.rec[name].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case nil:
		f.errs = append(f.errs, name+": missing")
	default:
		f.errs = append(f.errs, fmt.Sprintf("%s: want a long, got %T", name, v))
	}
	return 0
}

func (f *fields) time(name string) time.Time {
	switch v := f.rec[name].(type) {
	case time.Time:
		return v.UTC()
	case nil:
		f.errs = append(f.errs, name+": missing")
	default:
		f.errs = append(f.errs, fmt.Sprintf("%s: want a timestamp, got %T", name, v))
	}
	return time.Time{}
}

func (f *fields) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", store.ErrInvalid, strings.Join(f.errs, "; "))
}

// invoiceRequest reads a decoded billing.Invoice.
func invoiceRequest(data map[string]any) (*request, error) {
	f := fields{rec: data}
	inv := &InvoiceEmail{
		InvoiceID: f.str("invoice_id"), Number: f.str("invoice_number"),
		BillingCycleID: f.str("billing_cycle_id"), Currency: f.str("currency"),
		PeriodStart: f.time("period_start"), PeriodEnd: f.time("period_end"),
		SubtotalMinor: f.long("subtotal_minor"), TotalMinor: f.long("total_minor"),
		CreatedAt: f.time("created_at"),
	}
	clientID := f.str("client_id")
	if _, ok := data["credits_minor"]; ok {
		inv.CreditsMinor = f.long("credits_minor")
	}
	lines, ok := data["lines"].([]any)
	if !ok && data["lines"] != nil {
		f.errs = append(f.errs, fmt.Sprintf("lines: want an array, got %T", data["lines"]))
	}
	for i, l := range lines {
		m, ok := l.(map[string]any)
		if !ok {
			f.errs = append(f.errs, fmt.Sprintf("lines[%d]: want a record, got %T", i, l))
			continue
		}
		lf := fields{rec: m}
		line := InvoiceLine{TransactionID: lf.str("transaction_id"), Description: lf.str("description"), AmountMinor: lf.long("amount_minor"), Kind: "CHARGE"}
		if k, ok := m["kind"].(string); ok && k != "" {
			line.Kind = k
		}
		for _, e := range lf.errs {
			f.errs = append(f.errs, fmt.Sprintf("lines[%d].%s", i, e))
		}
		line.Amount = iso4217.Format(line.AmountMinor, inv.Currency)
		inv.Lines = append(inv.Lines, line)
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	inv.Period = period(inv.PeriodStart, inv.PeriodEnd)
	inv.Subtotal = iso4217.Format(inv.SubtotalMinor, inv.Currency)
	inv.Credits = iso4217.Format(-inv.CreditsMinor, inv.Currency)
	inv.Total = iso4217.Format(inv.TotalMinor, inv.Currency)
	return &request{refID: inv.InvoiceID, clientID: clientID, invoice: inv}, nil
}

// period says [start, end) in words: whole UTC days as dates, the last day
// inclusive ("2026-03-01 to 2026-03-31", or one date for one day), and
// anything else as times ("2026-03-01 12:00 to 2026-03-02 12:00 UTC").
func period(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	midnight := func(t time.Time) bool { return t.Equal(t.Truncate(24 * time.Hour)) }
	if midnight(start) && midnight(end) && end.After(start) {
		last := end.AddDate(0, 0, -1)
		if last.Equal(start) {
			return start.Format("2006-01-02")
		}
		return start.Format("2006-01-02") + " to " + last.Format("2006-01-02")
	}
	return start.Format("2006-01-02 15:04") + " to " + end.Format("2006-01-02 15:04") + " UTC"
}
