package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// BenchmarkQueries measures status-query latency while two instances of the
// processor (with the status table) consume at full speed: queries go to
// one instance, which answers the keys of its own partitions locally and
// forwards the others. It reports p50/p99 for both kinds.
func BenchmarkQueries(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), benchRecords)
		ctx, cancel := context.WithCancel(context.Background())
		var bases []string
		var engines []*engine.Engine
		var dones []chan error
		for j := 0; j < 2; j++ {
			e, base, done := startBenchEngine(b, ctx, br.Addr(), "engine/testdata/bench/status.yaml", "bench-query")
			engines, bases, dones = append(engines, e), append(bases, base), append(dones, done)
		}
		local, forwarded := queryWhileRunning(b, bases[0], engines)
		cancel()
		for _, d := range dones {
			if err := <-d; err != nil {
				b.Fatal(err)
			}
		}
		report := func(name string, d []time.Duration) {
			if len(d) == 0 {
				b.Fatalf("no %s answers", name)
			}
			slices.Sort(d)
			p50, p99 := d[len(d)/2], d[len(d)*99/100]
			b.ReportMetric(float64(p50.Microseconds())/1000, name+"_p50_ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, name+"_p99_ms")
			b.Logf("%s queries: %d, p50 %s, p99 %s", name, len(d), p50, p99)
		}
		report("local", local)
		report("forwarded", forwarded)
	}
}

func startBenchEngine(b *testing.B, ctx context.Context, addr, file, app string) (*engine.Engine, string, chan error) {
	b.Helper()
	listen := enginetest.FreeAddr(b)
	vars := map[string]string{
		"BILLING_KAFKA_BROKERS": addr, "BILLING_APPLICATION_ID": app,
		"BILLING_DATA_DIR": b.TempDir(), "BILLING_HTTP_LISTEN": listen,
	}
	path := filepath.Join(enginetest.RepoRoot(b), file)
	e, err := engine.New(path, engine.WithProcessor(router.Name, router.New), engine.WithLogger(benchLogger()),
		engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return e, "http://" + listen, done
}

// queryWhileRunning queries random already-produced transactions on base
// until the instances have branched every record, and returns the
// latencies of answered queries, split by who served them.
func queryWhileRunning(b *testing.B, base string, engines []*engine.Engine) (local, forwarded []time.Duration) {
	b.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(3 * time.Minute)
	total := func() int64 {
		var n int64
		for _, e := range engines {
			n += branched(e)
		}
		return n
	}
	for total() < benchRecords && time.Now().Before(deadline) {
		done := total()
		if done < 1000 {
			time.Sleep(time.Millisecond)
			continue
		}
		// A key among the first half of what has been processed.
		id := fmt.Sprintf("tx-bench-%08d", 1+rng.IntN(int(done/2)))
		start := time.Now()
		resp, err := client.Get(base + "/api/v1/transactions/" + id + "/status")
		if err != nil {
			b.Fatal(err)
		}
		var body struct {
			ServedBy string `json:"served_by"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			continue
		}
		if body.ServedBy == base {
			local = append(local, took)
		} else {
			forwarded = append(forwarded, took)
		}
	}
	return local, forwarded
}
