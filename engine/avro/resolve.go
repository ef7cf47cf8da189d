package avro

import (
	"bytes"
	"fmt"
	"slices"
)

// conv turns a value goavro decoded with a writer type into the plain value
// of the matching reader type. A nil conv is the identity. Convs may modify
// their argument in place: it is always freshly decoded by goavro.
type conv func(v any) (any, error)

// recordPlan projects a record decoded with a writer record type onto a
// reader record type. It is built once per (writer, reader) pair.
type recordPlan struct {
	reader string // reader full name, for errors
	// In-place mode (no renamed fields): convert, drop, then add defaults.
	ops      []fieldOp // fields present in both whose values need converting
	drops    []string  // writer fields the reader does not have
	defaults []fieldDefault
	// Rebuild mode (some reader field takes a writer field by alias): every
	// reader field in order, either from the writer or from its default.
	rebuild bool
	all     []fieldOp
	done    bool // fully built (false while a recursive type is being planned)
}

type fieldOp struct {
	src, dst string
	conv     conv
	def      *fieldDefault // set in rebuild mode for fields the writer lacks
}

type fieldDefault struct {
	name  string
	value any
	clone bool
}

func (d *fieldDefault) get() any {
	if d.clone {
		return cloneValue(d.value)
	}
	return d.value
}

// noop reports whether the plan leaves a record untouched.
func (p *recordPlan) noop() bool {
	return !p.rebuild && len(p.ops) == 0 && len(p.drops) == 0 && len(p.defaults) == 0
}

func (p *recordPlan) conv(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: record %s decoded as %T", ErrMalformed, p.reader, v)
	}
	return p.apply(m)
}

// apply projects m, reusing it unless fields are renamed.
func (p *recordPlan) apply(m map[string]any) (map[string]any, error) {
	if p.rebuild {
		out := make(map[string]any, len(p.all))
		for i := range p.all {
			op := &p.all[i]
			if op.def != nil {
				out[op.dst] = op.def.get()
				continue
			}
			v := m[op.src]
			if op.conv != nil {
				var err error
				if v, err = op.conv(v); err != nil {
					return nil, fmt.Errorf("field %q: %w", op.dst, err)
				}
			}
			out[op.dst] = v
		}
		return out, nil
	}
	for i := range p.ops {
		op := &p.ops[i]
		v, err := op.conv(m[op.src])
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", op.dst, err)
		}
		m[op.dst] = v
	}
	for _, name := range p.drops {
		delete(m, name)
	}
	for i := range p.defaults {
		d := &p.defaults[i]
		m[d.name] = d.get()
	}
	return m, nil
}

// resolver builds conversions between a writer and a reader type graph.
type resolver struct {
	records map[[2]*node]*recordPlan
}

func newResolver() *resolver {
	return &resolver{records: map[[2]*node]*recordPlan{}}
}

// plan builds the projection of writer record w onto reader record r.
func (rs *resolver) plan(w, r *node) (*recordPlan, error) {
	if !namesMatch(w, r) {
		return nil, fmt.Errorf("%w: writer record %s cannot be read as %s", ErrIncompatible, w.name, r.name)
	}
	return rs.record(w, r)
}

func (rs *resolver) record(w, r *node) (*recordPlan, error) {
	key := [2]*node{w, r}
	if p, ok := rs.records[key]; ok {
		return p, nil // finished, or in progress for a recursive type
	}
	p := &recordPlan{reader: r.name}
	rs.records[key] = p
	used := make([]bool, len(w.fields))
	var all []fieldOp
	for _, rf := range r.fields {
		wi := -1
		if i, ok := w.fieldIdx[rf.name]; ok {
			wi = i
		} else {
			for _, a := range rf.aliases {
				if i, ok := w.fieldIdx[a]; ok {
					wi = i
					break
				}
			}
		}
		if wi < 0 {
			if !rf.hasDef {
				delete(rs.records, key)
				return nil, fmt.Errorf("%w: reader %s field %q has no default and writer %s lacks it",
					ErrIncompatible, r.name, rf.name, w.name)
			}
			d := fieldDefault{name: rf.name, value: rf.def, clone: mutable(rf.def)}
			p.defaults = append(p.defaults, d)
			all = append(all, fieldOp{dst: rf.name, def: &d})
			continue
		}
		used[wi] = true
		wf := w.fields[wi]
		c, err := rs.resolve(wf.typ, rf.typ)
		if err != nil {
			delete(rs.records, key)
			return nil, fmt.Errorf("field %s.%s: %w", r.name, rf.name, err)
		}
		op := fieldOp{src: wf.name, dst: rf.name, conv: c}
		if wf.name != rf.name {
			p.rebuild = true
		}
		if c != nil {
			p.ops = append(p.ops, op)
		}
		all = append(all, op)
	}
	for i, wf := range w.fields {
		if !used[i] {
			p.drops = append(p.drops, wf.name)
		}
	}
	if p.rebuild {
		p.all = all
		p.ops, p.drops, p.defaults = nil, nil, nil
	}
	p.done = true
	return p, nil
}

// resolve returns the conversion from values of writer type w to reader type
// r, following the Avro schema resolution rules plus two extensions that
// keep the plain representation stable: logical types convert semantically
// (a timestamp stays a time.Time whatever its unit) and an enum may be read
// as a string.
func (rs *resolver) resolve(w, r *node) (conv, error) {
	if w.kind != kUnion {
		return rs.toReader(w, r)
	}
	// The writer wrote one branch of a union: goavro gives nil or a
	// single-entry map keyed by the branch's type name.
	convs := make([]conv, len(w.branches))
	errs := make([]error, len(w.branches))
	ok := false
	for i, wb := range w.branches {
		convs[i], errs[i] = rs.toReader(wb, r)
		ok = ok || errs[i] == nil
	}
	if !ok {
		return nil, fmt.Errorf("%w: no branch of writer union %s can be read as %s", ErrIncompatible, unionString(w), typeString(r))
	}
	nullErr := fmt.Errorf("%w: writer wrote null, reader type %s has no null", ErrIncompatible, typeString(r))
	if i := w.nullIndex(); i >= 0 && errs[i] == nil {
		nullErr = nil
	}
	if nn := w.nonNull(); nn != nil {
		// Optional: the wrapper can only hold the one non-null branch.
		i := slices.Index(w.branches, nn)
		c, err, key := convs[i], errs[i], nn.key
		return func(v any) (any, error) {
			if v == nil {
				return nil, nullErr
			}
			m, _ := v.(map[string]any)
			if inner, ok := m[key]; ok && err == nil {
				if c == nil {
					return inner, nil
				}
				return c(inner)
			}
			for _, inner := range m { // not keyed as expected: take the only entry
				if err != nil {
					return nil, err
				}
				if c == nil {
					return inner, nil
				}
				return c(inner)
			}
			return nil, fmt.Errorf("%w: empty union value", ErrMalformed)
		}, nil
	}
	keys := make([]string, len(w.branches))
	for i, b := range w.branches {
		keys[i] = b.key
	}
	return func(v any) (any, error) {
		if v == nil {
			return nil, nullErr
		}
		m, _ := v.(map[string]any)
		for k, inner := range m {
			i := slices.Index(keys, k)
			if i < 0 {
				return nil, fmt.Errorf("%w: unexpected union branch %q", ErrMalformed, k)
			}
			if errs[i] != nil {
				return nil, errs[i]
			}
			if convs[i] == nil {
				return inner, nil
			}
			return convs[i](inner)
		}
		return nil, fmt.Errorf("%w: empty union value", ErrMalformed)
	}, nil
}

// toReader resolves a non-union writer type against reader type r. A reader
// union takes the value in its best-matching branch; the plain value of a
// union is the branch's value, so only that branch's conversion applies.
func (rs *resolver) toReader(w, r *node) (conv, error) {
	if r.kind != kUnion {
		return rs.single(w, r)
	}
	if i := bestBranch(w, r.branches); i >= 0 {
		return rs.single(w, r.branches[i])
	}
	return nil, fmt.Errorf("%w: writer type %s matches no branch of reader union %s", ErrIncompatible, typeString(w), unionString(r))
}

// bestBranch returns the index of the reader union branch that writer type w
// resolves to: an identical type (same logical type) first, then the same
// underlying type, then a permitted promotion; -1 if none.
func bestBranch(w *node, branches []*node) int {
	for pass := range 3 {
		for i, b := range branches {
			var ok bool
			switch pass {
			case 0:
				ok = sameType(w, b) && w.typ == b.typ
			case 1:
				ok = sameType(w, b)
			case 2:
				ok = promotable(w.kind, b.kind)
			}
			if ok {
				return i
			}
		}
	}
	return -1
}

func sameType(w, r *node) bool {
	if w.kind != r.kind {
		return false
	}
	switch w.kind {
	case kRecord, kEnum, kFixed:
		return namesMatch(w, r)
	}
	return true
}

// namesMatch reports whether named types w and r match: same full name, same
// unqualified name, or the reader lists the writer's full name as an alias.
func namesMatch(w, r *node) bool {
	return w.name == r.name || unqualified(w.name) == unqualified(r.name) || slices.Contains(r.aliases, w.name)
}

// promotable reports the Avro promotions (plus enum to string).
func promotable(w, r kind) bool {
	switch w {
	case kInt:
		return r == kLong || r == kFloat || r == kDouble
	case kLong:
		return r == kFloat || r == kDouble
	case kFloat:
		return r == kDouble
	case kString:
		return r == kBytes
	case kBytes:
		return r == kString
	case kEnum:
		return r == kString
	}
	return false
}

// single resolves two non-union types.
func (rs *resolver) single(w, r *node) (conv, error) {
	if sameType(w, r) {
		switch w.kind {
		case kRecord:
			p, err := rs.record(w, r)
			if err != nil {
				return nil, err
			}
			if p.done && p.noop() {
				return nil, nil // an in-progress (recursive) plan is never elided
			}
			return p.conv, nil
		case kEnum:
			return enumConv(w, r)
		case kArray:
			c, err := rs.resolve(w.items, r.items)
			if err != nil || c == nil {
				return nil, err
			}
			return func(v any) (any, error) {
				a, ok := v.([]any)
				if !ok {
					return nil, fmt.Errorf("%w: array decoded as %T", ErrMalformed, v)
				}
				for i, e := range a {
					x, err := c(e)
					if err != nil {
						return nil, fmt.Errorf("item %d: %w", i, err)
					}
					a[i] = x
				}
				return a, nil
			}, nil
		case kMap:
			c, err := rs.resolve(w.values, r.values)
			if err != nil || c == nil {
				return nil, err
			}
			return func(v any) (any, error) {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%w: map decoded as %T", ErrMalformed, v)
				}
				for k, e := range m {
					x, err := c(e)
					if err != nil {
						return nil, fmt.Errorf("key %q: %w", k, err)
					}
					m[k] = x
				}
				return m, nil
			}, nil
		case kFixed:
			if w.size != r.size {
				return nil, fmt.Errorf("%w: fixed %s has size %d, reader %s has size %d", ErrIncompatible, w.name, w.size, r.name, r.size)
			}
		}
		return scalarConv(w, r)
	}
	if promotable(w.kind, r.kind) {
		return scalarConv(w, r)
	}
	return nil, fmt.Errorf("%w: writer type %s cannot be read as %s", ErrIncompatible, typeString(w), typeString(r))
}

func enumConv(w, r *node) (conv, error) {
	missing := false
	for _, s := range w.symbols {
		if !slices.Contains(r.symbols, s) {
			missing = true
			break
		}
	}
	if !missing {
		return nil, nil
	}
	known := make(map[string]bool, len(r.symbols))
	for _, s := range r.symbols {
		known[s] = true
	}
	def := r.enumDef
	return func(v any) (any, error) {
		s, _ := v.(string)
		switch {
		case known[s]:
			return s, nil
		case def != "":
			return def, nil
		}
		return nil, fmt.Errorf("%w: symbol %q of enum %s is not in reader enum %s", ErrIncompatible, s, w.name, r.name)
	}, nil
}

// scalarConv converts between primitive (possibly logical) types of the same
// kind or along a promotion, as goavro native values: plain writer value ->
// raw underlying value -> promoted raw value -> plain reader value. Bytes are
// always copied because goavro returns slices of the input buffer.
func scalarConv(w, r *node) (conv, error) {
	if w.typ == r.typ && w.kind == r.kind {
		switch w.typ {
		case Bytes, Fixed:
			return func(v any) (any, error) { return bytes.Clone(v.([]byte)), nil }, nil
		}
		return nil, nil // includes Timestamp millis<->micros: same instant
	}
	if w.typ == Decimal || r.typ == Decimal {
		return nil, fmt.Errorf("%w: cannot read %s as %s", ErrIncompatible, typeString(w), typeString(r))
	}
	raw := toRaw(w)
	promote := promotion(w.kind, r.kind)
	plain := fromRaw(r)
	if raw == nil && promote == nil && plain == nil {
		return nil, nil
	}
	return func(v any) (any, error) {
		if raw != nil {
			v = raw(v)
		}
		if promote != nil {
			v = promote(v)
		}
		if plain != nil {
			v = plain(v)
		}
		return v, nil
	}, nil
}

func promotion(w, r kind) func(any) any {
	switch {
	case w == r:
		if w == kBytes || w == kFixed {
			return func(v any) any { return bytes.Clone(v.([]byte)) }
		}
		return nil
	case w == kInt && r == kLong:
		return func(v any) any { return int64(v.(int32)) }
	case w == kInt && r == kFloat:
		return func(v any) any { return float32(v.(int32)) }
	case w == kInt && r == kDouble:
		return func(v any) any { return float64(v.(int32)) }
	case w == kLong && r == kFloat:
		return func(v any) any { return float32(v.(int64)) }
	case w == kLong && r == kDouble:
		return func(v any) any { return float64(v.(int64)) }
	case w == kFloat && r == kDouble:
		return func(v any) any { return float64(v.(float32)) }
	case w == kString && r == kBytes:
		return func(v any) any { return []byte(v.(string)) }
	case w == kBytes && r == kString:
		return func(v any) any { return string(v.([]byte)) }
	}
	return nil // enum -> string: both plain strings
}

func typeString(n *node) string {
	switch n.kind {
	case kRecord, kEnum, kFixed:
		return n.name
	case kUnion:
		return unionString(n)
	case kArray:
		return "array<" + typeString(n.items) + ">"
	case kMap:
		return "map<" + typeString(n.values) + ">"
	}
	if n.logical != "" {
		return n.kind.String() + "(" + n.logical + ")"
	}
	return n.kind.String()
}

func unionString(n *node) string {
	s := "["
	for i, b := range n.branches {
		if i > 0 {
			s += ","
		}
		s += typeString(b)
	}
	return s + "]"
}
