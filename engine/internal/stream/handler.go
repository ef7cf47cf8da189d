package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// handler is the sarama.ConsumerGroupHandler of a Runner.
type handler struct {
	r      *Runner
	client sarama.Client       // for restores; nil without tables
	txns   *producerPool       // exactly-once
	plain  sarama.SyncProducer // at-least-once
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.r.log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	claimed := s.Claims()[h.r.cfg.Topic]
	if t := h.r.cfg.Tables; t != nil {
		// Until prepare has restored them, the claimed partitions answer
		// queries with 503, not with stale values.
		for table := range t.Changelogs() {
			for _, p := range claimed {
				h.r.cfg.Tracker.setRestoring(table, p, true)
			}
		}
	}
	h.r.cfg.Tracker.setOwned(h.r.group, h.r.cfg.Topic, claimed)
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.r.cfg.Tracker.setOwned(h.r.group, h.r.cfg.Topic, nil)
	if t := h.r.cfg.Tables; t != nil {
		// A partition the session ended before restoring is no longer
		// this instance's to restore.
		for table := range t.Changelogs() {
			for _, p := range s.Claims()[h.r.cfg.Topic] {
				h.r.cfg.Tracker.setRestoring(table, p, false)
			}
		}
	}
	return nil
}

// prepareWithRetry retries prepare with backoff until it succeeds or the
// session ends. (A handler that returns ends the whole session in sarama,
// which would make every member rebalance, and fail again.)
func (h *handler) prepareWithRetry(ctx context.Context, log *slog.Logger, txnID string, p int32) bool {
	backoff := 100 * time.Millisecond
	for {
		err := h.prepare(ctx, txnID, p)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("partition not ready; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// prepare readies a newly claimed partition: it initialises the
// partition's transactional producer, which fences the previous owner and
// aborts what it left open, then restores the partition's tables.
func (h *handler) prepare(ctx context.Context, txnID string, p int32) error {
	if h.txns != nil {
		if _, err := h.txns.get(txnID); err != nil {
			return err
		}
	}
	t := h.r.cfg.Tables
	if t == nil {
		return nil
	}
	t.dropCache(p)
	for table, changelog := range t.Changelogs() {
		start := time.Now()
		barrier, err := h.barrier(txnID, changelog, p)
		if err != nil {
			return err
		}
		n, err := restore(ctx, h.client, t.Store, table, changelog, p, barrier, h.r.cfg.Tracker)
		if err != nil {
			return err
		}
		if n > 0 {
			h.r.log.Info("table restored", "table", table, "partition", p, "records", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// ConsumeClaim processes one partition, batch by batch, until the session
// ends. The batch in hand is always finished and committed first.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	log := h.r.log.With("topic", claim.Topic(), "partition", claim.Partition())
	txnID := fmt.Sprintf("%s-%s-%d", h.r.group, claim.Topic(), claim.Partition())
	if !h.prepareWithRetry(sess.Context(), log, txnID, claim.Partition()) {
		return nil // the session ended first
	}
	batch := make([]*sarama.ConsumerMessage, 0, h.r.cfg.MaxBatch)
	for {
		var ok bool
		batch, ok = h.collect(sess.Context(), claim.Messages(), batch[:0])
		if len(batch) > 0 {
			if err := h.commit(sess, claim, txnID, batch); err != nil {
				log.Error("batch not committed; the partition will be re-read from its last commit", "err", err, "first_offset", batch[0].Offset)
				return err
			}
		}
		if !ok {
			return nil
		}
	}
}

// collect waits for a first message, then takes what arrives within
// MaxWait, up to MaxBatch. ok is false when the claim or session ended.
func (h *handler) collect(ctx context.Context, msgs <-chan *sarama.ConsumerMessage, batch []*sarama.ConsumerMessage) ([]*sarama.ConsumerMessage, bool) {
	select {
	case <-ctx.Done():
		return batch, false
	case m, ok := <-msgs:
		if !ok {
			return batch, false
		}
		batch = append(batch, m)
	}
	timer := time.NewTimer(h.r.cfg.MaxWait)
	defer timer.Stop()
	for len(batch) < h.r.cfg.MaxBatch {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch, false
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch, true
		case <-ctx.Done():
			return batch, false
		}
	}
	return batch, true
}

// commit processes batch and commits its outputs and offset, then applies
// the batch's table changes locally. Transient Kafka errors are retried
// with the same outputs in a new transaction; a fatal producer error
// (fenced by a new owner) gives up the partition.
func (h *handler) commit(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, txnID string, batch []*sarama.ConsumerMessage) error {
	start := time.Now()
	// The batch in hand is finished even when the session is ending; only
	// a stop of the whole engine mid-retry abandons it.
	ctx := WithSession(context.WithoutCancel(sess.Context()), sess.Context().Done())
	res, err := h.r.cfg.Chain.Process(ctx, batch)
	if err != nil {
		return err
	}
	last := batch[len(batch)-1]
	msgs := toProducerMessages(res.Outputs)
	if h.plain != nil {
		if err := h.plain.SendMessages(msgs); err != nil {
			return fmt.Errorf("stream: produce: %w", err)
		}
		sess.MarkMessage(last, "")
		sess.Commit()
		return h.committed(claim, batch, res, msgs, start)
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := h.transact(sess, txnID, msgs, last)
		if err == nil {
			return h.committed(claim, batch, res, msgs, start)
		}
		// A new producer for the same transactional id aborts whatever this
		// one left open; it is the one way out of every broken state.
		h.txns.discard(txnID)
		if errors.Is(err, errFatalProducer) || attempt >= 10 || sess.Context().Err() != nil {
			return err
		}
		h.r.log.Warn("transaction failed; retrying", "txn", txnID, "attempt", attempt, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 5*time.Second)
		msgs = toProducerMessages(res.Outputs)
	}
}

// committed applies a committed batch's table changes, with each table's
// checkpoint after its last changelog record, and reports the batch to the
// Observer.
func (h *handler) committed(claim sarama.ConsumerGroupClaim, batch []*sarama.ConsumerMessage, res Result, msgs []*sarama.ProducerMessage, start time.Time) error {
	h.logDeadLetters(res.Outputs)
	if o := h.r.cfg.Chain.Observer; o != nil {
		o.Committed(h.r.cfg.Chain.Pipeline, &Batch{
			Topic: claim.Topic(), Partition: claim.Partition(), Inputs: batch,
			Outputs: res.Outputs, Dropped: res.Dropped, Took: time.Since(start),
			Lag: max(0, claim.HighWaterMarkOffset()-batch[len(batch)-1].Offset-1),
		})
	}
	if len(res.State) == 0 {
		return nil
	}
	next := map[string]int64{}
	for _, m := range msgs {
		next[m.Topic] = m.Offset + 1
	}
	t := h.r.cfg.Tables
	for _, w := range res.State {
		cp, ok := next[t.Changelogs()[w.Table]]
		if !ok {
			cp = -1
		}
		if err := t.Store.Apply(w.Table, w.Partition, w.Writes, cp); err != nil {
			return err
		}
	}
	if res.Committed != nil {
		res.Committed()
	}
	return nil
}

// maxLoggedDeadLetters bounds the dead letters logged one by one per batch.
const maxLoggedDeadLetters = 5

// logDeadLetters logs a committed batch's dead letters: the first few each
// with its transaction id (the record key) and reason, then how many more.
func (h *handler) logDeadLetters(outs []Output) {
	// Transactions are keyed by their id, so the key is named for what it is.
	keyAttr := "key"
	if sc := h.r.cfg.Chain.Schema; sc != nil && strings.HasSuffix(sc.Name, "Transaction") {
		keyAttr = "transaction_id"
	}
	n := 0
	for i := range outs {
		d := outs[i].DeadLetter
		if d == nil {
			continue
		}
		if n++; n <= maxLoggedDeadLetters {
			h.r.log.Warn("record sent to the DLQ", "stage", d.Stage, "partition", d.Partition, "offset", d.Offset,
				keyAttr, string(outs[i].Key), "reason", d.Reason, "dlq", outs[i].Topic)
		}
	}
	if n > maxLoggedDeadLetters {
		h.r.log.Warn("more records of the batch sent to the DLQ", "count", n-maxLoggedDeadLetters)
	}
}

// barrier writes a barrier record to partition p of changelog, committed,
// and returns its offset.
func (h *handler) barrier(txnID, changelog string, p int32) (int64, error) {
	msg := &sarama.ProducerMessage{Topic: changelog, Key: sarama.ByteEncoder(barrierKey), Value: sarama.ByteEncoder(nil), Metadata: pinned(p)}
	if h.plain != nil {
		_, off, err := h.plain.SendMessage(msg)
		if err != nil {
			return 0, fmt.Errorf("stream: barrier %s/%d: %w", changelog, p, err)
		}
		return off, nil
	}
	prod, err := h.txns.get(txnID)
	if err != nil {
		return 0, err
	}
	off, err := h.writeBarrier(prod, msg)
	if err != nil {
		h.txns.discard(txnID)
	}
	return off, err
}

func (h *handler) writeBarrier(prod sarama.SyncProducer, msg *sarama.ProducerMessage) (int64, error) {
	if err := prod.BeginTxn(); err != nil {
		return 0, h.abort(prod, fmt.Errorf("barrier begin: %w", err))
	}
	if err := prod.SendMessages([]*sarama.ProducerMessage{msg}); err != nil {
		return 0, h.abort(prod, fmt.Errorf("barrier: %w", err))
	}
	if err := prod.CommitTxn(); err != nil {
		return 0, h.abort(prod, fmt.Errorf("barrier commit: %w", err))
	}
	return msg.Offset, nil
}

var errFatalProducer = errors.New("stream: producer in fatal state")

// transact writes outs and the offset after last in one transaction.
func (h *handler) transact(sess sarama.ConsumerGroupSession, txnID string, msgs []*sarama.ProducerMessage, last *sarama.ConsumerMessage) error {
	prod, err := h.txns.get(txnID)
	if err != nil {
		return err
	}
	if err := prod.BeginTxn(); err != nil {
		return h.abort(prod, fmt.Errorf("begin: %w", err))
	}
	if err := prod.SendMessages(msgs); err != nil {
		return h.abort(prod, fmt.Errorf("produce: %w", err))
	}
	offsets := map[string][]*sarama.PartitionOffsetMetadata{
		last.Topic: {{Partition: last.Partition, Offset: last.Offset + 1}},
	}
	meta := sarama.NewConsumerGroupMetadataFromSession(sess, h.r.group, nil)
	if err := prod.AddOffsetsToTxnWithGroupMetadata(offsets, meta); err != nil {
		return h.abort(prod, fmt.Errorf("add offsets: %w", err))
	}
	if err := prod.CommitTxn(); err != nil {
		return h.abort(prod, fmt.Errorf("commit: %w", err))
	}
	return nil
}

// abort aborts the open transaction after cause, and marks the error fatal
// when the producer cannot go on.
func (h *handler) abort(prod sarama.SyncProducer, cause error) error {
	if prod.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0 {
		return fmt.Errorf("%w: %w", errFatalProducer, cause)
	}
	if prod.TxnStatus()&sarama.ProducerTxnFlagInTransaction != 0 || prod.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
		if err := prod.AbortTxn(); err != nil {
			return fmt.Errorf("%w: abort: %w (after %w)", errFatalProducer, err, cause)
		}
	}
	return fmt.Errorf("stream: transaction: %w", cause)
}

func toProducerMessages(outs []Output) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, len(outs))
	for i, o := range outs {
		var hs []sarama.RecordHeader
		if len(o.Headers) > 0 {
			hs = make([]sarama.RecordHeader, len(o.Headers))
			for j, h := range o.Headers {
				hs[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
			}
		}
		msgs[i] = &sarama.ProducerMessage{Topic: o.Topic, Value: sarama.ByteEncoder(o.Value), Headers: hs, Timestamp: o.Timestamp}
		if o.Pinned {
			msgs[i].Metadata = pinned(o.Partition)
		}
		if o.Key != nil {
			msgs[i].Key = sarama.ByteEncoder(o.Key)
		}
	}
	return msgs
}
