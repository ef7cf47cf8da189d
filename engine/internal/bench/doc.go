// Package bench is what the engine's benchmark scenarios
// (BenchmarkScenarios in engine/scenarios_bench_test.go) are made of: the
// process under test as a child that answers /api/v1/stats (Child), its
// throughput and CPU time, its peak RSS (read from /proc, so Linux only),
// the latency phase at a fixed rate (MeasureLatency), the machine's
// description, and the table of every scenario, printed and written to
// BENCHMARKS.md (Report).
//
// The command in ceiling/ is the benchmarks' ceiling: a plain sarama
// consume-and-produce, run as a process of its own.
//
// It is a test helper under internal/, no part of the engine's API.
package bench
