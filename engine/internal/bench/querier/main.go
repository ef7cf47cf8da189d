// Command querier is the query client of the engine's query benchmark
// (the "queries" scenario of BenchmarkScenarios): it asks an engine for
// the status of random transactions among those processed so far, one
// query at a time (back to back, or at most -rate a second), and writes
// how long each answer took.
//
// An answer's time runs from just before the request is written until the
// answer has reached the querier's socket, as the kernel stamps it on
// arrival (SO_TIMESTAMPNS): that is the engine's answer as a client on
// another machine sees it. The querier shares the engine's two busy cores
// and may wait milliseconds for one before it reads the answer (nice -10
// does not spare it that on an EEVDF kernel); the round trip until it has
// read the answer is kept too, apart.
//
// An answer names the instance that served it; the querier keeps the
// times of the answers the queried instance served itself apart from those
// it forwarded to another instance (-follow names every instance, whose
// progress counts).
//
// It runs as a process of its own, as a real client does, so that what it
// measures is the engine's answer and not the scheduling of the
// benchmark's process, which also runs the busy embedded broker. It reads
// the engine's progress from GET /api/v1/stats (the sum of the counters
// -progress prefixes) and queries keys among the first half of those
// counted (-key is their format, numbered from 1). On SIGINT or SIGTERM it
// writes its result as JSON to -out and exits.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/billing-engine/billing/engine/internal/bench"
)

func main() {
	api := flag.String("api", "", "the engine's base URL")
	follow := flag.String("follow", "", "comma-separated base URLs of every instance whose counters count (default: -api)")
	progress := flag.String("progress", "produced/processor/branch/", "the counters (a prefix) that count processed records")
	key := flag.String("key", "tx-bench-%08d", "the format of the keys, numbered from 1")
	out := flag.String("out", "", "where to write the result")
	rate := flag.Int("rate", 0, "queries per second at most, one at a time (0: back to back)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var done atomic.Int64
	urls := strings.Split(*follow, ",")
	if *follow == "" {
		urls = []string{*api}
	}
	go followAll(ctx, urls, *progress, &done)
	res := query(ctx, *api, *key, *rate, &done)
	res.Nice = niceness()
	b, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "querier: %s\n", err)
		os.Exit(1)
	}
}

// followAll reads the instances' progress every 20 ms until ctx ends.
func followAll(ctx context.Context, urls []string, prefix string, done *atomic.Int64) {
	client := &http.Client{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		var n int64
		for _, u := range urls {
			resp, err := client.Get(u + "/api/v1/stats")
			if err != nil {
				continue
			}
			var snap map[string]int64
			if json.NewDecoder(resp.Body).Decode(&snap) == nil {
				for k, v := range snap {
					if strings.HasPrefix(k, prefix) {
						n += v
					}
				}
			}
			resp.Body.Close()
		}
		done.Store(n)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// query asks api for the status of random keys among the first half of
// those done counts, one at a time on one connection, at most rate a
// second (0: back to back), until ctx ends.
func query(ctx context.Context, api, key string, rate int, done *atomic.Int64) bench.QueryResult {
	var res bench.QueryResult
	fail := func(err error) {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
		res.LastError = err.Error()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	next := time.Now()
	var first time.Time
	var conn *stampedConn
	warned := false
	for ctx.Err() == nil {
		n := done.Load()
		if n < 1000 {
			time.Sleep(time.Millisecond)
			continue
		}
		if conn == nil {
			c, noStamps, err := dialStamped(api)
			if err != nil {
				fail(err)
				time.Sleep(time.Millisecond)
				continue
			}
			if noStamps != nil && !warned {
				fmt.Fprintln(os.Stderr, noStamps)
				warned = true
			}
			conn = c
		}
		if interval > 0 {
			// Paced: one query per interval, never a burst to catch up
			// (so a slow answer delays the next: one query at a time).
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
			next = next.Add(interval)
			if now := time.Now(); next.Before(now) {
				next = now
			}
		}
		path := "/api/v1/transactions/" + fmt.Sprintf(key, 1+rng.IntN(int(n/2))) + "/status"
		sent := time.Now()
		if first.IsZero() {
			first = sent
		}
		status, raw, arrived, err := conn.get(path)
		took := time.Since(sent)
		res.Seconds = time.Since(first).Seconds()
		if err != nil {
			conn.Close()
			conn = nil
			if status == 0 {
				fail(err)
				time.Sleep(time.Millisecond)
				continue
			}
		}
		var body struct {
			ServedBy string `json:"served_by"`
		}
		err = json.Unmarshal(raw, &body)
		atSocket := took
		if arrived.IsZero() {
			res.Unstamped++
		} else {
			// Both on the wall clock: a stamp carries no monotonic reading.
			atSocket = arrived.Sub(sent.Round(0))
			if atSocket < 0 || atSocket > took {
				res.Clamped++
				atSocket = max(0, min(atSocket, took))
			}
		}
		switch {
		case status != http.StatusOK || err != nil:
			res.Other++
		case body.ServedBy == api:
			res.Local = append(res.Local, atSocket.Nanoseconds())
			res.LocalRoundTrip = append(res.LocalRoundTrip, took.Nanoseconds())
		default:
			res.Forwarded = append(res.Forwarded, atSocket.Nanoseconds())
			res.ForwardedRoundTrip = append(res.ForwardedRoundTrip, took.Nanoseconds())
		}
	}
	if conn != nil {
		conn.Close()
	}
	return res
}

// niceness returns the process's nice value (field 19 of /proc/self/stat),
// or 0 when it cannot tell.
func niceness() int {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 17 {
		return 0
	}
	n, _ := strconv.Atoi(f[16])
	return n
}
