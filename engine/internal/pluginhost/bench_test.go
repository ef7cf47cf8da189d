package pluginhost_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/pluginhost"
	"github.com/billing-engine/billing/engine/internal/testproc"
	"github.com/billing-engine/billing/engine/sdk"
)

// BenchmarkPluginBatch compares the no-op test processor run in-process
// with the same processor served by the test plugin binary, at several
// batch sizes, in records/s; out-of-process-nodata is the plugin set to
// say it reads no Data (sdk.DataUser), so the SDK does not decode:
//
//   - stage: one Process call, as the chain makes it. In-process the
//     records arrive decoded (the chain decoded them); out-of-process they
//     cross gRPC and the SDK decodes them again in the plugin.
//   - decode+stage: what the engine's chain does per batch for a one-stage
//     pipeline: decode the consumed values, then call the stage; from one
//     caller, and from four at once as a pipeline's partitions call it.
func BenchmarkPluginBatch(b *testing.B) {
	bin := enginetest.BuildPlugin(b, testPluginPkg)
	reg, err := avro.LoadDir(schemasDir(b))
	if err != nil {
		b.Fatal(err)
	}
	schema, err := reg.Schema("Transaction")
	if err != nil {
		b.Fatal(err)
	}
	cfg := config(b, nil)
	inproc, err := testproc.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	outproc, err := pluginhost.Start(context.Background(), pluginhost.Spec{Name: "bench", Command: bin}, cfg,
		pluginhost.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { outproc.Close() })
	// The same no-op declaring that it reads no Data (sdk.DataUser): the
	// plugin then skips its decode, as a plugin that routes or forwards
	// bytes would.
	rawCfg := config(b, map[string]any{"raw": true})
	rawproc, err := pluginhost.Start(context.Background(), pluginhost.Spec{Name: "bench-raw", Command: bin}, rawCfg,
		pluginhost.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rawproc.Close() })
	procs := []struct {
		name string
		proc sdk.Processor
	}{{"in-process", inproc}, {"out-of-process", outproc}, {"out-of-process-nodata", rawproc}}
	for _, size := range []int{1, 100, 1000} {
		recs := decoded(b, reg, schema, records(b, size))
		for _, p := range procs {
			b.Run(fmt.Sprintf("stage/%s/batch=%d", p.name, size), func(b *testing.B) {
				benchRecords(b, size, func() error {
					_, err := p.proc.Process(context.Background(), recs)
					return err
				})
			})
			for _, callers := range []int{1, 4} {
				b.Run(fmt.Sprintf("decode+stage/%s/batch=%d/callers=%d", p.name, size, callers), func(b *testing.B) {
					benchCallers(b, size, callers, func(batch []sdk.Record) error {
						for i, r := range recs {
							data, err := reg.Decode(schema, r.Value)
							if err != nil {
								return err
							}
							batch[i] = r
							batch[i].Data = data
						}
						_, err := p.proc.Process(context.Background(), batch)
						return err
					})
				})
			}
		}
	}
}

// benchCallers runs call from callers goroutines at once, as the
// partitions of a pipeline do, each with its own batch buffer.
func benchCallers(b *testing.B, size, callers int, call func(batch []sdk.Record) error) {
	b.ReportAllocs()
	start := time.Now()
	var wg sync.WaitGroup
	n := b.N
	for range callers {
		wg.Go(func() {
			batch := make([]sdk.Record, size)
			for range n {
				if err := call(batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(callers*n*size)/time.Since(start).Seconds(), "records/s")
}

func benchRecords(b *testing.B, size int, call func() error) {
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "records/s")
}

// decoded sets Data on each record, as the chain hands them to a stage.
func decoded(b *testing.B, reg *avro.Registry, schema *avro.Schema, recs []sdk.Record) []sdk.Record {
	for i := range recs {
		data, err := reg.Decode(schema, recs[i].Value)
		if err != nil {
			b.Fatal(err)
		}
		recs[i].Data = data
		recs[i].Timestamp = time.Now()
	}
	return recs
}
