package pipeline

import "gopkg.in/yaml.v3"

// pipelines decodes the list of pipelines. Every item is appended, even
// one that failed to decode, so that Pipelines[i] is at path pipelines[i].
func (d *decoder) pipelines(path string, k, v *yaml.Node) {
	d.set(path, k)
	d.list(path, v, func(path string, _ int, item *yaml.Node) {
		d.f.Pipelines = append(d.f.Pipelines, d.pipeline(path, item))
	})
}

func (d *decoder) pipeline(path string, n *yaml.Node) Pipeline {
	p := Pipeline{Pos: posOf(n)}
	d.set(path, n)
	d.object(path, n, map[string]field{
		"name": d.str(&p.Name),
		"source": d.section(&p.Source.Pos, map[string]field{
			"topic":     d.str(&p.Source.Topic),
			"schema":    d.str(&p.Source.Schema),
			"max_batch": integer(d, &p.Source.MaxBatch),
			"max_wait":  d.duration(&p.Source.MaxWait),
		}),
		"stages":   d.stages(&p.Stages),
		"branches": d.branches(&p.Branches),
		"tables":   d.tables(&p.Tables),
		"errors": d.section(nil, map[string]field{
			"retries": integer(d, &p.Errors.Retries),
			"backoff": d.duration(&p.Errors.Backoff),
			"dlq":     d.str(&p.Errors.DLQ),
		}),
	})
	return p
}

func (d *decoder) stages(dst *[]Stage) field {
	return func(path string, k, v *yaml.Node) {
		d.set(path, k)
		d.list(path, v, func(path string, _ int, item *yaml.Node) {
			s := Stage{Pos: posOf(item)}
			d.set(path, item)
			d.object(path, item, map[string]field{
				"name":    d.str(&s.Name),
				"filter":  d.expr(&s.Filter, &s.FilterPos),
				"plugin":  d.str(&s.Plugin),
				"config":  d.anyMap(&s.Config),
				"outputs": d.outputs(&s.Outputs),
			})
			*dst = append(*dst, s)
		})
	}
}

func (d *decoder) branches(dst *[]Branch) field {
	return func(path string, k, v *yaml.Node) {
		d.set(path, k)
		d.list(path, v, func(path string, _ int, item *yaml.Node) {
			b := Branch{Pos: posOf(item)}
			d.set(path, item)
			d.object(path, item, map[string]field{
				"name":    d.str(&b.Name),
				"when":    d.expr(&b.When, &b.WhenPos),
				"default": d.boolean(&b.Default),
				"to":      d.str(&b.To),
			})
			*dst = append(*dst, b)
		})
	}
}

// expr decodes an expression, keeping its node to map the columns of
// compile errors back to the file.
func (d *decoder) expr(dst *string, pos *Pos) field {
	return func(path string, _, v *yaml.Node) {
		if s, ok := d.scalar(path, v, "an expression"); ok {
			n := deref(v)
			*dst, *pos = s, posOf(n)
			d.set(path, n)
			d.f.exprs[path] = n
		}
	}
}

// outputs decodes a stage's map of output names to topics.
func (d *decoder) outputs(dst *map[string]string) field {
	return func(path string, k, v *yaml.Node) {
		d.set(path, k)
		out := make(map[string]string)
		d.each(path, v, func(name string, k, v *yaml.Node) {
			var topic string
			d.str(&topic)(namePath(path, name), k, v)
			out[name] = topic
		})
		*dst = out
	}
}

func (d *decoder) tables(dst *[]Table) field {
	return func(path string, k, v *yaml.Node) {
		d.set(path, k)
		d.list(path, v, func(path string, _ int, item *yaml.Node) {
			t := Table{Pos: posOf(item)}
			d.set(path, item)
			d.object(path, item, map[string]field{
				"name":       d.str(&t.Name),
				"kind":       d.str(&t.Kind),
				"fields":     d.stringList(&t.Fields, true),
				"group_by":   d.str(&t.GroupBy),
				"by":         d.stringList(&t.By, true),
				"sum":        d.str(&t.Sum),
				"from":       d.str(&t.From),
				"window":     d.duration(&t.Window),
				"time_field": d.str(&t.TimeField),
				"version":    d.str(&t.Version),
				"changelog":  d.str(&t.Changelog),
			})
			*dst = append(*dst, t)
		})
	}
}
