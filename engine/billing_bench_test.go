package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// BenchmarkBilling measures billed transactions per second end to end, on
// SQLite and on MariaDB: APPROVED transactions on the transactions topic
// in; each BILLED in the database (store.Bill, one call per batch), its
// BILLED version through the processor to transactions.billed, and one
// email per transaction over SMTP to a local server (in the benchmark's
// process, on the same cores, counting what it receives), recorded in the
// emails-sent log. The clock runs from the first record the processor
// consumes until the database holds every transaction BILLED and every
// email sent. Each dialect runs on a broker of its own, and the plain
// sarama consume-and-produce ceiling is measured on the first, over the
// same records, for the ratio. Run it with -benchtime 1x;
// BENCH_BILLING_N sets the transactions per dialect (default 30,000) and
// BENCH_BILLING_DB=sqlite or mysql runs one dialect only.
func BenchmarkBilling(b *testing.B) {
	n := 30_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_BILLING_N")); err == nil && v > 0 {
		n = v
	}
	if os.Getenv("GOGC") == "" { // as cmd/engine runs
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	for i := 0; i < b.N; i++ {
		var ceiling float64
		rates := map[store.Dialect]float64{}
		for _, d := range []store.Dialect{store.SQLite, store.MySQL} {
			if only := os.Getenv("BENCH_BILLING_DB"); only != "" && only != string(d) {
				continue
			}
			br := enginetest.StartBroker(b)
			dsn := storetest.DSN(b, d)
			benchClients(b, dsn, 50)
			produceApproved(b, br.Addr(), n, 50)
			if ceiling == 0 {
				ceiling = benchCeiling(b, br.Addr(), n)
			}
			rates[d] = benchBilling(b, br.Addr(), dsn, n)
		}
		b.ReportMetric(ceiling, "ceiling_rec/s")
		for d, r := range rates {
			b.ReportMetric(r, string(d)+"_billed/s")
			b.ReportMetric(r/ceiling, string(d)+"_ratio")
		}
		b.Logf("transactions=%d ceiling=%.0f rec/s billed end to end: sqlite=%.0f/s (%.3f) mysql=%.0f/s (%.3f)",
			n, ceiling, rates[store.SQLite], rates[store.SQLite]/ceiling, rates[store.MySQL], rates[store.MySQL]/ceiling)
	}
}

// benchClients creates clients bc-000.. in the database at dsn.
func benchClients(b *testing.B, dsn string, clients int) {
	b.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for c := range clients {
		id := fmt.Sprintf("bc-%03d", c)
		if err := db.CreateClient(context.Background(), store.Client{ID: id, Name: "Client " + id, Email: id + "@example.com", Status: store.ClientActive}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTx is a transaction of the billing benchmarks, unbilled.
func benchTx(id, client string, amount int64, currency, status string, at time.Time) map[string]any {
	return map[string]any{
		"transaction_id": id, "client_id": client, "amount_minor": amount,
		"currency": currency, "status": status, "description": "order " + id,
		"created_at": at, "updated_at": at, "billed_at": nil, "billing_cycle_id": nil,
	}
}

// produceApproved writes n APPROVED transactions of the clients to the
// transactions topic.
func produceApproved(b *testing.B, addr string, n, clients int) {
	b.Helper()
	schema, err := registry(b).Schema("Transaction")
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"), kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]*kgo.Record, 0, 5_000)
	for i := range n {
		id := fmt.Sprintf("bt-%08d", i)
		v, err := schema.Encode(benchTx(id, fmt.Sprintf("bc-%03d", i%clients), int64(100+i%9_900), "USD", "APPROVED", now))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: v})
		if len(recs) == cap(recs) || i == n-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// benchBilling runs pipelines/billing.yaml over the records on addr with
// the database at dsn and a local SMTP server, and returns transactions
// billed and emailed per second.
func benchBilling(b *testing.B, addr, dsn string, n int) float64 {
	b.Helper()
	smtp := enginetest.StartSMTP(b, enginetest.WithCountOnly())
	dir := b.TempDir()
	vars := map[string]string{
		"BILLING_KAFKA_BROKERS": addr,
		"BILLING_DATA_DIR":      dir,
		"BILLING_HTTP_LISTEN":   enginetest.FreeAddr(b),
		"BILLING_DATABASE_DSN":  dsn,
		"BILLING_SMTP_ADDR":     smtp.Addr(),
		"BILLING_PLUGIN_DIR":    enginetest.BuildBillingPlugins(b),
	}
	path := filepath.Join(enginetest.RepoRoot(b), "pipelines", "billing.yaml")
	e, err := engine.New(path, engine.WithProcessor(router.Name, router.New), engine.WithLogger(benchLogger()),
		engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(context.Background(), dsn, store.DataDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cancel, done := runUntilConsuming(b, e)
	start := time.Now()
	if os.Getenv("BENCH_LOG") != "" { // where the records are, every 250ms
		go func() {
			for range time.Tick(250 * time.Millisecond) {
				snap := e.Stats().Snapshot()
				b.Logf("%5dms processor=%d billing=%d notify=%d store=%d", time.Since(start).Milliseconds(),
					snap["consumed/processor"], snap["consumed/billing"], snap["consumed/notify"], snap["consumed/store"])
				if snap["consumed/notify"] >= int64(n) {
					return
				}
			}
		}()
	}
	deadline := time.After(10 * time.Minute)
	// The engine's counters are cheap to read; the database is asked once
	// the email pipeline has consumed every billed transaction.
	for e.Stats().Snapshot()["consumed/notify"] < int64(n) {
		select {
		case err := <-done:
			b.Fatalf("engine stopped: %v", err)
		case <-deadline:
			b.Fatalf("after 10m: %d of %d consumed by notify", e.Stats().Snapshot()["consumed/notify"], n)
		case <-time.After(5 * time.Millisecond):
		}
	}
	for {
		billed, emailed := billingProgress(b, db)
		if billed >= int64(n) && emailed >= int64(n) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("engine stopped: %v", err)
		case <-deadline:
			b.Fatalf("after 10m: %d of %d billed, %d emailed", billed, n, emailed)
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := smtp.Count(); got != n {
		b.Errorf("%s: %d emails received, want %d", db, got, n)
	}
	return float64(n) / elapsed.Seconds()
}

// billingProgress reads how many transactions are BILLED and emailed.
func billingProgress(b *testing.B, db *store.DB) (billed, emailed int64) {
	b.Helper()
	counts, err := db.CountByStatus(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	emailed, err = db.CountEmailsSent(context.Background(), "billed")
	if err != nil {
		b.Fatal(err)
	}
	return counts[store.StatusBilled], emailed
}
