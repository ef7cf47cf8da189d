package mailer_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/sdktest"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

var schemas = filepath.Join("..", "..", "..", "schemas")

// invoice is a billing.Invoice plain record for client c-2, for March
// 2026 in EUR.
func invoice(id string) map[string]any {
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return map[string]any{
		"invoice_id": id, "invoice_number": "INV-000042", "client_id": "c-2", "billing_cycle_id": "cycle-7",
		"currency": "EUR", "period_start": march, "period_end": march.AddDate(0, 1, 0),
		"lines": []any{
			map[string]any{"transaction_id": "t-1", "description": "Coffee beans", "amount_minor": int64(1250)},
			map[string]any{"transaction_id": "t-2", "description": "Grinder <deluxe>", "amount_minor": int64(8999)},
			map[string]any{"transaction_id": "t-3", "description": "Returned mug", "amount_minor": int64(-500)},
		},
		"credits_minor": int64(250), "subtotal_minor": int64(9749), "total_minor": int64(9499),
		"created_at": time.Date(2026, 4, 1, 0, 5, 0, 0, time.UTC),
	}
}

// TestInvoiceThroughPlugin runs the mailer through the real plugin path
// (gRPC, records Avro-encoded and decoded with the shared schemas) and
// checks an invoice's lines and totals.
func TestInvoiceThroughPlugin(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		h := sdktest.Start(t, mailer.New, sdk.Config{
			Name: "email", Settings: e.smtpSettings(srv), SchemasDir: schemas, Schema: "billing.Invoice",
		})
		info, err := h.Info(t.Context())
		if err != nil || info.Name != "email" || len(info.Outputs) != 0 {
			t.Errorf("info: got %+v, %v; want email with no outputs", info, err)
		}
		batch := sdktest.Records(t, schemas, "billing.Invoice", invoice("inv-1"))
		res, err := h.Process(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].DLQ != "" || len(res[0].Emits) != 0 {
			t.Fatalf("got results %+v, want one with no emits and no DLQ", res)
		}
		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want 1", len(msgs))
		}
		m := msgs[0]
		if m.MessageID != "<invoice.inv-1@example.com>" || len(m.To) != 1 || m.To[0] != "bjorn@example.org" {
			t.Errorf("got %s to %v, want <invoice.inv-1@example.com> to bjorn@example.org", m.MessageID, m.To)
		}
		p := parse(t, m.Data)
		if want := "Invoice INV-000042 for 2026-03-01 to 2026-03-31"; p.subject != want {
			t.Errorf("subject: got %q, want %q", p.subject, want)
		}
		// Each line, and the totals, in the text part in order.
		lines := []string{
			"t-1                               12.50 EUR  Coffee beans",
			"t-2                               89.99 EUR  Grinder <deluxe>",
			"t-3                               -5.00 EUR  Returned mug",
			"Subtotal                          97.49 EUR",
			"Credits                           -2.50 EUR",
			"Total                             94.99 EUR",
		}
		at := 0
		for _, l := range lines {
			i := strings.Index(p.text[at:], l)
			if i < 0 {
				t.Errorf("text: missing %q after offset %d in:\n%s", l, at, p.text)
				continue
			}
			at += i + len(l)
		}
		contains(t, "text", p.text, "Hello Bjørn Ødegård", "inv-1", "cycle-7", "2026-04-01 00:05 UTC")
		contains(t, "html", p.html, "INV-000042", "12.50 EUR", "89.99 EUR", "-5.00 EUR", "97.49 EUR", "-2.50 EUR", "94.99 EUR",
			"Grinder &lt;deluxe&gt;")

		// Again: nothing new.
		if _, err := h.Process(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		if n := srv.Count(); n != 1 {
			t.Errorf("after the replay: got %d messages, want 1", n)
		}
	})
}

// TestBilledThroughPluginServerDown: over gRPC too, a batch fails as
// unavailable while the server is down and goes through once it is back.
func TestBilledThroughPluginServerDown(t *testing.T) {
	e := newEnv(t, "sqlite")
	srv := startSMTP(t)
	h := sdktest.Start(t, mailer.New, sdk.Config{
		Name: "email", Settings: e.smtpSettings(srv), SchemasDir: schemas, Schema: "billing.Transaction",
	})
	batch := sdktest.Records(t, schemas, "billing.Transaction", batchOf(3)...)
	srv.Stop()
	if _, err := h.Process(t.Context(), batch); !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("server down: got %v, want a connection error wrapping sdk.ErrUnavailable", err)
	}
	srv.Start()
	res, err := h.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	srv.WaitFor(t, 3, 5*time.Second)
	if n := len(byID(t, srv.Messages())); n != 3 {
		t.Errorf("got %d distinct messages, want 3", n)
	}
}
