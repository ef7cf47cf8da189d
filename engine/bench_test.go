package engine_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/plugins/branch"
)

// benchRecords is how many transactions each benchmark scenario moves.
const benchRecords = 300_000

// BenchmarkPipeline measures, in one run on one embedded broker, the plain
// sarama consume-and-produce rate (the ceiling) and the billing branch
// pipeline's rate (exactly-once), over the same input records, and reports
// both and their ratio. Run it with -benchtime 1x.
func BenchmarkPipeline(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), benchRecords)
		ceiling := benchCeiling(b, br.Addr(), benchRecords)
		pipeline := benchBranchPipeline(b, br.Addr(), benchRecords)
		b.ReportMetric(ceiling, "ceiling_rec/s")
		b.ReportMetric(pipeline, "pipeline_rec/s")
		b.ReportMetric(pipeline/ceiling, "ratio")
		b.Logf("records=%d ceiling=%.0f rec/s branch pipeline=%.0f rec/s ratio=%.2f", benchRecords, ceiling, pipeline, pipeline/ceiling)
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

// benchBranchPipeline runs the billing pipeline (decode, filter, branch,
// exactly-once) in-process over the same records.
func benchBranchPipeline(b *testing.B, addr string, n int) float64 {
	b.Helper()
	vars := map[string]string{
		"BILLING_KAFKA_BROKERS": addr,
		"BILLING_DATA_DIR":      b.TempDir(),
		"BILLING_HTTP_LISTEN":   enginetest.FreeAddr(b),
	}
	path := filepath.Join(enginetest.RepoRoot(b), "pipelines", "billing.yaml")
	e, err := engine.New(path, engine.WithProcessor(branch.Name, branch.New), engine.WithLogger(benchLogger()),
		engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for consumed(e) == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	start := time.Now()
	deadline := time.After(5 * time.Minute)
	for produced(e) < int64(n) {
		select {
		case err := <-done:
			b.Fatalf("engine stopped: %v", err)
		case <-deadline:
			b.Fatalf("pipeline: %d of %d after 5m", produced(e), n)
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

// consumed returns the records the processor pipeline has consumed.
func consumed(e *engine.Engine) int64 { return e.Stats().Snapshot()["consumed/processor"] }

// produced sums the records the pipelines committed to any topic.
func produced(e *engine.Engine) int64 {
	var n int64
	for k, v := range e.Stats().Snapshot() {
		if len(k) > 9 && k[:9] == "produced/" {
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
