package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

// DecodeSettings decodes a Configure request's settings JSON the way the
// pipeline file's YAML decodes: objects become map[string]any, arrays
// []any, integers int (or float64 when they do not fit), other numbers
// float64. Empty input is an empty map. The engine encodes settings with
// encoding/json.
func DecodeSettings(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if dec.More() {
		return nil, errors.New("settings: trailing data after the JSON object")
	}
	if m == nil {
		m = map[string]any{}
	}
	return normalizeNumbers(m).(map[string]any), nil
}

func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeNumbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalizeNumbers(e)
		}
		return v
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// minDecodeChunk is the fewest records a decoding goroutine takes: a
// large batch is decoded on every core, since the engine waits for the
// answer meanwhile.
const minDecodeChunk = 128

// decode turns the request's records into Records with Data decoded by the
// stage's schema. It returns the records the Processor gets and, only
// when some did not decode, their DLQ reasons by request index.
func (st *stage) decode(in []*pluginpb.Record) ([]Record, map[int]string) {
	recs := make([]Record, len(in))
	var errs []error
	if st.schema != nil {
		errs = make([]error, len(in))
	}
	inParallel(len(in), minDecodeChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			recs[i] = fromWire(in[i])
			if errs != nil {
				recs[i].Data, errs[i] = st.decodeValue(recs[i].Value)
			}
		}
	})
	var failed map[int]string
	batch := recs[:0]
	for i, err := range errs {
		if err != nil {
			if failed == nil {
				failed = map[int]string{}
				batch = slices.Clone(recs[:i])
			}
			failed[i] = "decode: " + err.Error()
			continue
		}
		if failed != nil {
			batch = append(batch, recs[i])
		}
	}
	if failed == nil {
		return recs, nil
	}
	return batch, failed
}

// inParallel calls fn on consecutive ranges of [0, n), each of at least
// chunk items, on up to GOMAXPROCS goroutines, and waits for them.
func inParallel(n, chunk int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/chunk)
	if workers <= 1 {
		fn(0, n)
		return
	}
	size := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += size {
		wg.Go(func() { fn(lo, min(lo+size, n)) })
	}
	wg.Wait()
}

func (st *stage) decodeValue(v []byte) (map[string]any, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	return st.reg.Decode(st.schema, v)
}

func fromWire(r *pluginpb.Record) Record {
	rec := Record{
		Key: r.Key, Value: r.Value, Headers: headersFromWire(r.Headers),
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
	}
	if r.TimestampUnixNano != 0 {
		rec.Timestamp = time.Unix(0, r.TimestampUnixNano)
	}
	return rec
}

func headersFromWire(hs []*pluginpb.Header) []Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// encodeResults encodes the Processor's results for the n-record request,
// with a DLQ result for each record that failed to decode. batch is what
// the Processor got: an emit that hands back an input record's own key,
// value or headers sends a reference to them instead of the bytes.
func encodeResults(batch []Record, results []Result, n int, failed map[int]string) []*pluginpb.Result {
	emits := 0
	for _, r := range results {
		emits += len(r.Emits)
	}
	out := make([]*pluginpb.Result, n)
	rs := make([]pluginpb.Result, n)
	es := make([]pluginpb.Emit, emits)
	ptrs := make([]*pluginpb.Emit, emits)
	j := 0
	for i := range out {
		out[i] = &rs[i]
		if reason, ok := failed[i]; ok {
			rs[i].Dlq = reason
			continue
		}
		res, in := results[j], batch[j]
		j++
		rs[i].Dlq = res.DLQ
		if len(res.Emits) == 0 {
			continue
		}
		mine := ptrs[:len(res.Emits):len(res.Emits)]
		ptrs = ptrs[len(res.Emits):]
		for k, e := range res.Emits {
			w := &es[0]
			es = es[1:]
			encodeEmit(w, e, in)
			mine[k] = w
		}
		rs[i].Emits = mine
	}
	return out
}

func encodeEmit(w *pluginpb.Emit, e Emit, in Record) {
	w.Output = e.Output
	if !sameBytes(e.Key, in.Key) {
		w.Key = e.Key // nil keeps the input's key, and so does the same key
	}
	if e.Value != nil && sameBytes(e.Value, in.Value) {
		w.ValueIsInput = true
	} else {
		w.Value = e.Value
	}
	if e.Headers != nil && !sameHeaders(e.Headers, in.Headers) {
		w.HeadersSet = true
		w.Headers = headersToWire(e.Headers)
	}
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

func sameHeaders(a, b []Header) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

func headersToWire(hs []Header) []*pluginpb.Header {
	out := make([]*pluginpb.Header, len(hs))
	ws := make([]pluginpb.Header, len(hs))
	for i, h := range hs {
		ws[i].Key, ws[i].Value = h.Key, h.Value
		out[i] = &ws[i]
	}
	return out
}
