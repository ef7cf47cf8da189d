package mailer

import (
	"bytes"
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got\n%s\nwant\n%s\n(run go test -update to accept)", path, got, want)
	}
}

func testMailer(t *testing.T, kind string) *Mailer {
	t.Helper()
	set, err := loadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	from, domain, err := parseFrom("Billing Dept. <billing@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return &Mailer{kind: kind, tmpl: set, from: from, domain: domain,
		now: func() time.Time { return time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC) }}
}

// TestRenderGolden renders one email of each kind with the embedded
// templates and a fixed clock: the exact bytes, headers and
// quoted-printable parts, are in testdata/*.eml.
func TestRenderGolden(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	client := &store.Client{ID: "c-2", Name: "Bjørn Ødegård", Email: "bjorn@example.org"}
	for _, tc := range []struct {
		file string
		kind string
		rec  map[string]any
		read func(map[string]any) (*request, error)
	}{
		{"billed.eml", KindBilled, map[string]any{
			"transaction_id": "t-42", "client_id": "c-2", "amount_minor": int64(123456), "currency": "EUR",
			"status": "BILLED", "description": "Jahresabo – Kaffee ☕ (12 × Lieferung)", "created_at": at, "updated_at": at,
			"billed_at": at.Add(time.Hour), "billing_cycle_id": "cycle-3",
		}, billedRequest},
		{"invoice.eml", KindInvoice, map[string]any{
			"invoice_id": "inv-9", "invoice_number": "INV-000009", "client_id": "c-2", "billing_cycle_id": "cycle-3",
			"currency": "KWD", "period_start": time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC), "period_end": time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC),
			"lines": []any{
				map[string]any{"transaction_id": "t-1", "description": "Dates, 1 kg", "amount_minor": int64(4500)},
				map[string]any{"transaction_id": "t-2", "description": "Cardamom", "amount_minor": int64(1250)},
			},
			"credits_minor": int64(1000), "subtotal_minor": int64(5750), "total_minor": int64(4750), "created_at": at,
		}, invoiceRequest},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := tc.read(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := testMailer(t, tc.kind).render(r, client)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.SplitAfter(string(msg.data), "\r\n") {
				if len(line) > 78+2 {
					t.Errorf("line %d is %d characters long: %q", i+1, len(line)-2, line)
				}
				if strings.ContainsAny(strings.TrimSuffix(line, "\r\n"), "\r\n") {
					t.Errorf("line %d has a bare CR or LF: %q", i+1, line)
				}
			}
			golden(t, tc.file, msg.data)
		})
	}
}

func TestMessageID(t *testing.T) {
	for _, tc := range []struct{ kind, ref, want string }{
		{"billed", "t-42", "<billed.t-42@example.com>"},
		{"billed", "0b7c3a4e-1f2d-4c5b-9a8e-7d6c5b4a3f2e", "<billed.0b7c3a4e-1f2d-4c5b-9a8e-7d6c5b4a3f2e@example.com>"},
		{"invoice", "a.b", "<invoice.a=2Eb@example.com>"},
		{"billed", "a=b", "<billed.a=3Db@example.com>"},
		{"billed", "<x>@y\"", "<billed.=3Cx=3E=40y=22@example.com>"},
	} {
		got := messageID(tc.kind, tc.ref, "example.com")
		if got != tc.want {
			t.Errorf("messageID(%q, %q): got %s, want %s", tc.kind, tc.ref, got, tc.want)
		}
		if _, err := mail.ParseAddress("x " + got); err != nil {
			t.Errorf("messageID(%q, %q) = %s does not parse as an angle address: %v", tc.kind, tc.ref, got, err)
		}
	}
}

func TestOutboxName(t *testing.T) {
	for _, tc := range []struct{ kind, ref, want string }{
		{"billed", "t-42", "billed-t-42.eml"},
		{"invoice", "INV_9.1", "invoice-INV_9.1.eml"},
		{"billed", "../etc/passwd", "billed-.._etc_passwd-"},
		{"billed", "a/b", "billed-a_b-"},
		{"billed", "a:b", "billed-a_b-"},
	} {
		got := outboxName(tc.kind, tc.ref)
		if !strings.HasPrefix(got, tc.want) || strings.ContainsAny(got, "/\\:") {
			t.Errorf("outboxName(%q, %q): got %s, want %s...", tc.kind, tc.ref, got, tc.want)
		}
	}
	if a, b := outboxName("billed", "a/b"), outboxName("billed", "a:b"); a == b {
		t.Errorf("a/b and a:b share the file %s", a)
	}
}

func TestHeaderText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nBcc: x@y", "a Bcc: x@y"},
		{"  tabs\tand\vspaces  ", "tabs and spaces"},
		{"nul\x00byte\x7fdel", "nul byte del"},
		{"line\u2028sep", "line sep"},
		{strings.Repeat("é", 300), strings.Repeat("é", 199) + "…"},
	} {
		if got := headerText(tc.in, maxSubjectRunes); got != tc.want {
			t.Errorf("headerText(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPeriod(t *testing.T) {
	d := func(m time.Month, day, h int) time.Time { return time.Date(2026, m, day, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		start, end time.Time
		want       string
	}{
		{d(3, 1, 0), d(4, 1, 0), "2026-03-01 to 2026-03-31"},
		{d(3, 1, 0), d(3, 2, 0), "2026-03-01"},
		{d(3, 1, 12), d(3, 2, 12), "2026-03-01 12:00 to 2026-03-02 12:00 UTC"},
	} {
		if got := period(tc.start, tc.end); got != tc.want {
			t.Errorf("period(%v, %v): got %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
}
