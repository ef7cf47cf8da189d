package pipeline

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/billing-engine/billing/engine/expr"
)

var tableName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// tables checks a pipeline's table declarations. seen maps table names
// already declared in the file to their path.
func (c *pipelineCheck) tables(seen map[string]string) {
	latest := map[string]bool{}
	for i := range c.p.Tables {
		t := &c.p.Tables[i]
		path := fmt.Sprintf("%s.tables[%d]", c.path, i)
		ctx := fmt.Sprintf("%s: table %q", c.ctx, t.Name)
		switch {
		case t.Name == "":
			c.errorf(path, "%s: tables[%d].name: required", c.ctx, i)
		case !tableName.MatchString(t.Name):
			c.errorf(path+".name", "%s: name: use lower-case letters, digits, '_' and '-'", ctx)
		case seen[t.Name] != "":
			c.errorf(path+".name", "%s: name already used by the table at line %d", ctx, c.at(seen[t.Name]).Line)
		default:
			seen[t.Name] = path + ".name"
		}
		switch t.Kind {
		case "latest":
			c.latestTable(path, ctx, t)
			latest[t.Name] = true
		case "count", "aggregate":
			c.aggTable(path, ctx, t, latest)
		case "":
			c.errorf(path, "%s: kind: required (latest, count or aggregate)", ctx)
		default:
			c.errorf(path+".kind", "%s: kind %q: want latest, count or aggregate", ctx, t.Kind)
		}
	}
}

func (c *pipelineCheck) latestTable(path, ctx string, t *Table) {
	for _, f := range t.Fields {
		c.tableField(path+".fields", ctx+": fields", f, nil)
	}
	if t.Version != "" {
		c.tableField(path+".version", ctx+": version", t.Version, []expr.Type{expr.Time, expr.Int})
		if len(t.Fields) > 0 && !slices.Contains(t.Fields, t.Version) {
			c.errorf(path+".version", "%s: version: %q must be one of the fields the table keeps", ctx, t.Version)
		}
	}
	switch t.Changelog {
	case "", ChangelogTopic:
	case ChangelogSource:
		// A restore replays the source records through the filters; a
		// plugin's output cannot be replayed.
		for _, st := range c.p.Stages {
			if st.Filter == "" {
				c.errorf(path+".changelog", "%s: changelog: source: the table is restored by replaying the source records through the filters before it, and stage %q is a plugin, which cannot be replayed; use changelog: topic", ctx, st.Name)
				break
			}
		}
	default:
		c.errorf(path+".changelog", "%s: changelog %q: want topic (its own compacted changelog topic) or source (restored from the source topic)", ctx, t.Changelog)
	}
	for key, set := range map[string]bool{"group_by": t.GroupBy != "", "by": len(t.By) > 0, "sum": t.Sum != "", "from": t.From != "", "window": t.Window != 0} {
		if set {
			c.errorf(path+"."+key, "%s: %s: only count and aggregate tables take it", ctx, key)
		}
	}
}

func (c *pipelineCheck) aggTable(path, ctx string, t *Table, latest map[string]bool) {
	if len(t.Fields) > 0 {
		c.errorf(path+".fields", "%s: fields: only latest tables take it", ctx)
	}
	if t.Version != "" {
		c.errorf(path+".version", "%s: version: only latest tables take it", ctx)
	}
	if t.Changelog == ChangelogSource {
		c.errorf(path+".changelog", "%s: changelog: source: only latest tables take it (an aggregate is not a projection of its input)", ctx)
	} else if t.Changelog != "" && t.Changelog != ChangelogTopic {
		c.errorf(path+".changelog", "%s: changelog %q: want topic", ctx, t.Changelog)
	}
	if t.GroupBy != "" {
		c.tableField(path+".group_by", ctx+": group_by", t.GroupBy, nil)
	}
	for _, f := range t.By {
		c.tableField(path+".by", ctx+": by", f, nil)
	}
	switch {
	case t.Kind == "aggregate" && t.Sum == "":
		c.errorf(path, "%s: sum: required for an aggregate (use kind: count to only count)", ctx)
	case t.Kind == "count" && t.Sum != "":
		c.errorf(path+".sum", "%s: sum: a count table does not sum; use kind: aggregate", ctx)
	case t.Sum != "":
		c.tableField(path+".sum", ctx+": sum", t.Sum, []expr.Type{expr.Int})
	}
	if t.From != "" && !latest[t.From] {
		c.errorf(path+".from", "%s: from: %q is not a latest table declared before it in this pipeline", ctx, t.From)
	}
	if t.Window < 0 {
		c.errorf(path+".window", "%s: window: want a positive duration, got %s", ctx, t.Window)
	}
	if t.TimeField != "" {
		if t.Window == 0 {
			c.errorf(path+".time_field", "%s: time_field: only windowed tables take it", ctx)
		}
		c.tableField(path+".time_field", ctx+": time_field", t.TimeField, []expr.Type{expr.Time, expr.Int})
	}
}

// tableField checks that field exists in the source schema and, when want
// is set, has one of those types.
func (c *pipelineCheck) tableField(path, what, field string, want []expr.Type) {
	if c.env == nil {
		return
	}
	typ, ok := c.env.Lookup(field)
	if !ok {
		c.errorf(path, "%s: unknown field %q in schema %s", what, field, c.p.Source.Schema)
		return
	}
	if len(want) == 0 {
		return
	}
	for _, w := range want {
		if typ == w {
			return
		}
	}
	c.errorf(path, "%s: field %q is %s, want %v", what, field, typ, want)
}
