package engine

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/expr"
	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/engine/sdk"
)

// branchPlugin is the plugin that evaluates a pipeline's `branches:`.
const branchPlugin = "branch"

// ErrPlugin reports a plugin that cannot be started.
var ErrPlugin = errors.New("engine: plugin")

// buildRunners compiles every pipeline. The returned func closes the
// processors that hold resources.
func (e *Engine) buildRunners(ctx context.Context, brokers []string, cfg *sarama.Config) ([]*stream.Runner, func() error, error) {
	var runners []*stream.Runner
	var closers []sdk.Closer
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c.Close())
		}
		return errors.Join(errs...)
	}
	for _, p := range e.file.Pipelines {
		chain, cs, err := e.buildChain(ctx, p)
		closers = append(closers, cs...)
		if err != nil {
			return nil, nil, errors.Join(err, closeAll())
		}
		rc := stream.RunnerConfig{
			ApplicationID: e.file.ApplicationID,
			InstanceID:    e.instance,
			Brokers:       brokers,
			Sarama:        cfg,
			Topic:         p.Source.Topic,
			Chain:         chain,
			Tables:        e.pipelineTables(p),
			MaxBatch:      p.Source.MaxBatch,
			MaxWait:       p.Source.MaxWait,
			ExactlyOnce:   e.file.Kafka.ExactlyOnce,
			Tracker:       e.tracker,
			UserData:      []byte(e.file.HTTP.Advertise),
			Log:           e.log,
		}
		if rc.Tables != nil {
			chain.Steps = insertTables(chain.Steps, len(p.Stages), rc.Tables)
		}
		runners = append(runners, stream.NewRunner(rc))
		runners = append(runners, e.repartitionRunners(p, rc)...)
	}
	return runners, closeAll, nil
}

func (e *Engine) buildChain(ctx context.Context, p pipeline.Pipeline) (*stream.Chain, []sdk.Closer, error) {
	schema, err := e.reg.Schema(p.Source.Schema)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: pipeline %s: %w", p.Name, err)
	}
	chain := &stream.Chain{
		Pipeline: p.Name, Registry: e.reg, Schema: schema, DLQ: p.Errors.DLQ,
		Retries: p.Errors.Retries, Backoff: p.Errors.Backoff, Observer: observer{e}, Log: e.log,
	}
	var closers []sdk.Closer
	for _, st := range p.Stages {
		step, err := e.buildStep(ctx, p, schema, st)
		if err != nil {
			return nil, closers, err
		}
		if c, ok := step.Processor.(sdk.Closer); ok {
			closers = append(closers, c)
		}
		chain.Steps = append(chain.Steps, step)
	}
	if len(p.Branches) > 0 {
		step, err := e.branchStep(ctx, p, schema)
		if err != nil {
			return nil, closers, err
		}
		chain.Steps = append(chain.Steps, step)
	}
	return chain, closers, nil
}

func (e *Engine) buildStep(ctx context.Context, p pipeline.Pipeline, schema *avro.Schema, st pipeline.Stage) (stream.Step, error) {
	if st.Filter != "" {
		prog, err := expr.CompileBool(st.Filter, nil)
		if err != nil {
			return stream.Step{}, fmt.Errorf("engine: pipeline %s stage %s: %w", p.Name, st.Name, err)
		}
		return stream.Step{Name: st.Name, Filter: prog}, nil
	}
	proc, timeout, err := e.processor(ctx, p, schema, st.Name, st.Plugin, st.Config)
	if err != nil {
		return stream.Step{}, err
	}
	return stream.Step{Name: st.Name, Processor: proc, Outputs: st.Outputs, Timeout: timeout}, nil
}

// insertTables puts the table step after the pipeline's own stages, before
// the branch step.
func insertTables(steps []stream.Step, at int, t *stream.Tables) []stream.Step {
	out := append([]stream.Step{}, steps[:at]...)
	out = append(out, stream.Step{Name: "tables", Tables: t})
	return append(out, steps[at:]...)
}

// branchStep turns `branches:` into a stage of the branch plugin. A default
// branch to the DLQ topic is left out, so unmatched records reach the DLQ
// through the DLQ path, with a reason.
func (e *Engine) branchStep(ctx context.Context, p pipeline.Pipeline, schema *avro.Schema) (stream.Step, error) {
	var routes []any
	settings := map[string]any{}
	outputs := map[string]string{}
	for _, b := range p.Branches {
		if b.Default {
			if b.To != p.Errors.DLQ {
				settings["default"] = b.Name
				outputs[b.Name] = b.To
			}
			continue
		}
		routes = append(routes, map[string]any{"output": b.Name, "when": b.When})
		outputs[b.Name] = b.To
	}
	settings["routes"] = routes
	proc, timeout, err := e.processor(ctx, p, schema, branchPlugin, branchPlugin, settings)
	if err != nil {
		return stream.Step{}, err
	}
	return stream.Step{Name: branchPlugin, Processor: proc, Outputs: outputs, Timeout: timeout}, nil
}

// processor builds the named plugin for one stage.
func (e *Engine) processor(ctx context.Context, p pipeline.Pipeline, schema *avro.Schema, stage, name string, settings map[string]any) (sdk.Processor, time.Duration, error) {
	decl, declared := e.file.Plugins[name]
	merged := map[string]any{}
	for k, v := range decl.Config {
		merged[k] = v
	}
	for k, v := range settings {
		merged[k] = v
	}
	cfg := sdk.Config{
		Name: name, Pipeline: p.Name, Stage: stage, Settings: merged,
		SchemasDir: e.file.SchemasDir, Schema: schema.Name,
		Logger: e.log.With("plugin", name, "pipeline", p.Name, "stage", stage),
	}
	if declared && decl.Command != "" {
		proc, err := e.startPlugin(ctx, decl, cfg)
		if err != nil {
			return nil, 0, fmt.Errorf("%w %s (pipeline %s, stage %s): %w", ErrPlugin, name, p.Name, stage, err)
		}
		return e.instrument(proc, p.Name, stage, name), decl.Timeout, nil
	}
	factory, ok := e.opts.processors[name]
	if !ok {
		return nil, 0, fmt.Errorf("%w %s: not registered in-process and no command given", ErrPlugin, name)
	}
	proc, err := factory(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("%w %s (pipeline %s, stage %s): %w", ErrPlugin, name, p.Name, stage, err)
	}
	return e.instrument(proc, p.Name, stage, name), decl.Timeout, nil
}
