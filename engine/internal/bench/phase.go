package bench

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Warmup is the start of a latency phase that is left out of its
// latencies.
const Warmup = time.Second

// SentHeader is the header MeasureLatency stamps each record with: the
// time of its produce call, Unix nanoseconds, big-endian. The engine
// carries a record's headers to its outputs.
const SentHeader = "bench-sent"

// MeasureLatency produces recs to topic at rate (records/s; all of recs,
// so for len(recs)/rate seconds), stamping each with the time of its
// produce call (SentHeader, and the record's timestamp), while a
// read_committed consumer of sinks takes the time each takes to arrive.
// Records produced in the first Warmup are left out; a record that arrives
// twice is measured once and counted in Duplicates. It waits for the
// outputs up to 15 s, or as long as the producing took when longer, after
// the last record is produced.
func MeasureLatency(tb testing.TB, addr, topic string, sinks []string, rate int, recs []*kgo.Record) Latency {
	tb.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(sinks...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		tb.Fatal(err)
	}
	defer prod.Close()
	// The pace counts from start. The warm-up's edge is on the wall clock
	// only: the produce times come back from the headers without Go's
	// monotonic reading, and the edge must be the same for what was
	// produced and what arrived.
	start := time.Now()
	warm := start.Add(Warmup).Round(0)
	arr := readArrivals(cons, warm)
	counted, failed := pace(prod, rate, start, warm, recs)
	if err := prod.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		tb.Fatalf("latency phase: %d records not produced", n)
	}
	for drain := time.Now().Add(max(15*time.Second, time.Since(start))); arr.count() < counted && time.Now().Before(drain); {
		time.Sleep(10 * time.Millisecond)
	}
	took, dups := arr.stop()
	if len(took) == 0 {
		tb.Fatalf("latency phase: nothing arrived on %v", sinks)
	}
	lat := Percentiles(took).AtRate(rate)
	lat.Missing, lat.Duplicates = max(0, counted-len(took)), dups
	return lat
}

// arrivals polls the sink topics and keeps the latency of each record
// produced from warm on, once.
type arrivals struct {
	warm   time.Time
	cancel context.CancelFunc
	polled chan struct{}

	mu   sync.Mutex
	took []time.Duration
	seen map[string]bool // key and produce time of each record measured
	dups int             // records the scenario wrote twice, measured once
}

func readArrivals(cons *kgo.Client, warm time.Time) *arrivals {
	ctx, cancel := context.WithCancel(context.Background())
	a := &arrivals{warm: warm, cancel: cancel, polled: make(chan struct{}), seen: map[string]bool{}}
	go func() {
		defer close(a.polled)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			a.add(fs, time.Now())
		}
	}()
	return a
}

func (a *arrivals) add(fs kgo.Fetches, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		sent := sentAt(r)
		if sent.Before(a.warm) {
			return
		}
		id := string(r.Key) + "@" + strconv.FormatInt(sent.UnixNano(), 10)
		if a.seen[id] {
			a.dups++
			return
		}
		a.seen[id] = true
		a.took = append(a.took, now.Sub(sent))
	})
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.took)
}

// stop ends the polling and returns the latencies and the duplicates.
func (a *arrivals) stop() ([]time.Duration, int) {
	a.cancel()
	<-a.polled
	return a.took, a.dups
}

// pace produces recs at rate from start on, and returns how many were
// produced from warm on and a count of those the broker refused.
func pace(prod *kgo.Client, rate int, start, warm time.Time, recs []*kgo.Record) (counted int, failed *atomic.Int64) {
	failed = new(atomic.Int64)
	for i := 0; i < len(recs); {
		due := min(len(recs), 1+int(time.Since(start).Seconds()*float64(rate)))
		for ; i < due; i++ {
			now := time.Now()
			r := recs[i]
			r.Timestamp = now
			r.Headers = []kgo.RecordHeader{{Key: SentHeader, Value: binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))}}
			if !now.Round(0).Before(warm) {
				counted++
			}
			prod.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
		}
		time.Sleep(200 * time.Microsecond)
	}
	return counted, failed
}

// sentAt is when r was produced: its bench-sent header, which the engine
// carries to its outputs, or else its timestamp (milliseconds).
func sentAt(r *kgo.Record) time.Time {
	for _, h := range r.Headers {
		if h.Key == SentHeader && len(h.Value) == 8 {
			return time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))
		}
	}
	return r.Timestamp
}
