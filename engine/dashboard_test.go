package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/dashboard/browsertest"
)

// dashboardToken is the API token of the engine the dashboard test runs.
const dashboardToken = "dashboard-test-token"

// dashboardClients are the clients the dashboard test creates; the
// transactions it produces belong to them (engine.NewTxGen names clients
// client-0001 and up).
var dashboardClients = []struct{ id, name, email string }{
	{"client-0001", "Acme Ltd", "billing@acme.example"},
	{"client-0002", "Globex Corporation", "ap@globex.example"},
	{"client-0003", "Initech", "invoices@initech.example"},
	{"client-0004", "Umbrella plc", "finance@umbrella.example"},
	{"client-0005", "Stark Industries", "billing@stark.example"},
	{"client-0006", "Wayne Enterprises", "accounts@wayne.example"},
}

// TestDashboard runs the stream pipelines of pipelines/billing.yaml with an
// API token, produces transactions (and some records that go to the DLQ)
// in the background, and drives the dashboard at / in headless Chromium:
// the page asks for the token; the counts it shows grow; the status lookup
// finds a produced transaction and shows the 404 detail of an unknown one;
// a dead letter is listed with its reason; a client shows its transactions
// and, after a billing cycle, its invoice. It saves a full-page screenshot
// to the test's artifact directory and, when DASHBOARD_SCREENSHOT is set,
// to that path (that is how docs/dashboard.png is made).
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a browser; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	vars["BILLING_API_TOKEN"] = dashboardToken
	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"]

	for _, c := range dashboardClients {
		apiCall(t, http.MethodPost, base+"/api/v1/clients", fmt.Sprintf(`{"client_id":%q,"name":%q,"email":%q}`, c.id, c.name, c.email), http.StatusCreated)
	}
	lookupID := produceDashboardLoad(t, b.Addr(), len(dashboardClients))

	p := browsertest.Open(t, base+"/")
	p.WaitFor("the page to ask for the token", 20*time.Second,
		`document.getElementById('conn-state').dataset.state === 'auth' && !document.getElementById('auth-banner').hidden`)
	p.Do(chromedp.SendKeys(chromedp.ID("token"), dashboardToken), chromedp.Click(chromedp.ID("token-save")))
	p.WaitFor("the event stream", 20*time.Second, `document.getElementById('conn-state').dataset.state === 'live'`)

	// The counts grow while transactions flow.
	consumed := p.Number("total-consumed", 30*time.Second, 1)
	produced := p.Number("total-produced", 30*time.Second, 1)
	p.WaitFor("the consumed count to grow", 30*time.Second, fmt.Sprintf(`%s > %d`, browsertest.NumberOf("total-consumed"), consumed))
	p.WaitFor("the produced count to grow", 30*time.Second, fmt.Sprintf(`%s > %d`, browsertest.NumberOf("total-produced"), produced))
	if later := p.Number("total-consumed", time.Second, 0); later <= consumed {
		t.Errorf("consumed shown: got %d after %d, want it to grow", later, consumed)
	}
	p.WaitFor("a positive consumption rate", 30*time.Second, browsertest.NumberOf("rate-consumed")+` > 0`)
	p.WaitFor("the processor's branch rows", 10*time.Second,
		`document.querySelector('#throughput tr[data-key="o|processor|branch|transactions.approved"]') !== null`)
	p.WaitFor("the consumer lag of the processor", 10*time.Second,
		`document.querySelectorAll('#lag tr[data-key="processor|transactions"] .part[data-lag]').length > 0`)

	// The status of a transaction that was produced, and of one that was not.
	lookup(p, lookupID)
	p.WaitFor("the status of "+lookupID, 30*time.Second, `document.getElementById('tx-status').textContent === 'APPROVED'`)
	lookup(p, "no-such-transaction")
	p.WaitFor("the 404 detail", 10*time.Second, `document.getElementById('tx-error').textContent === '404 Not Found: no such key'`)

	// Dead letters with their reasons.
	p.WaitFor("an undecodable record among the dead letters", 30*time.Second,
		`[...document.querySelectorAll('#dlq tbody tr')].some(tr => tr.cells[2].textContent === 'decode' && tr.cells[5].textContent.startsWith('garbage-') && tr.cells[3].textContent.length > 0)`)
	p.WaitFor("an unrouted record among the dead letters", 30*time.Second,
		`[...document.querySelectorAll('#dlq tbody tr')].some(tr => tr.cells[2].textContent === 'branch' && tr.cells[3].textContent.length > 0)`)
	t.Logf("dead letter shown: %s", p.Text(`[...document.querySelector('#dlq tbody tr').cells].map(c => c.textContent).join(' | ')`))

	// A client's transactions, then its invoice after a billing cycle.
	p.WaitFor("the clients", 10*time.Second, fmt.Sprintf(`document.querySelectorAll('#clients tbody tr').length === %d`, len(dashboardClients)))
	p.Do(chromedp.Click(chromedp.CSS(`#clients tr[data-client="client-0001"] button`)))
	p.WaitFor("client-0001's transactions", 30*time.Second, `document.querySelectorAll('#client-tx tbody tr:not(.more)').length > 0`)
	eventually(t, 30*time.Second, func() error { // the cycle bills what the database holds
		if got, answer := apiStatus(t, http.MethodGet, base+"/api/v1/transactions/"+lookupID, ""); got != http.StatusOK {
			return fmt.Errorf("GET /api/v1/transactions/%s: got %d %s, want 200", lookupID, got, answer)
		}
		return nil
	})
	apiCall(t, http.MethodPost, base+"/api/v1/billing-cycles", `{"interval":"1h"}`, http.StatusCreated)
	p.Do(chromedp.Click(chromedp.CSS(`#clients tr[data-client="client-0001"] button`)))
	p.WaitFor("client-0001's invoice", 30*time.Second, `/^INV-\d+$/.test(document.querySelector('#client-inv tbody td')?.textContent)`)

	// The cycle billed the approved transaction: the status table follows.
	p.WaitFor("the status BILLED after the cycle", 30*time.Second, fmt.Sprintf(`(() => {
		if (document.getElementById('tx-status').textContent === 'BILLED') return true;
		document.getElementById('tx-id').value = %q;
		document.getElementById('tx-lookup').click();
		return false;
	})()`, lookupID))
	// A sparkline with some history; longer for the README's picture.
	points := 8
	if os.Getenv("DASHBOARD_SCREENSHOT") != "" {
		points = 40
	}
	p.WaitFor("the sparkline", time.Duration(points)*2*time.Second+30*time.Second,
		fmt.Sprintf(`document.getElementById('spark-line').getAttribute('d').split('L').length >= %d`, points))
	p.CheckConsole()
	screenshot(t, p)
}

// produceDashboardLoad creates one APPROVED transaction and returns its id,
// then produces transactions of the first clients in the background until
// the test ends, with undecodable records and records of an unknown status
// among them, which go to the DLQ.
func produceDashboardLoad(t *testing.T, addr string, clients int) string {
	t.Helper()
	schema, err := registry(t).Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	const lookupID = "tx-dashboard-lookup"
	first := encodeTx(t, schema, lookupID, "client-0001", "APPROVED", 12_345, time.Now().UTC().Truncate(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	if err := cl.ProduceSync(ctx, first).FirstErr(); err != nil {
		cancel()
		cl.Close()
		t.Fatalf("produce %s: %v", lookupID, err)
	}
	var (
		wg      sync.WaitGroup
		loadErr error
	)
	wg.Go(func() {
		gen := engine.NewTxGen(11, clients, "dash")
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			recs, err := dashboardBatch(schema, gen, i)
			if err == nil {
				err = cl.ProduceSync(ctx, recs...).FirstErr()
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					loadErr = err
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		cl.Close()
		if loadErr != nil {
			t.Errorf("background producer: %v", loadErr)
		}
	})
	return lookupID
}

// dashboardBatch is the i-th batch of the dashboard test's load: ten
// transactions (about 100 a second: the engine under -race keeps up on a
// busy machine) and, every fifth batch, a record that is not Avro at all
// and a transaction of a status no branch takes.
func dashboardBatch(schema *avro.Schema, gen *engine.TxGen, i int) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	add := func(tx map[string]any) error {
		v, err := schema.Encode(tx)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(tx["transaction_id"].(string)), Value: v})
		return nil
	}
	for range 10 {
		if err := add(gen.Next()); err != nil {
			return nil, err
		}
	}
	if i%5 == 0 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "garbage-%04d", i), Value: garbageValue(i / 5)})
		tx := gen.Next()
		tx["status"] = "PENDING"
		if err := add(tx); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// apiCall sends body to url with the dashboard test's token and fails the
// test unless the answer has status want.
func apiCall(t *testing.T, method, url, body string, want int) {
	t.Helper()
	if got, answer := apiStatus(t, method, url, body); got != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, url, got, answer, want)
	}
}

// apiStatus sends body to url with the dashboard test's token and returns
// the answer's status and body.
func apiStatus(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, url, err)
	}
	return resp.StatusCode, string(answer)
}

// lookup asks the page for the status of a transaction.
func lookup(p *browsertest.Page, id string) {
	p.Do(chromedp.SetValue(chromedp.ID("tx-id"), id), chromedp.Click(chromedp.ID("tx-lookup")))
}

// screenshot saves a full-page PNG to the test's artifact directory and,
// when DASHBOARD_SCREENSHOT names a file, there too.
func screenshot(t *testing.T, p *browsertest.Page) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.Context(), 30*time.Second)
	defer cancel()
	// The pointer away from the rows, so that none shows as hovered.
	if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, 0, 0)); err != nil {
		t.Fatalf("move the pointer: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	paths := []string{filepath.Join(t.ArtifactDir(), "dashboard.png")}
	if extra := os.Getenv("DASHBOARD_SCREENSHOT"); extra != "" {
		paths = append(paths, extra)
	}
	for _, path := range paths {
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Errorf("save the screenshot: %v", err)
			continue
		}
		t.Logf("screenshot: %s", path)
	}
}
