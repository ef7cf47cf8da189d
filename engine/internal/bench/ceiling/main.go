// Command ceiling is the ceiling the engine's benchmarks compare
// against (BenchmarkScenarios in engine/scenarios_bench_test.go): a plain
// sarama consume-and-produce, with no decoding, no stages and no
// transactions. A consumer group reads -from and an async producer writes
// every record, its key, value, headers and timestamp unchanged, to -to,
// with the producer batching the engine uses (flush every 1 ms or 1 MiB)
// and offsets marked and auto-committed.
//
// It runs as a process of its own, so that its CPU time and peak RSS are
// its own, and answers GET /api/v1/stats on -http as the engine does, with
// the counters "consumed/ceiling" (records received) and
// "produced/ceiling/pass/<to>" (records the broker acknowledged). It runs
// until SIGINT or SIGTERM.
//
// It is a benchmark tool, under internal/ so that it is no part of the
// public API; the benchmark builds it with enginetest.BuildPlugin.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated brokers")
	group := flag.String("group", "bench-ceiling", "consumer group")
	from := flag.String("from", "transactions", "topic to consume")
	to := flag.String("to", "bench.passthrough", "topic to produce to")
	listen := flag.String("http", "127.0.0.1:0", "where GET /api/v1/stats answers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *group, *from, *to, *listen); err != nil {
		fmt.Fprintf(os.Stderr, "ceiling: %s\n", err)
		os.Exit(1)
	}
}

// config is the sarama configuration of the ceiling: that of the engine's
// test clients, with the engine's producer batching.
func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.ChannelBufferSize = 1024
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Flush.Frequency = time.Millisecond
	c.Producer.Flush.Bytes = 1 << 20
	return c
}

func run(ctx context.Context, brokers []string, group, from, to, listen string) error {
	cfg := config()
	prod, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		return errors.Join(fmt.Errorf("consumer group: %w", err), prod.Close())
	}
	var consumed, produced atomic.Int64
	go func() {
		for range prod.Successes() {
			produced.Add(1)
		}
	}()
	go func() {
		for err := range prod.Errors() {
			fmt.Fprintf(os.Stderr, "ceiling: produce: %s\n", err.Err)
		}
	}()
	srv := &http.Server{Addr: listen, Handler: statsHandler(map[string]*atomic.Int64{
		"consumed/ceiling":            &consumed,
		"produced/ceiling/pass/" + to: &produced,
	})}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "ceiling: http: %s\n", err)
		}
	}()
	h := forward{prod: prod, to: to, consumed: &consumed}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{from}, h); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "ceiling: consume: %s\n", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(cg.Close(), prod.Close(), srv.Shutdown(sctx))
}

// statsHandler answers GET /api/v1/stats with the counters as a JSON
// object, as the engine's API does.
func statsHandler(counters map[string]*atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/stats", func(w http.ResponseWriter, _ *http.Request) {
		out := make(map[string]int64, len(counters))
		for k, c := range counters {
			out[k] = c.Load()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

// forward is the consumer group handler: every record goes to the
// producer unchanged and is marked consumed.
type forward struct {
	prod     sarama.AsyncProducer
	to       string
	consumed *atomic.Int64
}

func (forward) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (forward) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (f forward) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		f.consumed.Add(1)
		msg := &sarama.ProducerMessage{Topic: f.to, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value), Timestamp: m.Timestamp}
		if len(m.Headers) > 0 {
			msg.Headers = make([]sarama.RecordHeader, len(m.Headers))
			for i, rh := range m.Headers {
				msg.Headers[i] = *rh
			}
		}
		f.prod.Input() <- msg
		s.MarkMessage(m, "")
	}
	return nil
}
