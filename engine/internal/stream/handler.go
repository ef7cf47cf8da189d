package stream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pollnet"
	"github.com/billing-engine/billing/engine/internal/state"
)

// handler is the sarama.ConsumerGroupHandler of a Runner.
type handler struct {
	r      *Runner
	client sarama.Client       // for restores; nil without tables
	txns   *committer          // exactly-once
	plain  sarama.SyncProducer // at-least-once
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.r.log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	claimed := s.Claims()[h.r.cfg.Topic]
	if t := h.r.cfg.Tables; t != nil {
		// Until prepare has restored them, the claimed partitions answer
		// queries with 503, not with stale values.
		for _, table := range t.Names() {
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
		for _, table := range t.Names() {
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
func (h *handler) prepareWithRetry(ctx context.Context, sess sarama.ConsumerGroupSession, log *slog.Logger, claim sarama.ConsumerGroupClaim) bool {
	backoff := 100 * time.Millisecond
	for {
		err := h.prepare(ctx, sess, claim.Partition(), claim.InitialOffset())
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

// prepare readies a newly claimed partition: it restores the partition's
// tables, from their changelogs, and from the source up to committed (the
// group's committed offset, where the claim starts) for those restored
// from the source.
func (h *handler) prepare(ctx context.Context, sess sarama.ConsumerGroupSession, p int32, committed int64) error {
	t := h.r.cfg.Tables
	if t == nil {
		return nil
	}
	t.dropCache(p)
	for table, changelog := range t.Changelogs() {
		start := time.Now()
		barrier, err := h.barrier(sess, changelog, p)
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
	if defs := t.sourceDefs(); len(defs) > 0 {
		start := time.Now()
		src := sourceRestore{client: h.client, chain: h.r.cfg.Chain, tables: t, defs: defs,
			topic: h.r.cfg.Topic, partition: p, end: committed, tracker: h.r.cfg.Tracker, log: h.r.log}
		n, err := src.run(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			names := make([]string, len(defs))
			for i, d := range defs {
				names[i] = d.Name
			}
			h.r.log.Info("tables restored from their source", "tables", names, "topic", h.r.cfg.Topic,
				"partition", p, "records", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// ConsumeClaim processes one partition, batch by batch, until the session
// ends. The batch in hand is always finished and committed first.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	log := h.r.log.With("topic", claim.Topic(), "partition", claim.Partition())
	if !h.prepareWithRetry(sess.Context(), sess, log, claim) {
		return nil // the session ended first
	}
	batch := make([]*sarama.ConsumerMessage, 0, h.r.cfg.MaxBatch)
	var sc scratch // the partition's batch buffers, reused batch after batch
	for {
		var ok bool
		batch, ok = h.collect(sess.Context(), claim.Messages(), batch[:0])
		if len(batch) > 0 {
			if err := h.commit(sess, claim, batch, &sc); err != nil {
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
// with the same outputs in a new transaction, until the session ends (the
// partition went to another member, whose offsets this one can no longer
// commit). The batch uses sc's buffers; once commit returns, nothing holds
// them but sc.
func (h *handler) commit(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, batch []*sarama.ConsumerMessage, sc *scratch) error {
	start := time.Now()
	// The batch in hand is finished even when the session is ending; only
	// a stop of the whole engine mid-retry abandons it.
	ctx := WithSession(context.WithoutCancel(sess.Context()), sess.Context().Done())
	res, err := h.r.cfg.Chain.processWith(ctx, batch, sc)
	if err != nil {
		return err
	}
	last := batch[len(batch)-1]
	msgs := toProducerMessages(res.Outputs, sc)
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
		err := h.txns.commit(sess, msgs, last)
		if err == nil {
			return h.committed(claim, batch, res, msgs, start)
		}
		if attempt >= 10 || sess.Context().Err() != nil {
			return err
		}
		h.r.log.Warn("transaction failed; retrying", "partition", claim.Partition(), "attempt", attempt, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 5*time.Second)
		// A failed transaction's messages are not reused: the producer is
		// done with them (sarama waits for what is in flight before it
		// ends a transaction), but the committer's record of the
		// failures still points to them.
		sc.msgs, sc.slab, sc.enc = nil, nil, nil
		msgs = toProducerMessages(res.Outputs, sc)
	}
}

// committed applies a committed batch's table changes, with each table's
// checkpoint after its last changelog record (for a table restored from its
// source, after the batch's last record), and reports the batch to the
// Observer.
func (h *handler) committed(claim sarama.ConsumerGroupClaim, batch []*sarama.ConsumerMessage, res Result, msgs []*sarama.ProducerMessage, start time.Time) error {
	h.logDeadLetters(res.Outputs)
	if o := h.r.cfg.Chain.Observer; o != nil {
		b := &Batch{
			Topic: claim.Topic(), Partition: claim.Partition(), Inputs: batch,
			Outputs: res.Outputs, Dropped: res.Dropped, Took: time.Since(start),
			Lag: max(0, claim.HighWaterMarkOffset()-batch[len(batch)-1].Offset-1),
		}
		for _, w := range res.State {
			if h.r.cfg.Tables.tableInfo(w.Table).source {
				if b.SourceTableWrites == nil {
					b.SourceTableWrites = map[string]int{}
				}
				b.SourceTableWrites[w.Table] += len(w.Writes)
			}
		}
		o.Committed(h.r.cfg.Chain.Pipeline, b)
	}
	t := h.r.cfg.Tables
	if t == nil {
		return nil
	}
	next := map[string]int64{}
	for _, m := range msgs {
		next[m.Topic] = m.Offset + 1
	}
	source := &state.Position{Topic: claim.Topic(), Offset: batch[len(batch)-1].Offset + 1}
	written := map[string]bool{}
	for _, w := range res.State {
		written[w.Table] = true
		info := t.tableInfo(w.Table)
		cp := source
		if !info.source {
			cp = nil
			if off, ok := next[info.changelog]; ok {
				cp = &state.Position{Offset: off}
			}
		}
		if err := t.Store.Apply(w.Table, w.Partition, w.Writes, cp); err != nil {
			return err
		}
	}
	// A table restored from its source follows the batch even when the
	// batch did not change it, so that a restart replays only what is new.
	for _, d := range t.sourceDefs() {
		if !written[d.Name] {
			if err := t.Store.Apply(d.Name, claim.Partition(), nil, source); err != nil {
				return err
			}
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
func (h *handler) barrier(sess sarama.ConsumerGroupSession, changelog string, p int32) (int64, error) {
	msg := &sarama.ProducerMessage{Topic: changelog, Key: sarama.ByteEncoder(barrierKey), Value: sarama.ByteEncoder(nil), Metadata: pinned(p)}
	var err error
	if h.plain != nil {
		_, _, err = h.plain.SendMessage(msg)
	} else {
		err = h.txns.commit(sess, []*sarama.ProducerMessage{msg}, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("stream: barrier %s/%d: %w", changelog, p, err)
	}
	return msg.Offset, nil
}

// toProducerMessages returns the messages to produce outs. A batch's
// messages, and the encoders of their keys and values, are in sc's
// buffers (taken for them, see take), not three allocations per record.
func toProducerMessages(outs []Output, sc *scratch) []*sarama.ProducerMessage {
	msgs := take(&sc.msgs, len(outs))[:len(outs)]
	slab := take(&sc.slab, len(outs))[:len(outs)]
	bytes := take(&sc.enc, 2*len(outs))
	encoder := func(b []byte) sarama.Encoder {
		bytes = append(bytes, byteEncoder{b})
		return &bytes[len(bytes)-1]
	}
	for i, o := range outs {
		var hs []sarama.RecordHeader
		if len(o.Headers) > 0 {
			hs = make([]sarama.RecordHeader, len(o.Headers))
			for j, h := range o.Headers {
				hs[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
			}
		}
		m := &slab[i]
		*m = sarama.ProducerMessage{Topic: o.Topic, Value: encoder(o.Value), Headers: hs, Timestamp: o.Timestamp}
		if o.Pinned {
			m.Metadata = pinned(o.Partition)
		}
		if o.Key != nil {
			m.Key = encoder(o.Key)
		}
		msgs[i] = m
	}
	return msgs
}

// byteEncoder is sarama.ByteEncoder behind a pointer: converting a slice
// to an interface allocates, pointing into a batch's slice of them does not.
// Its Encode, which sarama's producer calls for every key and value as it
// adds them to a request (and the key partitioner for every key), runs
// pollnet.Poll, as the interceptors do in the producer's earlier stages
// (see arrivals).
type byteEncoder struct{ b []byte }

func (e *byteEncoder) Encode() ([]byte, error) {
	pollnet.Poll()
	return e.b, nil
}

func (e *byteEncoder) Length() int { return len(e.b) }
