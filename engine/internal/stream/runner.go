package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// ApplicationID prefixes the consumer group and transactional IDs.
	ApplicationID string
	// InstanceID names this instance in its transactional ids
	// (<group>-<InstanceID>-<n>). An instance restarted with the same id
	// fences its predecessor: the broker aborts the transactions it left
	// open as soon as the new producers start, rather than after the
	// transaction timeout. Two live instances must not share one. Empty
	// means a random id for this Runner.
	InstanceID string
	// Brokers are the seed brokers.
	Brokers []string
	// Sarama is the base client configuration (see SaramaConfig).
	Sarama *sarama.Config
	// Topic is the source topic.
	Topic string
	// Chain processes each batch.
	Chain *Chain
	// Tables, when set, are the tables Chain keeps: restored from their
	// changelogs before a partition is processed.
	Tables *Tables
	// MaxBatch and MaxWait bound a batch: it is processed when it holds
	// MaxBatch records, or MaxWait after its first record arrived.
	MaxBatch int
	MaxWait  time.Duration
	// ExactlyOnce commits outputs and offsets in one transaction.
	ExactlyOnce bool
	// Tracker, when set, is told which partitions this instance owns and
	// which are restoring.
	Tracker *Tracker
	// UserData is advertised to the consumer group (the instance's HTTP
	// URL, for query routing).
	UserData []byte
	// Log receives the runner's events.
	Log *slog.Logger
}

// Runner runs one pipeline: a consumer group on its source topic.
type Runner struct {
	cfg   RunnerConfig
	group string
	log   *slog.Logger
}

// NewRunner returns a Runner; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Millisecond
	}
	group := cfg.ApplicationID + "-" + cfg.Chain.Pipeline
	return &Runner{cfg: cfg, group: group, log: cfg.Log.With("pipeline", cfg.Chain.Pipeline)}
}

// Group returns the consumer group's name.
func (r *Runner) Group() string { return r.group }

// Run consumes until ctx ends, then finishes the batch in hand, commits it
// and returns nil. It returns an error only when the pipeline cannot run.
func (r *Runner) Run(ctx context.Context) error {
	cfg := *r.cfg.Sarama
	cfg.Consumer.Group.Member.UserData = r.cfg.UserData
	group, err := sarama.NewConsumerGroup(r.cfg.Brokers, r.group, &cfg)
	if err != nil {
		return fmt.Errorf("stream: consumer group %s: %w", r.group, err)
	}
	h := &handler{r: r}
	if r.cfg.Tables != nil {
		// Restores share this client's connection: fetches must not park on
		// it for the default 500ms when a partition has nothing more.
		rc := *r.cfg.Sarama
		rc.Consumer.MaxWaitTime = 10 * time.Millisecond
		rc.Net.MaxOpenRequests = 5
		rc.Producer.Idempotent = false // this client never produces
		if h.client, err = sarama.NewClient(r.cfg.Brokers, &rc); err != nil {
			_ = group.Close()
			return fmt.Errorf("stream: restore client: %w", err)
		}
		defer h.client.Close()
	}
	if r.cfg.ExactlyOnce {
		h.txns = newCommitter(r.cfg.Brokers, r.cfg.Sarama, r.group, r.cfg.InstanceID, txnProducers, r.log)
	} else {
		h.plain, err = sarama.NewSyncProducer(r.cfg.Brokers, r.cfg.Sarama)
		if err != nil {
			_ = group.Close()
			return fmt.Errorf("stream: producer: %w", err)
		}
	}
	go func() {
		for err := range group.Errors() {
			r.log.Warn("consumer group error", "err", err)
		}
	}()
	r.log.Info("pipeline started", "source", r.cfg.Topic, "group", r.group, "exactly_once", r.cfg.ExactlyOnce)
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{r.cfg.Topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			r.log.Warn("consume session ended", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	errs := []error{group.Close()}
	if h.txns != nil {
		errs = append(errs, h.txns.close())
	}
	if h.plain != nil {
		errs = append(errs, h.plain.Close())
	}
	r.log.Info("pipeline stopped")
	return errors.Join(errs...)
}
