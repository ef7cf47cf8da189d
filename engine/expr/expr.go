package expr

import "slices"

// Program is a compiled expression. It is immutable and safe for
// concurrent use by multiple goroutines.
type Program struct {
	src    string
	typ    Type
	fields []string
	val    evalFn
	cond   condFn
}

// Compile parses and type-checks src against env and returns the compiled
// program.
//
// With a non-nil env every field reference must be known to env (otherwise
// the error is `unknown field "name"` at the field's column) and operand
// types are checked statically: for example comparing an Int field with a
// string literal is a compile error located at the operator. With a nil
// env every field is allowed and has type Any, so only literal operands
// are checked statically and the rest is checked at run time.
//
// Constant sub-expressions are evaluated at compile time, so a constant
// error such as 1/0 is a compile error. The result may have any type; use
// CompileBool for filters and predicates.
//
// Every error is an *Error locating the problem in src.
func Compile(src string, env Env) (*Program, error) {
	p, _, err := compile(src, env)
	return p, err
}

// CompileBool is Compile for predicates: it also rejects an expression
// whose static type is known and is not Bool (error "expression must be
// bool, got T" at the expression's first column). An expression of type
// Any (such as a bare field with a nil Env) is accepted and checked by
// EvalBool at run time.
func CompileBool(src string, env Env) (*Program, error) {
	p, pos, err := compile(src, env)
	if err != nil {
		return nil, err
	}
	if p.typ != Bool && p.typ != Any {
		return nil, locAt(src, pos).errorf("expression must be bool, got %s", p.typ)
	}
	return p, nil
}

func compile(src string, env Env) (*Program, int, error) {
	a, err := parse(src)
	if err != nil {
		return nil, 0, err
	}
	c := &compiler{src: src, env: env, seen: map[string]bool{}}
	root, err := c.compile(a)
	if err != nil {
		return nil, 0, err
	}
	p := &Program{src: src, typ: root.typ, fields: c.fields, val: root.val}
	if root.typ == Bool || root.typ == Any {
		p.cond = c.condOf(root, "expression")
	} else {
		l, t := c.at(root.pos), root.typ
		p.cond = func(map[string]any) (bool, error) {
			return false, l.errorf("expression must be bool, got %s", t)
		}
	}
	return p, root.pos, nil
}

// Eval evaluates the program against rec and returns the result as one of
// nil (null), bool, int64, float64, string, time.Time, a list ([]any for a
// list literal, otherwise the slice held by the record) or
// map[string]any. Record integers and floats of any supported width are
// returned as int64 and float64. A returned list or map may be shared
// with the record or with the program and must not be modified.
//
// A field missing from rec is null. Run-time errors, such as a type
// mismatch on an Any-typed field, a null operand of an ordering comparison
// or arithmetic, integer overflow or division by zero, are returned as
// *Error; Eval does not panic. A nil rec is an empty record.
func (p *Program) Eval(rec map[string]any) (any, error) {
	v, err := p.val(rec)
	if err != nil {
		return nil, err
	}
	return toGo(v), nil
}

// EvalBool evaluates the program as a predicate. It returns an error if
// evaluation fails or the result is not a bool (a null field result gives
// `field "name" is null`). It does not allocate unless it returns an error
// or the expression builds strings or lists at run time.
func (p *Program) EvalBool(rec map[string]any) (bool, error) {
	return p.cond(rec)
}

// Fields returns the dotted paths of the fields the program references,
// including arguments of has(), without duplicates, in order of first
// appearance in the source. The slice is a fresh copy.
func (p *Program) Fields() []string {
	return slices.Clone(p.fields)
}

// Type returns the static type of the program's result: Any when it
// depends on fields whose type is not known until run time.
func (p *Program) Type() Type {
	return p.typ
}

// String returns the source the program was compiled from.
func (p *Program) String() string {
	return p.src
}
