package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// The billing tests run pipelines/billing.yaml whole, with its billing and
// email plugins built for the test binary, and drive it through the API.

// doJSON sends body (nil for none) as JSON and decodes the JSON answer.
func doJSON(method, url string, body any) (int, map[string]any, error) {
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && resp.ContentLength != 0 {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: decode: %w", method, url, err)
	}
	return resp.StatusCode, out, nil
}

// billingRun is one run of the billing system against its own broker,
// database and mail server.
type billingRun struct {
	t       *testing.T
	broker  *enginetest.Broker
	vars    map[string]string
	base    string
	dsn     string
	dataDir string
	smtp    *enginetest.SMTPServer // nil: emails go to the outbox folder

	mu sync.Mutex
	// want is the status each created transaction must end in; refunded
	// ones end REFUNDED whether or not they were billed first.
	want map[string]store.TxStatus
}

// newBillingRun sets a run up; the engine is started by the caller.
func newBillingRun(t *testing.T, d store.Dialect, smtp *enginetest.SMTPServer) *billingRun {
	t.Helper()
	b := enginetest.StartBroker(t)
	vars := billingVars(t, env(t, b.Addr()))
	r := &billingRun{t: t, broker: b, vars: vars, base: "http://" + vars["BILLING_HTTP_LISTEN"],
		dataDir: vars["BILLING_DATA_DIR"], smtp: smtp, want: map[string]store.TxStatus{}}
	if d == store.MySQL {
		r.dsn = storetest.MySQLDSN(t)
		vars["BILLING_DATABASE_DSN"] = r.dsn
	} else {
		r.dsn = "sqlite:" + filepath.Join(r.dataDir, "billing.db")
	}
	if smtp != nil {
		vars["BILLING_SMTP_ADDR"] = smtp.Addr()
	}
	return r
}

const billingClients = 20

// createClients creates the run's clients through the API.
func (r *billingRun) createClients() {
	r.t.Helper()
	for i := range billingClients {
		id := fmt.Sprintf("client-%02d", i)
		code, body, err := doJSON("POST", r.base+"/api/v1/clients", map[string]any{
			"client_id": id, "name": "Client " + strconv.Itoa(i), "email": id + "@example.com",
		})
		if err != nil || code != http.StatusCreated {
			r.t.Fatalf("create client %s: %d %v %v", id, code, body, err)
		}
	}
}

// createTransactions creates transactions from..to-1 through the API with
// 8 clients at once: 7 in 10 APPROVED, 2 DECLINED, and 1 APPROVED then at
// once REFUNDED (before or after it is billed: a race the system must
// settle either way).
func (r *billingRun) createTransactions(from, to int) {
	r.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := r.createOne(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		r.t.Fatal(err)
	}
}

func (r *billingRun) createOne(i int) error {
	id := fmt.Sprintf("tx-%05d", i)
	status, final := store.StatusApproved, store.StatusBilled
	switch i % 10 {
	case 7, 8:
		status, final = store.StatusDeclined, store.StatusDeclined
	case 9:
		final = store.StatusRefunded
	}
	currency, amount := "USD", int64(100+i*7)
	if i%4 == 3 {
		currency, amount = "JPY", int64(50+i)
	}
	code, body, err := doJSON("POST", r.base+"/api/v1/transactions", map[string]any{
		"transaction_id": id, "client_id": fmt.Sprintf("client-%02d", i%billingClients),
		"amount_minor": amount, "currency": currency, "status": string(status), "description": "order " + id,
	})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("create %s: %d %v %v", id, code, body, err)
	}
	if final == store.StatusRefunded {
		code, body, err := doJSON("PUT", r.base+"/api/v1/transactions/"+id, map[string]any{"status": "REFUNDED"})
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("refund %s: %d %v %v", id, code, body, err)
		}
	}
	r.mu.Lock()
	r.want[id] = final
	r.mu.Unlock()
	return nil
}

// rows reads every transaction from the database.
func (r *billingRun) rows() map[string]store.Transaction {
	r.t.Helper()
	db, err := store.Open(r.t.Context(), r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	out := map[string]store.Transaction{}
	f := store.TransactionFilter{Limit: 1000}
	for {
		p, err := db.ListTransactions(r.t.Context(), f)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, tx := range p.Items {
			out[tx.ID] = tx
		}
		if p.Next == "" {
			return out
		}
		f.After = p.Next
	}
}

// waitSettled waits until every transaction is in the database in its
// final status, and returns the rows.
func (r *billingRun) waitSettled(timeout time.Duration) map[string]store.Transaction {
	r.t.Helper()
	var rows map[string]store.Transaction
	eventually(r.t, timeout, func() error {
		rows = r.rows()
		off := 0
		first := ""
		for id, want := range r.want {
			if rows[id].Status != want {
				if off == 0 {
					first = fmt.Sprintf("%s is %q, want %s", id, rows[id].Status, want)
				}
				off++
			}
		}
		if off > 0 {
			return fmt.Errorf("%d transactions not settled, e.g. %s", off, first)
		}
		return nil
	})
	return rows
}

// check checks the whole money path once the run has settled: every
// approved transaction BILLED once in the database, on the topic and in
// the status table, and one email for each transaction ever billed.
func (r *billingRun) check() {
	t := r.t
	t.Helper()
	start := time.Now()
	rows := r.waitSettled(90 * time.Second)
	t.Logf("%d transactions settled in the database (%s after the last was created)", len(r.want), time.Since(start).Round(time.Millisecond))
	billed := map[string]bool{}
	for id, tx := range rows {
		if r.want[id] == store.StatusBilled && (tx.BilledAt.IsZero() || tx.BilledAt.Before(tx.CreatedAt) || !tx.UpdatedAt.After(tx.CreatedAt)) {
			t.Errorf("%s: BILLED with created_at %v, billed_at %v, updated_at %v", id, tx.CreatedAt, tx.BilledAt, tx.UpdatedAt)
		}
		if !tx.BilledAt.IsZero() {
			billed[id] = true
		}
		if r.want[id] == store.StatusDeclined && !tx.BilledAt.IsZero() {
			t.Errorf("%s: DECLINED but billed", id)
		}
	}
	r.checkTopic(billed)
	r.checkStatusTable()
	r.checkEmails(billed)
}

// checkTopic reads the transactions topic (read_committed) and checks
// that each billed transaction's BILLED version is on it exactly once.
func (r *billingRun) checkTopic(billed map[string]bool) {
	t := r.t
	t.Helper()
	schema, err := registry(t).Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	recs := enginetest.ReadAll(t, r.broker.Addr(), "transactions", len(r.want)+len(billed), 3*time.Second, 2*time.Minute)
	count := map[string]int{}
	for _, rec := range recs {
		v, err := registry(t).Decode(schema, rec.Value)
		if err != nil {
			t.Fatalf("decode %s: %v", rec.Key, err)
		}
		if v["status"] == "BILLED" {
			count[string(rec.Key)]++
		}
	}
	bad := 0
	for id := range billed {
		if count[id] != 1 {
			if bad < 5 {
				t.Errorf("%s: BILLED on the transactions topic %d times, want 1", id, count[id])
			}
			bad++
		}
	}
	for id, n := range count {
		if !billed[id] {
			t.Errorf("%s: BILLED on the topic %d times but not billed in the database", id, n)
		}
	}
	t.Logf("transactions topic: %d records, %d BILLED versions, %d not exactly once", len(recs), len(count), bad)
}

// checkStatusTable asks the status table for every transaction.
func (r *billingRun) checkStatusTable() {
	t := r.t
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		for id, want := range r.want {
			got, err := statusOf(r.base, id)
			if err != nil {
				return err
			}
			if got != string(want) {
				return fmt.Errorf("status table: %s is %s, want %s", id, got, want)
			}
		}
		return nil
	})
}

// checkEmails checks that exactly one email went out per billed
// transaction, to its client, and no other.
func (r *billingRun) checkEmails(billed map[string]bool) {
	t := r.t
	t.Helper()
	got := map[string]int{}
	var to map[string]string
	eventually(t, 60*time.Second, func() error {
		got, to = r.emails()
		if len(got) < len(billed) {
			return fmt.Errorf("%d billed transactions emailed of %d", len(got), len(billed))
		}
		return nil
	})
	time.Sleep(2 * time.Second) // anything sent twice would arrive by now
	got, to = r.emails()
	bad := 0
	for id := range billed {
		if got[id] != 1 {
			if bad < 5 {
				t.Errorf("%s: %d emails, want 1", id, got[id])
			}
			bad++
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "tx-"))
		if want := fmt.Sprintf("client-%02d@example.com", n%billingClients); to[id] != want {
			t.Errorf("%s: emailed to %q, want %q", id, to[id], want)
		}
	}
	for id := range got {
		if !billed[id] {
			t.Errorf("%s: emailed but not billed", id)
		}
	}
	t.Logf("emails: %d billed transactions, %d emailed, %d not exactly once", len(billed), len(got), bad)
}

// emails counts the billed-transaction emails sent, by transaction id,
// and the address each went to: from the SMTP server, or from the outbox
// folder.
func (r *billingRun) emails() (count map[string]int, to map[string]string) {
	count, to = map[string]int{}, map[string]string{}
	add := func(msgID, rcpt string) {
		id, ok := billedID(msgID)
		if ok {
			count[id]++
			to[id] = rcpt
		}
	}
	if r.smtp != nil {
		for _, m := range r.smtp.Messages() {
			add(m.Header.Get("Message-Id"), strings.Join(m.To, ","))
		}
		return count, to
	}
	files, _ := filepath.Glob(filepath.Join(r.dataDir, "outbox", "billed-*.eml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			r.t.Fatal(err)
		}
		rcpt := headerOf(b, "To")
		if a, err := mail.ParseAddress(rcpt); err == nil {
			rcpt = a.Address
		}
		add(headerOf(b, "Message-Id"), rcpt)
	}
	return count, to
}

// billedID reads the transaction id from a billed email's Message-ID,
// <billed.ID@domain>.
func billedID(msgID string) (string, bool) {
	s, ok := strings.CutPrefix(strings.Trim(msgID, "<> "), "billed.")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(s, "@")
	return id, ok
}

// headerOf returns a header's value from a raw message.
func headerOf(msg []byte, name string) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestBillingEndToEnd creates clients and 1,000 transactions through the
// API and follows them to the end: each APPROVED one BILLED in the
// database, once on the topic, in the status table, and emailed once —
// over SMTP with SQLite, and to the outbox folder with MariaDB.
func TestBillingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	for _, tc := range []struct {
		name string
		d    store.Dialect
		smtp bool
	}{
		{"smtp-sqlite", store.SQLite, true},
		{"outbox-mysql", store.MySQL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var smtp *enginetest.SMTPServer
			if tc.smtp {
				smtp = enginetest.StartSMTP(t, enginetest.WithSTARTTLS(), enginetest.WithAuth("billing", "s3cret"))
			}
			r := newBillingRun(t, tc.d, smtp)
			if tc.smtp {
				r.vars["BILLING_SMTP_USER"], r.vars["BILLING_SMTP_PASSWORD"] = "billing", "s3cret"
				r.vars["BILLING_SMTP_CA_FILE"] = smtp.CAFile(t)
			}
			startEngine(t, r.vars)
			r.createClients()
			r.createTransactions(0, 1000)
			r.check()
		})
	}
}

// pluginPids returns the processes running the billing system's plugin
// binary name that this process started.
func pluginPids(t *testing.T, dir, name string) []int {
	t.Helper()
	want := filepath.Join(dir, name)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || exe != want {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		pids = append(pids, pid)
	}
	return pids
}

// TestBillingPluginKilledMidRun SIGKILLs the billing plugin's processes
// while transactions flow: the engine restarts them and retries their
// batches; every approved transaction is billed and emailed once.
func TestBillingPluginKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	smtp := enginetest.StartSMTP(t)
	r := newBillingRun(t, store.SQLite, smtp)
	startEngine(t, r.vars)
	r.createClients()
	r.createTransactions(0, 300)
	pids := pluginPids(t, r.vars["BILLING_PLUGIN_DIR"], "billing")
	if len(pids) == 0 {
		t.Fatal("no billing plugin process found")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill plugin %d: %v", pid, err)
		}
	}
	t.Logf("killed billing plugin processes %v", pids)
	r.createTransactions(300, 1000)
	r.check()
	eventually(t, 30*time.Second, func() error {
		now := pluginPids(t, r.vars["BILLING_PLUGIN_DIR"], "billing")
		for _, p := range now {
			for _, old := range pids {
				if p == old {
					return fmt.Errorf("killed plugin %d still listed", p)
				}
			}
		}
		if len(now) == 0 {
			return fmt.Errorf("billing plugin not restarted")
		}
		return nil
	})
}

// TestSMTPDownThenBack stops the mail server before any email is sent and
// starts it again later: nothing is dead-lettered or skipped, and each
// billed transaction is emailed once.
func TestSMTPDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	smtp := enginetest.StartSMTP(t)
	smtp.Stop()
	r := newBillingRun(t, store.SQLite, smtp)
	startEngine(t, r.vars)
	r.createClients()
	r.createTransactions(0, 500)
	r.waitSettled(60 * time.Second)
	time.Sleep(3 * time.Second) // several retries of the email batches
	if n := smtp.Count(); n != 0 {
		t.Fatalf("%d emails while the server was down", n)
	}
	smtp.Start()
	r.createTransactions(500, 1000)
	r.check()
	checkEmpty(t, r.broker.Addr(), "transactions.dlq")
}

// TestEngineKilledDuringBilling SIGKILLs the engine process while it
// bills and emails, and starts it again: every approved transaction ends
// billed once and emailed once.
func TestEngineKilledDuringBilling(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	smtp := enginetest.StartSMTP(t)
	r := newBillingRun(t, store.SQLite, smtp)
	c := startChild(t, bin, r.vars)
	c.waitReady(t)
	r.createClients()
	r.createTransactions(0, 600)
	// Kill it while it emails: once some emails are out, before all are.
	deadline := time.Now().Add(30 * time.Second)
	for smtp.Count() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.kill(t)
	t.Logf("engine killed with %d emails sent", smtp.Count())
	c = startChild(t, bin, r.vars)
	c.waitReady(t)
	r.createTransactions(600, 1000)
	r.check()
}
