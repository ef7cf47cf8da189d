package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/engine/store"
)

// HeaderOutboxID is the record header carrying the outbox entry's id.
const HeaderOutboxID = "outbox.id"

// ErrFault is returned by Run when a Hooks function failed: the relay
// stopped at once, as if the process had died there.
var ErrFault = errors.New("outbox: fault injected")

// Config configures a Relay. Brokers, Sarama, Store, Schema and
// ApplicationID are required.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string
	// Sarama is the base client configuration (stream.SaramaConfig); the
	// relay copies it and sets its transactional id.
	Sarama *sarama.Config
	// Store holds the outbox.
	Store *store.DB
	// Schema is the billing.Transaction schema transactions are encoded
	// with.
	Schema *avro.Schema
	// InvoiceSchema is the billing.Invoice schema invoices (outbox entries
	// of kind invoice, written by billing cycles) are encoded with.
	// Without it such entries cannot be published: each is logged as an
	// error and skipped, like an entry that cannot be encoded.
	InvoiceSchema *avro.Schema
	// ApplicationID names the progress topic (<app>-outbox-progress), the
	// transactional id (<app>-outbox-relay) and the lease.
	ApplicationID string
	// Topic is where transactions go. Default "transactions".
	Topic string
	// InvoiceTopic is where invoices go, keyed by invoice_id. Default
	// "invoices".
	InvoiceTopic string
	// ProgressTopic overrides <app>-outbox-progress.
	ProgressTopic string
	// CreateTopic creates the progress topic when missing (one partition,
	// compacted) with ReplicationFactor.
	CreateTopic       bool
	ReplicationFactor int16
	// PollInterval is how often the outbox is read when no commit in this
	// process signalled it and the last read found entries; reads of an
	// idle outbox back off from it to 500ms. Default 20ms.
	PollInterval time.Duration
	// BatchSize bounds the entries of one Kafka transaction. Default 500.
	BatchSize int
	// LeaseTTL is how long the relay lease lasts without renewal. Default
	// 15s.
	LeaseTTL time.Duration
	// ReadTimeout bounds reading the progress topic at start. Default 30s.
	ReadTimeout time.Duration
	// Owner identifies this relay in the lease. A relay restarted with the
	// same Owner takes the lease back at once instead of waiting for it
	// to expire; give each process its own. Default: host, process id and
	// a random suffix.
	Owner string
	// Log receives the relay's events. Default: discard.
	Log *slog.Logger
	// Hooks are fault points for tests.
	Hooks Hooks
}

// Hooks are called at the relay's critical points with the outbox ids of
// the batch; an error stops the relay there at once (Run returns it
// wrapped in ErrFault) without aborting the open Kafka transaction or
// marking anything, as a crash would.
type Hooks struct {
	// AfterRead runs after the batch is read from the database, before
	// anything is sent to Kafka.
	AfterRead func(ids []int64) error
	// BeforeCommit runs after the batch is sent, before the Kafka
	// transaction commits.
	BeforeCommit func(ids []int64) error
	// AfterPublish runs after the Kafka transaction committed, before the
	// entries are marked sent.
	AfterPublish func(ids []int64) error
}

// Relay publishes the outbox. Create it with New and call Run once.
type Relay struct {
	cfg       Config
	log       *slog.Logger
	owner     string
	lease     string
	published atomic.Int64
}

// New checks cfg and returns a Relay.
func New(cfg Config) (*Relay, error) {
	switch {
	case len(cfg.Brokers) == 0, cfg.Sarama == nil, cfg.Store == nil, cfg.Schema == nil, cfg.ApplicationID == "":
		return nil, errors.New("outbox: Brokers, Sarama, Store, Schema and ApplicationID are required")
	}
	if cfg.Topic == "" {
		cfg.Topic = "transactions"
	}
	if cfg.InvoiceTopic == "" {
		cfg.InvoiceTopic = "invoices"
	}
	if cfg.ProgressTopic == "" {
		cfg.ProgressTopic = cfg.ApplicationID + "-outbox-progress"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.ReplicationFactor <= 0 {
		cfg.ReplicationFactor = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		nonce := make([]byte, 4)
		_, _ = rand.Read(nonce)
		cfg.Owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(nonce)
	}
	if len(cfg.Owner) > 128 {
		cfg.Owner = cfg.Owner[len(cfg.Owner)-128:]
	}
	return &Relay{
		cfg:   cfg,
		log:   cfg.Log.With("component", "outbox-relay"),
		owner: cfg.Owner,
		lease: "outbox-relay/" + cfg.Topic,
	}, nil
}

// TransactionalID is the Kafka transactional id the relay publishes with.
func (r *Relay) TransactionalID() string { return r.cfg.ApplicationID + "-outbox-relay" }

// Published returns how many outbox entries this relay has published.
func (r *Relay) Published() int64 { return r.published.Load() }

// Run publishes the outbox until ctx ends, then returns nil; it returns
// early only with an error wrapping ErrFault (a test hook failed) or when
// the progress topic cannot be used. Kafka and database errors are logged
// and retried with backoff.
func (r *Relay) Run(ctx context.Context) error {
	if r.cfg.CreateTopic {
		spec := pipeline.TopicSpec{Name: r.cfg.ProgressTopic, Partitions: 1, ReplicationFactor: r.cfg.ReplicationFactor, Compact: true}
		if err := stream.EnsureTopics(ctx, r.cfg.Brokers, r.cfg.Sarama, []pipeline.TopicSpec{spec}, r.log); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("outbox: %w", err)
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wait := backoff
		held, err := r.cfg.Store.AcquireLease(ctx, r.lease, r.owner, r.cfg.LeaseTTL)
		switch {
		case err != nil:
			r.log.Warn("relay lease", "err", err)
		case !held:
			r.log.Debug("another process holds the relay lease; waiting")
			wait = r.cfg.LeaseTTL / 5
		default:
			err = r.session(ctx)
			if errors.Is(err, ErrFault) {
				return err // a simulated crash keeps its lease until it expires
			}
			if errors.Is(err, errProgressTopic) {
				return errors.Join(err, r.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), r.lease, r.owner))
			}
			if err == nil || ctx.Err() != nil {
				backoff = 100 * time.Millisecond
				continue
			}
			r.log.Warn("relay session ended; restarting", "err", err, "backoff", backoff)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if err != nil {
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	if err := r.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), r.lease, r.owner); err != nil {
		r.log.Warn("relay lease not released; it expires by itself", "err", err)
	}
	return nil
}

// errProgressTopic: the progress topic exists with more than one
// partition.
var errProgressTopic = errors.New("outbox: progress topic must have exactly one partition")

// session publishes while it holds the lease. It returns nil when ctx ends
// or the lease is lost.
func (r *Relay) session(ctx context.Context) error {
	cfg := *r.cfg.Sarama
	cfg.Producer.Transaction.ID = r.TransactionalID()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(r.cfg.Brokers, &cfg)
	if err != nil {
		return fmt.Errorf("outbox: client: %w", err)
	}
	defer client.Close()
	parts, err := client.Partitions(r.cfg.ProgressTopic)
	if err != nil {
		return fmt.Errorf("outbox: progress topic %s: %w", r.cfg.ProgressTopic, err)
	}
	if len(parts) != 1 {
		return fmt.Errorf("%w: %s has %d", errProgressTopic, r.cfg.ProgressTopic, len(parts))
	}
	// Creating the producer fences any earlier holder of the id and
	// aborts its open transaction.
	prod, err := sarama.NewSyncProducer(r.cfg.Brokers, &cfg)
	if err != nil {
		return fmt.Errorf("outbox: transactional producer %s: %w", cfg.Producer.Transaction.ID, err)
	}
	crashed := false
	defer func() {
		if !crashed && prod.TxnStatus()&sarama.ProducerTxnFlagInTransaction != 0 {
			_ = prod.AbortTxn()
		}
		_ = prod.Close()
	}()
	done, err := r.readProgress(ctx, prod, client)
	if err != nil {
		return err
	}
	if len(done) > 0 {
		if err := r.cfg.Store.MarkSent(ctx, done); err != nil {
			return err
		}
		r.log.Info("outbox progress recovered: the last published batch is marked sent", "entries", len(done))
	}
	r.log.Info("outbox relay publishing", "topic", r.cfg.Topic, "progress", r.cfg.ProgressTopic, "txn", cfg.Producer.Transaction.ID)
	err = r.loop(ctx, prod)
	crashed = errors.Is(err, ErrFault)
	return err
}

// loop publishes batches until ctx ends or the lease is lost.
func (r *Relay) loop(ctx context.Context, prod sarama.SyncProducer) error {
	renew := time.Now().Add(r.cfg.LeaseTTL / 3)
	// An idle outbox is read less and less often, down to once every
	// maxIdlePoll: writes in this process signal the relay at once, so
	// polling is only for writes by other processes (another instance's
	// API), and a query every PollInterval would cost an idle engine CPU.
	wait := r.cfg.PollInterval
	poll := time.NewTimer(wait)
	defer poll.Stop()
	for ctx.Err() == nil {
		if time.Now().After(renew) {
			held, err := r.cfg.Store.AcquireLease(ctx, r.lease, r.owner, r.cfg.LeaseTTL)
			if err != nil {
				return err
			}
			if !held {
				r.log.Warn("relay lease lost; another process publishes now")
				return nil
			}
			renew = time.Now().Add(r.cfg.LeaseTTL / 3)
		}
		n, err := r.publishBatch(ctx, prod)
		if err != nil {
			return err
		}
		if n == r.cfg.BatchSize {
			continue // more are waiting
		}
		if n > 0 {
			wait = r.cfg.PollInterval
		} else {
			wait = min(2*wait, max(r.cfg.PollInterval, maxIdlePoll))
		}
		poll.Reset(wait)
		select {
		case <-ctx.Done():
		case <-r.cfg.Store.OutboxWritten():
			wait = r.cfg.PollInterval
		case <-poll.C:
		}
	}
	return nil
}

// maxIdlePoll bounds the interval between reads of an idle outbox.
const maxIdlePoll = 500 * time.Millisecond

// publishBatch publishes the next pending entries in one Kafka transaction
// with their progress record, then marks them sent. It returns how many it
// read.
func (r *Relay) publishBatch(ctx context.Context, prod sarama.SyncProducer) (int, error) {
	entries, err := r.cfg.Store.PendingOutbox(ctx, r.cfg.BatchSize)
	if err != nil || len(entries) == 0 {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, err
	}
	ids := make([]int64, len(entries))
	msgs := make([]*sarama.ProducerMessage, 0, len(entries)+1)
	for i, e := range entries {
		ids[i] = e.ID
		m, err := r.message(e)
		if err != nil {
			// Never expected: the store checked the row. Publishing the
			// rest beats blocking the outbox on one entry.
			r.log.Error("outbox entry cannot be published; skipped", "outbox_id", e.ID, "kind", e.Kind, "err", err)
			continue
		}
		msgs = append(msgs, m)
	}
	if err := r.hook(r.cfg.Hooks.AfterRead, ids); err != nil {
		return 0, err
	}
	pm, err := newProgress(ids, time.Now()).message(r.cfg.ProgressTopic)
	if err != nil {
		return 0, err
	}
	msgs = append(msgs, pm)
	if err := prod.BeginTxn(); err != nil {
		return 0, fmt.Errorf("outbox: begin: %w", err)
	}
	if err := prod.SendMessages(msgs); err != nil {
		return 0, fmt.Errorf("outbox: produce: %w", err)
	}
	if err := r.hook(r.cfg.Hooks.BeforeCommit, ids); err != nil {
		return 0, err
	}
	if err := prod.CommitTxn(); err != nil {
		return 0, fmt.Errorf("outbox: commit: %w", err)
	}
	r.published.Add(int64(len(msgs) - 1))
	if err := r.hook(r.cfg.Hooks.AfterPublish, ids); err != nil {
		return 0, err
	}
	// Published: mark even when ctx has just ended. A failure here is
	// repaired from the progress record when the session restarts.
	if err := r.cfg.Store.MarkSent(context.WithoutCancel(ctx), ids); err != nil {
		return 0, err
	}
	return len(entries), nil
}

// message returns the record that publishes e: a transaction to Topic,
// an invoice to InvoiceTopic.
func (r *Relay) message(e store.OutboxEntry) (*sarama.ProducerMessage, error) {
	var topic, key string
	var rec map[string]any
	var schema *avro.Schema
	switch e.Kind {
	case store.OutboxTransaction:
		topic, key, rec, schema = r.cfg.Topic, e.Transaction.ID, e.Transaction.Record(), r.cfg.Schema
	case store.OutboxInvoice:
		if r.cfg.InvoiceSchema == nil {
			return nil, fmt.Errorf("outbox: invoice %s: no billing.Invoice schema configured", e.Invoice.ID)
		}
		topic, key, rec, schema = r.cfg.InvoiceTopic, e.Invoice.ID, e.Invoice.Record(), r.cfg.InvoiceSchema
	default:
		return nil, fmt.Errorf("outbox: unknown entry kind %q", e.Kind)
	}
	v, err := schema.Encode(rec)
	if err != nil {
		return nil, fmt.Errorf("outbox: %s %s: %w", e.Kind, key, err)
	}
	return &sarama.ProducerMessage{
		Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(v),
		Headers: []sarama.RecordHeader{{Key: []byte(HeaderOutboxID), Value: []byte(strconv.FormatInt(e.ID, 10))}},
	}, nil
}

func (r *Relay) hook(fn func([]int64) error, ids []int64) error {
	if fn == nil {
		return nil
	}
	if err := fn(ids); err != nil {
		return fmt.Errorf("%w: %w", ErrFault, err)
	}
	return nil
}
