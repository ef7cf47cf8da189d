package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// serveBilling is the CRUD and billing API on db behind a real TCP server.
func serveBilling(t testing.TB, db *store.DB, opts ...httpapi.Option) *api {
	s := httpapi.New(opts...)
	httpapi.RegisterCRUD(s, db)
	httpapi.RegisterBilling(s, db, billing.NewCycles(db))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &api{url: srv.URL, db: db}
}

// seedBilling writes APPROVED transactions on 2026-03-01 for two clients
// and currencies, as the stream would, and returns what each client owes
// per currency once they are billed.
func seedBilling(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var rows []store.Transaction
	owed := map[string]int64{}
	for i, tc := range []struct {
		client, currency string
		amount           int64
	}{{"c-1", "USD", 1999}, {"c-1", "USD", 1}, {"c-1", "JPY", 1500}, {"c-2", "EUR", 1005}} {
		created := day.Add(time.Duration(i) * time.Hour)
		rows = append(rows, store.Transaction{ID: fmt.Sprintf("t-%d", i), ClientID: tc.client, AmountMinor: tc.amount, Currency: tc.currency,
			Status: store.StatusApproved, Description: fmt.Sprintf("item %d", i), CreatedAt: created, UpdatedAt: created})
		owed[tc.client+" "+tc.currency] += tc.amount
	}
	if err := db.UpsertTransactions(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	return owed
}

const march1 = `{"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z"}`

func TestBillingCycleAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		owed := seedBilling(t, db)
		a := serveBilling(t, db)
		r := a.must(t, http.StatusCreated, "POST", "/api/v1/billing-cycles", march1)
		c := r.json(t)
		id, _ := c["billing_cycle_id"].(string)
		if !strings.HasPrefix(id, "bc_") || r.header.Get("Location") != "/api/v1/billing-cycles/"+id {
			t.Errorf("id %q, Location %q", id, r.header.Get("Location"))
		}
		want := map[string]any{"interval": "2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", "period_start": "2026-03-01T00:00:00.000Z",
			"period_end": "2026-03-02T00:00:00.000Z", "status": "COMPLETED", "billed": float64(4), "invoices": float64(3)}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("cycle %s: got %v, want %v", k, c[k], v)
			}
		}
		if c["finished_at"] == nil || c["created_at"] == nil || c["error"] != nil {
			t.Errorf("cycle: got %v", c)
		}
		if got := a.must(t, http.StatusOK, "GET", "/api/v1/billing-cycles/"+id, "").body; !bytes.Equal(got, r.body) {
			t.Errorf("GET cycle: got %s, want %s", got, r.body)
		}

		var list struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(a.must(t, http.StatusOK, "GET", "/api/v1/invoices?billing_cycle_id="+id, "").body, &list); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, inv := range list.Items {
			key := fmt.Sprint(inv["client_id"], " ", inv["currency"])
			total, _ := inv["total_minor"].(float64)
			got[key] = int64(total)
			lines, _ := inv["lines"].([]any)
			if inv["billing_cycle_id"] != id || !strings.HasPrefix(fmt.Sprint(inv["invoice_number"]), "INV-") || len(lines) == 0 ||
				inv["subtotal_minor"] != inv["total_minor"] || inv["credits_minor"] != float64(0) {
				t.Errorf("invoice %v", inv)
			}
			one := a.must(t, http.StatusOK, "GET", "/api/v1/invoices/"+fmt.Sprint(inv["invoice_id"]), "").json(t)
			if fmt.Sprint(one) != fmt.Sprint(inv) {
				t.Errorf("GET invoice: got %v, want %v", one, inv)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(owed) {
			t.Errorf("invoice totals: got %v, want %v", got, owed)
		}
		// Paging by client.
		p := a.must(t, http.StatusOK, "GET", "/api/v1/invoices?client_id=c-1&limit=1", "").json(t)
		next, _ := p["next_cursor"].(string)
		if items, _ := p["items"].([]any); len(items) != 1 || next == "" {
			t.Fatalf("first page: %v", p)
		}
		p = a.must(t, http.StatusOK, "GET", "/api/v1/invoices?client_id=c-1&limit=1&cursor="+next, "").json(t)
		if items, _ := p["items"].([]any); len(items) != 1 || p["next_cursor"] != nil {
			t.Errorf("second page: %v", p)
		}

		// Again: a new cycle that finds nothing to do.
		again := a.must(t, http.StatusCreated, "POST", "/api/v1/billing-cycles", march1).json(t)
		if again["billing_cycle_id"] == id || again["billed"] != float64(0) || again["invoices"] != float64(0) || again["status"] != "COMPLETED" {
			t.Errorf("again: got %v", again)
		}
		// The original path runs a cycle too, answering 200.
		seed := a.must(t, http.StatusOK, "GET", "/executeBillingCycle/daily", "")
		if s := seed.json(t); s["interval"] != "daily" || s["status"] != "COMPLETED" ||
			seed.header.Get("Content-Location") != "/api/v1/billing-cycles/"+fmt.Sprint(s["billing_cycle_id"]) {
			t.Errorf("executeBillingCycle: got %v, headers %v", s, seed.header)
		}
		a.must(t, http.StatusOK, "GET", "/executeBillingCycle/2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", "")
	})
}

func TestBillingCycleIdempotencyKey(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	seedBilling(t, db)
	a := serveBilling(t, db)
	var wg sync.WaitGroup
	answers := make([]response, 3)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = a.do(t, "POST", "/api/v1/billing-cycles", march1, "Idempotency-Key", "close-march-1")
		}()
	}
	wg.Wait()
	for i, r := range answers {
		if r.status != http.StatusCreated || !bytes.Equal(r.body, answers[0].body) {
			t.Errorf("answer %d: got %d %s, want the first answer %d %s", i, r.status, r.body, answers[0].status, answers[0].body)
		}
	}
	later := a.must(t, http.StatusCreated, "POST", "/api/v1/billing-cycles", march1, "Idempotency-Key", "close-march-1")
	if !bytes.Equal(later.body, answers[0].body) || later.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: got %s (replayed %q), want %s", later.body, later.header.Get("Idempotent-Replayed"), answers[0].body)
	}
	if c := answers[0].json(t); c["billed"] != float64(4) {
		t.Errorf("the cycle billed %v, want 4", c["billed"])
	}
	a.must(t, http.StatusUnprocessableEntity, "POST", "/api/v1/billing-cycles", `{"interval":"24h"}`, "Idempotency-Key", "close-march-1")
}

func TestBillingBadRequests(t *testing.T) {
	a := serveBilling(t, storetest.Open(t, store.SQLite))
	const post = "/api/v1/billing-cycles"
	a.checkBad(t, []badInput{
		{"unknown interval", "POST", post, `{"interval":"fortnightly"}`, 400, "interval", "Go duration"},
		{"negative duration", "POST", post, `{"interval":"-24h"}`, 400, "interval", "at least 1ms"},
		{"too long", "POST", post, `{"interval":"9000h"}`, 400, "interval", "at most 8784h"},
		{"nothing", "POST", post, `{}`, 400, "interval", "required"},
		{"both forms", "POST", post, `{"interval":"24h","from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z"}`, 400, "interval", "not both"},
		{"from alone", "POST", post, `{"from":"2026-03-01T00:00:00Z"}`, 400, "to", "required"},
		{"to alone", "POST", post, `{"to":"2026-03-01T00:00:00Z"}`, 400, "from", "required"},
		{"bad from", "POST", post, `{"from":"yesterday","to":"2026-03-01T00:00:00Z"}`, 400, "from", "RFC 3339"},
		{"reversed", "POST", post, `{"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z"}`, 400, "to", "later than from"},
		{"over a year", "POST", post, `{"from":"2026-03-01T00:00:00Z","to":"2027-03-03T00:00:00Z"}`, 400, "to", "366 days"},
		{"number", "POST", post, `{"interval":24}`, 400, "", `field "interval"`},
		{"unknown field", "POST", post, `{"interval":"24h","every":"day"}`, 400, "", "unknown field"},
		{"seed path", "GET", "/executeBillingCycle/fortnightly", "", 400, "interval", "Go duration"},
		{"seed path, no interval", "GET", "/executeBillingCycle/", "", 400, "interval", "Go duration"},
		{"unknown cycle", "GET", "/api/v1/billing-cycles/bc_0000000000000000", "", 404, "", "billing cycle bc_0000000000000000 not found"},
		{"unknown invoice", "GET", "/api/v1/invoices/inv_nope", "", 404, "", "invoice inv_nope not found"},
		{"id too long", "GET", "/api/v1/invoices/" + strings.Repeat("x", 65), "", 404, "", "not found"},
		{"bad limit", "GET", "/api/v1/invoices?limit=0", "", 400, "limit", "from 1 to"},
		{"bad cursor", "GET", "/api/v1/invoices?cursor=nope", "", 400, "cursor", "next_cursor"},
		{"unknown parameter", "GET", "/api/v1/invoices?status=PAID", "", 400, "status", "unknown"},
		{"wrong method", "DELETE", post, "", 405, "", "allowed: POST"},
		{"wrong method on an invoice", "PUT", "/api/v1/invoices/inv_1", "", 405, "", "allowed: GET, HEAD"},
		{"no route", "GET", "/api/v1/nothing-here", "", 404, "", "no route"},
	})
	if r := a.do(t, "DELETE", post, ""); r.header.Get("Allow") != "POST" {
		t.Errorf("405: Allow %q, want POST", r.header.Get("Allow"))
	}
}

// TestExecuteBillingCycleNeedsTheToken checks that the seed's path, a GET
// that bills, needs the API token like /api/ and is not open to the read
// token.
func TestExecuteBillingCycleNeedsTheToken(t *testing.T) {
	a := serveBilling(t, storetest.Open(t, store.SQLite), httpapi.WithToken("s3cret"), httpapi.WithReadToken("look"))
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/executeBillingCycle/24h", "", http.StatusUnauthorized},
		{"/executeBillingCycle/24h", "look", http.StatusUnauthorized},
		{"/executeBillingCycle/24h", "wrong", http.StatusUnauthorized},
		{"/executeBillingCycle/24h", "s3cret", http.StatusOK},
		{"/api/v1/invoices", "look", http.StatusOK},
		{"/api/v1/invoices", "", http.StatusUnauthorized},
	} {
		var headers []string
		if tc.token != "" {
			headers = []string{"Authorization", "Bearer " + tc.token}
		}
		r := a.do(t, "GET", tc.path, "", headers...)
		if r.status != tc.want {
			t.Errorf("GET %s with token %q: got %d, want %d (%s)", tc.path, tc.token, r.status, tc.want, r.body)
		}
		if tc.want == http.StatusUnauthorized {
			r.problem(t)
		}
	}
	r := a.do(t, "POST", "/api/v1/billing-cycles", `{"interval":"24h"}`, "Authorization", "Bearer look")
	if r.status != http.StatusUnauthorized {
		t.Errorf("POST with the read token: got %d, want 401", r.status)
	}
}
