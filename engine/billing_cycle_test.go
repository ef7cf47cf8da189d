package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// The periods of the billing cycle test: cycle A covers day0; B and C,
// run at once, overlap on the second half of day1.
var (
	cycDay0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cycDay1 = cycDay0.Add(24 * time.Hour)
	cycB    = [2]time.Time{cycDay1, cycDay1.Add(24 * time.Hour)}
	cycC    = [2]time.Time{cycDay1.Add(12 * time.Hour), cycDay1.Add(36 * time.Hour)}
)

// cycSeed is a transaction written to the database before the engine
// starts, as the stream would have written it.
type cycSeed struct {
	id, client, currency string
	amount               int64
	status               store.TxStatus
	created              time.Time
	description          string
	// billed: the stream billed it before the cycle (billed_at set, no
	// invoice yet); refunded: then it was refunded, with a credit.
	billed, refunded bool
}

func (s cycSeed) transaction() store.Transaction {
	t := store.Transaction{ID: s.id, ClientID: s.client, AmountMinor: s.amount, Currency: s.currency, Status: s.status,
		Description: s.description, CreatedAt: s.created, UpdatedAt: s.created}
	if s.billed {
		t.BilledAt, t.UpdatedAt = s.created.Add(time.Hour), s.created.Add(time.Hour)
	}
	if s.refunded {
		t.UpdatedAt = s.created.Add(2 * time.Hour)
	}
	return t
}

// in reports whether s is APPROVED with created_at in [from, to).
func (s cycSeed) approvedIn(from, to time.Time) bool {
	return s.status == store.StatusApproved && !s.created.Before(from) && s.created.Before(to)
}

// cycSeeds returns the test's transactions: cents and yen for cycle A,
// with what it must leave alone, and a batch for the overlapping cycles.
func cycSeeds() []cycSeed {
	h := time.Hour
	seeds := []cycSeed{
		{"usd-1", "acme", "USD", 1999, store.StatusApproved, cycDay0.Add(h), "Widget", false, false},
		{"usd-2", "acme", "USD", 1, store.StatusApproved, cycDay0.Add(2 * h), "", false, false},
		{"usd-3", "acme", "USD", 250050, store.StatusApproved, cycDay0.Add(3 * h), "Server rack", false, false},
		{"jpy-1", "acme", "JPY", 1500, store.StatusApproved, cycDay0.Add(4 * h), "Matcha", false, false},
		{"jpy-2", "acme", "JPY", 7, store.StatusApproved, cycDay0.Add(5 * h), "Candy", false, false},
		{"eur-1", "globex", "EUR", 1005, store.StatusApproved, cycDay0, "At the start", false, false},
		{"eur-2", "globex", "EUR", 99, store.StatusApproved, cycDay1.Add(-time.Millisecond), "At the last millisecond", false, false},
		{"eur-late", "globex", "EUR", 500, store.StatusApproved, cycDay1, "At the end: the next cycle's", false, false},
		{"usd-early", "acme", "USD", 300, store.StatusApproved, cycDay0.Add(-time.Millisecond), "Before the start", false, false},
		{"dec-1", "acme", "USD", 4000, store.StatusDeclined, cycDay0.Add(h), "Declined", false, false},
		// Billed by the stream two days before, never invoiced.
		{"billed-1", "globex", "USD", 750, store.StatusBilled, cycDay0.Add(-48 * h), "Billed by the stream", true, false},
		// Billed by the stream, then refunded: charged, and credited.
		{"ref-1", "globex", "USD", 1200, store.StatusRefunded, cycDay0.Add(6 * h), "Refunded", true, true},
	}
	for i := range 40 {
		client, currency := "acme", "USD"
		if i%2 == 1 {
			client, currency = "globex", "EUR"
		}
		seeds = append(seeds, cycSeed{fmt.Sprintf("ovl-%02d", i), client, currency, int64(101 + 37*i), store.StatusApproved,
			cycDay1.Add(time.Duration(i) * 50 * time.Minute), "", false, false})
	}
	return seeds
}

// TestBillingCycles writes transactions into the database with no engine
// running, starts the engine and runs billing cycles through the API: the
// APPROVED transactions of the period are billed once, their BILLED
// versions reach the transactions topic, the invoices are right to the
// cent and reach the invoices topic; running the cycle again does
// nothing; overlapping cycles run at once bill and invoice each
// transaction once. It runs on both databases.
func TestBillingCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) { testBillingCycles(t, d) })
	}
}

func testBillingCycles(t *testing.T, d store.Dialect) {
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	dsn := "embedded" // SQLite in the engine's data directory
	if d == store.MySQL {
		dsn = storetest.MySQLDSN(t)
	}
	vars["BILLING_DATABASE_DSN"] = dsn
	// Credits are stamped by the store's clock: in the middle of day0.
	db, err := store.Open(t.Context(), dsn, store.DataDir(vars["BILLING_DATA_DIR"]),
		store.Clock(func() time.Time { return cycDay0.Add(12 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seeds := cycSeeds()
	for _, c := range []string{"acme", "globex"} {
		if err := db.CreateClient(t.Context(), store.Client{ID: c, Name: c, Email: c + "@example.com", Status: store.ClientActive}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var rows, refunds []store.Transaction
	for _, s := range seeds {
		rows = append(rows, s.transaction())
		if s.refunded {
			refunds = append(refunds, s.transaction())
		}
	}
	if err := db.UpsertTransactions(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Credit(t.Context(), refunds); err != nil {
		t.Fatal(err)
	}

	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"]
	run := &cycleRun{t: t, db: db, base: base, addr: b.Addr(), seeds: seeds}

	// Cycle A over day0.
	a := run.post(cycDay0, cycDay1, http.StatusCreated)
	var billedA []string
	for _, s := range seeds {
		if s.approvedIn(cycDay0, cycDay1) {
			billedA = append(billedA, s.id)
		}
	}
	if a["status"] != "COMPLETED" || a["billed"] != float64(len(billedA)) || a["invoices"] != float64(4) {
		t.Fatalf("cycle A: got %v, want COMPLETED with %d billed and 4 invoices", a, len(billedA))
	}
	idA := a["billing_cycle_id"].(string)
	run.checkRows(map[string][]string{idA: billedA})
	run.checkTransactionsTopic(billedA)
	invoicesA := run.invoices(idA)
	run.checkInvoicesA(invoicesA)
	run.checkInvoicesTopic(invoicesA)

	// The same cycle again: nothing to bill or invoice, nothing published.
	again := run.post(cycDay0, cycDay1, http.StatusCreated)
	if again["status"] != "COMPLETED" || again["billed"] != float64(0) || again["invoices"] != float64(0) || again["billing_cycle_id"] == idA {
		t.Errorf("cycle A again: got %v, want a new COMPLETED cycle with nothing billed or invoiced", again)
	}
	run.checkTransactionsTopic(billedA)
	run.checkInvoicesTopic(invoicesA)

	// B and C overlap, and run at once.
	var wg sync.WaitGroup
	var bc [2]map[string]any
	for i, p := range [][2]time.Time{cycB, cycC} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bc[i] = run.post(p[0], p[1], http.StatusCreated)
		}()
	}
	wg.Wait()
	run.checkOverlapping(bc, billedA, invoicesA)
}

// cycleRun drives and checks the billing cycle test.
type cycleRun struct {
	t     *testing.T
	db    *store.DB
	base  string
	addr  string
	seeds []cycSeed
}

// post runs a cycle over [from, to) through the API.
func (r *cycleRun) post(from, to time.Time, want int) map[string]any {
	body := fmt.Sprintf(`{"from":%q,"to":%q}`, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	resp, err := http.Post(r.base+"/api/v1/billing-cycles", "application/json", strings.NewReader(body))
	if err != nil {
		r.t.Errorf("POST billing cycle: %v", err)
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != want {
		r.t.Errorf("POST billing cycle %s: got %d %s, want %d", body, resp.StatusCode, b, want)
	}
	return out
}

// get decodes the JSON answer to GET path, which must be 200.
func (r *cycleRun) get(path string, into any) {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("GET %s: got %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
}

// apiInvoice is an invoice as the API answers it.
type apiInvoice struct {
	InvoiceID      string `json:"invoice_id"`
	InvoiceNumber  string `json:"invoice_number"`
	ClientID       string `json:"client_id"`
	BillingCycleID string `json:"billing_cycle_id"`
	Currency       string `json:"currency"`
	SubtotalMinor  int64  `json:"subtotal_minor"`
	CreditsMinor   int64  `json:"credits_minor"`
	TotalMinor     int64  `json:"total_minor"`
	Lines          []struct {
		Kind          string `json:"kind"`
		TransactionID string `json:"transaction_id"`
		Description   string `json:"description"`
		AmountMinor   int64  `json:"amount_minor"`
	} `json:"lines"`
}

// invoices lists the invoices of a cycle ("" for all), a page of 2 at a
// time, and checks each against GET /api/v1/invoices/{id}.
func (r *cycleRun) invoices(cycle string) []apiInvoice {
	r.t.Helper()
	var out []apiInvoice
	cursor := ""
	for range 100 {
		var page struct {
			Items      []apiInvoice `json:"items"`
			NextCursor string       `json:"next_cursor"`
		}
		r.get("/api/v1/invoices?limit=2&billing_cycle_id="+cycle+"&cursor="+cursor, &page)
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for _, inv := range out {
		var one apiInvoice
		r.get("/api/v1/invoices/"+inv.InvoiceID, &one)
		if fmt.Sprint(one) != fmt.Sprint(inv) {
			r.t.Errorf("GET invoice %s: got %+v, want %+v", inv.InvoiceID, one, inv)
		}
	}
	return out
}

// checkRows checks every seeded transaction in the database: those a
// cycle billed are BILLED by it, the others as they were.
func (r *cycleRun) checkRows(billedBy map[string][]string) {
	r.t.Helper()
	cycleOf := map[string]string{}
	for c, ids := range billedBy {
		for _, id := range ids {
			cycleOf[id] = c
		}
	}
	for _, s := range r.seeds {
		got, err := r.db.GetTransaction(r.t.Context(), s.id)
		if err != nil {
			r.t.Fatal(err)
		}
		c, billed := cycleOf[s.id]
		switch {
		case billed && (got.Status != store.StatusBilled || got.BillingCycleID != c || got.BilledAt.IsZero()):
			r.t.Errorf("%s: got %s by cycle %q, want BILLED by %s", s.id, got.Status, got.BillingCycleID, c)
		case !billed && (got.Status != s.status || got.BillingCycleID != ""):
			r.t.Errorf("%s: got %s by cycle %q, want %s as seeded", s.id, got.Status, got.BillingCycleID, s.status)
		}
	}
}

// checkTransactionsTopic checks that the transactions topic holds the
// BILLED version of each of ids once, and nothing else.
func (r *cycleRun) checkTransactionsTopic(ids []string) map[string]string {
	r.t.Helper()
	schema, err := registry(r.t).Schema("Transaction")
	if err != nil {
		r.t.Fatal(err)
	}
	recs := enginetest.ReadAll(r.t, r.addr, "transactions", len(ids), 2*time.Second, 60*time.Second)
	cycles := map[string]string{}
	for _, rec := range recs {
		v, err := registry(r.t).Decode(schema, rec.Value)
		if err != nil {
			r.t.Fatalf("decode: %v", err)
		}
		id := string(rec.Key)
		if _, dup := cycles[id]; dup {
			r.t.Errorf("transactions: %s published twice", id)
		}
		c, _ := v["billing_cycle_id"].(string)
		cycles[id] = c
		if v["status"] != "BILLED" || c == "" || v["transaction_id"] != id {
			r.t.Errorf("transactions: %s: got %v, want the BILLED version with its cycle", id, v)
		}
	}
	if len(recs) != len(ids) {
		r.t.Errorf("transactions: got %d records, want %d", len(recs), len(ids))
	}
	for _, id := range ids {
		if _, ok := cycles[id]; !ok {
			r.t.Errorf("transactions: %s missing", id)
		}
	}
	billed := enginetest.ReadAll(r.t, r.addr, "transactions.billed", len(ids), time.Second, 60*time.Second)
	if len(billed) != len(ids) {
		r.t.Errorf("transactions.billed: got %d records, want %d", len(billed), len(ids))
	}
	return cycles
}

// wantLine is an invoice line as the test computes it: kind, transaction
// and amount.
type wantLine struct {
	kind, id string
	amount   int64
}

// expectedA computes cycle A's invoices from the seeds, per "client
// currency": the charges of everything billed (by A or, earlier, by the
// stream) created before day1, in (created_at, id) order, then the
// credits.
func (r *cycleRun) expectedA() map[string][]wantLine {
	charged := slices.Clone(r.seeds)
	charged = slices.DeleteFunc(charged, func(s cycSeed) bool {
		return !s.approvedIn(cycDay0, cycDay1) && !(s.billed && s.created.Before(cycDay1))
	})
	slices.SortFunc(charged, func(a, b cycSeed) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	want := map[string][]wantLine{}
	for _, s := range charged {
		k := s.client + " " + s.currency
		want[k] = append(want[k], wantLine{"CHARGE", s.id, s.amount})
	}
	for _, s := range r.seeds {
		if s.refunded {
			k := s.client + " " + s.currency
			want[k] = append(want[k], wantLine{"CREDIT", s.id, -s.amount})
		}
	}
	return want
}

var invoiceNumber = regexp.MustCompile(`^INV-[0-9]{8}$`)

// checkInvoicesA checks cycle A's invoices line by line and to the cent.
func (r *cycleRun) checkInvoicesA(got []apiInvoice) {
	r.t.Helper()
	want := r.expectedA()
	if len(got) != len(want) {
		r.t.Errorf("cycle A: got %d invoices, want %d", len(got), len(want))
	}
	// Totals computed by hand, in minor units: USD cents, yen, EUR cents.
	totals := map[string][3]int64{
		"acme JPY":   {1507, 0, 1507},
		"acme USD":   {252050, 0, 252050},
		"globex EUR": {1104, 0, 1104},
		"globex USD": {1950, 1200, 750},
	}
	for _, inv := range got {
		k := inv.ClientID + " " + inv.Currency
		var lines []wantLine
		for _, l := range inv.Lines {
			lines = append(lines, wantLine{l.Kind, l.TransactionID, l.AmountMinor})
		}
		if !slices.Equal(lines, want[k]) {
			r.t.Errorf("invoice %s: lines %v, want %v", k, lines, want[k])
		}
		if tot := totals[k]; [3]int64{inv.SubtotalMinor, inv.CreditsMinor, inv.TotalMinor} != tot {
			r.t.Errorf("invoice %s: subtotal, credits, total %d, %d, %d; want %v", k, inv.SubtotalMinor, inv.CreditsMinor, inv.TotalMinor, tot)
		}
		if !invoiceNumber.MatchString(inv.InvoiceNumber) {
			r.t.Errorf("invoice %s: number %q", k, inv.InvoiceNumber)
		}
		for _, l := range inv.Lines {
			if l.TransactionID == "usd-2" && l.Description != "usd-2" {
				r.t.Errorf("a charge without description: got %q, want its id", l.Description)
			}
		}
	}
}

// checkInvoicesTopic checks that the invoices topic holds each of invs
// once, as the API shows it, and nothing else.
func (r *cycleRun) checkInvoicesTopic(invs []apiInvoice) {
	r.t.Helper()
	reg := registry(r.t)
	schema, err := reg.Schema("Invoice")
	if err != nil {
		r.t.Fatal(err)
	}
	recs := enginetest.ReadAll(r.t, r.addr, "invoices", len(invs), 2*time.Second, 60*time.Second)
	byID := map[string]apiInvoice{}
	for _, inv := range invs {
		byID[inv.InvoiceID] = inv
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		v, err := reg.Decode(schema, rec.Value)
		if err != nil {
			r.t.Fatalf("decode invoice: %v", err)
		}
		id := string(rec.Key)
		inv, ok := byID[id]
		if !ok || seen[id] {
			r.t.Errorf("invoices: %s unexpected or published twice", id)
			continue
		}
		seen[id] = true
		lines, _ := v["lines"].([]any)
		if v["invoice_id"] != id || v["invoice_number"] != inv.InvoiceNumber || v["client_id"] != inv.ClientID ||
			v["currency"] != inv.Currency || v["billing_cycle_id"] != inv.BillingCycleID || v["subtotal_minor"] != inv.SubtotalMinor ||
			v["credits_minor"] != inv.CreditsMinor || v["total_minor"] != inv.TotalMinor || len(lines) != len(inv.Lines) {
			r.t.Errorf("invoices: record %v, want %+v", v, inv)
		}
	}
	if len(recs) != len(invs) {
		r.t.Errorf("invoices: got %d records, want %d", len(recs), len(invs))
	}
}

// checkOverlapping checks cycles B and C, which ran at once: each
// transaction of their periods was billed by one of them (the one whose
// period alone holds it, where only one does), once, and is charged on one
// invoice; the totals are right.
func (r *cycleRun) checkOverlapping(bc [2]map[string]any, billedA []string, invoicesA []apiInvoice) {
	r.t.Helper()
	idB, _ := bc[0]["billing_cycle_id"].(string)
	idC, _ := bc[1]["billing_cycle_id"].(string)
	var ids []string
	for _, s := range r.seeds {
		if s.approvedIn(cycB[0], cycC[1]) {
			ids = append(ids, s.id)
		}
	}
	billedB, _ := bc[0]["billed"].(float64)
	billedC, _ := bc[1]["billed"].(float64)
	if bc[0]["status"] != "COMPLETED" || bc[1]["status"] != "COMPLETED" || int(billedB+billedC) != len(ids) {
		r.t.Fatalf("cycles B and C: got %v and %v; want COMPLETED, billing %d between them", bc[0], bc[1], len(ids))
	}
	cycles := r.checkTransactionsTopic(append(slices.Clone(billedA), ids...))
	byCycle := map[string][]string{}
	for _, id := range billedA {
		byCycle[cycles[id]] = append(byCycle[cycles[id]], id)
	}
	want := map[string]int64{}
	for _, s := range r.seeds {
		if !slices.Contains(ids, s.id) {
			continue
		}
		c := cycles[s.id]
		onlyB, onlyC := s.created.Before(cycC[0]), !s.created.Before(cycB[1])
		if (c != idB && c != idC) || (onlyB && c != idB) || (onlyC && c != idC) {
			r.t.Errorf("%s (created %s) billed by %q; B is %s, C is %s", s.id, s.created.Format(time.RFC3339), c, idB, idC)
		}
		byCycle[c] = append(byCycle[c], s.id)
		want[s.client+" "+s.currency] += s.amount
	}
	r.checkRows(byCycle)

	all := r.invoices("")
	got := map[string]int64{}
	onLines := map[string]int{}
	for _, inv := range all {
		if inv.BillingCycleID != idB && inv.BillingCycleID != idC {
			continue
		}
		got[inv.ClientID+" "+inv.Currency] += inv.TotalMinor
		for _, l := range inv.Lines {
			onLines[l.TransactionID]++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		r.t.Errorf("cycles B and C: invoiced %v, want %v", got, want)
	}
	for _, id := range ids {
		if onLines[id] != 1 {
			r.t.Errorf("%s is on %d invoice lines, want 1", id, onLines[id])
		}
	}
	if len(onLines) != len(ids) {
		r.t.Errorf("cycles B and C invoiced %d transactions, want %d", len(onLines), len(ids))
	}
	if n := int(bc[0]["invoices"].(float64) + bc[1]["invoices"].(float64)); n != len(all)-len(invoicesA) {
		r.t.Errorf("cycles B and C report %d invoices; %d were written", n, len(all)-len(invoicesA))
	}
	r.checkInvoicesTopic(all)
}

// TestBillingCycleEmails runs the whole of pipelines/billing.yaml, with
// its billing and email plugins, and a billing cycle through the seed's
// GET /executeBillingCycle/{interval}: each transaction the cycle bills
// and each invoice it writes is emailed once, to the client, and running
// the cycle again sends nothing.
func TestBillingCycleEmails(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := billingVars(t, env(t, b.Addr()))
	db, err := store.Open(t.Context(), "embedded", store.DataDir(vars["BILLING_DATA_DIR"]),
		store.Clock(func() time.Time { return cycDay0.Add(12 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seeds := cycSeeds()
	want := map[string]string{} // Message-ID prefix "kind.ref" -> recipient
	for _, c := range []string{"acme", "globex"} {
		if err := db.CreateClient(t.Context(), store.Client{ID: c, Name: c, Email: c + "@example.com", Status: store.ClientActive}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var rows []store.Transaction
	for _, s := range seeds {
		rows = append(rows, s.transaction())
		if s.approvedIn(cycDay0, cycDay1) {
			want["billed."+s.id] = s.client + "@example.com"
		}
	}
	if err := db.UpsertTransactions(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"]
	run := &cycleRun{t: t, db: db, base: base, addr: b.Addr(), seeds: seeds}
	path := "/executeBillingCycle/" + cycDay0.Format(time.RFC3339) + "/" + cycDay1.Format(time.RFC3339)
	var c map[string]any
	run.get(path, &c)
	if c["status"] != "COMPLETED" || c["invoices"] != float64(4) {
		t.Fatalf("cycle: got %v, want COMPLETED with 4 invoices", c)
	}
	for _, inv := range run.invoices(c["billing_cycle_id"].(string)) {
		want["invoice."+inv.InvoiceID] = inv.ClientID + "@example.com"
	}
	outbox := filepath.Join(vars["BILLING_DATA_DIR"], "outbox")
	eventually(t, 90*time.Second, func() error {
		if got := emailsIn(t, outbox); len(got) < len(want) {
			return fmt.Errorf("%d emails in %s, want %d", len(got), outbox, len(want))
		}
		return nil
	})
	run.get(path, &c) // again: nothing billed, nothing invoiced, nothing sent
	if c["billed"] != float64(0) || c["invoices"] != float64(0) {
		t.Errorf("cycle again: got %v, want nothing done", c)
	}
	time.Sleep(3 * time.Second)
	got := emailsIn(t, outbox)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("emails (kind.ref -> recipient):\n got %v\nwant %v", got, want)
	}
}

// emailsIn reads the .eml files in dir: the "kind.ref" of each
// Message-ID, and its recipient.
func emailsIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(b), "\r\n\r\n")
		var id, to string
		for _, l := range strings.Split(head, "\r\n") {
			k, v, _ := strings.Cut(l, ":")
			switch strings.ToLower(k) {
			case "message-id":
				id, _, _ = strings.Cut(strings.Trim(strings.TrimSpace(v), "<>"), "@")
			case "to":
				to = strings.TrimSpace(v)
				if a, err := mail.ParseAddress(to); err == nil {
					to = a.Address
				}
			}
		}
		if _, dup := out[id]; dup {
			t.Errorf("two emails with Message-ID %s", id)
		}
		out[id] = to
	}
	return out
}
