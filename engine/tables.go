package engine

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/pollnet"
	"github.com/billing-engine/billing/engine/internal/query"
	"github.com/billing-engine/billing/engine/internal/state"
	"github.com/billing-engine/billing/engine/internal/stream"
)

// hasTables reports whether any pipeline declares a table.
func (e *Engine) hasTables() bool {
	for _, p := range e.file.Pipelines {
		if len(p.Tables) > 0 {
			return true
		}
	}
	return false
}

// openState opens the local state store under the data dir.
func (e *Engine) openState() (*state.Store, error) {
	dir := filepath.Join(e.file.DataDir, "state", e.file.ApplicationID)
	// A query that arrives while Pebble flushes or compacts in the
	// background is handed the processor between two of its writes.
	st, err := state.Open(dir, state.WithLogger(e.log), state.WithWriteYield(pollnet.Handoff))
	if err != nil {
		return nil, err
	}
	e.log.Info("state store opened", "dir", dir)
	if err := e.checkRestoredFrom(st); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return st, nil
}

// checkRestoredFrom refuses a store holding a table kept with changelog:
// source that the file now declares with its changelog topic: that topic
// lacks every batch processed meanwhile (see stream.ErrSourceToChangelog).
func (e *Engine) checkRestoredFrom(st *state.Store) error {
	for _, p := range e.file.Pipelines {
		for _, t := range p.Tables {
			if t.Changelog == pipeline.ChangelogSource {
				continue
			}
			topics, err := st.CheckpointTopics(t.Name)
			if err != nil {
				return err
			}
			if len(topics) > 0 {
				return fmt.Errorf("%s:%d: table %s: its local state was restored from topic %s (changelog: source), and the file declares changelog: topic: %w",
					e.file.Path, t.Pos.Line, t.Name, topics[0], stream.ErrSourceToChangelog)
			}
		}
	}
	return nil
}

func stateDef(t pipeline.Table) state.Def {
	return state.Def{
		Name: t.Name, Kind: state.Kind(t.Kind), Fields: t.Fields, GroupBy: t.GroupBy, By: t.By,
		Sum: t.Sum, From: t.From, Window: t.Window, TimeField: t.TimeField, Version: t.Version,
		SourceChangelog: t.Changelog == pipeline.ChangelogSource,
	}
}

// pipelineTables returns the Tables of p, or nil when p keeps none.
func (e *Engine) pipelineTables(p pipeline.Pipeline) *stream.Tables {
	if len(p.Tables) == 0 {
		return nil
	}
	t := &stream.Tables{App: e.file.ApplicationID, Store: e.state}
	for _, pt := range p.Tables {
		t.Defs = append(t.Defs, stateDef(pt))
	}
	return t
}

// repartitionRunners returns a runner per repartitioned table of p: it
// consumes the repartition topic and keeps the table.
func (e *Engine) repartitionRunners(p pipeline.Pipeline, base stream.RunnerConfig) []*stream.Runner {
	var out []*stream.Runner
	for _, pt := range p.Tables {
		d := stateDef(pt)
		if !d.Repartitioned() {
			continue
		}
		tables := &stream.Tables{App: e.file.ApplicationID, Store: e.state, Repartitioned: &d}
		cfg := base
		cfg.Topic = d.Repartition(e.file.ApplicationID)
		cfg.Tables = tables
		cfg.Chain = &stream.Chain{
			Pipeline: p.Name + "." + d.Name, DLQ: p.Errors.DLQ, Retries: p.Errors.Retries,
			Backoff: p.Errors.Backoff, Observer: observer{e}, Log: e.log,
			Steps: []stream.Step{{Name: "tables", Tables: tables}},
		}
		out = append(out, stream.NewRunner(cfg))
	}
	return out
}

// queryTables describes every table for the query router, with the
// partition counts the cluster reports.
func (e *Engine) queryTables(brokers []string, cfg *sarama.Config) ([]query.Table, error) {
	if !e.hasTables() {
		return nil, nil
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("engine: metadata: %w", err)
	}
	defer client.Close()
	app := e.file.ApplicationID
	var out []query.Table
	for _, p := range e.file.Pipelines {
		for _, pt := range p.Tables {
			d := stateDef(pt)
			t := query.Table{Name: d.Name, Topic: p.Source.Topic, Group: app + "-" + p.Name}
			if d.Repartitioned() {
				t.Topic, t.Group = d.Repartition(app), app+"-"+p.Name+"."+d.Name
			}
			parts, err := client.Partitions(t.Topic)
			if err != nil {
				return nil, fmt.Errorf("engine: partitions of %s: %w", t.Topic, err)
			}
			t.Partitions = int32(len(parts))
			out = append(out, t)
		}
	}
	return out, nil
}
