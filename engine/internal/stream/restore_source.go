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
	end       int64 // the committed offset; < 0 when the group has none
	tracker   *Tracker
	log       *slog.Logger
}

// sourceIdle is how long a restore waits for a record before it takes the
// source's remaining offsets below end to hold no record it can read
// (aborted records and transaction markers, as after an offset reset to the
// end of the topic).
const sourceIdle = 5 * time.Second

// run restores the partition and returns how many source records it read.
func (r *sourceRestore) run(ctx context.Context) (int, error) {
	for _, d := range r.defs {
		r.tracker.setRestoring(d.Name, r.partition, true)
		defer r.tracker.setRestoring(d.Name, r.partition, false)
	}
	from := int64(-1)
	for _, d := range r.defs {
		off, err := checkpoint(r.tables.Store, d.Name, r.partition, r.topic, false)
		if err != nil {
			return 0, err
		}
		if r.end < 0 && off > 0 {
			// The group has no committed offset (it was deleted, or its
			// offsets expired): it processes the partition from the
			// start, and the table follows from nothing.
			if err := r.tables.Store.Clear(d.Name, r.partition); err != nil {
				return 0, err
			}
			off = 0
		}
		if from < 0 || off < from {
			from = off
		}
	}
	if from >= r.end {
		return 0, nil
	}
	oldest, err := r.client.GetOffset(r.topic, r.partition, sarama.OffsetOldest)
	if err != nil {
		return 0, fmt.Errorf("stream: restore from %s/%d: start offset: %w", r.topic, r.partition, err)
	}
	from = max(from, oldest)
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
		return 0, fmt.Errorf("stream: restore from %s/%d at %d: %w", r.topic, r.partition, from, err)
	}
	defer pc.Close()
	return r.replay(ctx, pc, from)
}

// replay applies the records of pc below end, a thousand at a time.
func (r *sourceRestore) replay(ctx context.Context, pc sarama.PartitionConsumer, next int64) (int, error) {
	// Only the source-restored tables: the others restore from their own
	// changelogs.
	view := &Tables{App: r.tables.App, Store: r.tables.Store, Defs: r.defs}
	bs := newBatchState(view, r.partition)
	n, read, pending := 0, 0, 0
	idle := time.NewTimer(sourceIdle)
	defer idle.Stop()
	for next < r.end {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case m := <-pc.Messages():
			next = m.Offset + 1
			if m.Offset >= r.end {
				break // a record committed after the group's offset
			}
			n++
			read++
			if data, ok := r.chain.tableInput(m); ok {
				// A record the tables rejected went to the DLQ when it
				// was processed; here too it changes nothing.
				_, _ = bs.update(data, m.Key, m.Timestamp)
				pending++
			}
			if pending >= 1000 {
				if err := r.apply(bs, next, read); err != nil {
					return n, err
				}
				bs, read, pending = newBatchState(view, r.partition), 0, 0
			}
			idle.Reset(sourceIdle)
		case err := <-pc.Errors():
			return n, fmt.Errorf("stream: restore from %s/%d: %w", r.topic, r.partition, err)
		case <-idle.C:
			r.log.Warn("restore read nothing more below the committed offset; the offsets left hold no committed record",
				"topic", r.topic, "partition", r.partition, "next", next, "committed", r.end)
			next = r.end
		}
	}
	return n, r.apply(bs, r.end, read)
}

// apply writes what bs holds (nothing when nil) to the store, with every
// table's checkpoint at next, and counts the read source records as
// replayed into each table.
func (r *sourceRestore) apply(bs *batchState, next int64, read int) error {
	byTable := map[string][]state.Write{}
	if bs != nil {
		_, writes, err := bs.flush()
		if err != nil {
			return err
		}
		for _, w := range writes {
			byTable[w.Table] = w.Writes
		}
	}
	for _, d := range r.defs {
		if err := r.tables.Store.Apply(d.Name, r.partition, byTable[d.Name], &state.Position{Topic: r.topic, Offset: next}); err != nil {
			return err
		}
		r.tracker.addRestored(d.Name, read)
	}
	return nil
}
