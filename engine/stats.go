package engine

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billing-engine/billing/engine/internal/stream"
)

// Stats counts what the pipelines did since the engine started, once
// their batches committed, and keeps the consumer lag of each partition and
// the most recent dead letters. It is safe for concurrent use.
type Stats struct {
	mu       sync.RWMutex
	counters map[string]*atomic.Int64
	lag      map[lagKey]int64
	dlq      []DeadLetter // a ring of the last dlqKeep, oldest at dlqNext once full
	dlqNext  int
}

type lagKey struct {
	pipeline, topic string
	partition       int32
}

// dlqKeep is how many recent dead letters Stats keeps.
const dlqKeep = 100

// DeadLetter is one record sent to the DLQ.
type DeadLetter struct {
	Time      time.Time `json:"time"`
	Pipeline  string    `json:"pipeline"`
	Stage     string    `json:"stage"`
	Reason    string    `json:"reason"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Key       string    `json:"key"`
}

func newStats() *Stats {
	return &Stats{counters: map[string]*atomic.Int64{}, lag: map[lagKey]int64{}}
}

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
// "dropped/<pipeline>/<stage>", and "retries/<pipeline>/<stage>" (failed
// attempts of a stage's batches, counted at once, not at commit).
func (s *Stats) Snapshot() map[string]int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int64, len(s.counters))
	for k, c := range s.counters {
		out[k] = c.Load()
	}
	return out
}

// committed counts a committed batch.
func (s *Stats) committed(pipeline string, b *stream.Batch) {
	s.counter("consumed/" + pipeline).Add(int64(len(b.Inputs)))
	var dead []DeadLetter
	now := time.Now().UTC()
	for i := range b.Outputs {
		o := &b.Outputs[i]
		if d := o.DeadLetter; d != nil {
			s.counter("dlq/" + pipeline + "/" + d.Stage).Add(1)
			dead = append(dead, DeadLetter{
				Time: now, Pipeline: pipeline, Stage: d.Stage, Reason: d.Reason,
				Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: string(o.Key),
			})
		}
	}
	for k, n := range b.Produced() {
		s.counter("produced/" + pipeline + "/" + k.Stage + "/" + k.Topic).Add(int64(n))
	}
	for stage, n := range b.Dropped {
		s.counter("dropped/" + pipeline + "/" + stage).Add(int64(n))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag[lagKey{pipeline, b.Topic, b.Partition}] = b.Lag
	for _, d := range dead {
		if len(s.dlq) < dlqKeep {
			s.dlq = append(s.dlq, d)
			continue
		}
		s.dlq[s.dlqNext] = d
		s.dlqNext = (s.dlqNext + 1) % dlqKeep
	}
}

// retrying counts a failed attempt of a stage on a batch.
func (s *Stats) retrying(pipeline, stage string) {
	s.counter("retries/" + pipeline + "/" + stage).Add(1)
}

// RecentDeadLetters returns up to limit of the most recent dead letters,
// newest first.
func (s *Stats) RecentDeadLetters(limit int) []DeadLetter {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]DeadLetter, 0, min(limit, len(s.dlq)))
	for i := 0; i < len(s.dlq) && len(out) < limit; i++ {
		// The newest is just before dlqNext (which stays 0 while filling).
		j := (s.dlqNext - 1 - i + 2*len(s.dlq)) % len(s.dlq)
		out = append(out, s.dlq[j])
	}
	return out
}

// Lag is the consumer lag of one source partition after its last
// committed batch.
type Lag struct {
	Pipeline  string `json:"pipeline"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

// Lags returns the consumer lag of every partition a batch committed on,
// sorted by pipeline, topic and partition.
func (s *Stats) Lags() []Lag {
	s.mu.RLock()
	out := make([]Lag, 0, len(s.lag))
	for k, v := range s.lag {
		out = append(out, Lag{Pipeline: k.pipeline, Topic: k.topic, Partition: k.partition, Lag: v})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Lag) int {
		return cmp.Or(cmp.Compare(a.Pipeline, b.Pipeline), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// View is the counters arranged by pipeline and stage, with the lags: what
// the dashboard's event stream sends every second.
type View struct {
	Time      time.Time      `json:"time"`
	Pipelines []PipelineView `json:"pipelines"`
	Lag       []Lag          `json:"lag"`
	DLQTotal  int64          `json:"dlq_total"`
}

// PipelineView is one pipeline's counts.
type PipelineView struct {
	Name     string      `json:"name"`
	Consumed int64       `json:"consumed"`
	Stages   []StageView `json:"stages"`
}

// StageView is one stage's counts: records written per topic, dropped by a
// filter, sent to the DLQ.
type StageView struct {
	Name    string       `json:"name"`
	Outputs []OutputView `json:"outputs"`
	Dropped int64        `json:"dropped"`
	DLQ     int64        `json:"dlq"`
}

// OutputView is the records a stage wrote to one topic.
type OutputView struct {
	Topic   string `json:"topic"`
	Records int64  `json:"records"`
}

// View returns the counters by pipeline and stage, sorted by name.
func (s *Stats) View() View {
	v := View{Time: time.Now().UTC(), Lag: s.Lags()}
	pipes := map[string]*PipelineView{}
	stages := map[[2]string]*StageView{}
	pipe := func(name string) *PipelineView {
		if p, ok := pipes[name]; ok {
			return p
		}
		p := &PipelineView{Name: name, Stages: []StageView{}}
		pipes[name] = p
		return p
	}
	stage := func(p, name string) *StageView {
		pipe(p)
		if st, ok := stages[[2]string{p, name}]; ok {
			return st
		}
		st := &StageView{Name: name, Outputs: []OutputView{}}
		stages[[2]string{p, name}] = st
		return st
	}
	for k, n := range s.Snapshot() {
		parts := strings.Split(k, "/")
		switch {
		case parts[0] == "consumed" && len(parts) == 2:
			pipe(parts[1]).Consumed = n
		case parts[0] == "produced" && len(parts) == 4:
			st := stage(parts[1], parts[2])
			st.Outputs = append(st.Outputs, OutputView{Topic: parts[3], Records: n})
		case parts[0] == "dropped" && len(parts) == 3:
			stage(parts[1], parts[2]).Dropped = n
		case parts[0] == "dlq" && len(parts) == 3:
			stage(parts[1], parts[2]).DLQ = n
			v.DLQTotal += n
		}
	}
	for key, st := range stages {
		slices.SortFunc(st.Outputs, func(a, b OutputView) int { return cmp.Compare(a.Topic, b.Topic) })
		pipes[key[0]].Stages = append(pipes[key[0]].Stages, *st)
	}
	v.Pipelines = make([]PipelineView, 0, len(pipes))
	for _, p := range pipes {
		slices.SortFunc(p.Stages, func(a, b StageView) int { return cmp.Compare(a.Name, b.Name) })
		v.Pipelines = append(v.Pipelines, *p)
	}
	slices.SortFunc(v.Pipelines, func(a, b PipelineView) int { return cmp.Compare(a.Name, b.Name) })
	return v
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
