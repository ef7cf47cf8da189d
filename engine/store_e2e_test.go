package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// getCRUD fetches url and decodes a JSON object; status is 0 when the
// server does not answer.
func getCRUD(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// waitFor polls GET url until cond holds for the answer, or fails after
// timeout.
func waitFor(t *testing.T, url string, timeout time.Duration, cond func(int, map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var status int
	var body map[string]any
	for time.Now().Before(deadline) {
		status, body = getCRUD(t, url)
		if cond(status, body) {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: last answer %d %v", url, status, body)
	return nil
}

// TestStreamTransactionsReachTheDatabase produces transactions straight
// to Kafka, with a client that is not sarama, and reads them back through
// the CRUD API: the db-upsert pipeline mirrors the topic, the newer
// updated_at winning. It runs on both databases.
func TestStreamTransactionsReachTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			b := enginetest.StartBroker(t)
			vars := env(t, b.Addr())
			vars["BILLING_DATABASE_DSN"] = storetest.DSN(t, d)
			startEngine(t, vars)
			api := "http://" + vars["BILLING_HTTP_LISTEN"] + "/api/v1/transactions/"

			schema, err := registry(t).Schema("Transaction")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Millisecond)
			version := func(status string, updated time.Time) *kgo.Record {
				tx := store.Transaction{ID: "kafka-1", ClientID: "client-from-elsewhere", AmountMinor: 4200, Currency: "GBP",
					Status: store.TxStatus(status), Description: "produced to Kafka", CreatedAt: now, UpdatedAt: updated}
				if status == "BILLED" {
					tx.BilledAt, tx.BillingCycleID = updated, "cycle-7"
				}
				v, err := schema.Encode(tx.Record())
				if err != nil {
					t.Fatal(err)
				}
				return &kgo.Record{Key: []byte(tx.ID), Value: v}
			}
			produceKgo(t, b.Addr(), []*kgo.Record{version("APPROVED", now)})
			got := waitFor(t, api+"kafka-1", 30*time.Second, func(s int, _ map[string]any) bool { return s == http.StatusOK })
			if got["amount_minor"] != float64(4200) || got["currency"] != "GBP" || got["status"] != "APPROVED" || got["client_id"] != "client-from-elsewhere" {
				t.Errorf("GET after produce: got %v", got)
			}
			// A newer version wins; an older one that arrives later does not.
			produceKgo(t, b.Addr(), []*kgo.Record{version("BILLED", now.Add(2*time.Second)), version("DECLINED", now.Add(time.Second))})
			got = waitFor(t, api+"kafka-1", 30*time.Second, func(_ int, m map[string]any) bool { return m["status"] == "BILLED" })
			if got["billing_cycle_id"] != "cycle-7" || got["billed_at"] == nil {
				t.Errorf("billed version: got %v", got)
			}
			time.Sleep(500 * time.Millisecond)
			if _, got = getCRUD(t, api+"kafka-1"); got["status"] != "BILLED" {
				t.Errorf("an older version overwrote the newer: got %v", got)
			}
		})
	}
}

// TestAPITransactionsArePublished creates and updates a transaction
// through the API and reads the transactions topic read_committed: each
// version is there once, keyed by transaction_id, and the processor
// routes it.
func TestAPITransactionsArePublished(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"] + "/api/v1/"
	post := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
	}
	post("POST", "clients", `{"client_id":"c-1","name":"C","email":"c@example.com"}`, http.StatusCreated)
	for i := range 5 {
		post("POST", "transactions", fmt.Sprintf(`{"transaction_id":"api-%d","client_id":"c-1","amount_minor":%d,"currency":"EUR"}`, i, 100+i), http.StatusCreated)
	}
	post("PUT", "transactions/api-0", `{"status":"BILLED"}`, http.StatusOK)

	recs := enginetest.ReadAll(t, b.Addr(), "transactions", 6, 2*time.Second, 30*time.Second)
	counts := map[string]int{}
	for _, r := range recs {
		counts[string(r.Key)]++
	}
	want := map[string]int{"api-0": 2, "api-1": 1, "api-2": 1, "api-3": 1, "api-4": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("records per key on transactions: got %v, want %v", counts, want)
	}
	billed := enginetest.ReadAll(t, b.Addr(), "transactions.billed", 1, time.Second, 30*time.Second)
	if len(billed) != 1 || string(billed[0].Key) != "api-0" {
		t.Errorf("transactions.billed: got %d records, want api-0 once", len(billed))
	}
}
