package pipeline

import (
	"fmt"
	"strings"
)

// Graph renders the file's topology as a Mermaid flowchart: topics as
// stadium nodes, one subgraph per pipeline holding its stages (filters as
// rhombuses, plugins as boxes), branches as edges labelled with their
// conditions, each pipeline's dead-letter queue as a dashed edge, and its
// tables as cylinders fed (dotted) from the last stage, through their
// repartition topics, and into their changelogs.
// The output is deterministic. Graph does not validate f; a file that
// Validate rejects still renders, as far as it goes.
func Graph(f *File) string {
	g := &graph{ids: make(map[string]string), used: make(map[string]bool), app: f.ApplicationID}
	g.line(0, "flowchart LR")
	for _, t := range f.TopicSpecs() {
		g.line(1, "%s(%s)", g.topic(t.Name), shapeLabel("[", t.Name, "]"))
	}
	for i := range f.Pipelines {
		g.pipeline(i, &f.Pipelines[i])
	}
	return g.b.String()
}

// graph builds Mermaid text, giving each node a unique identifier.
type graph struct {
	b    strings.Builder
	ids  map[string]string // node key -> identifier
	used map[string]bool   // identifiers handed out
	app  string            // application id, the prefix of internal topics
}

func (g *graph) line(indent int, format string, args ...any) {
	g.b.WriteString(strings.Repeat("    ", indent))
	fmt.Fprintf(&g.b, format, args...)
	g.b.WriteByte('\n')
}

// id returns the identifier of the node key, made from hint.
func (g *graph) id(key, hint string) string {
	if id, ok := g.ids[key]; ok {
		return id
	}
	base := sanitizeID(hint)
	id := base
	for n := 2; g.used[id]; n++ {
		id = fmt.Sprintf("%s_%d", base, n)
	}
	g.ids[key], g.used[id] = id, true
	return id
}

func (g *graph) topic(name string) string { return g.id("topic\x00"+name, "t_"+name) }

// pipeline renders one pipeline: its subgraph, then its edges.
func (g *graph) pipeline(i int, p *Pipeline) {
	key := fmt.Sprintf("pipeline\x00%d", i)
	pid := g.id(key, "p_"+p.Name)
	g.line(1, "subgraph %s [%s]", pid, quote(p.Name))
	var nodes []string
	for j := range p.Stages {
		id := g.id(fmt.Sprintf("%s\x00stage\x00%d", key, j), pid+"_"+p.Stages[j].Name)
		g.line(2, "%s%s", id, stageShape(&p.Stages[j]))
		nodes = append(nodes, id)
	}
	if len(nodes) == 0 && len(p.Branches) > 0 {
		id := g.id(key+"\x00route", pid+"_branch")
		g.line(2, "%s{{%s}}", id, quote("branch"))
		nodes = append(nodes, id)
	}
	tables := map[string]string{}
	for _, t := range p.Tables {
		id := g.id(key+"\x00table\x00"+t.Name, pid+"_"+t.Name)
		g.line(2, "%s[(%s)]", id, quote(t.Name+" ("+t.Kind+")"))
		tables[t.Name] = id
	}
	g.line(1, "end")
	g.edges(pid, nodes, p)
	g.tables(pid, nodes, p, tables)
}

// tables renders how each table is fed: from the last stage, or from the
// latest table it aggregates, through its repartition topic when it is
// re-keyed, and into its changelog (a table restored from its source has
// none).
func (g *graph) tables(pid string, nodes []string, p *Pipeline, ids map[string]string) {
	app := g.app
	src := pid
	if len(nodes) > 0 {
		src = nodes[len(nodes)-1]
	}
	for _, t := range p.Tables {
		from := src
		if id, ok := ids[t.From]; ok && t.From != "" {
			from = id
		}
		if t.Kind != "latest" && t.GroupBy != "" {
			rp := g.topic(app + "-" + t.Name + "-repartition")
			g.line(1, "%s -. %s .-> %s", from, quote("by "+t.GroupBy), rp)
			from = rp
		}
		g.line(1, "%s -.-> %s", from, ids[t.Name])
		if t.Changelog != ChangelogSource {
			g.line(1, "%s -.-> %s", ids[t.Name], g.topic(app+"-"+t.Name+"-changelog"))
		}
	}
}

// edges renders a pipeline's flow: source, stages in order, outputs,
// branches from the last stage, and the dead-letter queue.
func (g *graph) edges(pid string, nodes []string, p *Pipeline) {
	prev := pid
	if len(nodes) > 0 {
		prev = nodes[0]
	}
	if p.Source.Topic != "" {
		g.line(1, "%s --> %s", g.topic(p.Source.Topic), prev)
	}
	for i := 1; i < len(nodes); i++ {
		g.line(1, "%s --> %s", nodes[i-1], nodes[i])
	}
	for j := range p.Stages {
		for _, out := range sortedKeys(p.Stages[j].Outputs) {
			g.line(1, "%s -- %s --> %s", nodes[j], quote(out), g.topic(p.Stages[j].Outputs[out]))
		}
	}
	if len(nodes) > 0 {
		prev = nodes[len(nodes)-1]
	}
	for _, b := range p.Branches {
		label := b.When
		if b.Default {
			label = "default"
		}
		g.line(1, "%s -- %s --> %s", prev, quote(label), g.topic(b.To))
	}
	if p.Errors.DLQ != "" {
		g.line(1, "%s -. %s .-> %s", pid, quote("errors"), g.topic(p.Errors.DLQ))
	}
}

// stageShape is a stage's node shape and label: a rhombus for a filter,
// a box for a plugin.
func stageShape(s *Stage) string {
	if s.Filter != "" {
		return shapeLabel("{", s.Name+": "+s.Filter, "}")
	}
	label := s.Name
	if s.Plugin != "" && s.Plugin != s.Name {
		label += " (" + s.Plugin + ")"
	}
	return shapeLabel("[", label, "]")
}

// shapeLabel wraps a label in a node shape, quoting it unless it is a
// plain name.
func shapeLabel(open, label, close string) string {
	if topicName.MatchString(label) {
		return open + label + close
	}
	return open + quote(label) + close
}

// quote makes s a quoted Mermaid string. Characters Mermaid would read as
// syntax become entity codes (" is #quot;), and line breaks spaces.
func quote(s string) string {
	r := strings.NewReplacer(
		"#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;",
		"\r\n", " ", "\n", " ", "\r", " ",
	)
	return `"` + r.Replace(s) + `"`
}

// sanitizeID keeps the letters, digits and underscores of s.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
