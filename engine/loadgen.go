package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/stream"
)

// LoadgenConfig configures Loadgen.
type LoadgenConfig struct {
	// Brokers to produce to.
	Brokers []string
	// Topic to produce to. Default "transactions".
	Topic string
	// SchemasDir holds transaction.avsc. Default "schemas".
	SchemasDir string
	// Count stops after this many records; 0 means no limit.
	Count int
	// Duration stops after this long; 0 means no limit.
	Duration time.Duration
	// Rate is records per second; 0 means as fast as possible.
	Rate int
	// Clients is the number of distinct client ids. Default 100.
	Clients int
	// Seed makes the run repeatable. Default 1.
	Seed uint64
	// RunID prefixes transaction ids, so runs do not collide. Default:
	// the start time.
	RunID string
	// Progress, when set, receives a progress line every second.
	Progress io.Writer
	// API, when set, is the base URL of an engine's HTTP API (for example
	// http://127.0.0.1:8080): before producing, Loadgen creates the
	// clients the transactions name (client-0001 ...), so that billing
	// emails them instead of dead-lettering "client not found". A client
	// that exists is left as it is.
	API string
	// APIToken is the bearer token for API, when it needs one.
	APIToken string
}

// Loadgen produces realistic Transaction records (a status mix, several
// currencies and clients, amounts in minor units) keyed by transaction_id,
// until Count or Duration is reached or ctx ends. It returns how many
// records were acknowledged.
func Loadgen(ctx context.Context, cfg LoadgenConfig) (int, error) {
	cfg = loadgenDefaults(cfg)
	if cfg.Count == 0 && cfg.Duration == 0 && ctx.Done() == nil {
		return 0, errors.New("engine: loadgen: set a count or a duration")
	}
	reg, err := avro.LoadDir(cfg.SchemasDir)
	if err != nil {
		return 0, fmt.Errorf("engine: loadgen: %w", err)
	}
	schema, err := reg.Schema("Transaction")
	if err != nil {
		return 0, fmt.Errorf("engine: loadgen: %w", err)
	}
	if cfg.API != "" {
		if err := createClients(ctx, cfg.API, cfg.APIToken, cfg.Clients); err != nil {
			return 0, fmt.Errorf("engine: loadgen: %w", err)
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "loadgen: %d clients in place at %s\n", cfg.Clients, cfg.API)
		}
	}
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Flush.Frequency = time.Millisecond
	sc.Version = sarama.V3_6_0_0
	// The engine's partitioner (murmur2, as Java clients): a transaction's
	// later versions, which the engine produces, go to the partition its
	// first went to, so its status table row is one row.
	sc.Producer.Partitioner = stream.NewPartitioner
	prod, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return 0, fmt.Errorf("engine: loadgen: producer: %w", err)
	}
	gen := NewTxGen(cfg.Seed, cfg.Clients, cfg.RunID)
	return runLoad(ctx, cfg, prod, func(i int) (*sarama.ProducerMessage, error) {
		tx := gen.Next()
		v, err := schema.Encode(tx)
		if err != nil {
			return nil, err
		}
		return &sarama.ProducerMessage{Topic: cfg.Topic, Key: sarama.StringEncoder(tx["transaction_id"].(string)), Value: sarama.ByteEncoder(v)}, nil
	})
}

// loadgenClientID is the id of client i (from 1) of the load generator.
func loadgenClientID(i int) string { return fmt.Sprintf("client-%04d", i) }

// createClients creates clients 1 to n through the API at base; 409 (the
// client exists) is fine.
func createClients(ctx context.Context, base, token string, n int) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	for i := 1; i <= n; i++ {
		id := loadgenClientID(i)
		body, _ := json.Marshal(map[string]string{"client_id": id, "name": "Load client " + id[len("client-"):], "email": id + "@example.com"})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v1/clients", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("create clients: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("create client %s: %w", id, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("create client %s: %s: %s", id, resp.Status, bytes.TrimSpace(msg))
		}
	}
	return nil
}

func loadgenDefaults(cfg LoadgenConfig) LoadgenConfig {
	if cfg.Topic == "" {
		cfg.Topic = "transactions"
	}
	if cfg.SchemasDir == "" {
		cfg.SchemasDir = "schemas"
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 100
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.RunID == "" {
		cfg.RunID = time.Now().UTC().Format("20060102T150405")
	}
	return cfg
}

func runLoad(ctx context.Context, cfg LoadgenConfig, prod sarama.AsyncProducer, next func(int) (*sarama.ProducerMessage, error)) (int, error) {
	acked := make(chan int)
	var firstErr error
	go func() {
		n := 0
		succ, errs := prod.Successes(), prod.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				n++
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				if firstErr == nil {
					firstErr = e.Err
				}
			}
		}
		acked <- n
	}()
	start := time.Now()
	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		deadline = time.After(cfg.Duration)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sent := 0
loop:
	for cfg.Count == 0 || sent < cfg.Count {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / float64(cfg.Rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		msg, err := next(sent)
		if err != nil {
			prod.AsyncClose()
			<-acked
			return 0, fmt.Errorf("engine: loadgen: %w", err)
		}
		select {
		case prod.Input() <- msg:
			sent++
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
			if cfg.Progress != nil {
				el := time.Since(start).Seconds()
				fmt.Fprintf(cfg.Progress, "loadgen: %d sent in %.0fs (%.0f/s)\n", sent, el, float64(sent)/el)
			}
			prod.Input() <- msg
			sent++
		}
	}
	prod.AsyncClose()
	n := <-acked
	if cfg.Progress != nil {
		el := time.Since(start).Seconds()
		fmt.Fprintf(cfg.Progress, "loadgen: %d acknowledged of %d sent in %.2fs (%.0f/s)\n", n, sent, el, float64(n)/el)
	}
	if firstErr != nil {
		return n, fmt.Errorf("engine: loadgen: produce: %w", firstErr)
	}
	return n, nil
}

// TxGen generates Transaction records as plain maps for the Transaction
// schema. It is not safe for concurrent use.
type TxGen struct {
	rng     *rand.Rand
	clients int
	runID   string
	n       int
}

// NewTxGen returns a generator; the same seed gives the same records.
func NewTxGen(seed uint64, clients int, runID string) *TxGen {
	return &TxGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clients: clients, runID: runID}
}

var (
	txStatuses   = []string{"APPROVED", "APPROVED", "APPROVED", "APPROVED", "APPROVED", "APPROVED", "DECLINED", "DECLINED", "REFUNDED", "BILLED"}
	txCurrencies = []string{"EUR", "EUR", "USD", "USD", "GBP", "JPY"}
)

// Next returns the next transaction.
func (g *TxGen) Next() map[string]any {
	g.n++
	now := time.Now().UTC().Truncate(time.Millisecond)
	return map[string]any{
		"transaction_id":   fmt.Sprintf("tx-%s-%08d", g.runID, g.n),
		"client_id":        loadgenClientID(g.rng.IntN(g.clients) + 1),
		"amount_minor":     int64(100 + g.rng.IntN(99_900)),
		"currency":         txCurrencies[g.rng.IntN(len(txCurrencies))],
		"status":           txStatuses[g.rng.IntN(len(txStatuses))],
		"description":      "order " + fmt.Sprint(g.rng.IntN(1_000_000)),
		"created_at":       now,
		"updated_at":       now,
		"billed_at":        nil,
		"billing_cycle_id": nil,
	}
}
