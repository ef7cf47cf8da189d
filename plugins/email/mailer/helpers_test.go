package mailer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is one test's store, seen from the test side, and the settings that
// point the mailer at it.
type env struct {
	dsn     string
	db      *store.DB
	dataDir string
}

// eachStore runs fn as a subtest per store dialect, with a fresh store
// holding the clients c-1 (Ada Lovelace), c-2 (Bjørn Ødegård) and c-3.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, newEnv(t, d))
		})
	}
}

func newEnv(t *testing.T, d store.Dialect) *env {
	t.Helper()
	e := &env{dsn: storetest.DSN(t, d), dataDir: t.TempDir()}
	db, err := store.Open(t.Context(), e.dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.db = db
	for _, c := range []store.Client{
		{ID: "c-1", Name: "Ada Lovelace", Email: "ada@example.com", Status: store.ClientActive},
		{ID: "c-2", Name: "Bjørn Ødegård", Email: "bjorn@example.org", Status: store.ClientActive},
		{ID: "c-3", Name: "Carol", Email: "carol@example.net", Status: store.ClientActive},
	} {
		if err := db.CreateClient(t.Context(), c, nil); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
	return e
}

// settings returns the mailer's settings for this store, with more.
func (e *env) settings(more map[string]any) map[string]any {
	s := map[string]any{"dsn": e.dsn, "data_dir": e.dataDir, "from": "Billing <billing@example.com>"}
	for k, v := range more {
		s[k] = v
	}
	return s
}

// smtpSettings points the mailer at srv, which runs with STARTTLS and
// AUTH as user "mailer", password "secret".
func (e *env) smtpSettings(srv *enginetest.SMTPServer) map[string]any {
	return e.settings(map[string]any{
		"smtp_addr": srv.Addr(), "smtp_user": "mailer", "smtp_password": "secret",
		"smtp_insecure_skip_verify": true, "timeout": "5s",
	})
}

func startSMTP(t *testing.T, opts ...enginetest.SMTPOption) *enginetest.SMTPServer {
	return enginetest.StartSMTP(t, append([]enginetest.SMTPOption{enginetest.WithSTARTTLS(), enginetest.WithAuth("mailer", "secret")}, opts...)...)
}

// newMailer builds the processor in-process and closes it when the test
// ends.
func newMailer(t *testing.T, schema string, settings map[string]any) *mailer.Mailer {
	t.Helper()
	p, err := mailer.New(t.Context(), sdk.Config{Name: "email", Settings: settings, Schema: schema})
	if err != nil {
		t.Fatalf("new mailer: %v", err)
	}
	m := p.(*mailer.Mailer)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close mailer: %v", err)
		}
	})
	return m
}

// tx is a decoded billing.Transaction, BILLED.
func tx(id, client string, amount int64, currency, description string) map[string]any {
	return map[string]any{
		"transaction_id": id, "client_id": client, "amount_minor": amount, "currency": currency,
		"status": "BILLED", "description": description,
		"created_at": t0, "updated_at": t0.Add(time.Hour),
		"billed_at": t0.Add(time.Hour), "billing_cycle_id": "cycle-1",
	}
}

func records(values ...map[string]any) []sdk.Record {
	out := make([]sdk.Record, len(values))
	for i, v := range values {
		out[i] = sdk.Record{Key: fmt.Appendf(nil, "k%d", i), Data: v, Topic: "transactions.billed", Offset: int64(i)}
	}
	return out
}

// batchOf returns n billed transactions t-000.. for clients c-1..c-3.
func batchOf(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range n {
		out[i] = tx(fmt.Sprintf("t-%03d", i), fmt.Sprintf("c-%d", i%3+1), int64(100+i), "EUR", fmt.Sprintf("order %d", i))
	}
	return out
}

func process(t *testing.T, p sdk.Processor, batch []sdk.Record) []sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := p.Process(ctx, batch)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("process: got %d results for %d records", len(res), len(batch))
	}
	for i, r := range res {
		if len(r.Emits) != 0 {
			t.Errorf("record %d: got %d emits, want none", i, len(r.Emits))
		}
	}
	return res
}

// parsed is a received message, decoded.
type parsed struct {
	header     mail.Header
	subject    string // decoded
	text, html string
}

// parse reads a multipart/alternative message with a text and an HTML
// part, failing the test on anything else.
func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	p := parsed{header: msg.Header}
	if p.subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type"} {
		if msg.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type: got %q, %v; want multipart/alternative", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		if cte := part.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Errorf("part encoding: got %q, want quoted-printable", cte)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(part))
		if err != nil {
			t.Fatalf("part body: %v", err)
		}
		switch ct := part.Header.Get("Content-Type"); ct {
		case "text/plain; charset=utf-8":
			p.text = string(body)
		case "text/html; charset=utf-8":
			p.html = string(body)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
	if p.text == "" || p.html == "" {
		t.Errorf("got text %d bytes and html %d bytes, want both parts", len(p.text), len(p.html))
	}
	return p
}

// byRef indexes messages by Message-ID, failing on a repeated one.
func byID(t *testing.T, msgs []enginetest.SMTPMessage) map[string]enginetest.SMTPMessage {
	t.Helper()
	out := map[string]enginetest.SMTPMessage{}
	for _, m := range msgs {
		if _, dup := out[m.MessageID]; dup {
			t.Errorf("message %s received twice", m.MessageID)
		}
		out[m.MessageID] = m
	}
	return out
}

func sentIDs(t *testing.T, db *store.DB, kind string, ids ...string) map[string]bool {
	t.Helper()
	got, err := db.EmailsSent(t.Context(), kind, ids)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func contains(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, s)
		}
	}
}
