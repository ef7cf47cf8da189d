package dashboard_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/billing-engine/billing/engine/internal/dashboard"
	"github.com/billing-engine/billing/engine/internal/dashboard/browsertest"
	"github.com/billing-engine/billing/engine/internal/httpapi"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path, wantType string
		wantStatus     int
		wantBody       string
	}{
		{"/", "text/html; charset=utf-8", http.StatusOK, `<script type="module" src="/dashboard/dashboard.js">`},
		{"/dashboard/dashboard.js", "text/javascript; charset=utf-8", http.StatusOK, "function sseParser"},
		{"/dashboard/dashboard.css", "text/css; charset=utf-8", http.StatusOK, "font-variant-numeric: tabular-nums"},
		{"/dashboard/favicon.svg", "image/svg+xml", http.StatusOK, "<svg"},
		{"/dashboard/" + dashboard.CurrenciesAsset, "application/json", http.StatusOK, `"JPY":0`},
		{"/dashboard/nope.js", "application/problem+json", http.StatusNotFound, "no dashboard asset /dashboard/nope.js"},
		{"/dashboard/", "application/problem+json", http.StatusNotFound, "no dashboard asset"},
		{"/dashboard/x/index.html", "application/problem+json", http.StatusNotFound, "no dashboard asset"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("GET %s: got status %d, want %d", tc.path, resp.StatusCode, tc.wantStatus)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.wantType {
			t.Errorf("GET %s: got Content-Type %q, want %q", tc.path, got, tc.wantType)
		}
		if !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("GET %s: body does not contain %q", tc.path, tc.wantBody)
		}
		if tc.wantStatus == http.StatusOK {
			if got := resp.Header.Get("Content-Security-Policy"); got != dashboard.ContentSecurityPolicy {
				t.Errorf("GET %s: got Content-Security-Policy %q, want %q", tc.path, got, dashboard.ContentSecurityPolicy)
			}
			if resp.Header.Get("ETag") == "" {
				t.Errorf("GET %s: no ETag", tc.path)
			}
		}
	}
}

func TestHandlerRevalidates(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/dashboard/dashboard.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dashboard/dashboard.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with the ETag: got status %d, want %d", resp.StatusCode, http.StatusNotModified)
	}
}

func TestCurrencies(t *testing.T) {
	rec := httptest.NewRecorder()
	dashboard.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dashboard/"+dashboard.CurrenciesAsset, nil))
	var got map[string]int
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "BHD": 3, "KWD": 3} {
		if d, ok := got[code]; !ok || d != want {
			t.Errorf("digits of %s: got %d (present %v), want %d", code, d, ok, want)
		}
	}
	if _, ok := got["XXX"]; ok {
		t.Error("XXX (no currency) is listed")
	}
}

// fakeAPI answers the calls the page makes, as the engine does, behind a
// bearer token. Its event stream sends three stats events, cut into pieces
// at awkward places, and then ends, so that the page must reconnect.
type fakeAPI struct {
	token    string
	consumed atomic.Int64
	streams  atomic.Int64
}

func (f *fakeAPI) routes() http.Handler {
	api := httpapi.New(httpapi.WithToken(f.token))
	dash := dashboard.Handler()
	api.Handle("GET /{$}", dash.ServeHTTP)
	api.Handle("GET /dashboard/{file}", dash.ServeHTTP)
	api.Handle("GET /api/v1/events", f.events)
	api.Handle("GET /api/v1/dlq", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{{
			"time": "2026-11-26T09:00:00.123Z", "pipeline": "processor", "stage": "decode",
			"reason": "avro: unknown schema fingerprint 0102030405060708", "topic": "transactions",
			"partition": 3, "offset": 42, "key": "garbage-1",
		}}})
	})
	api.Handle("GET /api/v1/transactions/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "tx-1" {
			httpapi.WriteProblem(w, r, http.StatusNotFound, "no such key")
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{
			"transaction_id": "tx-1", "status": "BILLED", "partition": 5, "served_by": "",
			"record": map[string]any{"transaction_id": "tx-1", "client_id": "acme", "status": "BILLED",
				"amount_minor": 123456, "currency": "EUR", "created_at": "2026-11-26T09:00:00.000Z", "updated_at": "2026-11-26T09:00:01.000Z"},
		})
	})
	api.Handle("GET /api/v1/clients", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{
			{"client_id": "acme", "name": "ACME Ltd", "email": "billing@acme.example", "status": "ACTIVE"},
			{"client_id": "globex", "name": "Globex", "email": "ap@globex.example", "status": "SUSPENDED"},
		}})
	})
	api.Handle("GET /api/v1/transactions", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{{
			"transaction_id": "tx-1", "client_id": r.URL.Query().Get("client_id"), "amount_minor": 500, "currency": "JPY",
			"status": "BILLED", "created_at": "2026-11-26T09:00:00.000Z", "billed_at": "2026-11-26T09:00:01.000Z",
		}}})
	})
	api.Handle("GET /api/v1/invoices", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{{
			"invoice_id": "inv-1", "invoice_number": "INV-00000001", "client_id": r.URL.Query().Get("client_id"), "currency": "BHD",
			"period_start": "2026-11-25T00:00:00Z", "period_end": "2026-11-26T00:00:00Z",
			"subtotal_minor": 1500, "credits_minor": 250, "total_minor": 1250, "lines": []any{map[string]any{}, map[string]any{}},
		}}})
	})
	return api
}

// repartitionLag is the lag of a pipeline with a long name on a topic with
// a long name, eight partitions: the lag card must show it without
// scrolling sideways.
var repartitionLag = func() string {
	var b strings.Builder
	for p := range 8 {
		fmt.Fprintf(&b, `,{"pipeline":"processor.client_daily","topic":"billing-client_daily-repartition","partition":%d,"lag":%d}`, p, p*1000)
	}
	return b.String()
}()

func (f *fakeAPI) events(w http.ResponseWriter, r *http.Request) {
	f.streams.Add(1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	write := func(s string) bool {
		_, err := io.WriteString(w, s)
		return err == nil && rc.Flush() == nil
	}
	if !write(": hello\nretry: 100\n\n") {
		return
	}
	for i := range 3 {
		n := f.consumed.Add(250)
		data := fmt.Sprintf(`{"time":%q,"pipelines":[{"name":"processor","consumed":%d,"stages":[`+
			`{"name":"decode","outputs":[],"dropped":0,"dlq":1},`+
			`{"name":"branch","outputs":[{"topic":"transactions.approved","records":%d}],"dropped":%d,"dlq":0}]}],`+
			`"lag":[{"pipeline":"processor","topic":"transactions","partition":0,"lag":%d}%s],"dlq_total":1}`,
			time.Now().UTC().Format(time.RFC3339Nano), n, n-1, n/100, 17+i, repartitionLag)
		// CRLF line ends, a chunk that ends between CR and LF, and one
		// that ends inside the JSON.
		ev := "event: stats\r\ndata: " + data + "\r\n\r\n"
		cut := strings.Index(ev, "\n") // just after the first CR
		if !write(ev[:cut]) || !write(ev[cut:cut+40]) || !write(ev[cut+40:]) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// TestDashboardPageWithFakeAPI drives the page in Chromium against fakeAPI:
// the token prompt, the event stream's framing and reconnection, rates,
// the status lookup and its error, dead letters, and a client's
// transactions and invoices with amounts in their currency's minor units.
func TestDashboardPageWithFakeAPI(t *testing.T) {
	f := &fakeAPI{token: "s3cret"}
	srv := httptest.NewServer(f.routes())
	defer srv.Close()
	p := browsertest.Open(t, srv.URL+"/")

	p.WaitFor("the page to ask for the token", 10*time.Second, `document.getElementById('conn-state').dataset.state === 'auth' && !document.getElementById('auth-banner').hidden`)
	p.Do(chromedp.SendKeys(chromedp.ID("token"), "s3cret"), chromedp.Click(chromedp.ID("token-save")))
	p.WaitFor("the banner to go", 10*time.Second, `document.getElementById('auth-banner').hidden`)

	first := p.Number("total-consumed", 10*time.Second, 0)
	p.WaitFor("the consumed count to grow across a reconnection", 15*time.Second,
		fmt.Sprintf(`Number(document.getElementById('total-consumed').textContent.replace(/\D/g, '')) > %d + 1000`, first))
	if n := f.streams.Load(); n < 2 {
		t.Errorf("event streams opened: got %d, want at least 2 (the page reconnects when one ends)", n)
	}
	p.WaitFor("a rate", 10*time.Second, `/\d/.test(document.getElementById('rate-consumed').textContent)`)
	p.WaitFor("the stage rows", 5*time.Second, `document.querySelector('#throughput tr[data-key="o|processor|branch|transactions.approved"]') !== null`+
		` && document.querySelector('#throughput tr[data-key="q|processor|decode"]') !== null`)
	p.WaitFor("the lag", 5*time.Second, `Number(document.querySelector('#lag tr[data-key="processor|transactions"] .part[data-partition="0"]')?.dataset.lag) >= 17`)

	p.WaitFor("the long lag row", 5*time.Second, `document.querySelector('#lag tr[data-key="processor.client_daily|billing-client_daily-repartition"] .part.high') !== null`)
	if got := p.Text(`(() => { const w = document.getElementById('lag').parentElement; return w.scrollWidth > w.clientWidth ? w.scrollWidth + ' px in ' + w.clientWidth : '' })()`); got != "" {
		t.Errorf("the lag table scrolls sideways: %s", got)
	}

	p.WaitFor("the dead letter", 10*time.Second, `document.querySelector('#dlq td.reason')?.textContent === 'avro: unknown schema fingerprint 0102030405060708'`)

	p.Do(chromedp.SendKeys(chromedp.ID("tx-id"), "nope"), chromedp.Click(chromedp.ID("tx-lookup")))
	p.WaitFor("the 404 detail", 10*time.Second, `document.getElementById('tx-error').textContent === '404 Not Found: no such key'`)
	p.Do(chromedp.SetValue(chromedp.ID("tx-id"), "tx-1"), chromedp.Click(chromedp.ID("tx-lookup")))
	p.WaitFor("the status", 10*time.Second, `document.getElementById('tx-status').textContent === 'BILLED' && document.getElementById('tx-error').hidden`)
	if got := p.Text(`document.getElementById('tx-fields').textContent`); !strings.Contains(got, "1,234.56 EUR") {
		t.Errorf("status fields: got %q, want the amount 1,234.56 EUR", got)
	}

	p.WaitFor("the clients", 10*time.Second, `document.querySelectorAll('#clients tbody tr').length === 2`)
	p.Do(chromedp.Click(chromedp.CSS(`#clients tr[data-client="acme"] button`)))
	p.WaitFor("the client's transactions and invoices", 10*time.Second,
		`document.querySelector('#client-tx tbody td.num')?.textContent === '500 JPY'`+
			` && document.querySelector('#client-inv tbody tr')?.textContent.includes('1.250 BHD')`)
	p.CheckConsole()
}

// TestDashboardPageWithoutToken checks that the page works at once, and
// never asks for a token, when the API needs none.
func TestDashboardPageWithoutToken(t *testing.T) {
	srv := httptest.NewServer((&fakeAPI{}).routes())
	defer srv.Close()
	p := browsertest.Open(t, srv.URL+"/")
	p.WaitFor("the consumed count", 10*time.Second, `document.getElementById('total-consumed').textContent.replace(/\D/g, '') !== ''`)
	p.WaitFor("the clients", 10*time.Second, `document.querySelectorAll('#clients tbody tr').length === 2`)
	if got := p.Text(`String(document.getElementById('auth-banner').hidden) + ' ' + document.getElementById('conn-state').dataset.state`); strings.HasPrefix(got, "false") || strings.HasSuffix(got, " auth") {
		t.Errorf("token prompt: got banner hidden, state = %s; want true and not auth", got)
	}
	p.CheckConsole()
}
