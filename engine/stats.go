package engine

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what the pipelines did since the engine started. It is safe
// for concurrent use.
type Stats struct {
	mu       sync.RWMutex
	counters map[string]*atomic.Int64
}

func newStats() *Stats { return &Stats{counters: map[string]*atomic.Int64{}} }

func (s *Stats) counter(name string) *atomic.Int64 {
	s.mu.RLock()
	c, ok := s.counters[name]
	s.mu.RUnlock()
	if ok {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok = s.counters[name]; !ok {
		c = new(atomic.Int64)
		s.counters[name] = c
	}
	return c
}

// Snapshot returns every counter by name: "consumed/<pipeline>",
// "produced/<pipeline>/<stage>/<topic>", "dlq/<pipeline>/<stage>",
// "dropped/<pipeline>/<stage>".
func (s *Stats) Snapshot() map[string]int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int64, len(s.counters))
	for k, c := range s.counters {
		out[k] = c.Load()
	}
	return out
}

// Consumed implements stream.Observer.
func (s *Stats) Consumed(pipeline string, n int) { s.counter("consumed/" + pipeline).Add(int64(n)) }

// Produced implements stream.Observer.
func (s *Stats) Produced(pipeline, stage, topic string, n int) {
	s.counter("produced/" + pipeline + "/" + stage + "/" + topic).Add(int64(n))
}

// DeadLettered implements stream.Observer.
func (s *Stats) DeadLettered(pipeline, stage, _ string) {
	s.counter("dlq/" + pipeline + "/" + stage).Add(1)
}

// Dropped implements stream.Observer.
func (s *Stats) Dropped(pipeline, stage string, n int) {
	s.counter("dropped/" + pipeline + "/" + stage).Add(int64(n))
}

// logEvery logs the consumed counts every d while they change.
func (s *Stats) logEvery(ctx context.Context, log *slog.Logger, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	last := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap := s.Snapshot()
		keys := make([]string, 0, len(snap))
		for k := range snap {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var args []any
		changed := false
		for _, k := range keys {
			if snap[k] != last[k] {
				changed = true
			}
			args = append(args, k, snap[k])
		}
		if changed {
			log.Info("progress", args...)
		}
		last = snap
	}
}
