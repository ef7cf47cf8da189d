package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/billing-engine/billing/engine/sdk"
)

// highAmounts routes transactions at or above a threshold to the output
// "high" and passes the others on to the next stage.
type highAmounts struct{ threshold int64 }

func newHighAmounts(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
	t, ok := cfg.Settings["threshold"].(int)
	if !ok || t <= 0 {
		return nil, errors.New("threshold: want a positive integer (minor units)")
	}
	return &highAmounts{threshold: int64(t)}, nil
}

func (h *highAmounts) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		amount, ok := r.Data["amount_minor"].(int64)
		switch {
		case !ok:
			out[i] = sdk.Result{DLQ: "no amount_minor"}
		case amount >= h.threshold:
			out[i] = sdk.Pass(r, "high")
		default:
			out[i] = sdk.Pass(r, "next")
		}
	}
	return out, nil
}

// A Processor sees decoded records in Data and answers one Result per
// record. The same Factory is registered in-process with
// engine.WithProcessor("high-amounts", newHighAmounts), or served from a
// plugin binary whose main is
//
//	func main() { sdk.Serve(newHighAmounts) }
func Example() {
	proc, err := newHighAmounts(context.Background(), sdk.Config{Settings: map[string]any{"threshold": 100_000}})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := []sdk.Record{
		{Key: []byte("t1"), Data: map[string]any{"amount_minor": int64(250_000)}},
		{Key: []byte("t2"), Data: map[string]any{"amount_minor": int64(1_999)}},
		{Key: []byte("t3"), Data: map[string]any{}},
	}
	results, _ := proc.Process(context.Background(), batch)
	for i, res := range results {
		if res.DLQ != "" {
			fmt.Printf("%s: dead letter: %s\n", batch[i].Key, res.DLQ)
			continue
		}
		fmt.Printf("%s: to %s\n", batch[i].Key, res.Emits[0].Output)
	}
	_, err = newHighAmounts(context.Background(), sdk.Config{})
	fmt.Println("bad config:", err)
	// Output:
	// t1: to high
	// t2: to next
	// t3: dead letter: no amount_minor
	// bad config: threshold: want a positive integer (minor units)
}

// byKeyPrefix routes records by the prefix of their key: it never reads
// Record.Data, and says so.
type byKeyPrefix struct{}

func (byKeyPrefix) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		output := "next"
		if bytes.HasPrefix(r.Key, []byte("vip-")) {
			output = "vip"
		}
		out[i] = sdk.Pass(r, output)
	}
	return out, nil
}

// UsesData makes byKeyPrefix an sdk.DataUser: served from a plugin binary,
// it gets records whose values the plugin did not decode (Data nil),
// which saves the plugin about as much CPU as the engine spends decoding.
func (byKeyPrefix) UsesData() bool { return false }

// A Processor that routes on keys or headers alone implements
// sdk.DataUser and answers false.
func ExampleDataUser() {
	var proc sdk.Processor = byKeyPrefix{}
	if u, ok := proc.(sdk.DataUser); ok {
		fmt.Println("decode values for it:", u.UsesData())
	}
	results, _ := proc.Process(context.Background(), []sdk.Record{{Key: []byte("vip-7")}, {Key: []byte("c-8")}})
	for _, res := range results {
		fmt.Println(string(res.Emits[0].Key), "to", res.Emits[0].Output)
	}
	// Output:
	// decode values for it: false
	// vip-7 to vip
	// c-8 to next
}
