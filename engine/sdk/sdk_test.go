package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/sdktest"
)

func schemasDir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "schemas")
}

func tx(id, status string, amount int64) map[string]any {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return map[string]any{
		"transaction_id": id, "client_id": "c-1", "amount_minor": amount, "currency": "EUR",
		"status": status, "description": "d", "created_at": now, "updated_at": now,
	}
}

func TestDecodeSettings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]any
		err  string
	}{
		{"", map[string]any{}, ""},
		{"null", map[string]any{}, ""},
		{`{"n": 3, "f": 2.5, "big": 1e300, "s": "x", "b": true, "l": [1, "a"], "m": {"k": -7}}`, map[string]any{
			"n": 3, "f": 2.5, "big": 1e300, "s": "x", "b": true, "l": []any{1, "a"}, "m": map[string]any{"k": -7},
		}, ""},
		{`[1]`, nil, "settings: json: cannot unmarshal array"},
		{`{"a": 1} {}`, nil, "settings: trailing data"},
		{`{`, nil, "settings: unexpected EOF"},
	} {
		got, err := sdk.DecodeSettings([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("DecodeSettings(%q): got error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeSettings(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

// spy records the batches it gets and answers with fn.
type spy struct {
	mu      sync.Mutex
	cfg     sdk.Config
	batches [][]sdk.Record
	fn      func(sdk.Record) sdk.Result
	err     error
	closed  bool
}

func (s *spy) factory(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
	if v, ok := cfg.Settings["bad"]; ok {
		return nil, errors.New("bad: want nothing, got " + v.(string))
	}
	s.cfg = cfg
	return s, nil
}

func (s *spy) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	s.mu.Lock()
	s.batches = append(s.batches, batch)
	s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		out[i] = s.fn(r)
	}
	return out, nil
}

func (s *spy) Close() error { s.closed = true; return nil }

func startSpy(t *testing.T, s *spy, settings map[string]any) *sdktest.Harness {
	t.Helper()
	return sdktest.Start(t, s.factory, sdk.Config{
		Name: "spy", Pipeline: "p", Stage: "st", Settings: settings,
		SchemasDir: schemasDir(t), Schema: "Transaction",
	})
}

func TestRecordsCrossDecoded(t *testing.T) {
	s := &spy{fn: func(r sdk.Record) sdk.Result { return sdk.Pass(r, "out") }}
	h := startSpy(t, s, map[string]any{"n": 2})
	if !reflect.DeepEqual(s.cfg.Settings, map[string]any{"n": 2}) || s.cfg.Pipeline != "p" || s.cfg.Stage != "st" || s.cfg.Schema != "Transaction" {
		t.Errorf("config: got %+v", s.cfg)
	}
	recs := sdktest.Records(t, schemasDir(t), "Transaction", tx("a", "APPROVED", 5), tx("b", "DECLINED", 7))
	ts := time.UnixMilli(1_700_000_000_123)
	recs[0].Headers = []sdk.Header{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: nil}}
	recs[0].Topic, recs[0].Partition, recs[0].Offset, recs[0].Timestamp = "transactions", 3, 42, ts
	recs[1].Key = nil
	results, err := h.Process(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	got := s.batches[0]
	if got[0].Data["transaction_id"] != "a" || got[0].Data["amount_minor"] != int64(5) || got[1].Data["status"] != "DECLINED" {
		t.Errorf("Data: got %v / %v", got[0].Data, got[1].Data)
	}
	if got[0].Topic != "transactions" || got[0].Partition != 3 || got[0].Offset != 42 || !got[0].Timestamp.Equal(ts) {
		t.Errorf("position: got %s/%d@%d %v", got[0].Topic, got[0].Partition, got[0].Offset, got[0].Timestamp)
	}
	if len(got[0].Headers) != 2 || got[0].Headers[0].Key != "h1" || string(got[0].Headers[0].Value) != "v1" {
		t.Errorf("headers: got %+v", got[0].Headers)
	}
	if got[1].Key != nil || got[1].Headers != nil {
		t.Errorf("record 1: key %q headers %v, want nil (null key, no headers)", got[1].Key, got[1].Headers)
	}
	if len(results) != 2 || results[0].Emits[0].Output != "out" || string(results[0].Emits[0].Key) != "k0" || len(results[0].Emits[0].Headers) != 2 {
		t.Errorf("results: got %+v", results)
	}
	if results[1].Emits[0].Key != nil || results[1].Emits[0].Headers != nil {
		t.Errorf("result 1: the input's null key and no headers must stay so, got %+v", results[1].Emits[0])
	}
}

func TestEmitsAndDLQ(t *testing.T) {
	s := &spy{fn: func(r sdk.Record) sdk.Result {
		if r.Data["status"] == "DECLINED" {
			return sdk.Result{DLQ: "declined"}
		}
		return sdk.Result{Emits: []sdk.Emit{
			{Output: "a", Key: []byte{}, Value: r.Value, Headers: []sdk.Header{}},
			{Output: "b", Value: []byte("x"), Headers: []sdk.Header{{Key: "k", Value: []byte("v")}}},
		}, DLQ: "also"}
	}}
	h := startSpy(t, s, nil)
	recs := sdktest.Records(t, schemasDir(t), "Transaction", tx("a", "APPROVED", 5), tx("b", "DECLINED", 7))
	recs = append(recs, sdk.Record{Key: []byte("junk"), Value: []byte("not avro")})
	results, err := h.Process(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.batches[0]) != 2 {
		t.Errorf("the processor got %d records, want 2 (the undecodable one is dead-lettered)", len(s.batches[0]))
	}
	e := results[0].Emits
	if len(e) != 2 || results[0].DLQ != "also" {
		t.Fatalf("result 0: got %+v", results[0])
	}
	if e[0].Key == nil || len(e[0].Key) != 0 || e[0].Headers == nil || len(e[0].Headers) != 0 {
		t.Errorf("emit 0: an empty key and empty headers must stay set and empty, got key %v headers %v", e[0].Key, e[0].Headers)
	}
	if string(e[1].Value) != "x" || string(e[1].Key) != "k0" || len(e[1].Headers) != 1 {
		t.Errorf("emit 1: got %+v", e[1])
	}
	if results[1].DLQ != "declined" || len(results[1].Emits) != 0 {
		t.Errorf("result 1: got %+v", results[1])
	}
	if !strings.HasPrefix(results[2].DLQ, "decode: avro: ") {
		t.Errorf("result 2: got %+v, want a decode DLQ reason", results[2])
	}
}

func TestProcessFailures(t *testing.T) {
	recs := func(t *testing.T) []sdk.Record {
		return sdktest.Records(t, schemasDir(t), "Transaction", tx("a", "APPROVED", 5))
	}
	t.Run("error", func(t *testing.T) {
		h := startSpy(t, &spy{err: errors.New("database down")}, nil)
		if _, err := h.Process(t.Context(), recs(t)); err == nil || !strings.Contains(err.Error(), "process: database down") {
			t.Errorf("got %v, want the processor's error", err)
		}
	})
	t.Run("unavailable crosses the wire", func(t *testing.T) {
		h := startSpy(t, &spy{err: fmt.Errorf("smtp: %w", sdk.Unavailable(errors.New("connection refused")))}, nil)
		_, err := h.Process(t.Context(), recs(t))
		if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("got %v, want an error wrapping sdk.ErrUnavailable", err)
		}
	})
	t.Run("plain errors are not unavailable", func(t *testing.T) {
		h := startSpy(t, &spy{err: errors.New("bad record")}, nil)
		if _, err := h.Process(t.Context(), recs(t)); errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("got %v, which wraps sdk.ErrUnavailable", err)
		}
	})
	t.Run("panic", func(t *testing.T) {
		h := startSpy(t, &spy{fn: func(sdk.Record) sdk.Result { panic("boom") }}, nil)
		if _, err := h.Process(t.Context(), recs(t)); err == nil || !strings.Contains(err.Error(), "processor panicked: boom") {
			t.Errorf("got %v, want the panic as an error", err)
		}
	})
	t.Run("wrong count", func(t *testing.T) {
		s := &spy{}
		h := sdktest.Start(t, func(context.Context, sdk.Config) (sdk.Processor, error) { return short{}, nil }, sdk.Config{})
		_ = s
		if _, err := h.Process(t.Context(), []sdk.Record{{}, {}}); err == nil || !strings.Contains(err.Error(), "returned 1 results for 2 records") {
			t.Errorf("got %v, want a result count error", err)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		h := sdktest.New(t, (&spy{}).factory, sdk.Info{})
		if _, err := h.Process(t.Context(), recs(t)); err == nil || !strings.Contains(err.Error(), "not configured") {
			t.Errorf("got %v, want not configured", err)
		}
	})
}

type short struct{}

func (short) Process(context.Context, []sdk.Record) ([]sdk.Result, error) {
	return []sdk.Result{{}}, nil
}

func TestConfigureErrors(t *testing.T) {
	h := sdktest.New(t, (&spy{}).factory, sdk.Info{Name: "spy", Version: "1.2.3", Outputs: []string{"a"}})
	info, err := h.Info(t.Context())
	if err != nil || info.Name != "spy" || info.Version != "1.2.3" || !reflect.DeepEqual(info.Outputs, []string{"a"}) {
		t.Errorf("Info: got %+v, %v", info, err)
	}
	for _, tc := range []struct {
		cfg  sdk.Config
		want string
	}{
		{sdk.Config{Settings: map[string]any{"bad": "yes"}}, "configure: bad: want nothing, got yes"},
		{sdk.Config{SchemasDir: "/no/such/dir"}, "configure: schemas: "},
		{sdk.Config{Schema: "Transaction"}, `configure: schema "Transaction" given without a schemas directory`},
		{sdk.Config{SchemasDir: schemasDir(t), Schema: "Nope"}, `configure: schema: avro: unknown schema: "Nope"`},
		{sdk.Config{Settings: map[string]any{"f": func() {}}}, "configure: settings cannot be sent as JSON"},
	} {
		if err := h.Configure(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%+v): got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestReconfigureClosesTheOldProcessor(t *testing.T) {
	var made []*spy
	factory := func(ctx context.Context, cfg sdk.Config) (sdk.Processor, error) {
		s := &spy{fn: func(r sdk.Record) sdk.Result { return sdk.Pass(r, "") }}
		made = append(made, s)
		return s.factory(ctx, cfg)
	}
	h := sdktest.New(t, factory, sdk.Info{})
	for range 2 {
		if err := h.Configure(t.Context(), sdk.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	if !made[0].closed || made[1].closed {
		t.Errorf("closed: got %v, %v; want the first closed, the second open", made[0].closed, made[1].closed)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !made[1].closed {
		t.Error("Close did not close the processor")
	}
}

func TestConfigLogNeverNil(t *testing.T) {
	var c sdk.Config
	c.Log().Info("discarded")
}

// rawSpy is a spy that says it does not read Record.Data.
type rawSpy struct{ spy }

func (*rawSpy) UsesData() bool { return false }

func startRawSpy(t *testing.T, s *rawSpy) *sdktest.Harness {
	t.Helper()
	factory := func(ctx context.Context, cfg sdk.Config) (sdk.Processor, error) {
		if _, err := s.factory(ctx, cfg); err != nil {
			return nil, err
		}
		return s, nil
	}
	return sdktest.Start(t, factory, sdk.Config{Name: "raw", SchemasDir: schemasDir(t), Schema: "Transaction"})
}

func TestDataUserSkipsDecoding(t *testing.T) {
	s := &rawSpy{spy{fn: func(r sdk.Record) sdk.Result { return sdk.Pass(r, "out") }}}
	h := startRawSpy(t, s)
	recs := sdktest.Records(t, schemasDir(t), "Transaction", tx("a", "APPROVED", 5))
	recs = append(recs, sdk.Record{Key: []byte("junk"), Value: []byte("not avro")})
	results, err := h.Process(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	got := s.batches[0]
	if len(got) != 2 || got[0].Data != nil || got[1].Data != nil {
		t.Fatalf("the processor got %d records with Data %v; want both, undecoded", len(got), got)
	}
	for i, r := range results {
		if r.DLQ != "" || len(r.Emits) != 1 || !bytes.Equal(r.Emits[0].Value, recs[i].Value) {
			t.Errorf("result %d: got %+v, want the record passed", i, r)
		}
	}
}

// TestRecordsCrossTheWireExactly sends records whose keys, values and
// headers are nil, empty or large, and emits that keep or replace them:
// each must arrive as sent, nil and empty told apart.
func TestRecordsCrossTheWireExactly(t *testing.T) {
	big := bytes.Repeat([]byte("large value "), 100_000) // 1.2 MB (sdktest keeps gRPC's 4 MiB limit)
	in := []sdk.Record{
		{Key: nil, Value: nil, Headers: nil, Topic: "t"},
		{Key: []byte{}, Value: []byte{}, Headers: []sdk.Header{}, Topic: "t", Partition: -1, Offset: -5},
		{Key: []byte("k"), Value: big, Headers: []sdk.Header{{Key: "a", Value: nil}, {Key: "b", Value: []byte{}}, {Key: "a", Value: big[:10]}}, Topic: "u", Partition: 2, Offset: 1 << 50, Timestamp: time.Unix(0, 1_700_000_000_123_456_789)},
	}
	emits := func(r sdk.Record) sdk.Result {
		return sdk.Result{Emits: []sdk.Emit{
			{Output: "same", Key: r.Key, Value: r.Value, Headers: r.Headers},
			{Output: "empty", Key: []byte{}, Value: []byte{}, Headers: []sdk.Header{}},
			{Output: "null value"},
			{Output: "new", Key: []byte("nk"), Value: big[:100], Headers: []sdk.Header{{Key: "n", Value: nil}, {Key: "e", Value: []byte{}}}},
		}}
	}
	s := &rawSpy{spy{fn: emits}}
	h := startRawSpy(t, s)
	results, err := h.Process(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range s.batches[0] {
		want := in[i]
		if !sameBytes(got.Key, want.Key) || !sameBytes(got.Value, want.Value) || !sameHeaders(got.Headers, want.Headers) ||
			got.Topic != want.Topic || got.Partition != want.Partition || got.Offset != want.Offset || !got.Timestamp.Equal(want.Timestamp) {
			t.Errorf("record %d: the processor got key %v headers %v at %s/%d@%d %v, want key %v headers %v at %s/%d@%d %v", i,
				got.Key, got.Headers, got.Topic, got.Partition, got.Offset, got.Timestamp,
				want.Key, want.Headers, want.Topic, want.Partition, want.Offset, want.Timestamp)
		}
	}
	for i, res := range results {
		want := emits(in[i]).Emits
		want[2].Key, want[2].Headers = in[i].Key, in[i].Headers // a nil key and nil headers keep the input's
		if len(res.Emits) != len(want) {
			t.Fatalf("result %d: got %d emits, want %d", i, len(res.Emits), len(want))
		}
		for k, e := range res.Emits {
			w := want[k]
			if e.Output != w.Output || !sameBytes(e.Key, w.Key) || !sameBytes(e.Value, w.Value) || !sameHeaders(e.Headers, w.Headers) {
				t.Errorf("result %d emit %q: got key %v value %d bytes (nil %v) headers %v, want key %v value %d bytes (nil %v) headers %v", i, w.Output,
					e.Key, len(e.Value), e.Value == nil, e.Headers, w.Key, len(w.Value), w.Value == nil, w.Headers)
			}
		}
	}
}

func TestEmptyBatchCrosses(t *testing.T) {
	s := &spy{fn: func(r sdk.Record) sdk.Result { return sdk.Pass(r, "") }}
	h := startSpy(t, s, nil)
	for _, batch := range [][]sdk.Record{nil, {}} {
		results, err := h.Process(t.Context(), batch)
		if err != nil || len(results) != 0 {
			t.Errorf("Process(%#v): got %v, %v; want no results and no error", batch, results, err)
		}
	}
	if len(s.batches) != 0 {
		t.Errorf("the processor was called with %d empty batches, want none", len(s.batches))
	}
}

// sameBytes reports whether a and b are equal and both nil or both not.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameHeaders(a, b []sdk.Header) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
