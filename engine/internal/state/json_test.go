package state

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendRowMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 11, 12, 345678900, time.UTC)
	for _, tc := range []struct {
		name string
		row  map[string]any
	}{
		{"nil", nil},
		{"empty", map[string]any{}},
		{"transaction", map[string]any{"transaction_id": "tx-1", "client_id": "c-9", "status": "APPROVED",
			"amount_minor": int64(12345), "currency": "EUR", "created_at": at, "updated_at": at, "billed_at": nil}},
		{"integers", map[string]any{"a": int64(math.MinInt64), "b": int32(-7), "c": 0, "d": int64(math.MaxInt64)}},
		{"booleans and null", map[string]any{"t": true, "f": false, "n": nil}},
		{"escapes", map[string]any{"quote": `a"b`, "backslash": `a\b`, "html": "<a href='x'>&</a>", "control": "a\nb\tc\x01",
			"unicode": "café ☕", "separators": "a\u2028b\u2029", "invalid": "a\xffb", "key \"quoted\"": 1}},
		{"times", map[string]any{"zone": at.In(time.FixedZone("x", 5*3600+30*60)), "odd zone": at.In(time.FixedZone("y", 3600+7)),
			"year 10000": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "zero": time.Time{}}},
		{"other types", map[string]any{"float": 1.5, "big float": 1e21, "number": json.Number("42"), "bytes": []byte("hi"),
			"list": []any{"a", int64(1), nil}, "nested": map[string]any{"z": "last", "a": int64(1)}}},
		{"many keys", func() map[string]any {
			m := map[string]any{}
			for _, k := range []string{"q", "w", "e", "r", "t", "y", "u", "i", "o", "p", "a", "s", "d", "f", "g", "h", "j", "k", "l", "z"} {
				m[k] = k
			}
			return m
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := json.Marshal(tc.row)
			got, err := AppendRow([]byte("prefix:"), tc.row)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("AppendRow error %v, encoding/json's %v", err, wantErr)
			}
			if err == nil && !bytes.Equal(got, append([]byte("prefix:"), want...)) {
				t.Errorf("AppendRow\n got %s\nwant prefix:%s", got, want)
			}
		})
	}
}

func TestAggValueAppendJSONMatchesEncodingJSON(t *testing.T) {
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	end := start.Add(24 * time.Hour)
	for _, tc := range []struct {
		name string
		v    AggValue
	}{
		{"zero", AggValue{}},
		{"count and sum", AggValue{Count: 3, Sum: -250}},
		{"empty groups", AggValue{Count: 1, Groups: map[string]Group{}}},
		{"groups", AggValue{Count: 5, Groups: map[string]Group{"BILLED|USD": {Count: 2, Sum: 300}, "APPROVED|EUR": {Count: 3}, "a<b": {Count: 1, Sum: 1}}}},
		{"window", AggValue{Count: 1, Groups: map[string]Group{"X": {Count: 1, Sum: 9}}, WindowStart: &start, WindowEnd: &end}},
		{"start only", AggValue{WindowStart: &start}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.v.AppendJSON(nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("AppendJSON = %s, %v\nwant %s", got, err, want)
			}
		})
	}
}

// FuzzAppendRow checks AppendRow against encoding/json on rows of strings,
// integers and times.
func FuzzAppendRow(f *testing.F) {
	f.Add("status", "APPROVED", int64(100), int64(1_764_000_000_000), "amount_minor")
	f.Add("<k>", "a\u2028\"\\\xff", int64(-1), int64(-62_135_596_800_000), "")
	f.Fuzz(func(t *testing.T, k1, s string, n, ms int64, k2 string) {
		row := map[string]any{k1: s, k2: n, k1 + "_at": time.UnixMilli(ms).UTC(), s: nil}
		want, wantErr := json.Marshal(row)
		got, err := AppendRow(nil, row)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("AppendRow error %v, encoding/json's %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Errorf("AppendRow\n got %s\nwant %s", got, want)
		}
	})
}

// AppendFields writes what encoding/json writes for the row Project makes
// of the record: the fields the table keeps, sorted, missing ones null.
func TestAppendFieldsMatchesProjectedRow(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 11, 12, 345678900, time.UTC)
	rec := map[string]any{"transaction_id": "tx-1", "client_id": "c-9", "status": "APPROVED", "amount_minor": int64(12345),
		"currency": "EUR", "created_at": at, "note": "<&>", "ignored": []any{1}}
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"declared order", []string{"transaction_id", "status", "amount_minor", "currency", "created_at"}},
		{"duplicates", []string{"status", "currency", "status"}},
		{"missing field", []string{"status", "billed_at"}},
		{"escaped", []string{"note"}},
		{"one", []string{"client_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Def{Name: "t", Kind: Latest, Fields: tc.fields}
			want, err := json.Marshal(d.Project(rec))
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendFields([]byte("prefix:"), rec, d.SortedFields())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("prefix:"), want...)) {
				t.Errorf("AppendFields\n got %s\nwant prefix:%s", got, want)
			}
		})
	}
	if f := (Def{Kind: Latest}).SortedFields(); f != nil {
		t.Errorf("SortedFields of a table keeping every field = %v, want nil", f)
	}
}

// appendUTC writes what time.RFC3339Nano does, for times across the
// years it takes, with and without fractions, trailing zeros trimmed.
func TestAppendUTCMatchesRFC3339Nano(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	times := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 26, 10, 11, 12, 0, time.UTC),
		time.Date(2026, 11, 26, 10, 11, 12, 100000000, time.UTC),
		time.Date(2026, 11, 26, 10, 11, 12, 1, time.UTC),
		time.UnixMilli(1_764_151_872_345).UTC(),
		time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("zero offset", 0)),
	}
	const first, last = -62135596800, 253402300799 // 0001-01-01 and 9999-12-31T23:59:59, Unix seconds
	for range 10_000 {
		var nsec int64
		switch rng.IntN(3) {
		case 0:
			nsec = rng.Int64N(1e9)
		case 1:
			nsec = rng.Int64N(1000) * 1e6 // milliseconds, as Avro's timestamp-millis
		}
		times = append(times, time.Unix(first+rng.Int64N(last-first+1), nsec).UTC())
	}
	for _, tm := range times {
		if y := tm.Year(); y < 0 || y > 9999 {
			continue
		}
		want := tm.Format(time.RFC3339Nano)
		if got := string(appendUTC(nil, tm)); got != want {
			t.Fatalf("appendUTC(%v) = %s, want %s", tm, got, want)
		}
	}
}
