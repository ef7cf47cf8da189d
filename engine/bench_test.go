package engine_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// benchRecords is how many transactions each benchmark scenario moves.
const benchRecords = 300_000

// BenchmarkPipeline measures, in one run on one embedded broker and over
// the same input records: the plain sarama consume-and-produce rate (the
// ceiling), the branch pipeline (decode, filter, branch, exactly-once), and
// the billing processor with its tables (status table and two repartitioned
// aggregates). It reports each rate and its ratio to the ceiling. Run it
// with -benchtime 1x.
func BenchmarkPipeline(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), benchRecords)
		ceiling := benchCeiling(b, br.Addr(), benchRecords)
		branch := benchEngine(b, br.Addr(), "engine/testdata/bench/branch.yaml", "bench-branch", benchRecords, nil)
		status := benchEngine(b, br.Addr(), "engine/testdata/bench/status.yaml", "bench-status", benchRecords, nil)
		if os.Getenv("BENCH_STATUS_ONLY") != "" { // for profiling the status-table scenario alone
			b.Logf("status table=%.0f rec/s", status)
			return
		}
		tables := benchEngine(b, br.Addr(), "engine/testdata/bench/tables.yaml", "bench-tables", benchRecords, [][2]string{
			{"consumed/processor.client_totals", "produced/processor/table:client_totals/"},
			{"consumed/processor.client_daily", "produced/processor/table:client_daily/"},
		})
		b.ReportMetric(ceiling, "ceiling_rec/s")
		b.ReportMetric(branch, "branch_rec/s")
		b.ReportMetric(branch/ceiling, "branch_ratio")
		b.ReportMetric(status, "status_rec/s")
		b.ReportMetric(status/ceiling, "status_ratio")
		b.ReportMetric(tables, "tables_rec/s")
		b.ReportMetric(3*tables, "table_updates/s")
		b.ReportMetric(tables/ceiling, "tables_ratio")
		b.Logf("records=%d ceiling=%.0f rec/s branch=%.0f rec/s (%.2f) status table=%.0f rec/s (%.2f) all tables=%.0f rec/s (%.2f, %.0f table updates/s)",
			benchRecords, ceiling, branch, branch/ceiling, status, status/ceiling, tables, tables/ceiling, 3*tables)
	}
}

func produceBench(b *testing.B, addr string, n int) {
	b.Helper()
	reg := registry(b)
	schema, err := reg.Schema("Transaction")
	if err != nil {
		b.Fatal(err)
	}
	gen := engine.NewTxGen(3, 1000, "bench")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"), kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, 10_000)
	for i := 0; i < n; i++ {
		tx := gen.Next()
		v, err := schema.Encode(tx)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(tx["transaction_id"].(string)), Value: v})
		if len(recs) == cap(recs) || i == n-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// benchCeiling is a plain sarama consume-and-produce: a consumer group on
// transactions, an async producer to another topic, offsets auto-committed.
func benchCeiling(b *testing.B, addr string, n int) float64 {
	b.Helper()
	cfg := enginetest.Config()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.ChannelBufferSize = 1024
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Frequency = time.Millisecond // the same batching the engine uses
	cfg.Producer.Flush.Bytes = 1 << 20
	prod, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	finished := make(chan struct{})
	go func() {
		for range prod.Successes() {
			if done.Add(1) == int64(n) {
				close(finished)
			}
		}
	}()
	go func() {
		for err := range prod.Errors() {
			b.Errorf("ceiling produce: %v", err)
		}
	}()
	group, err := sarama.NewConsumerGroup([]string{addr}, "bench-ceiling", cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := passThrough{prod: prod, first: make(chan time.Time, 1)}
	go func() {
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{"transactions"}, h)
		}
	}()
	var start time.Time
	select {
	case start = <-h.first:
	case <-time.After(time.Minute):
		b.Fatal("ceiling: nothing consumed after 1m")
	}
	select {
	case <-finished:
	case <-time.After(5 * time.Minute):
		b.Fatalf("ceiling: %d of %d after 5m", done.Load(), n)
	}
	elapsed := time.Since(start)
	cancel()
	_ = group.Close()
	_ = prod.Close()
	return float64(n) / elapsed.Seconds()
}

// passThrough forwards every record; first receives the time the first
// record arrived (the clock starts there, after the group join).
type passThrough struct {
	prod  sarama.AsyncProducer
	first chan time.Time
}

func (passThrough) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (passThrough) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (p passThrough) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		select {
		case p.first <- time.Now():
		default:
		}
		p.prod.Input() <- &sarama.ProducerMessage{Topic: "bench.passthrough", Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value)}
		s.MarkMessage(m, "")
	}
	return nil
}

// benchEngine runs the pipeline file (relative to the repository) as a
// fresh application over the records on addr, and returns records/s from
// the first record consumed until every record left the branch stage and
// the consumers in follow caught up (see finished).
func benchEngine(b *testing.B, addr, file, app string, n int, follow [][2]string) float64 {
	b.Helper()
	return benchEngineAt(b, addr, filepath.Join(enginetest.RepoRoot(b), file), app, n, follow)
}

// benchEngineAt is benchEngine for the pipeline file at path, with the
// in-process plugins opts register besides the branch router.
func benchEngineAt(b *testing.B, addr, path, app string, n int, follow [][2]string, opts ...engine.Option) float64 {
	b.Helper()
	file := filepath.Base(path)
	vars := map[string]string{
		"BILLING_KAFKA_BROKERS":  addr,
		"BILLING_APPLICATION_ID": app,
		"BILLING_DATA_DIR":       b.TempDir(),
		"BILLING_HTTP_LISTEN":    enginetest.FreeAddr(b),
	}
	e, err := engine.New(path, append([]engine.Option{engine.WithProcessor(router.Name, router.New), engine.WithLogger(benchLogger()),
		engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	cancel, done := runUntilConsuming(b, e)
	start := time.Now()
	deadline := time.After(5 * time.Minute)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !finished(e, n, follow) {
		select {
		case <-tick.C:
			if os.Getenv("BENCH_LOG") != "" {
				snap := e.Stats().Snapshot()
				b.Logf("%s: branched=%d consumed=%v", file, branched(e), []int64{snap["consumed/processor"], snap["consumed/processor.client_totals"], snap["consumed/processor.client_daily"]})
			}
		case err := <-done:
			b.Fatalf("engine stopped: %v", err)
		case <-deadline:
			b.Fatalf("%s: %d of %d after 5m", file, branched(e), n)
		case <-time.After(2 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

// runUntilConsuming runs e until its processor has consumed a first
// record; the returned cancel stops it and done reports how Run ended.
func runUntilConsuming(b *testing.B, e *engine.Engine) (cancel func(), done <-chan error) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- e.Run(ctx) }()
	for consumed(e) == 0 {
		select {
		case err := <-ch:
			cancel()
			b.Fatalf("engine stopped: %v", err)
		case <-time.After(100 * time.Microsecond):
		}
	}
	return cancel, ch
}

// finished reports whether the processor branched n records and each
// consumer of an internal topic in follow ({consumer counter, producer
// counter prefix}: an aggregate's repartition records, combined per group
// and batch, so fewer than n) caught up with what was produced to it.
func finished(e *engine.Engine, n int, follow [][2]string) bool {
	if branched(e) < int64(n) {
		return false
	}
	snap := e.Stats().Snapshot()
	for _, f := range follow {
		var produced int64
		for k, v := range snap {
			if strings.HasPrefix(k, f[1]) {
				produced += v
			}
		}
		if produced == 0 || snap[f[0]] < produced {
			return false
		}
	}
	return true
}

// consumed returns the records the processor pipeline has consumed.
func consumed(e *engine.Engine) int64 { return e.Stats().Snapshot()["consumed/processor"] }

// branched sums the records the processor's branch stage committed.
func branched(e *engine.Engine) int64 {
	var n int64
	for k, v := range e.Stats().Snapshot() {
		if strings.HasPrefix(k, "produced/processor/branch/") {
			n += v
		}
	}
	return n
}

// benchLogger logs warnings to stderr when BENCH_LOG is set.
func benchLogger() *slog.Logger {
	if os.Getenv("BENCH_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
