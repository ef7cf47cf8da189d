package expr

import (
	"math"
	"strconv"
)

// maxDepth bounds the nesting of parentheses, lists, calls and unary
// operators, so hostile input cannot exhaust the stack.
const maxDepth = 200

type nodeKind int

const (
	nLit    nodeKind = iota // literal: lit
	nField                  // field reference: name
	nList                   // list literal: args are the elements
	nUnary                  // op args[0]
	nBinary                 // args[0] op args[1]
	nCall                   // name(args...)
)

// ast is the parse tree. Positions are byte offsets into the source.
type ast struct {
	kind  nodeKind
	pos   int     // first byte of the node
	opPos int     // operator (nUnary, nBinary) or name (nCall) position
	op    tokKind // operator for nUnary and nBinary
	lit   value   // nLit
	name  string  // nField path, nCall function name
	args  []*ast
}

type parser struct {
	lx    lexer
	tok   token
	depth int
}

func parse(src string) (*ast, error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("")
	}
	return x, nil
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errAt(off int, format string, args ...any) *Error {
	return locAt(p.lx.src, off).errorf(format, args...)
}

// unexpected reports the current token; want, if set, says what was
// expected instead.
func (p *parser) unexpected(want string) *Error {
	msg := "unexpected " + p.tok.describe()
	if want != "" {
		msg += "; expected " + want
	}
	return p.errAt(p.tok.pos, "%s", msg)
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(p.tok.pos, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func binary(op tokKind, opPos int, l, r *ast) *ast {
	return &ast{kind: nBinary, pos: l.pos, opPos: opPos, op: op, args: []*ast{l, r}}
}

// expr = or
func (p *parser) expr() (*ast, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.or()
}

// or = and { "||" and }
func (p *parser) or() (*ast, error) {
	l, err := p.and()
	for err == nil && p.tok.kind == tOr {
		opPos := p.tok.pos
		if err = p.advance(); err != nil {
			break
		}
		var r *ast
		if r, err = p.and(); err == nil {
			l = binary(tOr, opPos, l, r)
		}
	}
	return l, err
}

// and = not { "&&" not }
func (p *parser) and() (*ast, error) {
	l, err := p.not()
	for err == nil && p.tok.kind == tAnd {
		opPos := p.tok.pos
		if err = p.advance(); err != nil {
			break
		}
		var r *ast
		if r, err = p.not(); err == nil {
			l = binary(tAnd, opPos, l, r)
		}
	}
	return l, err
}

// not = "!" not | comparison
func (p *parser) not() (*ast, error) {
	if p.tok.kind != tBang {
		return p.comparison()
	}
	pos := p.tok.pos
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	return &ast{kind: nUnary, pos: pos, opPos: pos, op: tBang, args: []*ast{x}}, nil
}

func isComparison(k tokKind) bool { return k >= tEq && k <= tGe }

// comparison = membership [ ("=="|"!="|"<"|"<="|">"|">=") membership ]
// Comparisons do not chain: "a < b < c" is an error.
func (p *parser) comparison() (*ast, error) {
	l, err := p.membership()
	if err != nil || !isComparison(p.tok.kind) {
		return l, err
	}
	op, opPos := p.tok.kind, p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	r, err := p.membership()
	if err != nil {
		return nil, err
	}
	if isComparison(p.tok.kind) {
		return nil, p.errAt(p.tok.pos, "comparison operators cannot be chained; use parentheses or &&")
	}
	return binary(op, opPos, l, r), nil
}

// membership = additive [ ("in" | "not" "in") additive ]
func (p *parser) membership() (*ast, error) {
	l, err := p.additive()
	if err != nil || (p.tok.kind != tIn && p.tok.kind != tNot) {
		return l, err
	}
	op, opPos := tIn, p.tok.pos
	if p.tok.kind == tNot {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tIn {
			return nil, p.unexpected("'in' after 'not'")
		}
		op = tNotIn
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	r, err := p.additive()
	if err != nil {
		return nil, err
	}
	if p.tok.kind == tIn || p.tok.kind == tNot {
		return nil, p.errAt(p.tok.pos, "'in' cannot be chained; use parentheses")
	}
	return binary(op, opPos, l, r), nil
}

// additive = multiplicative { ("+"|"-") multiplicative }
func (p *parser) additive() (*ast, error) {
	l, err := p.multiplicative()
	for err == nil && (p.tok.kind == tPlus || p.tok.kind == tMinus) {
		op, opPos := p.tok.kind, p.tok.pos
		if err = p.advance(); err != nil {
			break
		}
		var r *ast
		if r, err = p.multiplicative(); err == nil {
			l = binary(op, opPos, l, r)
		}
	}
	return l, err
}

// multiplicative = unary { ("*"|"/"|"%") unary }
func (p *parser) multiplicative() (*ast, error) {
	l, err := p.unary()
	for err == nil && (p.tok.kind == tStar || p.tok.kind == tSlash || p.tok.kind == tPercent) {
		op, opPos := p.tok.kind, p.tok.pos
		if err = p.advance(); err != nil {
			break
		}
		var r *ast
		if r, err = p.unary(); err == nil {
			l = binary(op, opPos, l, r)
		}
	}
	return l, err
}

// unary = "-" unary | primary
// A minus directly before an integer literal is part of the literal, so
// -9223372036854775808 is valid.
func (p *parser) unary() (*ast, error) {
	if p.tok.kind != tMinus {
		return p.primary()
	}
	pos := p.tok.pos
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tInt {
		t := p.tok
		n, err := strconv.ParseInt("-"+t.text, 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer literal -%s out of range", t.text)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &ast{kind: nLit, pos: pos, lit: value{k: Int, n: n}}, nil
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	return &ast{kind: nUnary, pos: pos, opPos: pos, op: tMinus, args: []*ast{x}}, nil
}

// primary = literal | field | call | "(" expr ")" | list
func (p *parser) primary() (*ast, error) {
	t := p.tok
	var x *ast
	switch t.kind {
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer literal %s out of range", t.text)
		}
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: Int, n: n}}
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, p.errAt(t.pos, "float literal %s out of range", t.text)
		}
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: Float, f: f}}
	case tString:
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: String, s: t.str}}
	case tTrue:
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: Bool, n: 1}}
	case tFalse:
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: Bool}}
	case tNull:
		x = &ast{kind: nLit, pos: t.pos, lit: value{k: Null}}
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		return &ast{kind: nField, pos: t.pos, name: t.text}, nil
	case tLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		inner, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.unexpected("')'")
		}
		x = inner
	case tLBrack:
		elems, err := p.sequence(tRBrack)
		if err != nil {
			return nil, err
		}
		return &ast{kind: nList, pos: t.pos, args: elems}, nil
	case tNot:
		return nil, p.errAt(t.pos, "unexpected 'not'; use '!' for negation")
	default:
		return nil, p.unexpected("")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return x, nil
}

// call parses the argument list of name; the current token is "(".
func (p *parser) call(name token) (*ast, error) {
	args, err := p.sequence(tRParen)
	if err != nil {
		return nil, err
	}
	return &ast{kind: nCall, pos: name.pos, opPos: name.pos, name: name.text, args: args}, nil
}

// sequence parses [ expr { "," expr } [","] ] close, starting at the
// opening bracket, and consumes the closing one.
func (p *parser) sequence(close tokKind) ([]*ast, error) {
	if err := p.advance(); err != nil { // opening bracket
		return nil, err
	}
	want := "',' or '" + opText[close] + "'"
	var items []*ast
	for p.tok.kind != close {
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		items = append(items, x)
		if p.tok.kind == tComma {
			if err := p.advance(); err != nil {
				return nil, err
			}
			continue
		}
		if p.tok.kind != close {
			return nil, p.unexpected(want)
		}
	}
	if err := p.advance(); err != nil { // closing bracket
		return nil, err
	}
	return items, nil
}
