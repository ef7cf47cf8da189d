package engine_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/enginetest"
)

// TestAPITokens runs the engine with BILLING_API_TOKEN and
// BILLING_API_READ_TOKEN set: health, readiness, metrics and the dashboard
// stay open; /api/ needs a token, the read token only for GET.
func TestAPITokens(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	vars["BILLING_API_TOKEN"] = "write-s3cret"
	vars["BILLING_API_READ_TOKEN"] = "read-s3cret"
	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"]
	client := `{"client_id":"tok-1","name":"Token Ltd","email":"billing@token.example"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"health without a token", "GET", "/healthz", "", "", 200},
		{"readiness without a token", "GET", "/readyz", "", "", 200},
		{"metrics without a token", "GET", "/metrics", "", "", 200},
		{"dashboard without a token", "GET", "/", "", "", 200},
		{"stats without a token", "GET", "/api/v1/stats", "", "", 401},
		{"stats with a wrong token", "GET", "/api/v1/stats", "nope", "", 401},
		{"stats with the read token", "GET", "/api/v1/stats", "read-s3cret", "", 200},
		{"stats with the token", "GET", "/api/v1/stats", "write-s3cret", "", 200},
		{"create with the read token", "POST", "/api/v1/clients", "read-s3cret", client, 401},
		{"create with the token", "POST", "/api/v1/clients", "write-s3cret", client, 201},
		{"read back with the read token", "GET", "/api/v1/clients/tok-1", "read-s3cret", "", 200},
		{"billing cycle with the read token", "GET", "/executeBillingCycle/24h", "read-s3cret", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: got %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, body)
			}
			if tc.want == 401 {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
					t.Errorf("401 answered as %q, want application/problem+json", ct)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}
