package stream

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/state"
	"github.com/billing-engine/billing/engine/sdk"
)

// splitter emits two records, keyed apart, to the next step for every
// record, and the record's value to its "seen" output.
type splitter struct{}

func (splitter) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		out[i].Emits = []sdk.Emit{
			{Output: "next", Key: append(r.Key[:len(r.Key):len(r.Key)], "-a"...), Value: []byte("a"), Data: map[string]any{"id": string(r.Key) + "-a", "n": int64(i)}},
			{Output: "next", Key: append(r.Key[:len(r.Key):len(r.Key)], "-b"...), Value: []byte("b"), Data: map[string]any{"id": string(r.Key) + "-b", "n": int64(i)}},
			{Output: "seen", Value: append([]byte("seen "), r.Value...)},
		}
	}
	return out, nil
}

// router sends each record's id to "out", or every fifth to the DLQ.
type router struct{}

func (router) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		if r.Data["n"].(int64)%5 == 0 {
			out[i].DLQ = "every fifth"
			continue
		}
		out[i].Emits = []sdk.Emit{{Output: "out", Value: []byte(r.Data["id"].(string))}}
	}
	return out, nil
}

// scratchChain returns a chain of the named steps: split, tables, route.
func scratchChain(t *testing.T, steps ...string) *Chain {
	c := &Chain{Pipeline: "p", DLQ: "dlq"}
	for _, name := range steps {
		switch name {
		case "split":
			c.Steps = append(c.Steps, Step{Name: name, Processor: splitter{}, Outputs: map[string]string{"seen": "seen"}})
		case "tables":
			tables := &Tables{App: "app", Store: openStore(t), Defs: []state.Def{{Name: "last", Kind: state.Latest, Fields: []string{"id", "n"}}}}
			c.Steps = append(c.Steps, Step{Name: name, Tables: tables})
		case "route":
			c.Steps = append(c.Steps, Step{Name: name, Processor: router{}, Outputs: map[string]string{"out": "out"}})
		}
	}
	return c
}

// describe renders what a batch produces, as it would be sent.
func describe(t *testing.T, res Result, msgs []*sarama.ProducerMessage) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		v, _ := m.Value.Encode()
		var k []byte
		if m.Key != nil {
			k, _ = m.Key.Encode()
		}
		out = append(out, fmt.Sprintf("%s %q %q %d headers", m.Topic, k, v, len(m.Headers)))
	}
	for _, w := range res.State {
		for _, x := range w.Writes {
			out = append(out, fmt.Sprintf("state %s/%d %q=%q", w.Table, w.Partition, x.Key, x.Value))
		}
	}
	return out
}

// TestScratchReusedAcrossBatches runs batches of growing and shrinking
// size through one partition's scratch, as a partition's handler does, and
// checks that each produces exactly what it produces with buffers of its
// own: reusing them, including the two item buffers that processor steps
// take turns with (with one processor step and with two), never mixes one
// batch's records into another's.
func TestScratchReusedAcrossBatches(t *testing.T) {
	for _, steps := range [][]string{{"split", "tables", "route"}, {"split", "tables"}} {
		t.Run(fmt.Sprint(steps), func(t *testing.T) {
			testScratchReused(t, steps)
		})
	}
}

func testScratchReused(t *testing.T, steps []string) {
	shared, fresh := scratchChain(t, steps...), scratchChain(t, steps...)
	var sc scratch
	ctx := context.Background()
	offset := int64(0)
	for round, n := range []int{50, 120, 30, 120, 7} {
		batch := make([]*sarama.ConsumerMessage, n)
		for i := range batch {
			batch[i] = &sarama.ConsumerMessage{Topic: "in", Partition: 2, Offset: offset,
				Key: fmt.Appendf(nil, "r%d-k%d", round, i), Value: fmt.Appendf(nil, "value %d/%d", round, i)}
			offset++
		}
		res, err := shared.processWith(ctx, batch, &sc)
		if err != nil {
			t.Fatal(err)
		}
		got := describe(t, res, toProducerMessages(res.Outputs, &sc))
		var own scratch
		want, err := fresh.Process(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, describe(t, want, toProducerMessages(want.Outputs, &own))) {
			t.Fatalf("batch %d of %d records through the reused scratch:\n%q\nwant:\n%q", round, n, got, describe(t, want, toProducerMessages(want.Outputs, &own)))
		}
		// A seen record per record; per id (two per record) a changelog
		// record, and with the route step an out or a DLQ record.
		wantOuts := 3 * n
		if len(steps) == 3 {
			wantOuts = 5 * n
		}
		if len(res.Outputs) != wantOuts || len(res.State) != 1 || len(res.State[0].Writes) != 2*n {
			t.Fatalf("batch %d of %d records: %d outputs and %d table writes; want %d outputs, %d writes", round, n, len(res.Outputs), len(res.State), wantOuts, 2*n)
		}
	}
}

// TestTake checks take: a big enough buffer is reused and cleared of the
// last batch's values, a small one replaced by one kept for next time.
func TestTake(t *testing.T) {
	var buf []*int
	one := 1
	s := take(&buf, 4)
	if len(s) != 0 || cap(s) < 4 {
		t.Fatalf("take(nil, 4) = len %d cap %d", len(s), cap(s))
	}
	s = append(s, &one, &one, &one)
	again := take(&buf, 3)
	if &again[:1][0] != &s[:1][0] {
		t.Error("take did not reuse a buffer big enough")
	}
	for i, p := range again[:3] {
		if p != nil {
			t.Errorf("element %d of the reused buffer still points to the last batch's value", i)
		}
	}
	bigger := take(&buf, 100)
	if cap(bigger) < 100 || cap(buf) != cap(bigger) {
		t.Errorf("take(100) = cap %d, kept cap %d; want a new buffer of 100 kept", cap(bigger), cap(buf))
	}
}
