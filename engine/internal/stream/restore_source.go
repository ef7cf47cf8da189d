package stream

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/state"
)

// sourceRestore rebuilds one partition of the tables restored from the
// pipeline's source topic (state.Def.SourceChangelog): it replays the
// source records from the tables' checkpoint up to end, the consumer
// group's committed offset, through the chain's decoding and filters, as
// processing did. Everything before the committed offset was processed and
// committed, so the tables then hold what the committed batches made them.
type sourceRestore struct {
	client    sarama.Client
	chain     *Chain
	tables    *Tables
	defs      []state.Def
	topic     string
	partition int32
	end       int64 // the committed offset; < 0 when the group has none (the claim starts at the oldest offset)
	tracker   *Tracker
	log       *slog.Logger
}

// sourceIdle is how long a restore waits for a record before it warns, and
// sourceIdleRounds how many such waits in a row make it take the source's
// offsets left below end to hold no record it can read: aborted records and
// transaction markers, as after an offset reset to the end of a topic that
// transactions write. (Processing commits the offset after a record it
// read, so a restore normally reads the record just below end.)
const (
	sourceIdle       = 5 * time.Second
	sourceIdleRounds = 3
)

// sourceBatch is how many source records a restore applies per store
// batch.
const sourceBatch = 1000

// run restores the partition and returns how many source records it read.
func (r *sourceRestore) run(ctx context.Context) (int, error) {
	for _, d := range r.defs {
		r.tracker.setRestoring(d.Name, r.partition, true)
		defer r.tracker.setRestoring(d.Name, r.partition, false)
	}
	from := int64(-1)
	for _, d := range r.defs {
		off, err := checkpoint(r.tables.Store, d.Name, r.partition, r.topic)
		if err != nil {
			return 0, err
		}
		if from < 0 || off < from {
			from = off
		}
	}
	// Without a committed offset (end < 0: the group's offsets were
	// deleted or expired) the partition is processed again from its
	// start; the table is kept, since processing a record twice leaves a
	// latest table, and the aggregates of it, as they were.
	if from >= r.end {
		return 0, nil
	}
	oldest, err := r.client.GetOffset(r.topic, r.partition, sarama.OffsetOldest)
	if err != nil {
		return 0, fmt.Errorf("stream: restore %s/%d from the source: start offset: %w", r.topic, r.partition, err)
	}
	if oldest > from {
		r.log.Warn("the source no longer holds every record the restore needs; the table lacks the keys only they held",
			"topic", r.topic, "partition", r.partition, "checkpoint", from, "oldest", oldest)
		from = oldest
	}
	if from >= r.end {
		return 0, r.apply(nil, r.end, 0)
	}
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return 0, fmt.Errorf("stream: restore consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(r.topic, r.partition, from)
	if err != nil {
		return 0, fmt.Errorf("stream: restore %s/%d from the source at %d: %w", r.topic, r.partition, from, err)
	}
	defer pc.Close()
	return r.replay(ctx, pc, from)
}

// replay applies the records of pc below end, in store batches of about a
// thousand records.
func (r *sourceRestore) replay(ctx context.Context, pc sarama.PartitionConsumer, next int64) (int, error) {
	// Every table plans each record, as processing did, so that a record
	// an aggregate rejects (processing dead-lettered it) changes nothing
	// here either; only the source-restored tables' writes are kept.
	view := &Tables{App: r.tables.App, Store: r.tables.Store, Defs: r.tables.Defs}
	bs := newBatchState(view, r.partition, sourceBatch)
	n, applied := 0, 0
	idle := time.NewTimer(sourceIdle)
	defer idle.Stop()
	idleRounds := 0
	for next < r.end {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case m, ok := <-pc.Messages():
			if !ok {
				return n, consumerEnded(pc, r.topic, r.partition)
			}
			next = m.Offset + 1
			if m.Offset >= r.end {
				break // a record committed after the group's offset
			}
			n++
			if data, ok := r.chain.tableInput(m); ok {
				if _, err := bs.update(data, m.Key, m.Timestamp); err == nil {
					applied++
				}
			}
			if applied >= sourceBatch {
				if err := r.apply(bs, next, applied); err != nil {
					return n, err
				}
				bs, applied = newBatchState(view, r.partition, sourceBatch), 0
			}
			idle.Reset(sourceIdle)
			idleRounds = 0
		case err, ok := <-pc.Errors():
			if !ok {
				return n, consumerEnded(pc, r.topic, r.partition)
			}
			return n, fmt.Errorf("stream: restore %s/%d from the source: %w", r.topic, r.partition, err)
		case <-idle.C:
			if idleRounds++; idleRounds < sourceIdleRounds {
				r.log.Warn("restore waits for the source's records below the committed offset",
					"topic", r.topic, "partition", r.partition, "next", next, "committed", r.end, "waited", sourceIdle*time.Duration(idleRounds))
				idle.Reset(sourceIdle)
				continue
			}
			r.log.Error("restore read nothing below the committed offset for a while: taking the offsets left to hold no committed record (aborted records, transaction markers)",
				"topic", r.topic, "partition", r.partition, "next", next, "committed", r.end)
			next = r.end
		}
	}
	return n, r.apply(bs, r.end, applied)
}

// apply writes what bs holds of the source-restored tables (nothing when
// bs is nil) to the store, with their checkpoints at next, and counts the
// applied records as replayed into each.
func (r *sourceRestore) apply(bs *batchState, next int64, applied int) error {
	byTable := map[string][]state.Write{}
	if bs != nil {
		_, writes, err := bs.flush(nil, nil)
		if err != nil {
			return fmt.Errorf("stream: restore %s/%d from the source: %w", r.topic, r.partition, err)
		}
		for _, w := range writes {
			byTable[w.Table] = w.Writes
		}
	}
	for _, d := range r.defs {
		if err := r.tables.Store.Apply(d.Name, r.partition, byTable[d.Name], &state.Position{Topic: r.topic, Offset: next}); err != nil {
			return err
		}
		r.tracker.addRestored(d.Name, applied)
	}
	return nil
}
