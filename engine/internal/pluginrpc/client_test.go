package pluginrpc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

func TestEncodeBatch(t *testing.T) {
	ts := time.Unix(0, 1_700_000_000_123_456_789)
	batch := []sdk.Record{
		{Topic: "t"},
		{Key: []byte{}, Value: []byte{}, Headers: []sdk.Header{}, Topic: "t", Partition: 4, Offset: 9, Timestamp: ts},
		{Key: []byte("k"), Value: []byte("v"), Headers: []sdk.Header{{Key: "h", Value: nil}, {Key: "h", Value: []byte("x")}}, Topic: "u",
			Data: map[string]any{"not": "sent"}},
	}
	w := new(pluginpb.Writer)
	for range 2 { // the second time on the reused buffer
		var rd pluginpb.Reader
		rd.Reset(encodeBatch(w, batch))
		if n := rd.RecordCount(); n != len(batch) {
			t.Fatalf("count: got %d, want %d", n, len(batch))
		}
		for i, want := range batch {
			var p pluginpb.PackedRecord
			rd.Record(&p)
			wantTS := int64(0)
			if !want.Timestamp.IsZero() {
				wantTS = want.Timestamp.UnixNano()
			}
			wantHeaders := -1
			if want.Headers != nil {
				wantHeaders = len(want.Headers)
			}
			if (p.Key == nil) != (want.Key == nil) || !bytes.Equal(p.Key, want.Key) || (p.Value == nil) != (want.Value == nil) ||
				p.Topic != want.Topic || p.Partition != want.Partition || p.Offset != want.Offset || p.TimestampUnixNano != wantTS || p.Headers != wantHeaders {
				t.Errorf("record %d: got %+v, want %+v", i, p, want)
			}
			for k := range max(p.Headers, 0) {
				if key, value := rd.Header(); key != want.Headers[k].Key || (value == nil) != (want.Headers[k].Value == nil) {
					t.Errorf("record %d header %d: got %q=%v, want %+v", i, k, key, value, want.Headers[k])
				}
			}
		}
		if err := rd.Finish(); err != nil {
			t.Fatal(err)
		}
		w.Reset(w.Bytes())
	}
}

func TestResultsFromWire(t *testing.T) {
	in := []sdk.Record{
		{Key: []byte("k0"), Value: []byte("v0"), Headers: []sdk.Header{{Key: "h", Value: []byte("0")}}, Data: map[string]any{"v": "0"}},
		{Key: nil, Value: []byte("v1")},
	}
	var w pluginpb.Writer
	w.Count(2)
	w.Result(pluginpb.PackedResult{DLQ: "also", Emits: 3})
	w.Emit(&pluginpb.PackedEmit{Output: "keep", ValueIsInput: true, Headers: -1})
	w.Emit(&pluginpb.PackedEmit{Output: "empty", Key: []byte{}, Value: []byte{}, Headers: 0})
	w.Emit(&pluginpb.PackedEmit{Output: "new", Key: []byte("nk"), Value: []byte("nv"), Headers: 1})
	w.Header("n", nil)
	w.Result(pluginpb.PackedResult{})
	got, err := resultsFromWire(w.Bytes(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].DLQ != "also" || len(got[0].Emits) != 3 || got[1].DLQ != "" || got[1].Emits != nil {
		t.Fatalf("got %+v", got)
	}
	keep, empty, nw := got[0].Emits[0], got[0].Emits[1], got[0].Emits[2]
	if keep.Output != "keep" || string(keep.Key) != "k0" || string(keep.Value) != "v0" || len(keep.Headers) != 1 {
		t.Errorf("keep: got %+v, want the input's key, value and headers", keep)
	}
	if keep.Data["v"] != "0" {
		t.Errorf("keep: Data %v, want the input's decoded value (the next stage need not decode it again)", keep.Data)
	}
	if nw.Data != nil {
		t.Errorf("new: Data %v, want none for a new value", nw.Data)
	}
	if empty.Key == nil || len(empty.Key) != 0 || empty.Value == nil || len(empty.Value) != 0 || empty.Headers == nil || len(empty.Headers) != 0 {
		t.Errorf("empty: got %+v, want an empty key, value and headers, not nil", empty)
	}
	if string(nw.Key) != "nk" || string(nw.Value) != "nv" || len(nw.Headers) != 1 || nw.Headers[0].Key != "n" || nw.Headers[0].Value != nil {
		t.Errorf("new: got %+v", nw)
	}
}

func TestResultsFromWireErrors(t *testing.T) {
	one := []sdk.Record{{}}
	var two pluginpb.Writer
	two.Count(2)
	two.Result(pluginpb.PackedResult{})
	two.Result(pluginpb.PackedResult{})
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "results: pluginpb: malformed packed data: byte 0: result count: truncated"},
		{"wrong count", two.Bytes(), "plugin returned 2 results for 1 records"},
		{"truncated", []byte{1, 0}, "results: pluginpb: malformed packed data: byte 0: result count: 1 items cannot fit in the 1 bytes left"},
		{"trailing", []byte{1, 0, 0, 7}, "results: pluginpb: malformed packed data: byte 3: trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resultsFromWire(tc.msg, one)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if tc.name != "wrong count" && !errors.Is(err, pluginpb.ErrMalformed) {
				t.Errorf("got %v, want it to wrap pluginpb.ErrMalformed", err)
			}
		})
	}
}
