package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
)

// Loadgen with an API creates the clients its transactions name, once:
// a second run finds them and goes on.
func TestLoadgenCreatesClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the engine; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	startEngine(t, vars)
	api := "http://" + vars["BILLING_HTTP_LISTEN"]
	var progress strings.Builder
	cfg := engine.LoadgenConfig{Brokers: []string{b.Addr()}, SchemasDir: filepath.Join(enginetest.RepoRoot(t), "schemas"),
		Count: 20, Clients: 3, API: api, Progress: &progress}
	for run := range 2 {
		n, err := engine.Loadgen(t.Context(), cfg)
		if err != nil || n != 20 {
			t.Fatalf("run %d: Loadgen = %d, %v; want 20 records", run, n, err)
		}
	}
	if !strings.Contains(progress.String(), "3 clients in place") {
		t.Errorf("progress says nothing of the clients: %q", progress.String())
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("client-%04d", i)
		resp, err := http.Get(api + "/api/v1/clients/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Email string }
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || c.Email != id+"@example.com" {
			t.Errorf("GET client %s: %s, %+v, %v", id, resp.Status, c, err)
		}
	}

	// An API that is not there fails before anything is produced.
	cfg.API = "http://" + enginetest.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if n, err := engine.Loadgen(ctx, cfg); err == nil || n != 0 || !strings.Contains(err.Error(), "create client client-0001") {
		t.Errorf("Loadgen against no API = %d, %v; want an error naming the client", n, err)
	}
}
