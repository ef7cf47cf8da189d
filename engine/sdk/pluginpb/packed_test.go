package pluginpb_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

// header and record are what a test batch holds; nil and empty differ.
type header struct {
	Key   string
	Value []byte
}

type record struct {
	pluginpb.PackedRecord
	Headers []header // Headers nil: PackedRecord.Headers -1
}

func writeBatch(recs []record) []byte {
	var w pluginpb.Writer
	w.Count(len(recs))
	for _, r := range recs {
		p := r.PackedRecord
		p.Headers = -1
		if r.Headers != nil {
			p.Headers = len(r.Headers)
		}
		w.Record(&p)
		for _, h := range r.Headers {
			w.Header(h.Key, h.Value)
		}
	}
	return w.Bytes()
}

func readBatch(msg []byte) ([]record, error) {
	var rd pluginpb.Reader
	rd.Reset(msg)
	recs := make([]record, rd.RecordCount())
	for i := range recs {
		if !rd.Record(&recs[i].PackedRecord) {
			break
		}
		if n := recs[i].PackedRecord.Headers; n >= 0 {
			recs[i].Headers = make([]header, n)
			for k := range recs[i].Headers {
				recs[i].Headers[k].Key, recs[i].Headers[k].Value = rd.Header()
			}
		}
		recs[i].PackedRecord.Headers = 0
	}
	if err := rd.Finish(); err != nil {
		return nil, err
	}
	return recs, nil
}

// sameBatch compares batches telling nil from empty slices.
func sameBatch(t *testing.T, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		w.PackedRecord.Headers = 0
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Errorf("record %d: got key %s value %s, want key %s value %s", i, show(g.Key), show(g.Value), show(w.Key), show(w.Value))
		}
		g.Key, g.Value, w.Key, w.Value = nil, nil, nil, nil
		if (g.Headers == nil) != (w.Headers == nil) || len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d: got headers %#v, want %#v", i, g.Headers, w.Headers)
		} else {
			for k := range w.Headers {
				if g.Headers[k].Key != w.Headers[k].Key || !sameBytes(g.Headers[k].Value, w.Headers[k].Value) {
					t.Errorf("record %d header %d: got %q=%s, want %q=%s", i, k, g.Headers[k].Key, show(g.Headers[k].Value), w.Headers[k].Key, show(w.Headers[k].Value))
				}
			}
		}
		g.Headers, w.Headers = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("record %d: got %+v, want %+v", i, g.PackedRecord, w.PackedRecord)
		}
	}
}

// sameBytes reports whether a and b are equal and both nil or both not.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 16 {
		return fmt.Sprintf("%q... (%d bytes)", b[:16], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func TestBatchRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	topics := make([]record, 50)                           // more topics than are interned
	for i := range topics {
		topics[i].Topic = fmt.Sprintf("topic-%d", i%40)
		topics[i].Offset = int64(i)
	}
	for _, tc := range []struct {
		name string
		recs []record
	}{
		{"empty batch", nil},
		{"zero record", []record{{}}},
		{"nil key, empty key", []record{
			{PackedRecord: pluginpb.PackedRecord{Key: nil, Value: []byte("v")}},
			{PackedRecord: pluginpb.PackedRecord{Key: []byte{}, Value: []byte("v")}},
		}},
		{"nil value, empty value", []record{
			{PackedRecord: pluginpb.PackedRecord{Key: []byte("k"), Value: nil}},
			{PackedRecord: pluginpb.PackedRecord{Key: []byte("k"), Value: []byte{}}},
		}},
		{"headers nil, empty, set", []record{
			{Headers: nil},
			{Headers: []header{}},
			{Headers: []header{{"a", []byte("1")}, {"b", nil}, {"c", []byte{}}, {"", []byte("x")}}},
			{Headers: []header{{"b", []byte("2")}, {"a", nil}}},
		}},
		{"position", []record{
			{PackedRecord: pluginpb.PackedRecord{Topic: "transactions", Partition: 7, Offset: 1 << 40, TimestampUnixNano: 1_700_000_000_123_000_000}},
			{PackedRecord: pluginpb.PackedRecord{Topic: "transactions", Partition: math.MaxInt32, Offset: math.MaxInt64, TimestampUnixNano: math.MinInt64}},
			{PackedRecord: pluginpb.PackedRecord{Topic: "other", Partition: -1, Offset: -1, TimestampUnixNano: -1}},
			{PackedRecord: pluginpb.PackedRecord{Topic: "", Partition: math.MinInt32, Offset: math.MinInt64}},
		}},
		{"large values", []record{
			{PackedRecord: pluginpb.PackedRecord{Key: big[:1000], Value: big}, Headers: []header{{"big", big}}},
			{PackedRecord: pluginpb.PackedRecord{Value: big[:3]}},
		}},
		{"many topics", topics},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := writeBatch(tc.recs)
			got, err := readBatch(msg)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			sameBatch(t, got, tc.recs)
		})
	}
}

func TestReaderAliasesAndCaps(t *testing.T) {
	msg := writeBatch([]record{
		{PackedRecord: pluginpb.PackedRecord{Key: []byte("k1"), Value: []byte("v1")}},
		{PackedRecord: pluginpb.PackedRecord{Key: []byte("k2"), Value: []byte("v2")}},
	})
	var rd pluginpb.Reader
	rd.Reset(msg)
	rd.RecordCount()
	var first, second pluginpb.PackedRecord
	rd.Record(&first)
	rd.Record(&second)
	if err := rd.Finish(); err != nil {
		t.Fatal(err)
	}
	if cap(first.Key) != len(first.Key) || cap(first.Value) != len(first.Value) {
		t.Errorf("key cap %d, value cap %d: want them capped at their lengths", cap(first.Key), cap(first.Value))
	}
	_ = append(first.Value, "clobber"...)
	if string(second.Key) != "k2" {
		t.Errorf("appending to a value changed the next key to %q", second.Key)
	}
}

func TestInterning(t *testing.T) {
	recs := make([]record, 1000)
	for i := range recs {
		recs[i].Topic = "transactions.approved"
		recs[i].Headers = []header{{"trace-id", nil}}
	}
	msg := writeBatch(recs)
	if max := 1000*9 + 2*len("transactions.approved"); len(msg) > max {
		t.Errorf("1000 records on one topic with one header: %d bytes, want at most %d (the names sent once)", len(msg), max)
	}
}

// emit and result are what a test's results hold.
type emit struct {
	pluginpb.PackedEmit
	Headers []header // nil: keep the input's
}

type result struct {
	DLQ   string
	Emits []emit
}

func writeResults(rs []result) []byte {
	var w pluginpb.Writer
	w.Reset(make([]byte, 0, 8))
	w.Count(len(rs))
	for _, r := range rs {
		w.Result(pluginpb.PackedResult{DLQ: r.DLQ, Emits: len(r.Emits)})
		for _, e := range r.Emits {
			p := e.PackedEmit
			p.Headers = -1
			if e.Headers != nil {
				p.Headers = len(e.Headers)
			}
			w.Emit(&p)
			for _, h := range e.Headers {
				w.Header(h.Key, h.Value)
			}
		}
	}
	return w.Bytes()
}

func readResults(msg []byte) ([]result, error) {
	var rd pluginpb.Reader
	rd.Reset(msg)
	out := make([]result, rd.ResultCount())
	for i := range out {
		var p pluginpb.PackedResult
		if !rd.Result(&p) {
			break
		}
		out[i].DLQ = p.DLQ
		if p.Emits > 0 {
			out[i].Emits = make([]emit, p.Emits)
		}
		for k := range out[i].Emits {
			e := &out[i].Emits[k]
			if !rd.Emit(&e.PackedEmit) {
				break
			}
			if n := e.PackedEmit.Headers; n >= 0 {
				e.Headers = make([]header, n)
				for j := range e.Headers {
					e.Headers[j].Key, e.Headers[j].Value = rd.Header()
				}
			}
			e.PackedEmit.Headers = 0
		}
	}
	if err := rd.Finish(); err != nil {
		return nil, err
	}
	return out, nil
}

func TestResultsRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xff}, 3<<20)
	for _, tc := range []struct {
		name string
		in   []result
		want []result // nil: in
	}{
		{"no results", nil, nil},
		{"empty results", []result{{}, {}}, nil},
		{"dlq only", []result{{DLQ: "decode: avro: short buffer"}}, nil},
		{"keys: keep, empty, set", []result{{Emits: []emit{
			{PackedEmit: pluginpb.PackedEmit{Output: "a", Key: nil}},
			{PackedEmit: pluginpb.PackedEmit{Output: "a", Key: []byte{}}},
			{PackedEmit: pluginpb.PackedEmit{Output: "b", Key: []byte("k")}},
		}}}, nil},
		{"values: null, empty, set, the input's", []result{{Emits: []emit{
			{PackedEmit: pluginpb.PackedEmit{Output: "next", Value: nil}},
			{PackedEmit: pluginpb.PackedEmit{Output: "next", Value: []byte{}}},
			{PackedEmit: pluginpb.PackedEmit{Output: "", Value: []byte("v")}},
			{PackedEmit: pluginpb.PackedEmit{Output: "", ValueIsInput: true}},
		}}}, nil},
		{"the input's value wins over a value", []result{{Emits: []emit{
			{PackedEmit: pluginpb.PackedEmit{Value: []byte("ignored"), ValueIsInput: true}},
		}}}, []result{{Emits: []emit{
			{PackedEmit: pluginpb.PackedEmit{ValueIsInput: true}},
		}}}},
		{"headers: keep, empty, set", []result{{Emits: []emit{
			{Headers: nil},
			{Headers: []header{}},
			{Headers: []header{{"h", []byte("v")}, {"n", nil}, {"e", []byte{}}}},
		}}}, nil},
		{"dlq and emits", []result{
			{DLQ: "also", Emits: []emit{{PackedEmit: pluginpb.PackedEmit{Output: "out", Value: big}}}},
			{DLQ: "declined"},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = tc.in
			}
			got, err := readResults(writeResults(tc.in))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d results, want %d", len(got), len(want))
			}
			for i := range want {
				sameResult(t, i, got[i], want[i])
			}
		})
	}
}

func sameResult(t *testing.T, i int, got, want result) {
	t.Helper()
	if got.DLQ != want.DLQ || len(got.Emits) != len(want.Emits) {
		t.Fatalf("result %d: got dlq %q and %d emits, want %q and %d", i, got.DLQ, len(got.Emits), want.DLQ, len(want.Emits))
	}
	for k := range want.Emits {
		g, w := got.Emits[k], want.Emits[k]
		if g.Output != w.Output || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || g.ValueIsInput != w.ValueIsInput {
			t.Errorf("result %d emit %d: got output %q key %s value %s input %v, want %q %s %s %v", i, k,
				g.Output, show(g.Key), show(g.Value), g.ValueIsInput, w.Output, show(w.Key), show(w.Value), w.ValueIsInput)
		}
		if (g.Headers == nil) != (w.Headers == nil) || len(g.Headers) != len(w.Headers) {
			t.Errorf("result %d emit %d: got headers %#v, want %#v", i, k, g.Headers, w.Headers)
			continue
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("result %d emit %d header %d: got %q=%s, want %q=%s", i, k, j, g.Headers[j].Key, show(g.Headers[j].Value), w.Headers[j].Key, show(w.Headers[j].Value))
			}
		}
	}
}

// uv is a uvarint.
func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMalformed(t *testing.T) {
	z := []byte{0}
	empty := cat(z, z)                  // a new interned string, ""
	rec := cat(z, z, empty, z, z, z, z) // key, value, topic, partition, offset, timestamp, headers: nil, "" or zero
	for _, tc := range []struct {
		name    string
		results bool // read as results, not a batch
		msg     []byte
		want    string
	}{
		{"empty message", false, nil, "byte 0: record count: truncated"},
		{"empty results", true, nil, "byte 0: result count: truncated"},
		{"count without records", false, uv(1), "byte 0: record count: 1 items cannot fit in the 0 bytes left"},
		{"huge count", false, cat(uv(1<<40), rec), "record count: 1099511627776 items cannot fit in the 8 bytes left"},
		{"varint overflow", false, bytes.Repeat([]byte{0xff}, 11), "byte 0: record count: varint overflows 64 bits"},
		{"key longer than the message", false, cat(uv(1), uv(100), z, z, z, z, z, z), "byte 1: key: length 99 exceeds the 6 bytes left"},
		{"truncated record", false, cat(uv(1), uv(4), []byte("abc"), z, empty, z, z, z), "byte 11: header count: truncated"},
		{"unknown interned string", false, cat(uv(1), z, z, uv(3), z, z, z, z), "byte 3: topic: interned string 3 of 0"},
		{"partition beyond 32 bits", false, cat(uv(1), z, z, empty, uv(1<<33), z, z, z), "byte 5: partition: 8589934592 does not fit 32 bits"},
		{"headers that cannot fit", false, cat(uv(1), z, z, empty, z, z, z, uv(1000)), "byte 8: header count: 999 items cannot fit in the 0 bytes left"},
		{"trailing bytes", false, cat(uv(1), rec, []byte("xyz")), "byte 9: trailing data: 3 bytes after the last item"},
		{"unknown emit flags", true, cat(uv(1), z, uv(1), empty, []byte{0x30}), "emit flags: unknown flags 0x30"},
		{"value sent and the input's", true, cat(uv(1), z, uv(1), empty, []byte{pluginpb.EmitValue | pluginpb.EmitValueIsInput}, z), "emit flags: a value both sent and the input's"},
		{"emit key truncated", true, cat(uv(1), z, uv(1), empty, []byte{pluginpb.EmitKey}, uv(5), []byte("ab")), "emit key: length 5 exceeds the 2 bytes left"},
		{"dlq truncated", true, cat(uv(1), uv(9), []byte("reason")), "dlq: length 9 exceeds the 6 bytes left"},
		{"emits that cannot fit", true, cat(uv(1), z, uv(3), empty), "emit count: 3 items cannot fit in the 2 bytes left"},
		{"emit header value truncated", true, cat(uv(1), z, uv(1), empty, []byte{pluginpb.EmitHeaders}, uv(1), empty, uv(4), []byte("x")), "header value: length 3 exceeds the 1 bytes left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.results {
				_, err = readResults(tc.msg)
			} else {
				_, err = readBatch(tc.msg)
			}
			if !errors.Is(err, pluginpb.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error wrapping ErrMalformed with %q", err, tc.want)
			}
		})
	}
}

// TestEveryTruncationFails cuts well-formed messages at every byte: each
// cut must fail cleanly, never panic or read as valid.
func TestEveryTruncationFails(t *testing.T) {
	batch := writeBatch([]record{
		{PackedRecord: pluginpb.PackedRecord{Key: []byte("k"), Value: []byte("value"), Topic: "t", Partition: 3, Offset: 300, TimestampUnixNano: 1e18}, Headers: []header{{"h", []byte("v")}}},
		{PackedRecord: pluginpb.PackedRecord{Topic: "t"}, Headers: []header{}},
	})
	results := writeResults([]result{
		{DLQ: "r", Emits: []emit{{PackedEmit: pluginpb.PackedEmit{Output: "o", Key: []byte("k"), Value: []byte("v")}, Headers: []header{{"h", nil}}}}},
		{Emits: []emit{{PackedEmit: pluginpb.PackedEmit{Output: "o", ValueIsInput: true}}}},
	})
	for n := range len(batch) {
		if _, err := readBatch(batch[:n]); !errors.Is(err, pluginpb.ErrMalformed) {
			t.Errorf("batch cut at %d of %d bytes: got %v, want ErrMalformed", n, len(batch), err)
		}
	}
	for n := range len(results) {
		if _, err := readResults(results[:n]); !errors.Is(err, pluginpb.ErrMalformed) {
			t.Errorf("results cut at %d of %d bytes: got %v, want ErrMalformed", n, len(results), err)
		}
	}
}

func TestWriterReset(t *testing.T) {
	var w pluginpb.Writer
	w.Count(1)
	w.Record(&pluginpb.PackedRecord{Topic: "first", Headers: -1})
	buf := w.Bytes()
	w.Reset(buf)
	w.Count(1)
	w.Record(&pluginpb.PackedRecord{Topic: "first", Headers: -1})
	got, err := readBatch(w.Bytes())
	if err != nil || len(got) != 1 || got[0].Topic != "first" {
		t.Errorf("after Reset: got %+v, %v; want the topic sent again, not as an interned string of the last message", got, err)
	}
}

// FuzzReader reads arbitrary bytes as a batch and as results: a Reader
// must never panic, and what it accepts must read back the same after
// writing it again.
func FuzzReader(f *testing.F) {
	f.Add(writeBatch([]record{
		{PackedRecord: pluginpb.PackedRecord{Key: []byte("k"), Value: []byte("v"), Topic: "t", Partition: 1, Offset: 2, TimestampUnixNano: 3}, Headers: []header{{"h", nil}, {"h", []byte{}}}},
		{PackedRecord: pluginpb.PackedRecord{Topic: "t"}},
	}))
	f.Add(writeResults([]result{
		{DLQ: "x", Emits: []emit{
			{PackedEmit: pluginpb.PackedEmit{Output: "o", Key: []byte{}, Value: []byte("v")}, Headers: []header{{"h", []byte("v")}}},
			{PackedEmit: pluginpb.PackedEmit{Output: "o", ValueIsInput: true}},
		}},
		{},
	}))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if recs, err := readBatch(msg); err == nil {
			for i := range recs {
				recs[i].PackedRecord.Headers = 0
			}
			again, err := readBatch(writeBatch(recs))
			if err != nil {
				t.Fatalf("batch written again: %v", err)
			}
			sameBatch(t, again, recs)
		} else if !errors.Is(err, pluginpb.ErrMalformed) {
			t.Fatalf("batch: got %v, want ErrMalformed", err)
		}
		if rs, err := readResults(msg); err == nil {
			again, err := readResults(writeResults(rs))
			if err != nil {
				t.Fatalf("results written again: %v", err)
			}
			if len(again) != len(rs) {
				t.Fatalf("results written again: %d, want %d", len(again), len(rs))
			}
			for i := range rs {
				sameResult(t, i, again[i], rs[i])
			}
		} else if !errors.Is(err, pluginpb.ErrMalformed) {
			t.Fatalf("results: got %v, want ErrMalformed", err)
		}
	})
}
