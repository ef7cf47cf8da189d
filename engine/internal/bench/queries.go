package bench

import (
	"fmt"
	"time"
)

// QueryResult is what the query benchmark's client
// (engine/internal/bench/querier) writes as JSON when it stops.
type QueryResult struct {
	// Local are the times of the answers with status 200 that the
	// queried instance served itself, in nanoseconds, from just before the
	// request was written until the answer's last segment reached the
	// querier's socket (the kernel's receive stamp); Forwarded, of those
	// another instance served.
	Local     []int64 `json:"local_ns"`
	Forwarded []int64 `json:"forwarded_ns"`
	// LocalRoundTrip and ForwardedRoundTrip are the same answers' times
	// until the querier had read them (before it decodes the JSON): they
	// add the querier's own wait for a core.
	LocalRoundTrip     []int64 `json:"local_round_trip_ns"`
	ForwardedRoundTrip []int64 `json:"forwarded_round_trip_ns"`
	// Unstamped counts answers that came without a receive stamp (their
	// time is then the round trip).
	Unstamped int `json:"unstamped"`
	// Clamped counts stamped times outside [0, round trip] (the wall
	// clock stepped), set to the nearer bound.
	Clamped int `json:"clamped"`
	// Other counts answers with another status; Errors, failed requests
	// (a request that timed out after 5 s among them), and FirstError and
	// LastError say why.
	Other      int    `json:"other"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Seconds is how long the querier asked, from its first query to its
	// last answer: the count of answers over it is the rate it achieved.
	Seconds float64 `json:"seconds"`
	// Nice is the querier's scheduling priority (its nice value); the
	// benchmark starts it at -10 where it may.
	Nice int `json:"nice"`
}

// Durations returns ns, nanoseconds, as durations.
func Durations(ns []int64) []time.Duration {
	d := make([]time.Duration, len(ns))
	for i, n := range ns {
		d[i] = time.Duration(n)
	}
	return d
}

// String sums the queries up for a benchmark's log: the rate the client
// achieved, and what went wrong.
func (q QueryResult) String() string {
	n := len(q.Local) + len(q.Forwarded)
	var rate float64
	if q.Seconds > 0 {
		rate = float64(n) / q.Seconds
	}
	out := fmt.Sprintf("%d answered locally, %d forwarded, in %.1f s (%.0f/s); %d not 200, %d errors, %d without an arrival stamp, %d clamped; the client ran at nice %d",
		len(q.Local), len(q.Forwarded), q.Seconds, rate, q.Other, q.Errors, q.Unstamped, q.Clamped, q.Nice)
	if q.Errors > 0 {
		out += fmt.Sprintf("; first error: %s; last: %s", q.FirstError, q.LastError)
	}
	return out
}
