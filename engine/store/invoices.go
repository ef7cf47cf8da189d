package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// LineKind says whether an invoice line charges or credits the client.
type LineKind string

// The kinds of invoice line.
const (
	// LineCharge is a billed transaction: its amount, as billed.
	LineCharge LineKind = "CHARGE"
	// LineCredit is a credit for a billed transaction that was refunded:
	// the negated amount.
	LineCredit LineKind = "CREDIT"
)

// InvoiceLine is one line of an invoice.
type InvoiceLine struct {
	// No numbers the lines of an invoice from 1, in print order: the
	// charges in (created_at, transaction_id) order, then the credits in
	// the same order.
	No   int
	Kind LineKind
	// TransactionID is the transaction charged, or the refunded
	// transaction credited.
	TransactionID string
	// Description is the transaction's description (its id when it has
	// none), or the credit's.
	Description string
	// AmountMinor is in minor units of the invoice currency: as billed for
	// a charge, negative for a credit.
	AmountMinor int64
	// CreatedAt is when the transaction (charge) or the credit was
	// created.
	CreatedAt time.Time
}

// Invoice is what one client owes in one currency at the end of a billing
// cycle. Money is int64 minor units of Currency.
type Invoice struct {
	// ID is "inv_" and 16 hex digits.
	ID string
	// Seq numbers invoices in the order they were written; Number, the
	// number printed on the invoice, is "INV-" and Seq in at least 8
	// digits.
	Seq    int64
	Number string
	// ClientID, CycleID (the billing cycle that wrote it) and Currency.
	ClientID, CycleID, Currency string
	// PeriodStart and PeriodEnd are the billing cycle's period. The lines
	// are every billed charge and pending credit created before PeriodEnd
	// that no earlier invoice had, so some may be older than PeriodStart.
	PeriodStart, PeriodEnd time.Time
	// SubtotalMinor is the sum of the charges; CreditsMinor the sum of the
	// credits as a positive amount; TotalMinor = SubtotalMinor -
	// CreditsMinor, the amount due. A negative total is a credit balance
	// the client is owed; it is not carried to the next invoice.
	SubtotalMinor, CreditsMinor, TotalMinor int64
	// CreatedAt is when the invoice was written.
	CreatedAt time.Time
	// Lines are the invoice's lines, in order (No = 1, 2, ...).
	Lines []InvoiceLine
}

// InvoiceFilter selects invoices for ListInvoices. Zero fields select all.
type InvoiceFilter struct {
	ClientID string
	// CycleID selects the invoices of one billing cycle.
	CycleID string
	// CreatedFrom (inclusive) and CreatedTo (exclusive) bound created_at.
	CreatedFrom, CreatedTo time.Time
	// After is the cursor of the page to read ("" for the first page).
	After string
	// Limit is the page size; it must be positive.
	Limit int
}

// InvoiceNumber returns the number printed on the invoice with sequence
// number seq: "INV-" and seq zero-padded to 8 digits.
func InvoiceNumber(seq int64) string { return fmt.Sprintf("INV-%08d", seq) }

// addMinor returns a + b, or ErrOverflow.
func addMinor(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return a + b, nil
}

// totals sets the invoice's subtotal, credits and total from its lines.
// Errors: ErrOverflow when a sum does not fit in int64.
func (inv *Invoice) totals() error {
	var sub, credits int64
	for _, l := range inv.Lines {
		var err error
		switch {
		case l.Kind == LineCharge:
			sub, err = addMinor(sub, l.AmountMinor)
		case l.AmountMinor == math.MinInt64:
			err = fmt.Errorf("%w: credit %s", ErrOverflow, l.TransactionID)
		default:
			credits, err = addMinor(credits, -l.AmountMinor)
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", strings.ToLower(string(l.Kind)), l.No, err)
		}
	}
	if credits == math.MinInt64 {
		return fmt.Errorf("%w: credits", ErrOverflow)
	}
	total, err := addMinor(sub, -credits)
	if err != nil {
		return fmt.Errorf("total: %w", err)
	}
	inv.SubtotalMinor, inv.CreditsMinor, inv.TotalMinor = sub, credits, total
	return nil
}

// Record returns inv as a plain record of the Avro schema billing.Invoice
// (see package avro): what Schema.Encode takes.
func (inv Invoice) Record() map[string]any {
	lines := make([]map[string]any, len(inv.Lines))
	for i, l := range inv.Lines {
		lines[i] = map[string]any{"transaction_id": l.TransactionID, "description": l.Description, "amount_minor": l.AmountMinor, "kind": string(l.Kind)}
	}
	return map[string]any{
		"invoice_id":       inv.ID,
		"invoice_number":   inv.Number,
		"client_id":        inv.ClientID,
		"billing_cycle_id": inv.CycleID,
		"currency":         inv.Currency,
		"period_start":     inv.PeriodStart.UTC(),
		"period_end":       inv.PeriodEnd.UTC(),
		"lines":            lines,
		"credits_minor":    inv.CreditsMinor,
		"subtotal_minor":   inv.SubtotalMinor,
		"total_minor":      inv.TotalMinor,
		"created_at":       inv.CreatedAt.UTC(),
	}
}

// invoiceGroup is a client and currency with something to invoice.
type invoiceGroup struct{ client, currency string }

// invoiceGroupPage bounds the groups WriteInvoices reads at once.
const invoiceGroupPage = 500

// errRaced: rows this writer locked were taken by another before it
// wrote; the invoice is written again from what is left.
var errRaced = errors.New("store: invoice rows taken by another writer")

// WriteInvoices writes the invoices of cycle c: one per client and
// currency that has, at c.PeriodEnd, billed transactions on no invoice
// (billed_at set, invoice_id NULL, created_at < PeriodEnd, whatever their
// status now: a transaction billed and then refunded is charged, and its
// credit appears too) or pending credits (invoice_id NULL, created_at <
// PeriodEnd). See Invoice and InvoiceLine for the lines and totals. An
// invoice with credits only is written too (a credit note).
//
// Each invoice is written in its own database transaction that locks the
// rows it takes, sets their invoice_id and writes an outbox entry of kind
// invoice, so that the relay publishes it. A transaction is charged on
// one invoice at most and a credit appears on one at most, however many
// cycles run at once or again.
//
// It returns the invoices it wrote, in (client_id, currency) order. A
// client and currency that fails (ErrOverflow: a sum that does not fit in
// int64, or a database error) is left for the next cycle, and the others
// are written; the error joins every failure.
func (db *DB) WriteInvoices(ctx context.Context, c BillingCycle) ([]Invoice, error) {
	if err := checkID("billing_cycle_id", c.ID); err != nil {
		return nil, err
	}
	cutoff := millis(c.PeriodEnd)
	if err := checkPeriod(millis(c.PeriodStart), cutoff); err != nil {
		return nil, err
	}
	var out []Invoice
	var errs []error
	var after invoiceGroup
	for {
		groups, err := db.uninvoicedGroups(ctx, cutoff, after, invoiceGroupPage)
		if err != nil {
			return out, errors.Join(append(errs, err)...)
		}
		for _, g := range groups {
			for { // one invoice, or several when the group has more lines than one holds
				inv, ok, full, err := db.writeInvoice(ctx, c, g)
				if err != nil {
					errs = append(errs, err)
					if ctx.Err() != nil {
						return out, errors.Join(errs...)
					}
					break
				}
				if ok {
					out = append(out, inv)
				}
				if !full {
					break
				}
			}
		}
		if len(groups) < invoiceGroupPage {
			return out, errors.Join(errs...)
		}
		after = groups[len(groups)-1]
	}
}

// uninvoicedGroups returns up to limit clients and currencies after after,
// in order, with billed transactions or credits created before cutoff
// that are on no invoice.
func (db *DB) uninvoicedGroups(ctx context.Context, cutoff time.Time, after invoiceGroup, limit int) ([]invoiceGroup, error) {
	const keyset = " AND (client_id > ? OR (client_id = ? AND currency > ?))"
	q := "SELECT client_id, currency FROM transactions WHERE invoice_id IS NULL AND billed_at IS NOT NULL AND created_at < ?" + keyset +
		" UNION SELECT client_id, currency FROM credits WHERE invoice_id IS NULL AND created_at < ?" + keyset +
		" ORDER BY client_id, currency LIMIT ?"
	cut := db.d.t(cutoff)
	rows, err := db.r.QueryContext(ctx, q, cut, after.client, after.client, after.currency,
		cut, after.client, after.client, after.currency, limit)
	if err != nil {
		return nil, fmt.Errorf("store: uninvoiced clients: %w", err)
	}
	defer rows.Close()
	var out []invoiceGroup
	for rows.Next() {
		var g invoiceGroup
		if err := rows.Scan(&g.client, &g.currency); err != nil {
			return nil, fmt.Errorf("store: uninvoiced clients: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: uninvoiced clients: %w", err)
	}
	return out, nil
}

// Bounds of one invoice: a group with more lines gets several invoices, so
// that an invoice record stays well inside Kafka's default 1 MiB message
// size and one database transaction stays small.
const (
	// MaxInvoiceLines bounds the lines of one invoice.
	MaxInvoiceLines = 1000
	// maxInvoiceTextBytes bounds the bytes of the lines' ids and
	// descriptions of one invoice.
	maxInvoiceTextBytes = 512 << 10
)

// writeInvoice writes the invoice of one client and currency, if it has
// anything to invoice, and reports whether it wrote one and whether the
// invoice is full (more lines may wait for another one).
func (db *DB) writeInvoice(ctx context.Context, c BillingCycle, g invoiceGroup) (Invoice, bool, bool, error) {
	for attempt := 1; ; attempt++ {
		inv, ok, full, err := db.writeInvoiceOnce(ctx, c, g)
		if errors.Is(err, errRaced) && attempt < 5 && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return Invoice{}, false, false, fmt.Errorf("store: invoice %s in %s: %w", g.client, g.currency, err)
		}
		return inv, ok, full, nil
	}
}

// fitLines returns the first lines of ls that fit in budget text bytes
// and at most max lines, and the budget left; full reports that some did
// not fit.
func fitLines(ls []InvoiceLine, budget, max int) (fit []InvoiceLine, left int, full bool) {
	for i, l := range ls {
		n := len(l.TransactionID) + len(l.Description)
		if i == max || (n > budget && i > 0) {
			return ls[:i], budget, true
		}
		budget -= n
	}
	return ls, budget, false
}

// Queries of the rows an invoice takes, locked.
const (
	uninvoicedChargesSQL = "SELECT transaction_id, amount_minor, description, created_at FROM transactions" +
		" WHERE client_id = ? AND currency = ? AND invoice_id IS NULL AND billed_at IS NOT NULL AND created_at < ?" +
		" ORDER BY created_at, transaction_id"
	pendingCreditsSQL = "SELECT transaction_id, amount_minor, description, created_at FROM credits" +
		" WHERE client_id = ? AND currency = ? AND invoice_id IS NULL AND created_at < ?" +
		" ORDER BY created_at, transaction_id"
)

func (db *DB) writeInvoiceOnce(ctx context.Context, c BillingCycle, g invoiceGroup) (Invoice, bool, bool, error) {
	var inv Invoice
	wrote, full := false, false
	err := db.write(ctx, func(tx *sql.Tx) error {
		wrote, full = false, false
		cut := db.d.t(millis(c.PeriodEnd))
		// One line more than fits says whether more are waiting.
		charges, err := lockLines(ctx, tx, uninvoicedChargesSQL+" LIMIT ?"+db.d.forUpdate, LineCharge, g.client, g.currency, cut, MaxInvoiceLines+1)
		if err != nil {
			return err
		}
		charges, budget, fullCharges := fitLines(charges, maxInvoiceTextBytes, MaxInvoiceLines)
		var credits []InvoiceLine
		if room := MaxInvoiceLines - len(charges); !fullCharges && room > 0 {
			credits, err = lockLines(ctx, tx, pendingCreditsSQL+" LIMIT ?"+db.d.forUpdate, LineCredit, g.client, g.currency, cut, room+1)
			if err != nil {
				return err
			}
			credits, _, full = fitLines(credits, budget, room)
		}
		full = full || fullCharges || (len(charges) == MaxInvoiceLines)
		if len(charges)+len(credits) == 0 {
			return nil // another cycle took them
		}
		inv = Invoice{
			ID: randomID("inv_"), ClientID: g.client, CycleID: c.ID, Currency: g.currency,
			PeriodStart: millis(c.PeriodStart), PeriodEnd: millis(c.PeriodEnd), CreatedAt: db.clock(),
			Lines: append(charges, credits...),
		}
		for i := range inv.Lines {
			inv.Lines[i].No = i + 1
		}
		if err := inv.totals(); err != nil {
			return err
		}
		if err := db.insertInvoice(ctx, tx, &inv); err != nil {
			return err
		}
		if err := claim(ctx, tx, "transactions", inv.ID, charges); err != nil {
			return err
		}
		if err := claim(ctx, tx, "credits", inv.ID, credits); err != nil {
			return err
		}
		if err := db.putInvoiceOutbox(ctx, tx, inv); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil {
		return Invoice{}, false, false, err
	}
	if wrote {
		db.signalOutbox()
	}
	return inv, wrote, full, nil
}

// lockLines reads the rows of q (id, amount, description, created_at) as
// invoice lines of kind; credits are negated.
func lockLines(ctx context.Context, tx *sql.Tx, q string, kind LineKind, args ...any) ([]InvoiceLine, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	defer rows.Close()
	var out []InvoiceLine
	for rows.Next() {
		l := InvoiceLine{Kind: kind}
		var created dbTime
		if err := rows.Scan(&l.TransactionID, &l.AmountMinor, &l.Description, &created); err != nil {
			return nil, fmt.Errorf("store: invoice lines: %w", err)
		}
		l.CreatedAt = created.t
		switch {
		case kind == LineCredit && l.AmountMinor == math.MinInt64:
			return nil, fmt.Errorf("%w: credit %s", ErrOverflow, l.TransactionID)
		case kind == LineCredit:
			l.AmountMinor = -l.AmountMinor
			if l.Description == "" {
				l.Description = "Refund of " + l.TransactionID
			}
		case l.Description == "":
			l.Description = l.TransactionID
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	return out, nil
}

// insertInvoice inserts inv and its lines, and sets inv.Seq and
// inv.Number. A line whose transaction is on another invoice already is
// errRaced.
func (db *DB) insertInvoice(ctx context.Context, tx *sql.Tx, inv *Invoice) error {
	res, err := tx.ExecContext(ctx, "INSERT INTO invoices (invoice_id, client_id, billing_cycle_id, currency, period_start, period_end,"+
		" subtotal_minor, credits_minor, total_minor, created_at) VALUES "+placeholders(10),
		inv.ID, inv.ClientID, inv.CycleID, inv.Currency, db.d.t(inv.PeriodStart), db.d.t(inv.PeriodEnd),
		inv.SubtotalMinor, inv.CreditsMinor, inv.TotalMinor, db.d.t(inv.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: insert invoice: %w", err)
	}
	if inv.Seq, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("store: insert invoice: sequence: %w", err)
	}
	inv.Number = InvoiceNumber(inv.Seq)
	for start := 0; start < len(inv.Lines); start += billChunk {
		chunk := inv.Lines[start:min(start+billChunk, len(inv.Lines))]
		var q strings.Builder
		q.WriteString("INSERT INTO invoice_lines (invoice_id, line_no, transaction_id, kind, description, amount_minor, created_at) VALUES ")
		args := make([]any, 0, len(chunk)*7)
		for i, l := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(placeholders(7))
			args = append(args, inv.ID, l.No, l.TransactionID, string(l.Kind),
				truncateRunes(l.Description, MaxDescriptionLen), l.AmountMinor, db.d.t(l.CreatedAt))
		}
		_, err := tx.ExecContext(ctx, q.String(), args...)
		if db.d.isDuplicate(err) {
			return errRaced
		}
		if err != nil {
			return fmt.Errorf("store: insert invoice lines: %w", err)
		}
	}
	return nil
}

// claim sets invoice_id on the rows of table (transactions or credits)
// that lines name. A row that has an invoice already is errRaced.
func claim(ctx context.Context, tx *sql.Tx, table, invoiceID string, lines []InvoiceLine) error {
	for start := 0; start < len(lines); start += billChunk {
		chunk := lines[start:min(start+billChunk, len(lines))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, invoiceID)
		for _, l := range chunk {
			args = append(args, l.TransactionID)
		}
		res, err := tx.ExecContext(ctx, "UPDATE "+table+" SET invoice_id = ? WHERE invoice_id IS NULL AND transaction_id IN "+placeholders(len(chunk)), args...)
		if err != nil {
			return fmt.Errorf("store: invoice %s: %w", table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: invoice %s: %w", table, err)
		}
		if n != int64(len(chunk)) {
			return errRaced
		}
	}
	return nil
}

const invoiceCols = "invoice_seq, invoice_id, client_id, billing_cycle_id, currency, period_start, period_end, subtotal_minor, credits_minor, total_minor, created_at"

func scanInvoice(row interface{ Scan(...any) error }) (Invoice, error) {
	var inv Invoice
	var start, end, created dbTime
	err := row.Scan(&inv.Seq, &inv.ID, &inv.ClientID, &inv.CycleID, &inv.Currency, &start, &end,
		&inv.SubtotalMinor, &inv.CreditsMinor, &inv.TotalMinor, &created)
	inv.PeriodStart, inv.PeriodEnd, inv.CreatedAt = start.t, end.t, created.t
	inv.Number = InvoiceNumber(inv.Seq)
	return inv, err
}

// GetInvoice returns the invoice with the given id and its lines, or
// ErrNotFound.
func (db *DB) GetInvoice(ctx context.Context, id string) (Invoice, error) {
	inv, err := scanInvoice(db.r.QueryRowContext(ctx, "SELECT "+invoiceCols+" FROM invoices WHERE invoice_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, fmt.Errorf("%w: invoice %s", ErrNotFound, id)
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("store: get invoice: %w", err)
	}
	invs := []Invoice{inv}
	if err := db.loadLines(ctx, invs); err != nil {
		return Invoice{}, err
	}
	return invs[0], nil
}

// ListInvoices returns one page of the invoices f selects, with their
// lines, in (created_at, invoice_id) order. Errors: ErrBadCursor.
func (db *DB) ListInvoices(ctx context.Context, f InvoiceFilter) (Page[Invoice], error) {
	var p Page[Invoice]
	var w where
	if f.ClientID != "" {
		w.add("client_id = ?", f.ClientID)
	}
	if f.CycleID != "" {
		w.add("billing_cycle_id = ?", f.CycleID)
	}
	if err := db.page(&w, "invoice_id", f.CreatedFrom, f.CreatedTo, f.After); err != nil {
		return p, err
	}
	limit := max(f.Limit, 1)
	rows, err := db.r.QueryContext(ctx, "SELECT "+invoiceCols+" FROM invoices WHERE "+w.sql()+
		" ORDER BY created_at, invoice_id LIMIT ?", append(w.args, limit+1)...)
	if err != nil {
		return p, fmt.Errorf("store: list invoices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			return p, fmt.Errorf("store: list invoices: %w", err)
		}
		p.Items = append(p.Items, inv)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("store: list invoices: %w", err)
	}
	if len(p.Items) > limit {
		p.Items = p.Items[:limit]
		last := p.Items[limit-1]
		p.Next = cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode()
	}
	return p, db.loadLines(ctx, p.Items)
}

// loadLines reads the lines of invs.
func (db *DB) loadLines(ctx context.Context, invs []Invoice) error {
	at := make(map[string]int, len(invs))
	for start := 0; start < len(invs); start += billChunk {
		chunk := invs[start:min(start+billChunk, len(invs))]
		args := make([]any, len(chunk))
		for i, inv := range chunk {
			args[i] = inv.ID
			at[inv.ID] = start + i
		}
		rows, err := db.r.QueryContext(ctx, "SELECT invoice_id, line_no, transaction_id, kind, description, amount_minor, created_at"+
			" FROM invoice_lines WHERE invoice_id IN "+placeholders(len(chunk))+" ORDER BY invoice_id, line_no", args...)
		if err != nil {
			return fmt.Errorf("store: invoice lines: %w", err)
		}
		for rows.Next() {
			var id string
			var l InvoiceLine
			var created dbTime
			if err := rows.Scan(&id, &l.No, &l.TransactionID, &l.Kind, &l.Description, &l.AmountMinor, &created); err != nil {
				rows.Close()
				return fmt.Errorf("store: invoice lines: %w", err)
			}
			l.CreatedAt = created.t
			inv := &invs[at[id]]
			inv.Lines = append(inv.Lines, l)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("store: invoice lines: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: invoice lines: %w", err)
		}
	}
	return nil
}

// invoicePayload is the JSON form of an invoice in the outbox.
type invoicePayload struct {
	ID            string        `json:"invoice_id"`
	Seq           int64         `json:"invoice_seq"`
	ClientID      string        `json:"client_id"`
	CycleID       string        `json:"billing_cycle_id"`
	Currency      string        `json:"currency"`
	PeriodStart   time.Time     `json:"period_start"`
	PeriodEnd     time.Time     `json:"period_end"`
	SubtotalMinor int64         `json:"subtotal_minor"`
	CreditsMinor  int64         `json:"credits_minor"`
	TotalMinor    int64         `json:"total_minor"`
	CreatedAt     time.Time     `json:"created_at"`
	Lines         []linePayload `json:"lines"`
}

// linePayload is the JSON form of an invoice line in the outbox.
type linePayload struct {
	No            int       `json:"line_no"`
	Kind          LineKind  `json:"kind"`
	TransactionID string    `json:"transaction_id"`
	Description   string    `json:"description"`
	AmountMinor   int64     `json:"amount_minor"`
	CreatedAt     time.Time `json:"created_at"`
}

func toInvoicePayload(inv Invoice) invoicePayload {
	p := invoicePayload{ID: inv.ID, Seq: inv.Seq, ClientID: inv.ClientID, CycleID: inv.CycleID, Currency: inv.Currency,
		PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd, SubtotalMinor: inv.SubtotalMinor,
		CreditsMinor: inv.CreditsMinor, TotalMinor: inv.TotalMinor, CreatedAt: inv.CreatedAt,
		Lines: make([]linePayload, len(inv.Lines))}
	for i, l := range inv.Lines {
		p.Lines[i] = linePayload(l)
	}
	return p
}

func (p invoicePayload) invoice() Invoice {
	inv := Invoice{ID: p.ID, Seq: p.Seq, Number: InvoiceNumber(p.Seq), ClientID: p.ClientID, CycleID: p.CycleID,
		Currency: p.Currency, PeriodStart: p.PeriodStart, PeriodEnd: p.PeriodEnd, SubtotalMinor: p.SubtotalMinor,
		CreditsMinor: p.CreditsMinor, TotalMinor: p.TotalMinor, CreatedAt: p.CreatedAt,
		Lines: make([]InvoiceLine, len(p.Lines))}
	for i, l := range p.Lines {
		inv.Lines[i] = InvoiceLine(l)
	}
	return inv
}

// putInvoiceOutbox writes an outbox entry of kind invoice for inv.
func (db *DB) putInvoiceOutbox(ctx context.Context, tx *sql.Tx, inv Invoice) error {
	payload, err := json.Marshal(toInvoicePayload(inv))
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO outbox (aggregate_id, payload, created_at, kind) VALUES (?, ?, ?, ?)",
		inv.ID, payload, db.d.t(db.clock()), string(OutboxInvoice))
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}
