package mailer

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/billing-engine/billing/engine/iso4217"
)

//go:embed templates/*.tmpl
var embedded embed.FS

// The email kinds, as recorded in the emails-sent log and used in
// Message-IDs and outbox file names.
const (
	// KindBilled is the email about one billed transaction, from
	// billing.Transaction records.
	KindBilled = "billed"
	// KindInvoice is the email carrying an invoice, from billing.Invoice
	// records.
	KindInvoice = "invoice"
)

// Recipient is the client an email goes to, as the templates see it.
type Recipient struct {
	// ClientID, Name and Email are the client's, from the store.
	ClientID, Name, Email string
}

// BilledEmail is the data the "billed" templates (billed.subject.tmpl,
// billed.txt.tmpl, billed.html.tmpl) are executed with.
type BilledEmail struct {
	Client        Recipient
	TransactionID string
	Description   string
	// Amount is the amount in major units with its currency, e.g.
	// "12.34 USD" (iso4217.Format); AmountMinor and Currency are the raw
	// values.
	Amount      string
	AmountMinor int64
	Currency    string
	// CreatedAt and BilledAt are in UTC; BilledAt is zero when the record
	// has none.
	CreatedAt, BilledAt time.Time
	// BillingCycleID is empty when the record has none.
	BillingCycleID string
}

// InvoiceEmail is the data the "invoice" templates (invoice.subject.tmpl,
// invoice.txt.tmpl, invoice.html.tmpl) are executed with. Amounts are
// formatted as in BilledEmail.
type InvoiceEmail struct {
	Client         Recipient
	InvoiceID      string
	Number         string
	BillingCycleID string
	Currency       string
	// PeriodStart (inclusive) and PeriodEnd (exclusive) bound the billed
	// period, in UTC; Period says it in words, e.g. "2026-03-01 to
	// 2026-03-31" for whole days.
	PeriodStart, PeriodEnd time.Time
	Period                 string
	Lines                  []InvoiceLine
	// Subtotal is the sum of the lines; Credits the credits applied,
	// shown as a deduction ("-2.50 EUR", or "0.00 EUR"); Total what is
	// due. The *Minor fields are the raw values (CreditsMinor is not
	// negative).
	Subtotal, Credits, Total                string
	SubtotalMinor, CreditsMinor, TotalMinor int64
	// CreatedAt is when the invoice was issued, in UTC.
	CreatedAt time.Time
}

// InvoiceLine is one line of an InvoiceEmail.
type InvoiceLine struct {
	TransactionID string
	Description   string
	// Amount is formatted as BilledEmail.Amount; negative for a credit.
	Amount      string
	AmountMinor int64
	// Kind is CHARGE for a billed transaction, CREDIT for the refund of
	// one.
	Kind string
}

// funcs are the functions templates may call besides the built-in ones:
//
//	money AMOUNT_MINOR CURRENCY   iso4217.Format, e.g. "12.34 USD"
//	date TIME                      "2006-01-02", "" for the zero time
//	datetime TIME                  "2006-01-02 15:04 UTC", "" for the zero time
//	truncate N TEXT                TEXT cut to N characters, with "…" when cut
var funcs = map[string]any{
	"money":    iso4217.Format,
	"date":     func(t time.Time) string { return timeFormat(t, "2006-01-02") },
	"datetime": func(t time.Time) string { return timeFormat(t, "2006-01-02 15:04 UTC") },
	"truncate": truncate,
}

func timeFormat(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

// truncate cuts s to n characters, the last being "…" when s was longer.
func truncate(n int, s string) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// kindTemplates are the three templates of one kind of email.
type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templateSet holds the templates of every kind.
type templateSet map[string]kindTemplates

// loadTemplates parses the embedded templates, each replaced by the file
// of the same name in dir when dir is not "" and has one. A file in dir
// that is not a known template is an error, so that a misspelt name does
// not go unnoticed; so is a template that fails on sample data.
func loadTemplates(dir string) (templateSet, error) {
	known := map[string]bool{}
	set := templateSet{}
	var errs []error
	for _, kind := range []string{KindBilled, KindInvoice} {
		var kt kindTemplates
		for _, part := range []string{"subject", "txt", "html"} {
			name := kind + "." + part + ".tmpl"
			known[name] = true
			src, where, err := readTemplate(dir, name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := kt.parse(part, where, src); err != nil {
				errs = append(errs, fmt.Errorf("%w: templates: %w", ErrConfig, err))
			}
		}
		set[kind] = kt
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: templates: %w", ErrConfig, err))
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmpl") && !known[e.Name()] {
				errs = append(errs, fmt.Errorf("%w: templates: %s: not a known template (want billed.{subject,txt,html}.tmpl or invoice.{subject,txt,html}.tmpl)", ErrConfig, filepath.Join(dir, e.Name())))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, set.check()
}

// parse parses src as the part ("subject", "txt" or "html") of kt.
func (kt *kindTemplates) parse(part, where, src string) error {
	var err error
	switch part {
	case "subject":
		kt.subject, err = texttemplate.New(where).Funcs(funcs).Option("missingkey=error").Parse(src)
	case "txt":
		kt.text, err = texttemplate.New(where).Funcs(funcs).Option("missingkey=error").Parse(src)
	default:
		kt.html, err = htmltemplate.New(where).Funcs(funcs).Option("missingkey=error").Parse(src)
	}
	return err
}

// readTemplate returns the source of the template name, from dir when it
// has the file, and where it came from.
func readTemplate(dir, name string) (string, string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err == nil {
			return string(b), p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", p, fmt.Errorf("%w: templates: %w", ErrConfig, err)
		}
	}
	b, err := embedded.ReadFile("templates/" + name)
	if err != nil {
		return "", name, fmt.Errorf("email: embedded template %s: %w", name, err)
	}
	return string(b), name, nil
}

// check executes every template with sample data, so that a template
// naming a field that does not exist fails the configuration rather than
// every email.
func (ts templateSet) check() error {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	client := Recipient{ClientID: "c-1", Name: "Sample Client", Email: "client@example.com"}
	samples := map[string]any{
		KindBilled: BilledEmail{Client: client, TransactionID: "t-1", Description: "Sample", Amount: "12.34 EUR",
			AmountMinor: 1234, Currency: "EUR", CreatedAt: at, BilledAt: at, BillingCycleID: "cycle-1"},
		KindInvoice: InvoiceEmail{Client: client, InvoiceID: "inv-1", Number: "INV-1", BillingCycleID: "cycle-1",
			Currency: "EUR", PeriodStart: at, PeriodEnd: at.Add(24 * time.Hour), Period: "2026-03-01",
			Lines:    []InvoiceLine{{TransactionID: "t-1", Description: "Sample", Amount: "12.34 EUR", AmountMinor: 1234}},
			Subtotal: "12.34 EUR", Credits: "0.00 EUR", Total: "12.34 EUR", SubtotalMinor: 1234, TotalMinor: 1234, CreatedAt: at},
	}
	var errs []error
	for kind, kt := range ts {
		if _, _, _, err := kt.execute(samples[kind]); err != nil {
			errs = append(errs, fmt.Errorf("%w: templates: %w", ErrConfig, err))
		}
	}
	return errors.Join(errs...)
}

// execute runs the three templates with data.
func (kt kindTemplates) execute(data any) (subject, text, html string, err error) {
	var b bytes.Buffer
	if err := kt.subject.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	subject = b.String()
	b.Reset()
	if err := kt.text.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	text = b.String()
	b.Reset()
	if err := kt.html.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	return subject, text, b.String(), nil
}
