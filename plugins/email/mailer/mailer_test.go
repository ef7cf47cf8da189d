package mailer_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

func TestBilledOverSMTP(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		approved := tx("t-approved", "c-1", 999, "EUR", "not billed yet")
		approved["status"] = "APPROVED"
		batch := records(
			tx("t-usd", "c-1", 1234, "USD", "Coffee beans"),
			tx("t-jpy", "c-2", 5, "JPY", "Ramen"),
			approved,
			tx("t-eur", "c-3", -250, "EUR", "Refund of a deposit"),
			tx("t-bhd", "c-1", 1, "BHD", ""),
			tx("t-usd", "c-1", 1234, "USD", "Coffee beans"), // a duplicate in the batch
		)
		res := process(t, m, batch)
		for i, r := range res {
			if r.DLQ != "" {
				t.Errorf("record %d: got DLQ %q", i, r.DLQ)
			}
		}
		msgs := srv.Messages()
		if len(msgs) != 4 {
			t.Fatalf("got %d messages, want 4 (one per billed transaction)", len(msgs))
		}
		got := byID(t, msgs)
		for _, tc := range []struct {
			id, to, toName, subject string
			text                    []string
		}{
			{"t-usd", "ada@example.com", "Ada Lovelace", "Billed: Coffee beans (12.34 USD)",
				[]string{"Hello Ada Lovelace", "t-usd", "Coffee beans", "12.34 USD", "2026-03-01 12:00 UTC", "2026-03-01 13:00 UTC", "cycle-1"}},
			{"t-jpy", "bjorn@example.org", "Bjørn Ødegård", "Billed: Ramen (5 JPY)",
				[]string{"Hello Bjørn Ødegård", "5 JPY"}},
			{"t-eur", "carol@example.net", "Carol", "Billed: Refund of a deposit (-2.50 EUR)",
				[]string{"-2.50 EUR"}},
			{"t-bhd", "ada@example.com", "Ada Lovelace", "Billed: transaction t-bhd (0.001 BHD)",
				[]string{"0.001 BHD", "(none)"}},
		} {
			msgID := "<billed." + tc.id + "@example.com>"
			sm, ok := got[msgID]
			if !ok {
				t.Errorf("%s: no message with Message-ID %s", tc.id, msgID)
				continue
			}
			if sm.From != "billing@example.com" || !slices.Equal(sm.To, []string{tc.to}) {
				t.Errorf("%s: envelope: got %s -> %v, want billing@example.com -> [%s]", tc.id, sm.From, sm.To, tc.to)
			}
			if !sm.TLS || sm.User != "mailer" {
				t.Errorf("%s: got TLS %v, user %q; want STARTTLS and AUTH as mailer", tc.id, sm.TLS, sm.User)
			}
			p := parse(t, sm.Data)
			if p.subject != tc.subject {
				t.Errorf("%s: subject: got %q, want %q", tc.id, p.subject, tc.subject)
			}
			to, err := p.header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != tc.to || to[0].Name != tc.toName {
				t.Errorf("%s: To: got %v, %v; want %s <%s>", tc.id, to, err, tc.toName, tc.to)
			}
			from, err := p.header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Address != "billing@example.com" || from[0].Name != "Billing" {
				t.Errorf("%s: From: got %v, %v", tc.id, from, err)
			}
			if _, err := p.header.Date(); err != nil {
				t.Errorf("%s: Date: %v", tc.id, err)
			}
			contains(t, tc.id+" text", p.text, tc.text...)
			contains(t, tc.id+" html", p.html, tc.text[1:]...)
		}
		if ids := sentIDs(t, e.db, mailer.KindBilled, "t-usd", "t-jpy", "t-eur", "t-bhd", "t-approved"); len(ids) != 4 || ids["t-approved"] {
			t.Errorf("recorded: got %v, want the four billed", ids)
		}

		// The same batch again, and again after a restart: nothing new.
		process(t, m, batch)
		process(t, newMailer(t, "billing.Transaction", e.smtpSettings(srv)), batch)
		if n := srv.Count(); n != 4 {
			t.Errorf("after the replays: got %d messages, want still 4", n)
		}
	})
}

func TestOutbox(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		m := newMailer(t, "billing.Transaction", e.settings(nil))
		odd := tx("t/../odd:id", "c-2", 700, "EUR", "odd id")
		batch := records(append(batchOf(5), odd)...)
		res := process(t, m, batch)
		for i, r := range res {
			if r.DLQ != "" {
				t.Errorf("record %d: got DLQ %q", i, r.DLQ)
			}
		}
		dir := filepath.Join(e.dataDir, "outbox")
		files := func() map[string]string {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, en := range entries {
				b, err := os.ReadFile(filepath.Join(dir, en.Name()))
				if err != nil {
					t.Fatal(err)
				}
				out[en.Name()] = string(b)
			}
			return out
		}
		first := files()
		if len(first) != 6 {
			t.Fatalf("got files %v, want 6", slices.Sorted(func(yield func(string) bool) {
				for k := range first {
					if !yield(k) {
						return
					}
				}
			}))
		}
		for i := range 5 {
			name := fmt.Sprintf("billed-t-%03d.eml", i)
			data, ok := first[name]
			if !ok {
				t.Errorf("missing %s", name)
				continue
			}
			p := parse(t, []byte(data))
			contains(t, name, p.text, fmt.Sprintf("%d.%02d EUR", (100+i)/100, (100+i)%100))
			if got, want := p.header.Get("Message-Id"), fmt.Sprintf("<billed.t-%03d@example.com>", i); got != want {
				t.Errorf("%s: Message-ID: got %s, want %s", name, got, want)
			}
		}
		var oddName string
		for name := range first {
			if strings.HasPrefix(name, "billed-t_.._odd_id-") {
				oddName = name
			}
		}
		if oddName == "" || strings.Contains(oddName, "/") {
			t.Errorf("odd id: got no sanitised file name among %d files", len(first))
		}
		if ids := sentIDs(t, e.db, mailer.KindBilled, "t-000", "t-004", "t/../odd:id"); len(ids) != 3 {
			t.Errorf("recorded: got %v, want all three", ids)
		}

		// A second run, and another processor: nothing new, nothing
		// rewritten.
		process(t, m, batch)
		process(t, newMailer(t, "billing.Transaction", e.settings(nil)), batch)
		if second := files(); len(second) != len(first) {
			t.Errorf("after the second run: got %d files, want %d", len(second), len(first))
		} else {
			for name, data := range first {
				if second[name] != data {
					t.Errorf("%s was rewritten", name)
				}
			}
		}
	})
}

func TestSMTPDownAndBack(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		batch := records(batchOf(8)...)

		// The server dies after accepting 3 messages of the batch.
		srv.StopAfter(3)
		_, err := m.Process(t.Context(), batch)
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("server stopping mid-batch: got %v, want an error wrapping sdk.ErrUnavailable", err)
		}
		if n := srv.Count(); n != 3 {
			t.Fatalf("got %d messages before the failure, want 3", n)
		}
		if got := sentIDs(t, e.db, mailer.KindBilled, "t-000", "t-001", "t-002", "t-003"); len(got) != 3 || got["t-003"] {
			t.Errorf("recorded after the failure: got %v, want t-000..t-002", got)
		}

		// Down for a while: every retry fails as unavailable.
		srv.Stop()
		for range 2 {
			if _, err := m.Process(t.Context(), batch); !errors.Is(err, sdk.ErrUnavailable) {
				t.Fatalf("server down: got %v, want an error wrapping sdk.ErrUnavailable", err)
			}
		}

		// Back: the retry sends the other 5, and the 3 are not sent again.
		srv.Start()
		process(t, m, batch)
		msgs := srv.Messages()
		if len(msgs) != 8 {
			t.Errorf("got %d messages in total, want 8", len(msgs))
		}
		got := byID(t, msgs)
		for i := range 8 {
			if _, ok := got[fmt.Sprintf("<billed.t-%03d@example.com>", i)]; !ok {
				t.Errorf("t-%03d: never sent", i)
			}
		}
	})
}

func TestUnknownClientAndRefusedRecipient(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t, enginetest.WithRejectRecipients("carol@example.net"))
		m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		batch := records(
			tx("t-1", "c-1", 100, "EUR", "one"),
			tx("t-2", "c-404", 200, "EUR", "nobody"),
			tx("t-3", "c-3", 300, "EUR", "refused"),
			tx("t-4", "c-2", 400, "EUR", "four"),
		)
		res := process(t, m, batch)
		want := []string{"", "email: client c-404 not found", "550", ""}
		for i, r := range res {
			if (want[i] == "") != (r.DLQ == "") || !strings.Contains(r.DLQ, want[i]) {
				t.Errorf("record %d: got DLQ %q, want %q", i, r.DLQ, want[i])
			}
		}
		if !strings.Contains(res[2].DLQ, "carol@example.net") || !strings.Contains(res[2].DLQ, "mailbox unavailable") {
			t.Errorf("refused: got %q, want the server's reply", res[2].DLQ)
		}
		got := byID(t, srv.Messages())
		if len(got) != 2 || got["<billed.t-1@example.com>"].MessageID == "" || got["<billed.t-4@example.com>"].MessageID == "" {
			t.Errorf("got messages %v, want t-1 and t-4", got)
		}
		if ids := sentIDs(t, e.db, mailer.KindBilled, "t-1", "t-2", "t-3", "t-4"); len(ids) != 2 || !ids["t-1"] || !ids["t-4"] {
			t.Errorf("recorded: got %v, want t-1 and t-4", ids)
		}
	})
}

func TestStoreUnavailable(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		p, err := mailer.New(t.Context(), sdk.Config{Settings: e.settings(nil), Schema: "billing.Transaction"})
		if err != nil {
			t.Fatal(err)
		}
		// A closed store fails every call, as a database that is down does.
		if err := p.(sdk.Closer).Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Process(t.Context(), records(tx("t-1", "c-1", 100, "EUR", "x"))); !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("got %v, want an error wrapping sdk.ErrUnavailable", err)
		}
	})
}

func TestHeaderInjection(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := enginetest.StartSMTP(t)
		if _, err := e.db.UpdateClient(t.Context(), "c-1", func(c store.Client) (store.Client, error) {
			c.Name = "Ada\r\nBcc: evil@example.com"
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		m := newMailer(t, "billing.Transaction", e.settings(map[string]any{"smtp_addr": srv.Addr()}))
		evil := "Refund\r\nBcc: evil@example.com\r\nX-Injected: yes\r\n\r\n<script>alert(1)</script>"
		process(t, m, records(tx("t-1", "c-1", 100, "EUR", evil)))
		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want 1", len(msgs))
		}
		sm := msgs[0]
		if !slices.Equal(sm.To, []string{"ada@example.com"}) {
			t.Errorf("envelope recipients: got %v, want only ada@example.com", sm.To)
		}
		p := parse(t, sm.Data)
		for _, h := range []string{"Bcc", "X-Injected"} {
			if v := p.header.Get(h); v != "" {
				t.Errorf("header %s injected: %q", h, v)
			}
		}
		if want := "Billed: Refund Bcc: evil@example.com X-Injected: yes <script>alert(1)</script> (1.00 EUR)"; p.subject != want {
			t.Errorf("subject: got %q, want %q", p.subject, want)
		}
		to, err := p.header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != "ada@example.com" || to[0].Name != "Ada Bcc: evil@example.com" {
			t.Errorf("To: got %v, %v", to, err)
		}
		if strings.Contains(p.html, "<script>") || !strings.Contains(p.html, "&lt;script&gt;") {
			t.Errorf("html: the description is not escaped:\n%s", p.html)
		}
	})
}

func TestConcurrentBatches(t *testing.T) {
	e := newEnv(t, "sqlite")
	srv := startSMTP(t)
	m := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
	all := batchOf(100)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 { // the second round reuses pooled connections and sends nothing
				part := records(all[g*25 : (g+1)*25]...)
				if _, err := m.Process(t.Context(), part); err != nil {
					errs <- fmt.Errorf("partition %d round %d: %w", g, round, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(byID(t, srv.Messages())); n != 100 {
		t.Errorf("got %d distinct messages, want 100", n)
	}
	if n := srv.Count(); n != 100 {
		t.Errorf("got %d messages, want 100", n)
	}
}

func TestProcessRecordsThatGetNoEmail(t *testing.T) {
	e := newEnv(t, "sqlite")
	m := newMailer(t, "billing.Transaction", e.settings(nil))
	declined := tx("t-1", "c-1", 100, "EUR", "x")
	declined["status"] = "DECLINED"
	badAmount := tx("t-2", "c-1", 100, "EUR", "x")
	badAmount["amount_minor"] = "lots"
	longID := tx(strings.Repeat("x", 65), "c-1", 100, "EUR", "x")
	batch := records(declined, badAmount, longID)
	batch = append(batch, sdk.Record{Key: []byte("k")}) // not decoded
	res := process(t, m, batch)
	for i, want := range []string{"", "amount_minor", "ref_id", "not decoded"} {
		if (want == "") != (res[i].DLQ == "") || !strings.Contains(res[i].DLQ, want) {
			t.Errorf("record %d: got DLQ %q, want one mentioning %q", i, res[i].DLQ, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dataDir, "outbox")); len(entries) != 0 {
		t.Errorf("got %d outbox files, want none", len(entries))
	}
}

func TestConfig(t *testing.T) {
	e := newEnv(t, "sqlite")
	tmpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmpl, "biled.txt.tmpl"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	badField := t.TempDir()
	if err := os.WriteFile(filepath.Join(badField, "billed.subject.tmpl"), []byte("{{.NoSuchField}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		schema   string
		settings map[string]any
		want     []string
	}{
		{"unknown setting", "billing.Transaction", e.settings(map[string]any{"smtp_host": "x"}), []string{"smtp_host: unknown setting"}},
		{"bad schema", "billing.Client", e.settings(nil), []string{`source schema "billing.Client"`}},
		{"bad smtp_addr", "billing.Transaction", e.settings(map[string]any{"smtp_addr": "mail.example.com"}), []string{"smtp_addr: want host:port"}},
		{"bad from", "billing.Transaction", e.settings(map[string]any{"from": "not an address"}), []string{"from: want an address"}},
		{"bad timeout", "billing.Transaction", e.settings(map[string]any{"timeout": "soon"}), []string{"timeout: want a duration"}},
		{"bad bool", "billing.Transaction", e.settings(map[string]any{"smtp_insecure_skip_verify": "maybe"}), []string{"smtp_insecure_skip_verify: want true or false"}},
		{"password without user", "billing.Transaction", e.settings(map[string]any{"smtp_addr": "h:25", "smtp_password": "p"}), []string{"smtp_password: given without smtp_user"}},
		{"every problem at once", "nope", e.settings(map[string]any{"x": 1, "timeout": -1}), []string{"x: unknown setting", "timeout: want a positive duration", `source schema "nope"`}},
		{"templates not a directory", "billing.Transaction", e.settings(map[string]any{"templates": filepath.Join(tmpl, "none")}), []string{"templates: want a directory"}},
		{"misspelt template", "billing.Transaction", e.settings(map[string]any{"templates": tmpl}), []string{"biled.txt.tmpl: not a known template"}},
		{"template with a bad field", "billing.Transaction", e.settings(map[string]any{"templates": badField}), []string{"NoSuchField"}},
		{"bad dsn", "billing.Transaction", e.settings(map[string]any{"dsn": "postgres://x"}), []string{"email: open store", "bad dsn"}},
	} {
		_, err := mailer.New(t.Context(), sdk.Config{Settings: tc.settings, Schema: tc.schema})
		if err == nil {
			t.Errorf("%s: got no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %q, want it to say %q", tc.name, err, w)
			}
		}
	}
}

func TestTemplatesOverride(t *testing.T) {
	e := newEnv(t, "sqlite")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "billed.subject.tmpl"), []byte(`Your charge of {{.Amount}} on {{date .BilledAt}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMailer(t, "Transaction", e.settings(map[string]any{"templates": dir}))
	process(t, m, records(tx("t-1", "c-1", 4200, "GBP", "x")))
	data, err := os.ReadFile(filepath.Join(e.dataDir, "outbox", "billed-t-1.eml"))
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, data)
	if want := "Your charge of 42.00 GBP on 2026-03-01"; p.subject != want {
		t.Errorf("subject: got %q, want %q", p.subject, want)
	}
	contains(t, "text (embedded)", p.text, "42.00 GBP")
}

// TestPermanentSessionFailure: a server that refuses the session for good
// fails the batch as unavailable too (the engine waits: a session failure
// is never the records' fault, so none is dead-lettered); nothing is sent
// or recorded.
func TestPermanentSessionFailure(t *testing.T) {
	e := newEnv(t, "sqlite")
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"wrong password", map[string]any{"smtp_user": "mailer", "smtp_password": "wrong"}, "AUTH"},
		{"no AUTH given", map[string]any{"smtp_user": nil, "smtp_password": nil}, "MAIL FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSMTP(t)
			s := e.smtpSettings(srv)
			for k, v := range tc.settings {
				if v == nil {
					delete(s, k)
				} else {
					s[k] = v
				}
			}
			m := newMailer(t, "billing.Transaction", s)
			_, err := m.Process(t.Context(), records(tx("t-"+strings.ReplaceAll(tc.name, " ", "-"), "c-1", 100, "EUR", "x")))
			if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an unavailable error about %s", err, tc.want)
			}
			if n := srv.Count(); n != 0 {
				t.Errorf("got %d messages, want none", n)
			}
		})
	}
}

// TestCAFileVerifiesTheServer: with smtp_ca_file the server's certificate
// is verified (and trusted); without it or insecure_skip_verify the
// session fails, as unavailable, and nothing is sent.
func TestCAFileVerifiesTheServer(t *testing.T) {
	e := newEnv(t, "sqlite")
	srv := startSMTP(t)
	verified := e.smtpSettings(srv)
	delete(verified, "smtp_insecure_skip_verify")
	verified["smtp_ca_file"] = srv.CAFile(t)
	if _, err := newMailer(t, "billing.Transaction", verified).Process(t.Context(), records(tx("t-ca", "c-1", 100, "EUR", "x"))); err != nil {
		t.Fatalf("with smtp_ca_file: %v", err)
	}
	if n := srv.Count(); n != 1 || !srv.Messages()[0].TLS {
		t.Fatalf("got %d messages (TLS %v), want 1 over TLS", n, n > 0 && srv.Messages()[0].TLS)
	}
	unverified := e.smtpSettings(srv)
	delete(unverified, "smtp_insecure_skip_verify")
	_, err := newMailer(t, "billing.Transaction", unverified).Process(t.Context(), records(tx("t-no-ca", "c-1", 100, "EUR", "x")))
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without smtp_ca_file: got %v, want an unavailable certificate error", err)
	}
	if n := srv.Count(); n != 1 {
		t.Errorf("got %d messages, want still 1", n)
	}
}

// TestTwoSendersOneBatch runs the same batch through two mailers at once,
// as a plugin finishing its batch after its engine died and the restarted
// engine's plugin would: every email goes out exactly once; the one that
// finds emails claimed by the other waits (unavailable) and, retried,
// sends nothing more.
func TestTwoSendersOneBatch(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		srv := startSMTP(t)
		a := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		b := newMailer(t, "billing.Transaction", e.smtpSettings(srv))
		var values []map[string]any
		for i := range 200 {
			values = append(values, tx(fmt.Sprintf("two-%03d", i), "c-1", int64(100+i), "EUR", "x"))
		}
		batch := records(values...)
		errs := make(chan error, 2)
		for _, m := range []*mailer.Mailer{a, b} {
			go func() {
				_, err := m.Process(t.Context(), batch)
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil && !errors.Is(err, sdk.ErrUnavailable) {
				t.Fatalf("process: %v", err)
			}
		}
		// Retried until neither waits any more, as the engine would.
		for _, m := range []*mailer.Mailer{a, b} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := m.Process(t.Context(), batch)
				if err == nil {
					break
				}
				if !errors.Is(err, sdk.ErrUnavailable) || time.Now().After(deadline) {
					t.Fatalf("retry: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if n := srv.Count(); n != len(values) {
			t.Errorf("got %d messages, want %d: one per transaction", n, len(values))
		}
		ids := map[string]int{}
		for _, m := range srv.Messages() {
			ids[m.MessageID]++
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s sent %d times", id, n)
			}
		}
	})
}
