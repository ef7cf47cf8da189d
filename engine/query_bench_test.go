package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/bench"
)

// BenchmarkQueries measures status-query latency while two instances of the
// processor (with the status table) consume at full speed: queries go to
// one instance, which answers the keys of its own partitions locally and
// forwards the others. It reports p50/p99 for both kinds, over BENCH_N
// transactions (default 1,000,000: the two instances take a few seconds
// to form their group).
//
// As in BenchmarkScenarios, the broker runs in the benchmark's process,
// each instance is an engine process, and the client is a process of its
// own (see scnQuerier). The two instances share the 2 cores of the
// reference machine as two instances given one core each would
// (GOMAXPROCS=1, which a CPU limit of 1 sets): with two processors each,
// four threads take turns on two cores, and a query waits whenever the
// thread holding it is off its core (p99 7-8 ms local, 16 ms forwarded,
// against 2 and 6 ms with one each).
func BenchmarkQueries(b *testing.B) {
	queryRecords := envInt(b, "BENCH_N", 1_000_000)
	const progress = "produced/processor/branch/"
	sc := scnScenario{key: "queries-2", file: "engine/testdata/bench/status.yaml", app: "bench-query"}
	for i := 0; i < b.N; i++ {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), queryRecords)
		var instances []*bench.Child
		var apis []string
		for range 2 {
			p := scnStartEngine(b, br.Addr(), sc, map[string]string{"GOMAXPROCS": "1"})
			instances, apis = append(instances, p), append(apis, p.API())
		}
		// Queries start once both instances consume: before, the first
		// one would answer everything while the group forms.
		for _, p := range instances {
			p.WaitFor(b, 2*time.Minute, func(snap map[string]int64) bool { return snap["consumed/processor"] > 0 })
		}
		q := scnStartQuerier(b, apis[0], apis, progress)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var n int64
			for _, p := range instances {
				if snap, err := p.Stats(); err == nil {
					n += bench.Sum(snap, progress)
				}
			}
			if n >= int64(queryRecords) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d records branched after 5m", n, queryRecords)
			}
			time.Sleep(20 * time.Millisecond)
		}
		res := q.stop(b)
		for _, p := range instances {
			p.Stop(b)
		}
		b.Logf("the client ran at nice %d; %d answers not 200, %d errors", res.nice, res.other, res.errors)
		report := func(name string, d []time.Duration) {
			if len(d) == 0 {
				b.Fatalf("no %s answers", name)
			}
			slices.Sort(d)
			p50, p99 := d[len(d)/2], d[len(d)*99/100]
			b.ReportMetric(bench.Millis(p50), name+"_p50_ms")
			b.ReportMetric(bench.Millis(p99), name+"_p99_ms")
			b.Logf("%s queries: %d, p50 %s, p99 %s", name, len(d), p50, p99)
		}
		report("local", res.local)
		report("forwarded", res.forwarded)
		br.Close()
	}
}
