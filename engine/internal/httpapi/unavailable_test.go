package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/store"
)

// downStore is a store whose CreateTransaction fails with err (or, with
// err nil, waits for its context), and whose Ping answers ping.
type downStore struct {
	httpapi.CRUDStore // nil: the other methods are not called
	err               error
	ping              error
}

func (s downStore) CreateTransaction(ctx context.Context, _ store.Transaction, _ *store.Idempotency) error {
	if s.err != nil {
		return s.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s downStore) Ping(context.Context) error { return s.ping }

// TestDatabaseUnavailable checks the answer to a create when the store
// fails: 503 with Retry-After when the database cannot be reached or does
// not answer, 500 for any other failure, and never the driver's words.
func TestDatabaseUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	down := errors.New("ping: invalid connection")
	for _, tc := range []struct {
		name string
		st   downStore
		want int
	}{
		{"connection refused", downStore{err: refused}, http.StatusServiceUnavailable},
		{"connection dropped, database down", downStore{err: errors.New("store: create transaction: invalid connection"), ping: down}, http.StatusServiceUnavailable},
		{"no answer within the store timeout", downStore{ping: down}, http.StatusServiceUnavailable},
		{"other failure, database up", downStore{err: errors.New("store: create transaction: something else")}, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := httpapi.New()
			httpapi.RegisterCRUD(s, tc.st, httpapi.CRUDStoreTimeout(50*time.Millisecond))
			srv := httptest.NewServer(s)
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/api/v1/transactions", "application/json",
				strings.NewReader(`{"client_id":"c-1","amount_minor":100,"currency":"EUR"}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", ct)
			}
			if got := string(b); strings.Contains(got, "connection") || strings.Contains(got, "store:") {
				t.Errorf("the answer leaks the error: %s", got)
			}
			if ra := resp.Header.Get("Retry-After"); (tc.want == http.StatusServiceUnavailable) != (ra != "") {
				t.Errorf("Retry-After: got %q with status %d", ra, resp.StatusCode)
			}
		})
	}
}
