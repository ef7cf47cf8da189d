package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/pluginhost"
	"github.com/billing-engine/billing/engine/sdk"
)

// startPlugin starts the out-of-process plugin decl for one stage and
// configures it with cfg. The returned processor is an sdk.Closer.
func (e *Engine) startPlugin(ctx context.Context, decl pipeline.Plugin, cfg sdk.Config) (sdk.Processor, error) {
	cfg.Logger = nil // the plugin logs through its stderr
	p, err := pluginhost.Start(ctx, pluginSpec(decl), cfg, pluginhost.WithLogger(e.log))
	if err != nil {
		return nil, err
	}
	e.log.Info("plugin started", "plugin", decl.Name, "pipeline", cfg.Pipeline, "stage", cfg.Stage,
		"command", decl.Command, "version", p.Info().Version)
	return p, nil
}

func pluginSpec(decl pipeline.Plugin) pluginhost.Spec {
	return pluginhost.Spec{
		Name: decl.Name, Command: decl.Command, Args: decl.Args,
		SHA256: decl.SHA256, Timeout: decl.Timeout,
	}
}

// pluginUse is one stage that runs a plugin, with the settings it adds.
type pluginUse struct {
	pipeline, stage string
	schema          string // the pipeline's source schema, as written
	settings        map[string]any
	outputs         []string
	pos             pipeline.Pos
}

// checkPlugins starts every plugin f declares with a command once per
// stage that uses it (or once with its own config, when no stage does),
// completes the handshake, configures it as Run would and stops it. Each
// failure is a *pipeline.Error: a plugin that does not start at the
// plugin's declaration, a configuration it rejects or an output it does
// not emit at the stage.
func checkPlugins(ctx context.Context, f *pipeline.File, o options) error {
	var errs pipeline.List
	uses := pluginUses(f)
	var reg *avro.Registry
	for _, name := range slices.Sorted(maps.Keys(f.Plugins)) {
		decl := f.Plugins[name]
		if decl.Command == "" {
			continue
		}
		if reg == nil {
			reg, _ = avro.LoadDir(f.SchemasDir) // Validate has reported schema problems
		}
		us := uses[name]
		if len(us) == 0 {
			us = []pluginUse{{pos: decl.Pos}}
		}
		for _, u := range us {
			perr, started := checkPlugin(ctx, f, reg, decl, u, o)
			if perr != nil {
				errs = append(errs, perr)
			}
			if !started {
				break // it will not start for the next stage either
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *pipeline.Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return errs
}

// checkPlugin starts decl for the use u and checks it. started is false
// when the plugin did not get as far as Configure.
func checkPlugin(ctx context.Context, f *pipeline.File, reg *avro.Registry, decl pipeline.Plugin, u pluginUse, o options) (perr *pipeline.Error, started bool) {
	settings := maps.Clone(decl.Config)
	if settings == nil {
		settings = map[string]any{}
	}
	maps.Copy(settings, u.settings)
	cfg := sdk.Config{Name: decl.Name, Pipeline: u.pipeline, Stage: u.stage, Settings: settings, SchemasDir: f.SchemasDir}
	if reg != nil && u.schema != "" {
		if s, err := reg.Schema(u.schema); err == nil {
			cfg.Schema = s.Name
		}
	}
	p, err := pluginhost.Start(ctx, pluginSpec(decl), cfg, pluginhost.WithLogger(o.log))
	if err != nil {
		var he *pluginhost.Error
		msg := err.Error()
		if errors.As(err, &he) {
			msg = he.Err.Error()
		}
		if !errors.Is(err, pluginhost.ErrConfigure) {
			return checkError(f, decl.Pos, decl.Name, msg), false
		}
		if u.stage == "" {
			return checkError(f, decl.Pos, decl.Name, msg), true
		}
		return checkError(f, u.pos, decl.Name, fmt.Sprintf("%s (pipeline %s, stage %s)", msg, u.pipeline, u.stage)), true
	}
	defer p.Close()
	emits := p.Info().Outputs
	if len(emits) == 0 {
		return nil, true
	}
	for _, out := range u.outputs {
		if out != "" && out != "next" && !slices.Contains(emits, out) {
			msg := fmt.Sprintf("pipeline %s, stage %s: output %q: the plugin emits only %s", u.pipeline, u.stage, out, strings.Join(emits, ", "))
			return checkError(f, u.pos, decl.Name, msg), true
		}
	}
	return nil, true
}

func checkError(f *pipeline.File, pos pipeline.Pos, name, msg string) *pipeline.Error {
	return &pipeline.Error{File: f.Path, Line: pos.Line, Column: pos.Column, Msg: fmt.Sprintf("plugin %q: %s", name, msg)}
}

// pluginUses lists, by plugin name, the stages that run each plugin:
// `plugin:` stages, and the branch stage that `branches:` becomes.
func pluginUses(f *pipeline.File) map[string][]pluginUse {
	uses := map[string][]pluginUse{}
	for _, p := range f.Pipelines {
		for _, st := range p.Stages {
			if st.Plugin == "" {
				continue
			}
			uses[st.Plugin] = append(uses[st.Plugin], pluginUse{
				pipeline: p.Name, stage: st.Name, schema: p.Source.Schema,
				settings: st.Config, outputs: slices.Sorted(maps.Keys(st.Outputs)), pos: st.Pos,
			})
		}
		if len(p.Branches) > 0 {
			settings, outputs := branchSettings(p)
			uses[branchPlugin] = append(uses[branchPlugin], pluginUse{
				pipeline: p.Name, stage: branchPlugin, schema: p.Source.Schema,
				settings: settings, outputs: outputs, pos: p.Branches[0].Pos,
			})
		}
	}
	return uses
}

// branchSettings is the branch plugin's configuration for p's
// `branches:`, as branchStep builds it, and the outputs it maps.
func branchSettings(p pipeline.Pipeline) (map[string]any, []string) {
	var routes []any
	var outputs []string
	settings := map[string]any{}
	for _, b := range p.Branches {
		if b.Default {
			if b.To != p.Errors.DLQ {
				settings["default"] = b.Name
				outputs = append(outputs, b.Name)
			}
			continue
		}
		routes = append(routes, map[string]any{"output": b.Name, "when": b.When})
		outputs = append(outputs, b.Name)
	}
	settings["routes"] = routes
	return settings, outputs
}
