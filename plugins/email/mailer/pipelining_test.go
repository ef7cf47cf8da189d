package mailer_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

// The tests in this file run against enginetest's go-smtp server, which
// offers PIPELINING (RFC 2920): the sender sends each message's MAIL
// FROM, RCPT TO and DATA in one write, with the data of the message
// before.

var clientAddrs = map[string]string{"c-1": "ada@example.com", "c-2": "bjorn@example.org", "c-3": "carol@example.net"}

// TestPipelinedBatch: many messages in pipelined batches, over STARTTLS
// and AUTH, arrive whole and exactly once, each to its recipient, and are
// recorded; a second batch goes over the pooled connection.
func TestPipelinedBatch(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		all := batchOf(200)
		process(t, m, records(all[:120]...))
		if n := srv.Count(); n != 120 {
			t.Fatalf("first batch: got %d messages, want 120", n)
		}
		res := process(t, m, records(all...)) // 80 new ones, on the pooled connection
		for i, r := range res {
			if r.DLQ != "" {
				t.Errorf("record %d: got DLQ %q", i, r.DLQ)
			}
		}
		msgs := srv.Messages()
		got := byID(t, msgs)
		if len(msgs) != 200 || len(got) != 200 {
			t.Fatalf("got %d messages (%d distinct), want 200", len(msgs), len(got))
		}
		ids := make([]string, len(all))
		for i, tx := range all {
			id := tx["transaction_id"].(string)
			ids[i] = id
			sm, ok := got["<billed."+id+"@example.com>"]
			if !ok {
				t.Errorf("%s: never sent", id)
				continue
			}
			if to := clientAddrs[tx["client_id"].(string)]; sm.From != "billing@example.com" || !slices.Equal(sm.To, []string{to}) || !sm.TLS || sm.User != "mailer" {
				t.Errorf("%s: got %s -> %v (TLS %v, user %q), want billing@example.com -> [%s] over TLS as mailer", id, sm.From, sm.To, sm.TLS, sm.User, to)
			}
			amount := tx["amount_minor"].(int64)
			contains(t, id, parse(t, sm.Data).text, id, fmt.Sprintf("order %d", i), fmt.Sprintf("%d.%02d EUR", amount/100, amount%100))
		}
		if rec := sentIDs(t, e.db, mailer.KindBilled, ids...); len(rec) != 200 {
			t.Errorf("recorded %d, want 200", len(rec))
		}
		process(t, m, records(all...))
		if n := srv.Count(); n != 200 {
			t.Errorf("after a replay: got %d messages, want still 200", n)
		}
	})
}

// TestPipelinedRefusedRecipients: recipients refused for good in a
// pipelined batch, first, last, in a row and between accepted ones,
// dead-letter their records only; the others arrive once.
func TestPipelinedRefusedRecipients(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t, enginetest.WithRejectRecipients("carol@example.net"))
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		clients := []string{"c-3", "c-1", "c-2", "c-3", "c-3", "c-1", "c-3", "c-2", "c-1", "c-3"}
		var txs []map[string]any
		var accepted []string
		for i, c := range clients {
			id := fmt.Sprintf("t-%02d", i)
			txs = append(txs, tx(id, c, 100, "EUR", "x"))
			if c != "c-3" {
				accepted = append(accepted, id)
			}
		}
		res := process(t, m, records(txs...))
		for i, r := range res {
			if clients[i] != "c-3" {
				if r.DLQ != "" {
					t.Errorf("record %d: got DLQ %q, want none", i, r.DLQ)
				}
				continue
			}
			if !strings.Contains(r.DLQ, "RCPT TO <carol@example.net> refused: 550") || !strings.Contains(r.DLQ, "mailbox unavailable") {
				t.Errorf("record %d: got DLQ %q, want the server's 550 to RCPT TO", i, r.DLQ)
			}
		}
		msgs := srv.Messages()
		var got []string
		for _, sm := range msgs {
			got = append(got, strings.TrimSuffix(strings.TrimPrefix(sm.MessageID, "<billed."), "@example.com>"))
		}
		if !slices.Equal(got, accepted) {
			t.Errorf("got messages %v, want %v in order", got, accepted)
		}
		if rec := sentIDs(t, e.db, mailer.KindBilled, accepted...); len(rec) != len(accepted) {
			t.Errorf("recorded %v, want %v", rec, accepted)
		}
	})
}

// TestPipelinedServerStopsMidBatch: a server that stops after 40
// messages of 70 (a 421 to the next MAIL FROM, then the connection
// closes) fails the batch as unavailable with the 40 recorded once; the
// retry sends the other 30.
func TestPipelinedServerStopsMidBatch(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		all := batchOf(70)
		ids := make([]string, len(all))
		for i, tx := range all {
			ids[i] = tx["transaction_id"].(string)
		}
		srv.StopAfter(40)
		_, err := m.Process(t.Context(), records(all...))
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("got %v, want an error wrapping sdk.ErrUnavailable", err)
		}
		if n := srv.Count(); n != 40 {
			t.Fatalf("got %d messages, want 40", n)
		}
		rec := sentIDs(t, e.db, mailer.KindBilled, ids...)
		if len(rec) != 40 {
			t.Errorf("recorded %d, want 40", len(rec))
		}
		for _, id := range ids[:40] {
			if !rec[id] {
				t.Errorf("%s: sent, not recorded", id)
			}
		}
		srv.Start()
		process(t, m, records(all...))
		if got := byID(t, srv.Messages()); len(got) != 70 {
			t.Errorf("after the retry: got %d distinct messages, want 70", len(got))
		}
	})
}

// TestLinesStartingWithDot: lines that start with "." (a lone "." too,
// which would end the data if not doubled) arrive as written, in a
// pipelined batch.
func TestLinesStartingWithDot(t *testing.T) {
	e := newEnv(t, "sqlite")
	srv := startSMTP(t)
	dir := t.TempDir()
	tmpl := ".\n..\n.{{.TransactionID}}\n{{.Description}}\n. and more\nend\n"
	if err := os.WriteFile(filepath.Join(dir, "billed.txt.tmpl"), []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
	dotty := newMailer(t, "billing.Transaction", e.settings(map[string]any{
		"smtp_addr": srv.Addr(), "smtp_user": "mailer", "smtp_password": "secret",
		"smtp_insecure_skip_verify": true, "templates": dir,
	}))
	var batch []map[string]any
	for i := range 4 {
		batch = append(batch, tx(fmt.Sprintf("t-%d", i), "c-1", 100, "EUR", fmt.Sprintf("x\n.\n.%d.\n..", i)))
	}
	process(t, dotty, records(batch...))
	process(t, m, records(tx("t-plain", "c-2", 100, "EUR", "first line\n.second line")))
	got := byID(t, srv.Messages())
	if len(got) != 5 {
		t.Fatalf("got %d messages, want 5", len(got))
	}
	for i := range 4 {
		sm := got[fmt.Sprintf("<billed.t-%d@example.com>", i)]
		if !strings.Contains(string(sm.Data), "\r\n.\r\n") {
			t.Errorf("t-%d: no line of a lone dot in the received data:\n%s", i, sm.Data)
		}
		text := strings.ReplaceAll(parse(t, sm.Data).text, "\r\n", "\n")
		if want := fmt.Sprintf(".\n..\n.t-%d\nx\n.\n.%d.\n..\n. and more\nend\n", i, i); text != want {
			t.Errorf("t-%d: text: got %q, want %q", i, text, want)
		}
	}
	contains(t, "t-plain", strings.ReplaceAll(parse(t, got["<billed.t-plain@example.com>"].Data).text, "\r\n", "\n"), "first line\n.second line\n")
}
