package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/bench"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// soakSample is one reading of the engine process during the soak.
type soakSample struct {
	at         time.Duration // since the start
	rssKiB     int64         // the engine and its plugin processes
	goroutines float64       // the engine's
	heapBytes  float64       // the engine's Go heap in use
	fds        float64       // the engine's open file descriptors
	consumed   int64         // by the processor
}

// BenchmarkSoak runs the whole billing flow (pipelines/billing.yaml with
// its plugins, SQLite, an SMTP sink) at a fixed rate for a long time and
// samples the engine's RSS (with its plugins), goroutines, Go heap and open
// files every SOAK_SAMPLE (default 10s). It reports the growth of each from
// the first sample after the warm-up (the first fifth of the run, at least
// two minutes) to the mean of the last fifth, and fails when goroutines or open files grow by
// more than 10% or RSS by more than 25%: what a leak would show. At the end
// every APPROVED transaction must be billed and emailed once.
//
// Settings: SOAK_DURATION (default 10m), SOAK_RATE (transactions per
// second, default 1000). Run it with -benchtime 1x.
func BenchmarkSoak(b *testing.B) {
	duration := envDuration(b, "SOAK_DURATION", 10*time.Minute)
	every := envDuration(b, "SOAK_SAMPLE", 10*time.Second)
	rate := envInt(b, "SOAK_RATE", 1000)
	for range b.N {
		br := enginetest.StartBroker(b)
		dsn := storetest.DSN(b, store.SQLite)
		const clients = 50
		benchClients(b, dsn, clients)
		smtp := enginetest.StartSMTP(b, enginetest.WithCountOnly())
		dir := b.TempDir()
		p := scnStartEngine(b, br.Addr(), scnScenario{key: "soak", app: "billing", file: "pipelines/billing.yaml"}, map[string]string{
			"BILLING_DATA_DIR":     dir,
			"BILLING_DATABASE_DSN": dsn,
			"BILLING_SMTP_ADDR":    smtp.Addr(),
			"BILLING_PLUGIN_DIR":   enginetest.BuildBillingPlugins(b),
		})
		p.WaitFor(b, time.Minute, func(map[string]int64) bool { return true })

		ctx, cancel := context.WithCancel(context.Background())
		approved := make(chan int, 1)
		go func() { approved <- soakProduce(ctx, b, br.Addr(), rate, clients) }()
		start := time.Now()
		var samples []soakSample
		tick := time.NewTicker(every)
		for time.Since(start) < duration {
			<-tick.C
			s := soakRead(b, p, time.Since(start))
			samples = append(samples, s)
			// Printed, not logged: a benchmark's log is cut after a few lines.
			fmt.Printf("soak %6s rss=%6.1f MiB goroutines=%4.0f heap=%6.1f MiB fds=%3.0f consumed=%d\n",
				s.at.Round(time.Second), float64(s.rssKiB)/1024, s.goroutines, s.heapBytes/(1<<20), s.fds, s.consumed)
		}
		tick.Stop()
		cancel()
		n := <-approved

		db, err := store.Open(context.Background(), dsn, store.DataDir(dir))
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			billed, emailed := billingProgress(b, db)
			if billed >= int64(n) && emailed >= int64(n) {
				if billed != int64(n) || emailed != int64(n) {
					b.Errorf("billed %d and emailed %d, want %d each", billed, emailed, n)
				}
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("after the soak: %d billed, %d emailed of %d approved", billed, emailed, n)
			}
			time.Sleep(time.Second)
		}
		db.Close()
		if got := smtp.Count(); got != n {
			b.Errorf("SMTP server received %d emails, want %d", got, n)
		}
		p.Stop(b)
		soakReport(b, samples, rate, n)
	}
}

// soakProduce writes transactions to the topic at rate per second until ctx
// ends, 80% APPROVED, the rest DECLINED, and returns how many were
// APPROVED.
func soakProduce(ctx context.Context, b *testing.B, addr string, rate, clients int) int {
	schema, err := registry(b).Schema("Transaction")
	if err != nil {
		b.Error(err)
		return 0
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Error(err)
		return 0
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	approved := 0
	tick := time.NewTicker(10 * time.Millisecond) // rate/100 records per tick
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			if err := cl.Flush(context.Background()); err != nil {
				b.Error(err)
			}
			return approved
		case <-tick.C:
		}
		for range max(1, rate/100) {
			id := fmt.Sprintf("soak-%09d", i)
			status := "APPROVED"
			if rng.IntN(5) == 0 {
				status = "DECLINED"
			} else {
				approved++
			}
			now := time.Now().UTC().Truncate(time.Millisecond)
			v, err := schema.Encode(benchTx(id, fmt.Sprintf("bc-%03d", i%clients), int64(100+rng.IntN(99_900)), "EUR", status, now))
			if err != nil {
				b.Error(err)
				return approved
			}
			// Not with ctx: a record counted is a record produced.
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(id), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Errorf("produce: %v", err)
				}
			})
			i++
		}
	}
}

// soakRead samples the engine: RSS from /proc, the rest from /metrics.
func soakRead(b *testing.B, p *bench.Child, at time.Duration) soakSample {
	s := soakSample{at: at}
	var err error
	if s.rssKiB, err = bench.RSS(p.Pid()); err != nil {
		b.Fatalf("RSS: %v", err)
	}
	resp, err := http.Get(p.API() + "/metrics")
	if err != nil {
		b.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatalf("parse /metrics: %v", err)
	}
	gauge := func(name string) float64 {
		if f := fams[name]; f != nil && len(f.Metric) > 0 {
			return f.Metric[0].GetGauge().GetValue()
		}
		b.Fatalf("/metrics has no %s", name)
		return 0
	}
	s.goroutines = gauge("go_goroutines")
	s.heapBytes = gauge("go_memstats_heap_inuse_bytes")
	s.fds = gauge("process_open_fds")
	if snap, err := p.Stats(); err == nil {
		s.consumed = snap["consumed/processor"]
	}
	return s
}

// soakReport logs the growth of each reading after the warm-up and fails
// the benchmark on a leak.
func soakReport(b *testing.B, samples []soakSample, rate, approved int) {
	if len(samples) < 10 {
		b.Fatalf("%d samples: run the soak longer (SOAK_DURATION) or sample more often (SOAK_SAMPLE)", len(samples))
	}
	// The warm-up is the first fifth of the run, and at least two minutes
	// (the caches and the database fill up), but at most half of it.
	warm := len(samples) / 5
	for warm < len(samples)/2 && samples[warm].at < 2*time.Minute {
		warm++
	}
	base, tail := samples[warm], samples[len(samples)-len(samples)/5:]
	growth := func(get func(soakSample) float64) float64 {
		var sum float64
		for _, s := range tail {
			sum += get(s)
		}
		return (sum/float64(len(tail)) - get(base)) / get(base)
	}
	rows := []struct {
		name  string
		get   func(soakSample) float64
		limit float64
	}{
		{"RSS (engine and plugins)", func(s soakSample) float64 { return float64(s.rssKiB) }, 0.25},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 0.10},
		{"open files", func(s soakSample) float64 { return s.fds }, 0.10},
		{"Go heap in use", func(s soakSample) float64 { return s.heapBytes }, -1},
	}
	var out strings.Builder
	last := samples[len(samples)-1]
	fmt.Fprintf(&out, "soak: %s at %d transactions/s (%d approved, each billed and emailed once), %d samples, warm-up %s\n",
		last.at.Round(time.Second), rate, approved, len(samples), base.at.Round(time.Second))
	fmt.Fprintf(&out, "| reading | after warm-up | last fifth (mean) | growth | limit |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		g := growth(r.get)
		var sum float64
		for _, s := range tail {
			sum += r.get(s)
		}
		limit := "-"
		if r.limit > 0 {
			limit = fmt.Sprintf("%+.0f%%", 100*r.limit)
			if g > r.limit {
				b.Errorf("%s grew %.1f%% after the warm-up (limit %.0f%%)", r.name, 100*g, 100*r.limit)
			}
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %+.1f%% | %s |\n", r.name, soakValue(r.name, r.get(base)), soakValue(r.name, sum/float64(len(tail))), 100*g, limit)
	}
	fmt.Print(out.String())
	b.ReportMetric(100*growth(rows[0].get), "rss_growth_%")
	b.ReportMetric(100*growth(rows[1].get), "goroutine_growth_%")
}

func soakValue(name string, v float64) string {
	switch {
	case strings.HasPrefix(name, "RSS"):
		return fmt.Sprintf("%.1f MiB", v/1024)
	case strings.HasPrefix(name, "Go heap"):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return d
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s: want a positive integer, got %q", name, s)
	}
	return n
}
