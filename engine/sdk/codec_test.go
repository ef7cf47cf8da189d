package sdk

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

type passAll struct{}

func (passAll) Process(_ context.Context, batch []Record) ([]Result, error) {
	out := make([]Result, len(batch))
	for i, r := range batch {
		out[i] = Pass(r, "")
	}
	return out, nil
}

func TestProcessRefusesAMalformedBatch(t *testing.T) {
	srv := newServer(nil, Info{}, nil)
	srv.stage = &stage{proc: passAll{}}
	p := processorServer{server: srv}
	for _, tc := range []struct {
		name  string
		batch []byte
		want  string
	}{
		{"empty", nil, "batch: pluginpb: malformed packed data: byte 0: record count: truncated"},
		{"garbage", []byte("not a batch"), "batch: pluginpb: malformed packed data: byte 0: record count: 110 items cannot fit"},
		{"trailing", []byte{0, 1}, "batch: pluginpb: malformed packed data: byte 1: trailing data: 1 bytes after the last item"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Process(t.Context(), &pluginpb.ProcessRequest{Batch: tc.batch})
			if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.want) {
				t.Errorf("got %v, want INVALID_ARGUMENT with %q", err, tc.want)
			}
		})
	}
}

// TestHeadersShareASlab checks that the headers of a batch's records do
// not overlap: appending to one record's headers must not change the
// next record's.
func TestHeadersShareASlab(t *testing.T) {
	var w pluginpb.Writer
	w.Count(3)
	for _, k := range []string{"a", "b", "c"} {
		w.Record(&pluginpb.PackedRecord{Headers: 1})
		w.Header(k, []byte(k))
	}
	recs, err := recordsFromWire(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	_ = append(recs[0].Headers, Header{Key: "clobber"})
	for i, want := range []string{"a", "b", "c"} {
		if hs := recs[i].Headers; len(hs) != 1 || cap(hs) != 1 || hs[0].Key != want || string(hs[0].Value) != want {
			t.Errorf("record %d: got headers %v (cap %d), want %s=%s alone", i, hs, cap(hs), want, want)
		}
	}
}

func TestInParallelCoversEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 63, 64, 65, 100, 1000, 1001} {
		seen := make([]int32, n)
		inParallel(n, decodeChunk, func(lo, hi int) {
			if lo < 0 || hi > n || lo > hi || (lo == hi && n > 0) {
				t.Errorf("n=%d: got range [%d, %d)", n, lo, hi)
				return
			}
			for i := lo; i < hi; i++ {
				seen[i]++ // each index in one range only: no race
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Errorf("n=%d: index %d visited %d times, want once", n, i, c)
			}
		}
	}
}
