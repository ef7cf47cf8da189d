package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/state"
)

// Tracker records, for the HTTP API, which input partitions this instance
// owns, per consumer group (two pipelines may read one topic), and which
// table partitions are restoring. It is safe for concurrent use.
type Tracker struct {
	mu        sync.RWMutex
	owned     map[groupTopic]map[int32]bool
	restoring map[string]map[int32]bool // table -> partitions
	restored  map[string]int64          // table -> records replayed
}

type groupTopic struct{ group, topic string }

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{owned: map[groupTopic]map[int32]bool{}, restoring: map[string]map[int32]bool{}, restored: map[string]int64{}}
}

func (t *Tracker) setOwned(group, topic string, parts []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := map[int32]bool{}
	for _, p := range parts {
		m[p] = true
	}
	t.owned[groupTopic{group, topic}] = m
}

// Owns reports whether this instance's member of group consumes
// partition p of topic now.
func (t *Tracker) Owns(group, topic string, p int32) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.owned[groupTopic{group, topic}][p]
}

// Owned returns the partitions of topic this instance's member of group
// consumes now.
func (t *Tracker) Owned(group, topic string) []int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []int32
	for p := range t.owned[groupTopic{group, topic}] {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// OwnedAll returns the partitions this instance consumes now, by consumer
// group and topic.
func (t *Tracker) OwnedAll() map[string]map[string][]int32 {
	t.mu.RLock()
	keys := make([]groupTopic, 0, len(t.owned))
	for k := range t.owned {
		keys = append(keys, k)
	}
	t.mu.RUnlock()
	out := map[string]map[string][]int32{}
	for _, k := range keys {
		if ps := t.Owned(k.group, k.topic); len(ps) > 0 {
			if out[k.group] == nil {
				out[k.group] = map[string][]int32{}
			}
			out[k.group][k.topic] = ps
		}
	}
	return out
}

func (t *Tracker) setRestoring(table string, p int32, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restoring[table] == nil {
		t.restoring[table] = map[int32]bool{}
	}
	if on {
		t.restoring[table][p] = true
	} else {
		delete(t.restoring[table], p)
	}
}

// Restoring reports whether partition p of table is being restored.
func (t *Tracker) Restoring(table string, p int32) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.restoring[table][p]
}

// RestoringAll returns the partitions being restored, by table.
func (t *Tracker) RestoringAll() map[string][]int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string][]int32{}
	for table, ps := range t.restoring {
		for p := range ps {
			out[table] = append(out[table], p)
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	return out
}

func (t *Tracker) addRestored(table string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.restored[table] += int64(n)
}

// Restored returns, by table, how many records (changelog records, or
// source records that reached the table) restores have replayed since the
// engine started.
func (t *Tracker) Restored() map[string]int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return maps.Clone(t.restored)
}

// barrierKey marks the barrier records restore writes into a changelog;
// they are never applied to a table.
var barrierKey = []byte("\x00restore-barrier")

// restore replays partition p of table's changelog from the local
// checkpoint up to barrier, the offset of a record this instance wrote (and
// committed) after taking the partition: everything before it is settled,
// committed or aborted, so the replay is complete when it reaches it.
func restore(ctx context.Context, client sarama.Client, store *state.Store, table, changelog string, p int32, barrier int64, tr *Tracker) (int, error) {
	tr.setRestoring(table, p, true)
	defer tr.setRestoring(table, p, false)
	from, err := checkpoint(store, table, p, "")
	if err != nil {
		return 0, err
	}
	if from > barrier {
		return 0, nil
	}
	oldest, err := client.GetOffset(changelog, p, sarama.OffsetOldest)
	if err != nil {
		return 0, fmt.Errorf("stream: restore %s/%d: start offset: %w", changelog, p, err)
	}
	from = max(from, oldest)
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, fmt.Errorf("stream: restore consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(changelog, p, from)
	if err != nil {
		return 0, fmt.Errorf("stream: restore %s/%d from %d: %w", changelog, p, from, err)
	}
	defer pc.Close()
	return replay(ctx, pc, store, table, changelog, p, barrier, tr)
}

// replay applies changelog records in batches until it has applied the
// barrier's offset.
func replay(ctx context.Context, pc sarama.PartitionConsumer, store *state.Store, table, changelog string, p int32, barrier int64, tr *Tracker) (int, error) {
	n := 0
	var writes []state.Write
	next := int64(-1)
	flush := func() error {
		err := store.Apply(table, p, writes, &state.Position{Offset: next})
		tr.addRestored(table, len(writes))
		writes = writes[:0]
		return err
	}
	for next <= barrier {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case m, ok := <-pc.Messages():
			if !ok {
				return n, consumerEnded(pc, changelog, p)
			}
			next = m.Offset + 1
			if string(m.Key) == string(barrierKey) {
				continue
			}
			writes = append(writes, state.Write{Key: m.Key, Value: m.Value})
			n++
			if len(writes) >= 1000 {
				if err := flush(); err != nil {
					return n, err
				}
			}
		case err, ok := <-pc.Errors():
			if !ok {
				return n, consumerEnded(pc, changelog, p)
			}
			return n, fmt.Errorf("stream: restore %s/%d: %w", table, p, err)
		}
	}
	return n, flush()
}

// consumerEnded is the error of a partition consumer of topic/p whose
// channels closed (sarama closes them after an error such as an offset out
// of range, when retention or compaction deleted records under a restore).
func consumerEnded(pc sarama.PartitionConsumer, topic string, p int32) error {
	select {
	case err, ok := <-pc.Errors():
		if ok {
			return fmt.Errorf("stream: restore %s/%d: %w", topic, p, err)
		}
	default:
	}
	return fmt.Errorf("stream: restore %s/%d: the consumer stopped", topic, p)
}

// checkpoint returns the offset from which to replay table's partition p
// from topic: the source topic for a table restored from its source, ""
// for its changelog. A partition last applied from its changelog and now
// restored from the source is cleared, and replayed from the start; the
// other way round is refused (the changelog lacks what the source-restored
// batches wrote), and the engine checks for it when it starts.
func checkpoint(store *state.Store, table string, p int32, topic string) (int64, error) {
	pos, ok, err := store.Checkpoint(table, p)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, nil
	case pos.Topic == topic:
		return pos.Offset, nil
	case topic == "":
		return 0, fmt.Errorf("stream: table %s partition %d was restored from topic %s: %w", table, p, pos.Topic, ErrSourceToChangelog)
	}
	return 0, store.Clear(table, p)
}

// ErrSourceToChangelog reports a table whose local state was kept with
// changelog: source, now declared with changelog: topic: its changelog topic
// lacks every batch processed meanwhile, so it cannot take over.
var ErrSourceToChangelog = errors.New("a table restored from its source cannot go back to a changelog topic: keep changelog: source, or start the application anew (a new application_id)")
