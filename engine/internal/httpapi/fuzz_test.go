package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// FuzzCRUDBodies posts arbitrary bodies to the create and update
// endpoints: every answer is a known status with a JSON body, never a
// server error.
func FuzzCRUDBodies(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"c-1","amount_minor":100,"currency":"EUR"}`,
		`{"transaction_id":"x","client_id":"c-1","amount_minor":-1,"currency":"eur","status":"BILLED"}`,
		`{"name":"A","email":"a@example.com"}`,
		`{"status":"REFUNDED","description":"\u0000"}`,
		`{"amount_minor":1e400}`, `[]`, `null`, `{"a":`, "",
	} {
		f.Add(s)
	}
	db := storetest.Open(f, store.SQLite)
	s := httpapi.New()
	httpapi.RegisterCRUD(s, db)
	if err := db.CreateClient(f.Context(), store.Client{ID: "c-1", Name: "C", Email: "c@example.com", Status: store.ClientActive}, nil); err != nil {
		f.Fatal(err)
	}
	if err := db.CreateTransaction(f.Context(), store.Transaction{ID: "t-1", ClientID: "c-1", AmountMinor: 1, Currency: "EUR", Status: store.StatusApproved}, nil); err != nil {
		f.Fatal(err)
	}
	known := map[int]bool{200: true, 201: true, 400: true, 404: true, 409: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range []string{"POST /api/v1/transactions", "POST /api/v1/clients", "PUT /api/v1/transactions/t-1", "PUT /api/v1/clients/c-1"} {
			method, path, _ := strings.Cut(target, " ")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
			if !known[w.Code] {
				t.Fatalf("%s %q: status %d: %s", target, body, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: body not JSON: %s", target, body, w.Body)
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %q: error without problem+json", target, body)
			}
		}
	})
}
