package expr

import (
	"math"
	"strings"
	"unicode/utf8"
)

// evalFn evaluates a compiled node to a value.
type evalFn func(rec map[string]any) (value, error)

// condFn evaluates a compiled node that should produce a bool, without
// building a value.
type condFn func(rec map[string]any) (bool, error)

// cnode is a compiled node: its static type, its closures and, for
// constants, its value.
type cnode struct {
	typ   Type
	pos   int // byte offset of the node's first byte
	konst bool
	kval  value
	field string     // the path, for a field reference
	path  *fieldPath // the compiled path, for a field reference
	val   evalFn
	cond  condFn // nil unless typ is Bool or Any; see condOf
}

type compiler struct {
	src    string
	env    Env
	fields []string
	seen   map[string]bool
}

func (c *compiler) at(off int) loc { return locAt(c.src, off) }

func (c *compiler) errf(off int, format string, args ...any) error {
	return c.at(off).errorf(format, args...)
}

func constNode(v value, pos int) *cnode {
	n := &cnode{typ: v.k, pos: pos, konst: true, kval: v}
	n.val = func(map[string]any) (value, error) { return v, nil }
	if v.k == Bool {
		b := v.n != 0
		n.cond = func(map[string]any) (bool, error) { return b, nil }
	}
	return n
}

func boolNode(pos int, cond condFn) *cnode {
	return &cnode{typ: Bool, pos: pos, cond: cond, val: func(rec map[string]any) (value, error) {
		b, err := cond(rec)
		return boolVal(b), err
	}}
}

// fold replaces n by its value when all of kids are constants. An error
// raised while folding (1/0, integer overflow) is a compile error.
func (c *compiler) fold(n *cnode, kids ...*cnode) (*cnode, error) {
	for _, k := range kids {
		if !k.konst {
			return n, nil
		}
	}
	v, err := n.val(nil)
	if err != nil {
		return nil, err
	}
	return constNode(v, n.pos), nil
}

// condOf returns a condFn for n, whose static type is Bool or Any. what
// names the operand in the message for a non-bool value.
func (c *compiler) condOf(n *cnode, what string) condFn {
	if n.cond != nil {
		return n.cond
	}
	val, l := n.val, c.at(n.pos)
	return func(rec map[string]any) (bool, error) {
		v, err := val(rec)
		if err != nil {
			return false, err
		}
		if v.k != Bool {
			return false, l.errorf("%s must be bool, got %s", what, v.k)
		}
		return v.n != 0, nil
	}
}

// nullErr is the error for a null operand of an operator or function that
// does not accept null.
func nullErr(l loc, field, what string) error {
	if field != "" {
		return l.errorf("field %q is null", field)
	}
	return l.errorf("%s not defined on null", what)
}

func (c *compiler) compile(a *ast) (*cnode, error) {
	switch a.kind {
	case nLit:
		return constNode(a.lit, a.pos), nil
	case nField:
		return c.fieldRef(a)
	case nList:
		return c.list(a)
	case nUnary:
		if a.op == tBang {
			return c.not(a)
		}
		return c.neg(a)
	case nCall:
		return c.call(a)
	}
	switch a.op {
	case tAnd, tOr:
		return c.logic(a)
	case tIn, tNotIn:
		return c.member(a)
	}
	l, err := c.compile(a.args[0])
	if err != nil {
		return nil, err
	}
	r, err := c.compile(a.args[1])
	if err != nil {
		return nil, err
	}
	if msg := binTypeErr(a.op, l.typ, r.typ); msg != "" {
		return nil, c.errf(a.opPos, "%s", msg)
	}
	switch a.op {
	case tEq, tNe:
		return c.equality(a, l, r)
	case tLt, tLe, tGt, tGe:
		return c.ordering(a, l, r)
	}
	return c.arithmetic(a, l, r)
}

// declare checks a field reference against the Env and records it.
func (c *compiler) declare(a *ast) (Type, error) {
	typ := Any
	if c.env != nil {
		t, ok := c.env.Lookup(a.name)
		if !ok {
			return Any, c.errf(a.pos, "unknown field %q", a.name)
		}
		if t.valid() {
			typ = t
		}
	}
	if !c.seen[a.name] {
		c.seen[a.name] = true
		c.fields = append(c.fields, a.name)
	}
	return typ, nil
}

// lookup follows a dotted path. A missing or null intermediate map yields
// nil (null); an intermediate that is not a map yields that value and the
// index of its segment, otherwise the index is -1.
func lookup(rec map[string]any, segs []string) (any, int) {
	cur := rec
	last := len(segs) - 1
	for i := 0; i < last; i++ {
		switch m := cur[segs[i]].(type) {
		case map[string]any:
			cur = m
		case nil:
			return nil, -1
		default:
			return m, i
		}
	}
	return cur[segs[last]], -1
}

func notMapErr(l loc, name string, segs []string, bad int, v any) error {
	return l.errorf("field %q: %q is %s, not a map", name, strings.Join(segs[:bad+1], "."), goTypeName(v))
}

func fieldValue(l loc, name string, raw any) (value, error) {
	v, ok := fromGo(raw)
	if !ok {
		return v, l.errorf("field %q: %s", name, unsupported(raw))
	}
	return v, nil
}

func fieldBool(l loc, name string, raw any) (bool, error) {
	if b, ok := raw.(bool); ok {
		return b, nil
	}
	if raw == nil {
		return false, l.errorf("field %q is null", name)
	}
	v, err := fieldValue(l, name, raw)
	if err != nil {
		return false, err
	}
	return false, l.errorf("field %q must be bool, got %s", name, v.k)
}

func (c *compiler) fieldRef(a *ast) (*cnode, error) {
	typ, err := c.declare(a)
	if err != nil {
		return nil, err
	}
	name, l := a.name, c.at(a.pos)
	n := &cnode{typ: typ, pos: a.pos, field: name, path: newFieldPath(name)}
	if !strings.Contains(name, ".") {
		n.val = func(rec map[string]any) (value, error) {
			raw := rec[name]
			if v, ok := fromGo(raw); ok {
				return v, nil
			}
			return fieldValue(l, name, raw)
		}
		n.cond = func(rec map[string]any) (bool, error) {
			if b, ok := rec[name].(bool); ok {
				return b, nil
			}
			return fieldBool(l, name, rec[name])
		}
	} else {
		segs := strings.Split(name, ".")
		n.val = func(rec map[string]any) (value, error) {
			raw, bad := lookup(rec, segs)
			if bad >= 0 {
				return value{}, notMapErr(l, name, segs, bad, raw)
			}
			return fieldValue(l, name, raw)
		}
		n.cond = func(rec map[string]any) (bool, error) {
			raw, bad := lookup(rec, segs)
			if bad >= 0 {
				return false, notMapErr(l, name, segs, bad, raw)
			}
			return fieldBool(l, name, raw)
		}
	}
	if typ != Bool && typ != Any {
		n.cond = nil
	}
	return n, nil
}

// list compiles a list literal used as a value (not as the right operand
// of in, which member handles without building the list).
func (c *compiler) list(a *ast) (*cnode, error) {
	elems := make([]evalFn, len(a.args))
	kids := make([]*cnode, len(a.args))
	for i, ea := range a.args {
		e, err := c.compile(ea)
		if err != nil {
			return nil, err
		}
		elems[i], kids[i] = e.val, e
	}
	n := &cnode{typ: List, pos: a.pos, val: func(rec map[string]any) (value, error) {
		out := make([]any, len(elems))
		for i, e := range elems {
			v, err := e(rec)
			if err != nil {
				return value{}, err
			}
			out[i] = toGo(v)
		}
		return value{k: List, x: out}, nil
	}}
	return c.fold(n, kids...)
}

func (c *compiler) not(a *ast) (*cnode, error) {
	x, err := c.compile(a.args[0])
	if err != nil {
		return nil, err
	}
	if x.typ != Bool && x.typ != Any {
		return nil, c.errf(a.opPos, "operand of ! must be bool, got %s", x.typ)
	}
	xc := c.condOf(x, "operand of !")
	return c.fold(boolNode(a.pos, func(rec map[string]any) (bool, error) {
		b, err := xc(rec)
		if err != nil {
			return false, err
		}
		return !b, nil
	}), x)
}

func (c *compiler) neg(a *ast) (*cnode, error) {
	x, err := c.compile(a.args[0])
	if err != nil {
		return nil, err
	}
	if x.typ != Int && x.typ != Float && x.typ != Any {
		return nil, c.errf(a.opPos, "operator - not defined on %s", x.typ)
	}
	xv, ol, xl, xf := x.val, c.at(a.opPos), c.at(x.pos), x.field
	n := &cnode{typ: x.typ, pos: a.pos, val: func(rec map[string]any) (value, error) {
		v, err := xv(rec)
		if err != nil {
			return v, err
		}
		switch v.k {
		case Int:
			if v.n == math.MinInt64 {
				return value{}, ol.err("integer overflow")
			}
			return value{k: Int, n: -v.n}, nil
		case Float:
			return value{k: Float, f: -v.f}, nil
		case Null:
			return value{}, nullErr(xl, xf, "operator -")
		}
		return value{}, ol.errorf("operator - not defined on %s", v.k)
	}}
	return c.fold(n, x)
}

func (c *compiler) logic(a *ast) (*cnode, error) {
	what := "operand of " + opText[a.op]
	var conds [2]condFn
	var kids [2]*cnode
	for i, xa := range a.args {
		x, err := c.compile(xa)
		if err != nil {
			return nil, err
		}
		if x.typ != Bool && x.typ != Any {
			return nil, c.errf(x.pos, "%s must be bool, got %s", what, x.typ)
		}
		conds[i], kids[i] = c.condOf(x, what), x
	}
	lc, rc := conds[0], conds[1]
	var cond condFn
	if a.op == tAnd {
		cond = func(rec map[string]any) (bool, error) {
			b, err := lc(rec)
			if err != nil || !b {
				return false, err
			}
			return rc(rec)
		}
	} else {
		cond = func(rec map[string]any) (bool, error) {
			b, err := lc(rec)
			if err != nil || b {
				return b, err
			}
			return rc(rec)
		}
	}
	return c.fold(boolNode(a.pos, cond), kids[0], kids[1])
}

func (c *compiler) equality(a *ast, l, r *cnode) (*cnode, error) {
	op, neg, ol := a.op, a.op == tNe, c.at(a.opPos)
	lv, rv := l.val, r.val
	mismatch := func(x, y value) error {
		msg := binTypeErr(op, x.k, y.k)
		if msg == "" {
			msg = "cannot compare " + x.k.String() + " and " + y.k.String()
		}
		return ol.err(msg)
	}
	cond := func(rec map[string]any) (bool, error) {
		x, err := lv(rec)
		if err != nil {
			return false, err
		}
		y, err := rv(rec)
		if err != nil {
			return false, err
		}
		res, ok := eq(x, y)
		if !ok {
			return false, mismatch(x, y)
		}
		return res != neg, nil
	}
	cond = c.fastCompare(op, l, r, cond)
	return c.fold(boolNode(a.pos, cond), l, r)
}

func (c *compiler) ordering(a *ast, l, r *cnode) (*cnode, error) {
	op, ol := a.op, c.at(a.opPos)
	what := "operator " + opText[op]
	lv, rv := l.val, r.val
	ll, rl, lf, rf := c.at(l.pos), c.at(r.pos), l.field, r.field
	cond := func(rec map[string]any) (bool, error) {
		x, err := lv(rec)
		if err != nil {
			return false, err
		}
		y, err := rv(rec)
		if err != nil {
			return false, err
		}
		if x.k == Null {
			return false, nullErr(ll, lf, what)
		}
		if y.k == Null {
			return false, nullErr(rl, rf, what)
		}
		cmp, ordered, ok := order(x, y)
		if !ok {
			return false, ol.err(binTypeErr(op, x.k, y.k))
		}
		if !ordered {
			return false, nil
		}
		switch op {
		case tLt:
			return cmp < 0, nil
		case tLe:
			return cmp <= 0, nil
		case tGt:
			return cmp > 0, nil
		}
		return cmp >= 0, nil
	}
	cond = c.fastCompare(op, l, r, cond)
	return c.fold(boolNode(a.pos, cond), l, r)
}

func (c *compiler) arithmetic(a *ast, l, r *cnode) (*cnode, error) {
	op, ol := a.op, c.at(a.opPos)
	what := "operator " + opText[op]
	lv, rv := l.val, r.val
	ll, rl, lf, rf := c.at(l.pos), c.at(r.pos), l.field, r.field
	typ := Int
	switch {
	case l.typ == Any || r.typ == Any:
		typ = Any
	case l.typ == String:
		typ = String
	case l.typ == Float || r.typ == Float:
		typ = Float
	}
	n := &cnode{typ: typ, pos: a.pos, val: func(rec map[string]any) (value, error) {
		x, err := lv(rec)
		if err != nil {
			return x, err
		}
		y, err := rv(rec)
		if err != nil {
			return y, err
		}
		if x.k == Null {
			return x, nullErr(ll, lf, what)
		}
		if y.k == Null {
			return y, nullErr(rl, rf, what)
		}
		v, msg := arith(op, x, y)
		if msg != "" {
			return v, ol.err(msg)
		}
		return v, nil
	}}
	return c.fold(n, l, r)
}

func (c *compiler) member(a *ast) (*cnode, error) {
	op, neg, ol := a.op, a.op == tNotIn, c.at(a.opPos)
	l, err := c.compile(a.args[0])
	if err != nil {
		return nil, err
	}
	if !opAccepts(op, l.typ) {
		return nil, c.errf(a.opPos, "operator %s not defined on %s", opText[op], l.typ)
	}
	lv := l.val
	mismatch := func(x, y value) error {
		msg := binTypeErr(op, x.k, y.k)
		if msg == "" {
			msg = "cannot compare " + x.k.String() + " and " + y.k.String()
		}
		return ol.err(msg)
	}
	ra := a.args[1]
	if ra.kind == nList {
		kids := make([]*cnode, 0, len(ra.args)+1)
		kids = append(kids, l)
		elems := make([]evalFn, len(ra.args))
		konst := true
		for i, ea := range ra.args {
			e, err := c.compile(ea)
			if err != nil {
				return nil, err
			}
			if msg := binTypeErr(op, l.typ, e.typ); msg != "" {
				return nil, c.errf(e.pos, "%s", msg)
			}
			kids = append(kids, e)
			elems[i] = e.val
			konst = konst && e.konst
		}
		var cond condFn
		if konst {
			vals := make([]value, len(kids)-1)
			for i, e := range kids[1:] {
				vals[i] = e.kval
			}
			cond = func(rec map[string]any) (bool, error) {
				x, err := lv(rec)
				if err != nil {
					return false, err
				}
				for i := range vals {
					res, ok := eq(x, vals[i])
					if !ok {
						return false, mismatch(x, vals[i])
					}
					if res {
						return !neg, nil
					}
				}
				return neg, nil
			}
			if l.path != nil && !noFast {
				cond = fastMember(neg, l.path, vals, cond)
			}
		} else {
			cond = func(rec map[string]any) (bool, error) {
				x, err := lv(rec)
				if err != nil {
					return false, err
				}
				for _, e := range elems {
					y, err := e(rec)
					if err != nil {
						return false, err
					}
					res, ok := eq(x, y)
					if !ok {
						return false, mismatch(x, y)
					}
					if res {
						return !neg, nil
					}
				}
				return neg, nil
			}
		}
		return c.fold(boolNode(a.pos, cond), kids...)
	}
	r, err := c.compile(ra)
	if err != nil {
		return nil, err
	}
	if r.typ != List && r.typ != Any {
		return nil, c.errf(r.pos, "right operand of %s must be a list, got %s", opText[op], r.typ)
	}
	rv, rl, rf := r.val, c.at(r.pos), r.field
	cond := func(rec map[string]any) (bool, error) {
		x, err := lv(rec)
		if err != nil {
			return false, err
		}
		y, err := rv(rec)
		if err != nil {
			return false, err
		}
		if y.k == Null {
			return false, nullErr(rl, rf, "operator "+opText[op])
		}
		if y.k != List {
			return false, rl.errorf("right operand of %s must be a list, got %s", opText[op], y.k)
		}
		n := listLen(y.x)
		for i := 0; i < n; i++ {
			e, ok := listAt(y.x, i)
			if !ok {
				return false, rl.errorf("list element %d: %s", i, unsupported(y.x.([]any)[i]))
			}
			res, ok := eq(x, e)
			if !ok {
				return false, mismatch(x, e)
			}
			if res {
				return !neg, nil
			}
		}
		return neg, nil
	}
	return c.fold(boolNode(a.pos, cond), l, r)
}

// fastCompare specialises `field op constant` and `constant op field`.
func (c *compiler) fastCompare(op tokKind, l, r *cnode, generic condFn) condFn {
	switch {
	case noFast:
		return generic
	case l.path != nil && r.konst:
		return fastCompare(op, l.path, r.kval, generic)
	case r.path != nil && l.konst:
		return fastCompare(flip(op), r.path, l.kval, generic)
	}
	return generic
}

// arity is the number of arguments of each function.
var arity = map[string]int{
	"has": 1, "lower": 1, "upper": 1, "len": 1,
	"startsWith": 2, "endsWith": 2, "contains": 2,
}

func (c *compiler) call(a *ast) (*cnode, error) {
	fn := a.name
	want, ok := arity[fn]
	if !ok {
		return nil, c.errf(a.opPos, "unknown function %q", fn)
	}
	if len(a.args) != want {
		s := "s"
		if want == 1 {
			s = ""
		}
		return nil, c.errf(a.opPos, "%s: expected %d argument%s, got %d", fn, want, s, len(a.args))
	}
	if fn == "has" {
		return c.has(a)
	}
	args := make([]*cnode, len(a.args))
	for i, xa := range a.args {
		x, err := c.compile(xa)
		if err != nil {
			return nil, err
		}
		args[i] = x
	}
	accepts := "string"
	if fn == "len" {
		accepts = "string, list or map"
	}
	for _, x := range args {
		t := x.typ
		if t != String && t != Any && (fn != "len" || (t != List && t != Map)) {
			return nil, c.errf(x.pos, "%s: argument must be %s, got %s", fn, accepts, t)
		}
	}
	// arg evaluates argument i and checks its run-time kind.
	type argFn func(rec map[string]any) (value, error)
	argOf := func(x *cnode) argFn {
		xv, xl, xf := x.val, c.at(x.pos), x.field
		return func(rec map[string]any) (value, error) {
			v, err := xv(rec)
			if err != nil {
				return v, err
			}
			switch {
			case v.k == String:
				return v, nil
			case v.k == Null:
				return v, nullErr(xl, xf, fn)
			case fn == "len" && (v.k == List || v.k == Map):
				return v, nil
			}
			return v, xl.errorf("%s: argument must be %s, got %s", fn, accepts, v.k)
		}
	}
	x := argOf(args[0])
	var n *cnode
	switch fn {
	case "lower", "upper":
		f := strings.ToLower
		if fn == "upper" {
			f = strings.ToUpper
		}
		n = &cnode{typ: String, pos: a.pos, val: func(rec map[string]any) (value, error) {
			v, err := x(rec)
			if err != nil {
				return v, err
			}
			return value{k: String, s: f(v.s)}, nil
		}}
	case "len":
		n = &cnode{typ: Int, pos: a.pos, val: func(rec map[string]any) (value, error) {
			v, err := x(rec)
			if err != nil {
				return v, err
			}
			switch v.k {
			case String:
				return value{k: Int, n: int64(utf8.RuneCountInString(v.s))}, nil
			case List:
				return value{k: Int, n: int64(listLen(v.x))}, nil
			}
			return value{k: Int, n: int64(len(v.x.(map[string]any)))}, nil
		}}
	default:
		f := strings.HasPrefix
		switch fn {
		case "endsWith":
			f = strings.HasSuffix
		case "contains":
			f = strings.Contains
		}
		y := argOf(args[1])
		n = boolNode(a.pos, func(rec map[string]any) (bool, error) {
			s, err := x(rec)
			if err != nil {
				return false, err
			}
			t, err := y(rec)
			if err != nil {
				return false, err
			}
			return f(s.s, t.s), nil
		})
	}
	return c.fold(n, args...)
}

// has compiles has(field): true when the field is present and not null.
// It never fails at run time; a path through a non-map is simply absent.
func (c *compiler) has(a *ast) (*cnode, error) {
	arg := a.args[0]
	if arg.kind != nField {
		return nil, c.errf(arg.pos, "has: argument must be a field name")
	}
	if _, err := c.declare(arg); err != nil {
		return nil, err
	}
	name := arg.name
	if !strings.Contains(name, ".") {
		return boolNode(a.pos, func(rec map[string]any) (bool, error) {
			return rec[name] != nil, nil
		}), nil
	}
	segs := strings.Split(name, ".")
	return boolNode(a.pos, func(rec map[string]any) (bool, error) {
		v, bad := lookup(rec, segs)
		return bad < 0 && v != nil, nil
	}), nil
}
