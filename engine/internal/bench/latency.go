package bench

import (
	"fmt"
	"slices"
	"time"
)

// Latency summarises the latencies of a scenario's latency phase, or of
// its queries.
type Latency struct {
	P50, P99, P999 time.Duration
	// Samples is how many latencies were measured, after the warm-up.
	Samples int
	// Missing is how many records produced after the warm-up did not
	// arrive before the phase ended.
	Missing int
	// Duplicates is how many records arrived more than once (measured
	// once): the scenario wrote them twice.
	Duplicates int
	// Rate is the records/s produced; 0 for queries.
	Rate int
	// At says, for the table, what was measured: the rate, or queries.
	At string
}

// Percentiles sorts d and returns its p50, p99 and p999 (the sample at
// that rank; the largest for a short d). d must not be empty.
func Percentiles(d []time.Duration) Latency {
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(float64(len(d))*q))] }
	return Latency{P50: at(0.50), P99: at(0.99), P999: at(0.999), Samples: len(d)}
}

// AtRate sets the rate the latencies were measured at.
func (l Latency) AtRate(rate int) Latency {
	l.Rate, l.At = rate, Thousands(int64(rate))+"/s"
	return l
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// FormatLatency formats d in milliseconds: two decimals below 1 ms, one
// below 10 ms, none above (1,234 ms); "n/a" for 0.
func FormatLatency(d time.Duration) string {
	switch m := Millis(d); {
	case d == 0:
		return "n/a"
	case m < 1:
		return fmt.Sprintf("%.2f ms", m)
	case m < 10:
		return fmt.Sprintf("%.1f ms", m)
	default:
		return Thousands(int64(m+0.5)) + " ms"
	}
}

// Thousands formats n with commas: 1,234,567.
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
