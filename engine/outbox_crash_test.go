package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
)

// waitReady waits until the child's API answers /readyz with 200.
func (c *child) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + c.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("engine not ready within 60s")
}

// TestOutboxSurvivesSIGKILL posts transactions to the engine process
// while SIGKILLing it twice, restarts it, and checks that every
// transaction in the database is on the transactions topic exactly once
// (read_committed), every acknowledged one included.
func TestOutboxSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	api := "http://" + vars["BILLING_HTTP_LISTEN"] + "/api/v1/"
	var acked sync.Map
	var seq atomic.Int64
	for round := range 2 {
		c := startChild(t, bin, vars)
		c.waitReady(t)
		if round == 0 {
			resp, err := http.Post(api+"clients", "application/json", strings.NewReader(`{"client_id":"c-1","name":"C","email":"c@example.com"}`))
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("create client: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		ctx, stop := context.WithCancel(t.Context())
		var n atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					id := fmt.Sprintf("kill-%05d", seq.Add(1))
					body := fmt.Sprintf(`{"transaction_id":%q,"client_id":"c-1","amount_minor":100,"currency":"EUR"}`, id)
					resp, err := http.Post(api+"transactions", "application/json", strings.NewReader(body))
					if err != nil {
						return // killed
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated {
						acked.Store(id, true)
						n.Add(1)
					}
				}
			}()
		}
		for n.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		c.kill(t)
		stop()
		wg.Wait()
		t.Logf("round %d: SIGKILL after %d acknowledged creates", round, n.Load())
	}
	startChild(t, bin, vars).waitReady(t)

	// Another process may open the engine's SQLite file: read the truth.
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(vars["BILLING_DATA_DIR"], "billing.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pending, _, err := db.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox entries still pending after restart", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows := map[string]bool{}
	for cursor := ""; ; {
		p, err := db.ListTransactions(t.Context(), store.TransactionFilter{Limit: 500, After: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range p.Items {
			rows[x.ID] = true
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	acked.Range(func(k, _ any) bool {
		if !rows[k.(string)] {
			t.Errorf("acknowledged transaction %s is not in the database", k)
		}
		return true
	})
	recs := enginetest.ReadAll(t, b.Addr(), "transactions", len(rows), 2*time.Second, 60*time.Second)
	counts := map[string]int{}
	for _, r := range recs {
		counts[string(r.Key)]++
	}
	for id := range rows {
		if counts[id] != 1 {
			t.Errorf("%s: on the topic %d times, want 1", id, counts[id])
		}
		delete(counts, id)
	}
	if len(counts) > 0 {
		t.Errorf("%d records on the topic are not in the database", len(counts))
	}
	t.Logf("%d transactions in the database, %d records on the topic", len(rows), len(recs))
}
