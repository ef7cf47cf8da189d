package httpapi_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"github.com/billing-engine/billing/engine/store"
)

func TestIdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-1")
		body := `{"client_id":"c-1","amount_minor":500,"currency":"USD"}`
		first := a.must(t, http.StatusCreated, "POST", "/api/v1/transactions", body, "Idempotency-Key", "order-42")
		// The same request again, even with other spacing, gets the same
		// status and body, and creates nothing.
		for _, b := range []string{body, `{ "currency":"USD", "client_id":"c-1", "amount_minor":500 }`} {
			again := a.do(t, "POST", "/api/v1/transactions", b, "Idempotency-Key", "order-42")
			if again.status != first.status || !bytes.Equal(again.body, first.body) {
				t.Errorf("replay: got %d %s, want %d %s", again.status, again.body, first.status, first.body)
			}
			if again.header.Get("Idempotent-Replayed") != "true" {
				t.Error("replay: no Idempotent-Replayed header")
			}
		}
		if n := count(t, a, "c-1"); n != 1 {
			t.Errorf("got %d transactions after replays, want 1", n)
		}
		// Another body with the same key is refused.
		p := a.must(t, http.StatusUnprocessableEntity, "POST", "/api/v1/transactions",
			`{"client_id":"c-1","amount_minor":501,"currency":"USD"}`, "Idempotency-Key", "order-42").problem(t)
		if len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
			t.Errorf("reused key: got %+v", p)
		}
		// Keys are scoped per route: the same key on clients is new.
		a.must(t, http.StatusCreated, "POST", "/api/v1/clients", `{"name":"B","email":"b@example.com"}`, "Idempotency-Key", "order-42")
		// A malformed key is refused.
		p = a.must(t, http.StatusBadRequest, "POST", "/api/v1/transactions", body, "Idempotency-Key", "has space").problem(t)
		if len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
			t.Errorf("malformed key: got %+v", p)
		}
		// A failed request stores nothing: once fixed, the key works.
		a.must(t, http.StatusUnprocessableEntity, "POST", "/api/v1/transactions", `{"client_id":"c-1","amount_minor":0,"currency":"USD"}`, "Idempotency-Key", "k-fix")
		a.must(t, http.StatusCreated, "POST", "/api/v1/transactions", `{"client_id":"c-1","amount_minor":1,"currency":"USD"}`, "Idempotency-Key", "k-fix")
	})
}

func TestIdempotencyKeyConcurrentRequests(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-1")
		const n = 12
		var wg sync.WaitGroup
		answers := make([]response, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = a.do(t, "POST", "/api/v1/transactions", `{"client_id":"c-1","amount_minor":7,"currency":"EUR"}`, "Idempotency-Key", "race")
			}()
		}
		wg.Wait()
		for i, r := range answers {
			if r.status != http.StatusCreated || !bytes.Equal(r.body, answers[0].body) {
				t.Errorf("request %d: got %d %s, want 201 %s", i, r.status, r.body, answers[0].body)
			}
		}
		if got := count(t, a, "c-1"); got != 1 {
			t.Errorf("got %d transactions, want 1", got)
		}
	})
}

// count returns how many transactions client has, through the store.
func count(t *testing.T, a *api, client string) int {
	t.Helper()
	p, err := a.db.ListTransactions(t.Context(), store.TransactionFilter{ClientID: client, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Items)
}
