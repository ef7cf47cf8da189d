package engine_test

import (
	"testing"

	"github.com/billing-engine/billing/engine/internal/bench"
)

// BenchmarkQueries measures status-query latency while two instances of the
// processor (with the status table) consume BENCH_N transactions (default
// 1,000,000) at full speed: queries go to one instance, which answers the
// keys of its own partitions locally and forwards the others. It reports
// p50/p99 for both kinds, at the client's socket and over the client's
// round trip. It is the queries-2 scenario of
// BenchmarkScenarios (see scnRunQueries2) on its own.
func BenchmarkQueries(b *testing.B) {
	s := scnSettingsFromEnv(b)
	var sc scnScenario
	for _, c := range scnAll() {
		if c.key == bench.KeyQueries2 {
			sc = c
		}
	}
	for i := 0; i < b.N; i++ {
		for _, row := range scnRunQueries2(b, s, sc) {
			b.ReportMetric(bench.Millis(row.Latency.P50), row.Key+"_p50_ms")
			b.ReportMetric(bench.Millis(row.Latency.P99), row.Key+"_p99_ms")
			b.Logf("%s: %s", row.Key, row.Summary())
		}
	}
}
