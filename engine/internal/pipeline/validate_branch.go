package pipeline

import (
	"fmt"
	"strconv"
)

// branches checks the routes: each has a topic, a when unless it is the
// default, and a unique name; at most one default, and it comes last.
func (c *pipelineCheck) branches() {
	first := make(map[string]string)
	defaultPath := ""
	for i := range c.p.Branches {
		b := &c.p.Branches[i]
		path := c.path + ".branches[" + strconv.Itoa(i) + "]"
		ctx := fmt.Sprintf("%s branch %q", c.ctx, b.Name)
		if b.Name == "" {
			ctx = fmt.Sprintf("%s branches[%d]", c.ctx, i)
		}
		c.branchName(first, path, ctx, b)
		if b.To == "" {
			c.errorf(path+".to", "%s: to: required (the topic records on this branch go to)", ctx)
		} else {
			c.topic(path+".to", ctx+": to", b.To)
		}
		switch {
		case b.Default && defaultPath != "":
			c.errorf(path+".default", "%s: a second default branch (the first is at line %d)", ctx, c.at(defaultPath).Line)
		case b.Default && i != len(c.p.Branches)-1:
			c.errorf(path+".default", "%s: the default branch must be the last one", ctx)
		}
		if b.Default && defaultPath == "" {
			defaultPath = path
		}
		c.branchRoute(path, ctx, b)
	}
}

// branchName checks a branch's name like a stage's, except that one
// defaulted from the topic is checked as a topic name instead.
func (c *pipelineCheck) branchName(first map[string]string, path, ctx string, b *Branch) {
	if b.Name != b.To || b.Name == "" {
		c.unique(first, path, ctx, b.Name, "branch")
		return
	}
	if prev := first[b.Name]; prev != "" {
		c.errorf(path, "%s: name already used by the branch at line %d (give branches to the same topic a name)", ctx, c.at(prev).Line)
		return
	}
	first[b.Name] = path
}

// branchRoute checks a branch's when and that a default branch does not
// feed the pipeline its own records back.
func (c *pipelineCheck) branchRoute(path, ctx string, b *Branch) {
	switch {
	case b.Default && b.When != "":
		c.errorf(path+".when", "%s: a default branch takes no when", ctx)
	case b.Default && b.To != "" && b.To == c.p.Source.Topic:
		c.errorf(path+".to", "%s: the default branch goes to %q, the pipeline's own source: every unmatched record would loop forever", ctx, b.To)
	case !b.Default && b.When == "":
		c.errorf(path, "%s: when: required (or default: true on the last branch)", ctx)
	case !b.Default:
		c.expression(path+".when", ctx+": when", b.When, b.WhenPos, c.env)
	}
}

// errorPolicy checks the errors: section.
func (c *pipelineCheck) errorPolicy() {
	e, path := c.p.Errors, c.path+".errors"
	if e.Retries < 0 {
		c.errorf(path+".retries", "%s: errors.retries: want 0 or more, got %d", c.ctx, e.Retries)
	}
	if e.Backoff < 0 {
		c.errorf(path+".backoff", "%s: errors.backoff: want a duration >= 0, got %s", c.ctx, e.Backoff)
	}
	if e.DLQ == "" || e.DLQ == c.p.Source.Topic+".dlq" && topicProblem(c.p.Source.Topic) != "" {
		return // no DLQ, or one named after a bad source: reported already
	}
	c.topic(path+".dlq", c.ctx+": errors.dlq", e.DLQ)
	if e.DLQ == c.p.Source.Topic {
		c.errorf(path+".dlq", "%s: errors.dlq: %q is the pipeline's own source: failed records would loop forever", c.ctx, e.DLQ)
	}
}
