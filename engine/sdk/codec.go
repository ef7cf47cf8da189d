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
	"sync/atomic"
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

// decodeChunk is how many records a decoding goroutine takes at a time: a
// batch of two chunks or more is decoded on every core, since the engine
// waits for the answer meanwhile.
const decodeChunk = 32

// decode reads the request's packed batch into Records and, when the
// stage decodes values, sets their Data with the stage's schema. It
// returns the records the Processor gets and, only when some did not
// decode, their DLQ reasons by request index, and the number of records
// the request held. Keys, values and header values alias msg.
func (st *stage) decode(msg []byte) ([]Record, map[int]string, int, error) {
	recs, err := recordsFromWire(msg)
	if err != nil {
		return nil, nil, 0, err
	}
	if !st.decodeData {
		return recs, nil, len(recs), nil
	}
	errs := make([]error, len(recs))
	inParallel(len(recs), decodeChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			recs[i].Data, errs[i] = st.decodeValue(recs[i].Value)
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
		return recs, nil, len(recs), nil
	}
	return batch, failed, len(recs), nil
}

// headerSlab is how many headers recordsFromWire allocates at once, at
// most, for the records of a batch.
const headerSlab = 1024

// recordsFromWire reads a packed batch. Keys, values and header values
// alias msg; the headers of a batch share a few allocations.
func recordsFromWire(msg []byte) ([]Record, error) {
	var rd pluginpb.Reader
	rd.Reset(msg)
	recs := make([]Record, rd.RecordCount())
	var slab []Header
	for i := range recs {
		var p pluginpb.PackedRecord
		if !rd.Record(&p) {
			break
		}
		r := &recs[i]
		r.Key, r.Value = p.Key, p.Value
		r.Topic, r.Partition, r.Offset = p.Topic, p.Partition, p.Offset
		if p.TimestampUnixNano != 0 {
			r.Timestamp = time.Unix(0, p.TimestampUnixNano)
		}
		switch {
		case p.Headers < 0:
			continue
		case p.Headers == 0:
			r.Headers = []Header{} // empty, not nil
			continue
		}
		if len(slab) < p.Headers {
			slab = make([]Header, max(p.Headers, min(p.Headers*(len(recs)-i), headerSlab)))
		}
		r.Headers = slab[:p.Headers:p.Headers]
		slab = slab[p.Headers:]
		for k := range r.Headers {
			r.Headers[k].Key, r.Headers[k].Value = rd.Header()
		}
	}
	if err := rd.Finish(); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	return recs, nil
}

// inParallel calls fn on consecutive ranges of [0, n) of chunk items (the
// last may be shorter), on up to GOMAXPROCS goroutines, the caller's among
// them, and waits for them. The goroutines take the next range as they
// finish one, so a core that is busy elsewhere does not hold the others
// up.
func inParallel(n, chunk int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/chunk)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var next atomic.Int64
	work := func() {
		for {
			lo := int(next.Add(int64(chunk))) - chunk
			if lo >= n {
				return
			}
			fn(lo, min(lo+chunk, n))
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

func (st *stage) decodeValue(v []byte) (map[string]any, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	return st.reg.Decode(st.schema, v)
}

// encodeResults packs the Processor's results for the n-record request,
// with a DLQ result for each record that failed to decode. batch is what
// the Processor got: an emit that hands back an input record's own key,
// value or headers sends a reference to them instead of the bytes.
func encodeResults(batch []Record, results []Result, n int, failed map[int]string) []byte {
	var w pluginpb.Writer
	w.Reset(make([]byte, 0, resultsSize(batch, results, n)))
	w.Count(n)
	j := 0
	for i := range n {
		if reason, ok := failed[i]; ok {
			w.Result(pluginpb.PackedResult{DLQ: reason})
			continue
		}
		res, in := &results[j], &batch[j]
		j++
		w.Result(pluginpb.PackedResult{DLQ: res.DLQ, Emits: len(res.Emits)})
		for k := range res.Emits {
			encodeEmit(&w, &res.Emits[k], in)
		}
	}
	return w.Bytes()
}

// resultsSize estimates the packed size of results, so that the buffer
// is allocated once in the common case. Values and keys handed back from
// the input records are not sent, and not counted.
func resultsSize(batch []Record, results []Result, n int) int {
	size := 8 + 2*n
	for i := range results {
		size += len(results[i].DLQ)
		for k := range results[i].Emits {
			e := &results[i].Emits[k]
			size += 4 + len(e.Output)/4
			if !sameBytes(e.Key, batch[i].Key) {
				size += len(e.Key)
			}
			if !sameBytes(e.Value, batch[i].Value) {
				size += len(e.Value)
			}
			for _, h := range e.Headers {
				size += 2 + len(h.Value)
			}
		}
	}
	return size
}

func encodeEmit(w *pluginpb.Writer, e *Emit, in *Record) {
	p := pluginpb.PackedEmit{Output: e.Output, Headers: -1}
	if !sameBytes(e.Key, in.Key) {
		p.Key = e.Key // nil keeps the input's key, and so does the same key
	}
	if e.Value != nil && sameBytes(e.Value, in.Value) {
		p.ValueIsInput = true
	} else {
		p.Value = e.Value
	}
	setHeaders := e.Headers != nil && !sameHeaders(e.Headers, in.Headers)
	if setHeaders {
		p.Headers = len(e.Headers)
	}
	w.Emit(&p)
	if setHeaders {
		for _, h := range e.Headers {
			w.Header(h.Key, h.Value)
		}
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
