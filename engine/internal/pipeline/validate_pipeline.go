package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/billing-engine/billing/engine/expr"
)

// pipelineCheck holds what the checks of one pipeline share.
type pipelineCheck struct {
	*validator
	p    *Pipeline
	path string   // pipelines[i]
	ctx  string   // `pipeline "name"`, for messages
	env  expr.Env // the source schema's fields; nil when unknown
}

// pipelines checks every pipeline and the uniqueness of their names.
func (v *validator) pipelines() {
	if len(v.f.Pipelines) == 0 {
		v.errorf("pipelines", "pipelines: none declared: a file needs at least one pipeline")
		return
	}
	first := make(map[string]string) // name -> path of its first use
	tables := make(map[string]string)
	for i := range v.f.Pipelines {
		p := &v.f.Pipelines[i]
		c := &pipelineCheck{validator: v, p: p, path: fmt.Sprintf("pipelines[%d]", i)}
		c.ctx = c.path
		if p.Name != "" {
			c.ctx = fmt.Sprintf("pipeline %q", p.Name)
		}
		c.name(first)
		c.source()
		c.stages()
		c.branches()
		c.tables(tables)
		c.errorPolicy()
	}
}

func (c *pipelineCheck) name(first map[string]string) {
	path := c.path + ".name"
	switch name := c.p.Name; {
	case name == "":
		c.errorf(path, "%s: name: required", c.ctx)
	case !pipelineName.MatchString(name):
		c.errorf(path, "%s: name: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", c.ctx)
	case first[name] != "":
		c.errorf(path, "%s: name already used by the pipeline at line %d", c.ctx, c.at(first[name]).Line)
	default:
		first[name] = path
	}
}

func (c *pipelineCheck) source() {
	s, path := c.p.Source, c.path+".source"
	if s.Topic == "" {
		c.errorf(path+".topic", "%s: source.topic: required", c.ctx)
	} else {
		c.topic(path+".topic", c.ctx+": source.topic", s.Topic)
	}
	if s.Schema == "" {
		c.errorf(path+".schema", "%s: source.schema: required", c.ctx)
	} else {
		c.env = c.sourceEnv(path+".schema", c.ctx, s.Schema)
	}
	if s.MaxBatch < 1 {
		c.errorf(path+".max_batch", "%s: source.max_batch: want at least 1, got %d", c.ctx, s.MaxBatch)
	}
	if s.MaxWait < 0 {
		c.errorf(path+".max_wait", "%s: source.max_wait: want a duration >= 0, got %s", c.ctx, s.MaxWait)
	}
}

func (c *pipelineCheck) stages() {
	first := make(map[string]string)
	for i := range c.p.Stages {
		s := &c.p.Stages[i]
		path := c.path + ".stages[" + strconv.Itoa(i) + "]"
		ctx := fmt.Sprintf("%s stage %q", c.ctx, s.Name)
		if s.Name == "" {
			ctx = fmt.Sprintf("%s stages[%d]", c.ctx, i)
		}
		c.unique(first, path, ctx, s.Name, "stage")
		switch {
		case s.Filter != "" && s.Plugin != "":
			c.errorf(path, "%s: set filter or plugin, not both", ctx)
		case s.Filter != "":
			c.filterStage(path, ctx, s)
		case s.Plugin != "":
			c.pluginStage(path, ctx, s)
		default:
			c.errorf(path, "%s: set filter (an expression) or plugin (a plugin name)", ctx)
		}
	}
}

// unique checks a stage or branch name: well formed, and not used before
// in this pipeline.
func (c *pipelineCheck) unique(first map[string]string, path, ctx, name, kind string) {
	switch {
	case name == "":
	case !simpleName.MatchString(name):
		c.errorf(path+".name", "%s: name: use only letters, digits, '.', '_' and '-'", ctx)
	case first[name] != "":
		c.errorf(path+".name", "%s: name already used by the %s at line %d", ctx, kind, c.at(first[name]).Line)
	default:
		first[name] = path
	}
}

func (c *pipelineCheck) filterStage(path, ctx string, s *Stage) {
	c.expression(path+".filter", ctx+": filter", s.Filter, s.FilterPos, c.env)
	if s.Config != nil {
		c.errorf(path+".config", "%s: config applies to plugin stages only", ctx)
	}
	if s.Outputs != nil {
		c.errorf(path+".outputs", "%s: outputs apply to plugin stages only", ctx)
	}
}

func (c *pipelineCheck) pluginStage(path, ctx string, s *Stage) {
	if _, ok := c.f.Plugins[s.Plugin]; !ok && !c.builtin(s.Plugin) {
		c.errorf(path+".plugin", "%s: unknown plugin %q: declare it under plugins:", ctx, s.Plugin)
	}
	for _, out := range slices.Sorted(maps.Keys(s.Outputs)) {
		p := namePath(path+".outputs", out)
		c.topic(p, fmt.Sprintf("%s: output %q", ctx, out), s.Outputs[out])
	}
}
