package httpapi_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store/storetest"
)

// BenchmarkCreateTransaction measures POST /api/v1/transactions over
// loopback TCP on each database: a pool of concurrent clients, each
// request a new transaction (row + outbox entry in one database
// transaction). It reports requests per second and the p50 and p99
// latency.
func BenchmarkCreateTransaction(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			a := serve(b, storetest.Open(b, d))
			a.must(b, http.StatusCreated, "POST", "/api/v1/clients", `{"client_id":"bench","name":"Bench","email":"bench@example.com"}`)
			benchCreate(b, a, 32)
		})
	}
}

func benchCreate(b *testing.B, a *api, workers int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	body := `{"client_id":"bench","amount_minor":1999,"currency":"EUR","description":"benchmark"}`
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t := time.Now()
				resp, err := client.Post(a.url+"/api/v1/transactions", "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t)
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
	if p, _, err := a.db.OutboxCounts(b.Context()); err != nil || p < int64(b.N) {
		b.Errorf("outbox: %d pending, %v; want at least %d", p, err, b.N)
	}
}
