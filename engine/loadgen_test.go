package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/stream"
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

// Loadgen partitions by the engine's partitioner: each transaction lands on
// the partition where the engine puts its later versions (BILLED,
// REFUNDED), so the status table holds one row per transaction. (It used
// sarama's default FNV hash, and the table listed an APPROVED row in one
// partition beside the BILLED row in another.)
func TestLoadgenPartitionsLikeTheEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the broker; run without -short")
	}
	b := enginetest.StartBroker(t)
	cfg := engine.LoadgenConfig{Brokers: []string{b.Addr()}, SchemasDir: filepath.Join(enginetest.RepoRoot(t), "schemas"), Count: 200, Clients: 3}
	if n, err := engine.Loadgen(t.Context(), cfg); err != nil || n != 200 {
		t.Fatalf("Loadgen = %d, %v; want 200 records", n, err)
	}
	recs := enginetest.ReadAll(t, b.Addr(), "transactions", 200, time.Second, 30*time.Second)
	if len(recs) != 200 {
		t.Fatalf("read %d records, want 200", len(recs))
	}
	for _, r := range recs {
		if want := stream.PartitionFor(r.Key, 8); r.Partition != want {
			t.Errorf("transaction %s on partition %d, the engine's partitioner says %d", r.Key, r.Partition, want)
		}
	}
}
