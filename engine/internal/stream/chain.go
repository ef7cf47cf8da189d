package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/expr"
	"github.com/billing-engine/billing/engine/internal/pollnet"
	"github.com/billing-engine/billing/engine/sdk"
)

// DLQ header names. Every dead-lettered record carries all of them.
const (
	HeaderReason    = "dlq.reason"
	HeaderStage     = "dlq.stage"
	HeaderPipeline  = "dlq.pipeline"
	HeaderTopic     = "dlq.topic"
	HeaderPartition = "dlq.partition"
	HeaderOffset    = "dlq.offset"
)

// StageDecode is the stage name DLQ records carry when the value could not
// be decoded.
const StageDecode = "decode"

// Step is one compiled stage of a Chain.
type Step struct {
	// Name is the stage's name, for DLQ headers, logs and metrics.
	Name string
	// Filter, when set, drops records for which it is false.
	Filter *expr.Program
	// Tables, when set, updates the pipeline's tables from each record.
	Tables *Tables
	// Processor, when set, processes the batch.
	Processor sdk.Processor
	// Outputs maps the processor's output names to topics.
	Outputs map[string]string
	// Timeout bounds one Process call. Zero means 30s.
	Timeout time.Duration
}

// Chain is a pipeline's stages, compiled. It is safe for concurrent use by
// the partitions of one pipeline.
type Chain struct {
	// Pipeline names the pipeline.
	Pipeline string
	// Registry and Schema decode source values.
	Registry *avro.Registry
	Schema   *avro.Schema
	// Steps run in order.
	Steps []Step
	// DLQ is the dead-letter topic.
	DLQ string
	// Retries and Backoff govern failed Process calls: Retries < 0 retries
	// until the context ends.
	Retries int
	Backoff time.Duration
	// Observer, when set, is told what the chain did.
	Observer Observer
	// Log receives retry warnings.
	Log *slog.Logger
}

// Observer is told what each batch did, once the batch has committed, so a
// batch that is retried or abandoned is never counted twice.
// Implementations must be safe for concurrent use, and must not keep the
// Batch, its outputs or their keys and values past the call: the
// partition's next batch reuses their memory.
type Observer interface {
	Committed(pipeline string, b *Batch)
	// Retrying is told at once when a stage's Process call failed and the
	// batch will be tried again; unavailable says the failure wraps
	// sdk.ErrUnavailable (a dependency is down: the batch waits).
	Retrying(pipeline, stage string, unavailable bool)
}

// Batch is what one committed batch did.
type Batch struct {
	// Topic and Partition are the source partition.
	Topic     string
	Partition int32
	// Inputs are the source records of the batch, in offset order.
	Inputs []*sarama.ConsumerMessage
	// Outputs are the records the batch produced, dead letters included
	// (those have DeadLetter set).
	Outputs []Output
	// Dropped counts, per filter stage, the records it dropped.
	Dropped map[string]int
	// Took is the time from the start of processing to the commit.
	Took time.Duration
	// Lag is how many records of the partition were still to be read after
	// the batch (the high watermark minus the next offset).
	Lag int64
	// SourceTableWrites counts, per table restored from its source, the
	// keys the batch changed (the other tables' changes are their
	// changelog records, among Outputs).
	SourceTableWrites map[string]int

	produced map[StageTopic]int
}

// StageTopic names the records a stage wrote to one topic.
type StageTopic struct{ Stage, Topic string }

// Produced counts the batch's outputs by stage and topic. It is computed
// on first use and kept, so every observer shares one count; a Batch is not
// safe for concurrent use.
func (b *Batch) Produced() map[StageTopic]int {
	if b.produced == nil {
		b.produced = map[StageTopic]int{}
		for i := range b.Outputs {
			b.produced[StageTopic{b.Outputs[i].Stage, b.Outputs[i].Topic}]++
		}
	}
	return b.produced
}

// Output is a record to produce.
type Output struct {
	Topic     string
	Key       []byte
	Value     []byte
	Headers   []sdk.Header
	Timestamp time.Time
	// Stage produced it (for metrics).
	Stage string
	// DeadLetter is set on records for the DLQ.
	DeadLetter *DeadLetter
	// Partition is the partition to write to when Pinned; otherwise the
	// key chooses it.
	Partition int32
	Pinned    bool
}

// DeadLetter says why a record went to the DLQ and where it came from.
type DeadLetter struct {
	Stage, Reason string
	// Topic, Partition and Offset locate the source record.
	Topic     string
	Partition int32
	Offset    int64
}

// item is a record in flight, with the index of the source message it
// came from.
type item struct {
	rec    sdk.Record
	origin int
}

// Result is what one batch produced.
type Result struct {
	// Outputs are the records to produce, in order.
	Outputs []Output
	// Dropped counts, per filter stage, the records it dropped.
	Dropped map[string]int
	// State are the table changes to apply once Outputs committed.
	State []StateWrite
	// Committed, when set, is called after State was applied.
	Committed func()
}

// Process runs msgs (all from one partition) through the chain and returns
// what to produce, in order. Records that fail go to the DLQ output; only a
// context error (the engine is stopping mid-retry) or ErrRevoked (the
// partition's session ended while a stage waited to retry) is returned, in
// which case nothing of the batch may be committed.
func (c *Chain) Process(ctx context.Context, msgs []*sarama.ConsumerMessage) (Result, error) {
	var sc scratch
	return c.processWith(ctx, msgs, &sc)
}

// processWith is Process with the buffers of sc, which what it returns
// holds until sc serves the next batch.
func (c *Chain) processWith(ctx context.Context, msgs []*sarama.ConsumerMessage, sc *scratch) (Result, error) {
	// A record's outputs: its sink record, and a changelog record per
	// table, at most (flush appends those after the sinks).
	perRecord := 1
	for _, st := range c.Steps {
		if st.Tables != nil {
			perRecord += len(st.Tables.Defs)
		}
	}
	outs := take(&sc.outs, perRecord*len(msgs))
	items := take(&sc.items, len(msgs))
	for i, m := range msgs {
		yieldEvery(i)
		rec := toRecord(m)
		if c.Registry != nil {
			data, err := c.decode(m.Value)
			if err != nil {
				outs = append(outs, c.deadLetter(m, rec, StageDecode, err.Error()))
				continue
			}
			rec.Data = data
		}
		items = append(items, item{rec: rec, origin: i})
	}
	var bs *batchState
	var dropped map[string]int
	for _, st := range c.Steps {
		var err error
		switch {
		case st.Filter != nil:
			n := len(items)
			items, outs = c.filter(st, msgs, items, outs)
			if d := n - len(items); d > 0 {
				if dropped == nil {
					dropped = map[string]int{}
				}
				dropped[st.Name] += d
			}
		case st.Tables != nil:
			if bs == nil {
				bs = newBatchState(st.Tables, msgs[0].Partition, len(msgs))
			}
			items, outs = c.tables(bs, msgs, items, outs)
		default:
			items, outs, err = c.process(ctx, st, msgs, items, outs, sc)
		}
		if err != nil {
			return Result{}, err
		}
	}
	res := Result{Outputs: outs, Dropped: dropped}
	if bs != nil {
		all, writes, err := bs.flush(res.Outputs, &sc.buf)
		if err != nil {
			return Result{}, err
		}
		res.Outputs = all
		res.State = writes
		res.Committed = bs.committed
	}
	sc.outs = res.Outputs[:0] // grown by appends past what take sized
	return res, nil
}

// tables updates the tables from each record; a record that cannot be
// applied goes to the DLQ and no further.
func (c *Chain) tables(bs *batchState, msgs []*sarama.ConsumerMessage, items []item, outs []Output) ([]item, []Output) {
	kept := items[:0]
	for i, it := range items {
		yieldEvery(i)
		var more []Output
		var err error
		if bs.t.Repartitioned != nil {
			err = bs.applyRepartitioned(it.rec.Value, it.rec.Key, it.rec.Timestamp)
		} else {
			more, err = bs.update(it.rec.Data, it.rec.Key, it.rec.Timestamp)
		}
		if err != nil {
			outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, "tables", err.Error()))
			continue
		}
		outs = append(outs, more...)
		kept = append(kept, it)
	}
	return kept, outs
}

// tableInput returns the record the tables step makes of m, as Process
// does: decoded and through the filters before it. ok is false when m
// never reaches the tables (undecodable, dropped or failed by a filter).
// Only filters may come before the tables of a table restored from its
// source (the pipeline file's validation sees to it); a plugin stage ends
// it with ok false.
func (c *Chain) tableInput(m *sarama.ConsumerMessage) (map[string]any, bool) {
	if c.Registry == nil {
		return nil, false
	}
	data, err := c.decode(m.Value)
	if err != nil {
		return nil, false
	}
	for _, st := range c.Steps {
		switch {
		case st.Tables != nil:
			return data, true
		case st.Filter != nil:
			if ok, err := st.Filter.EvalBool(data); err != nil || !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return nil, false
}

func (c *Chain) decode(v []byte) (map[string]any, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	return c.Registry.Decode(c.Schema, v)
}

func (c *Chain) filter(st Step, msgs []*sarama.ConsumerMessage, items []item, outs []Output) ([]item, []Output) {
	kept := items[:0]
	for _, it := range items {
		ok, err := st.Filter.EvalBool(it.rec.Data)
		switch {
		case err != nil:
			outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, st.Name, err.Error()))
		case ok:
			kept = append(kept, it)
		}
	}
	return kept, outs
}

func (c *Chain) process(ctx context.Context, st Step, msgs []*sarama.ConsumerMessage, items []item, outs []Output, sc *scratch) ([]item, []Output, error) {
	if len(items) == 0 {
		return items, outs, nil
	}
	batch := make([]sdk.Record, len(items))
	for i, it := range items {
		batch[i] = it.rec
	}
	results, err := c.call(ctx, st, batch)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err // nothing of the batch may be committed
		}
		for _, it := range items {
			outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, st.Name, err.Error()))
		}
		return nil, outs, nil
	}
	next := take(&sc.spare, len(items))
	for i, res := range results {
		it := items[i]
		for _, e := range res.Emits {
			if e.Output == "" || e.Output == "next" {
				rec, err := c.chained(it.rec, e)
				if err != nil {
					outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, st.Name, err.Error()))
					continue
				}
				next = append(next, item{rec: rec, origin: it.origin})
				continue
			}
			topic, ok := st.Outputs[e.Output]
			if !ok {
				outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, st.Name, fmt.Sprintf("unknown output %q", e.Output)))
				continue
			}
			outs = append(outs, emitted(it.rec, e, topic, st.Name))
		}
		if res.DLQ != "" {
			outs = append(outs, c.deadLetter(msgs[it.origin], it.rec, st.Name, res.DLQ))
		}
	}
	// The next step reads next and writes its own next where this one read.
	sc.items, sc.spare = next[:0], items[:0]
	return next, outs, nil
}

// call runs one Process call with the step's timeout, retrying a failed
// batch with exponential backoff. A failure wrapping sdk.ErrUnavailable
// (a database or mail server down) is retried for as long as it lasts and
// does not count against Retries; it ends only when the partition's
// session does (see WithSession), leaving the batch uncommitted for the
// partition's next owner.
func (c *Chain) call(ctx context.Context, st Step, batch []sdk.Record) ([]sdk.Result, error) {
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	backoff, waitBackoff := c.Backoff, max(c.Backoff, 10*time.Millisecond)
	failures := 0
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		results, err := st.Processor.Process(cctx, batch)
		cancel()
		if err == nil && len(results) != len(batch) {
			err = fmt.Errorf("stage %s returned %d results for %d records", st.Name, len(results), len(batch))
		}
		if err == nil {
			return results, nil
		}
		wait := &backoff
		if errors.Is(err, sdk.ErrUnavailable) {
			wait = &waitBackoff
		} else {
			failures++
			if c.Retries >= 0 && failures > c.Retries {
				return nil, fmt.Errorf("stage %s failed after %d attempts: %w", st.Name, attempt, err)
			}
		}
		if o := c.Observer; o != nil {
			o.Retrying(c.Pipeline, st.Name, wait == &waitBackoff)
		}
		if c.Log != nil {
			c.Log.Warn("stage failed; retrying batch", "pipeline", c.Pipeline, "stage", st.Name,
				"partition", batch[0].Partition, "first_offset", batch[0].Offset, "records", len(batch),
				"attempt", attempt, "backoff", *wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sessionDone(ctx):
			return nil, fmt.Errorf("stage %s: %w (%w)", st.Name, ErrRevoked, err)
		case <-time.After(*wait):
		}
		if wait == &waitBackoff {
			waitBackoff = min(waitBackoff*2, 5*time.Second)
		} else {
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}

// ErrRevoked is returned by Process when the partition's session ended
// while a stage was waiting to retry its batch: nothing of the batch may be
// committed (it is not dead-lettered either); the partition's next owner
// processes it.
var ErrRevoked = errors.New("the partition was revoked while its batch waited for a retry; the batch is left to its next owner")

type sessionKey struct{}

// WithSession returns ctx carrying the end of a partition's session, so
// that a batch retried while a dependency is unavailable is given up when
// the partition is revoked. ctx itself is usually not cancelled with the
// session: a batch in hand is otherwise finished.
func WithSession(ctx context.Context, session <-chan struct{}) context.Context {
	return context.WithValue(ctx, sessionKey{}, session)
}

// sessionDone returns the channel WithSession put in ctx, or nil (which
// never fires).
func sessionDone(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(sessionKey{}).(<-chan struct{})
	return ch
}

// chained builds the record the next stage sees from an emit to "next".
func (c *Chain) chained(in sdk.Record, e sdk.Emit) (sdk.Record, error) {
	out := in
	if e.Key != nil {
		out.Key = e.Key
	}
	if e.Headers != nil {
		out.Headers = e.Headers
	}
	out.Value = e.Value
	out.Data = e.Data
	if out.Data == nil {
		data, err := c.decode(e.Value)
		if err != nil {
			return sdk.Record{}, fmt.Errorf("emitted value: %w", err)
		}
		out.Data = data
	}
	return out, nil
}

func emitted(in sdk.Record, e sdk.Emit, topic, stage string) Output {
	o := Output{Topic: topic, Key: in.Key, Value: e.Value, Headers: in.Headers, Timestamp: in.Timestamp, Stage: stage}
	if e.Key != nil {
		o.Key = e.Key
	}
	if e.Headers != nil {
		o.Headers = e.Headers
	}
	return o
}

// deadLetter builds the DLQ record for rec, which came from m.
func (c *Chain) deadLetter(m *sarama.ConsumerMessage, rec sdk.Record, stage, reason string) Output {
	h := make([]sdk.Header, 0, len(rec.Headers)+6)
	h = append(h, rec.Headers...)
	h = append(h,
		sdk.Header{Key: HeaderReason, Value: []byte(reason)},
		sdk.Header{Key: HeaderStage, Value: []byte(stage)},
		sdk.Header{Key: HeaderPipeline, Value: []byte(c.Pipeline)},
		sdk.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		sdk.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(m.Partition)))},
		sdk.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return Output{
		Topic: c.DLQ, Key: rec.Key, Value: rec.Value, Headers: h, Timestamp: rec.Timestamp, Stage: stage,
		DeadLetter: &DeadLetter{Stage: stage, Reason: reason, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset},
	}
}

func toRecord(m *sarama.ConsumerMessage) sdk.Record {
	var hs []sdk.Header
	if len(m.Headers) > 0 {
		hs = make([]sdk.Header, len(m.Headers))
		for i, h := range m.Headers {
			hs[i] = sdk.Header{Key: string(h.Key), Value: h.Value}
		}
	}
	return sdk.Record{
		Key: m.Key, Value: m.Value, Headers: hs,
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp,
	}
}

// yieldInterval is how many records a batch's loops go through between
// two scheduling points. A batch takes milliseconds of CPU, and while a
// goroutine runs, its processor neither runs its timers nor lets the
// goroutine they wake run next: a query that arrived meanwhile waits for
// the whole batch. At every yieldInterval records the loop lets it go
// first. Eight rather than 32: on a 2-core Xeon VM that shortens the wait
// (query p99 2.1-2.4 ms against 2.5-2.9 ms, two runs each) at the same
// records/s; a yield costs about 0.2 us.
const yieldInterval = 8

// yieldEvery yields the processor at every yieldInterval-th i, through
// pollnet.Yield: a query that arrived meanwhile is answered there and
// then, on this goroutine (see package httpfront), or its reader woken.
func yieldEvery(i int) {
	if i%yieldInterval == yieldInterval-1 {
		pollnet.Yield()
	}
}

// scratch holds the buffers of one partition's batches: a batch takes
// them, and the next batch of the partition reuses them once the first is
// committed, so that a batch's outputs, produced messages and table values
// take no new memory once a partition runs (a few hundred kilobytes a
// batch otherwise, more than half of what the runtime allocated per
// record). One goroutine uses a scratch; the zero value is ready.
type scratch struct {
	outs         []Output
	items, spare []item
	buf          []byte // the tables' values and keys
	msgs         []*sarama.ProducerMessage
	slab         []sarama.ProducerMessage
	enc          []byteEncoder
}

// take returns *s emptied, with room for n elements, for a new batch: the
// last batch's elements are cleared, so that what they pointed to can be
// collected, and a buffer too small is replaced (and kept in *s).
func take[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, 0, n)
		return *s
	}
	clear((*s)[:cap(*s)])
	return (*s)[:0]
}
