package expr

import "strings"

// This file holds specialised closures for the hot-path shapes
// `field <op> constant` and `field in [constants]`. Each reads the raw
// record value and handles the common Go types inline, without building a
// value; anything else (null, other types, errors) falls back to the
// generic closure, so the semantics are exactly those of the generic path.

// noFast disables the specialised closures at compile time; tests set it
// to check that both paths agree.
var noFast = false

// fieldPath is a compiled field reference.
type fieldPath struct {
	name string
	segs []string // nil for a path without dots
}

// badPath is what get returns for a path through a non-map; the generic
// path then reports the error.
type badPath struct{}

func (p *fieldPath) get(rec map[string]any) any {
	if p.segs == nil {
		return rec[p.name]
	}
	v, bad := lookup(rec, p.segs)
	if bad >= 0 {
		return badPath{}
	}
	return v
}

func newFieldPath(name string) *fieldPath {
	p := &fieldPath{name: name}
	if strings.Contains(name, ".") {
		p.segs = strings.Split(name, ".")
	}
	return p
}

// flip returns the operator op' with (a op b) == (b op' a).
func flip(op tokKind) tokKind {
	switch op {
	case tLt:
		return tGt
	case tLe:
		return tGe
	case tGt:
		return tLt
	case tGe:
		return tLe
	}
	return op
}

// test applies a comparison operator to a three-way comparison result.
func test(op tokKind, c int) bool {
	switch op {
	case tEq:
		return c == 0
	case tNe:
		return c != 0
	case tLt:
		return c < 0
	case tLe:
		return c <= 0
	case tGt:
		return c > 0
	}
	return c >= 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testFloat(op tokKind, a, b float64) bool {
	switch op {
	case tEq:
		return a == b
	case tNe:
		return a != b
	case tLt:
		return a < b
	case tLe:
		return a <= b
	case tGt:
		return a > b
	}
	return a >= b
}

// fastCompare returns a specialised closure for `f op k`, or generic when
// there is none for k's kind.
func fastCompare(op tokKind, f *fieldPath, k value, generic condFn) condFn {
	switch k.k {
	case String:
		ks := k.s
		if op == tEq || op == tNe {
			neg := op == tNe
			return func(rec map[string]any) (bool, error) {
				if s, ok := f.get(rec).(string); ok {
					return (s == ks) != neg, nil
				}
				return generic(rec)
			}
		}
		return func(rec map[string]any) (bool, error) {
			if s, ok := f.get(rec).(string); ok {
				return test(op, strings.Compare(s, ks)), nil
			}
			return generic(rec)
		}
	case Int:
		kn := k.n
		return func(rec map[string]any) (bool, error) {
			switch x := f.get(rec).(type) {
			case int64:
				return test(op, cmpInt(x, kn)), nil
			case int:
				return test(op, cmpInt(int64(x), kn)), nil
			case int32:
				return test(op, cmpInt(int64(x), kn)), nil
			}
			return generic(rec)
		}
	case Float:
		kf := k.f
		return func(rec map[string]any) (bool, error) {
			switch x := f.get(rec).(type) {
			case float64:
				return testFloat(op, x, kf), nil
			case float32:
				return testFloat(op, float64(x), kf), nil
			}
			return generic(rec)
		}
	case Bool:
		if op == tEq || op == tNe {
			kb := (k.n != 0) != (op == tNe)
			return func(rec map[string]any) (bool, error) {
				if b, ok := f.get(rec).(bool); ok {
					return b == kb, nil
				}
				return generic(rec)
			}
		}
	}
	return generic
}

// fastMember returns a specialised closure for `f in [constants]` when the
// constants are all strings or all ints, or generic otherwise.
func fastMember(neg bool, f *fieldPath, vals []value, generic condFn) condFn {
	allOf := func(k Type) bool {
		for _, v := range vals {
			if v.k != k {
				return false
			}
		}
		return len(vals) > 0
	}
	switch {
	case allOf(String):
		strs := make([]string, len(vals))
		for i, v := range vals {
			strs[i] = v.s
		}
		return func(rec map[string]any) (bool, error) {
			s, ok := f.get(rec).(string)
			if !ok {
				return generic(rec)
			}
			for _, k := range strs {
				if s == k {
					return !neg, nil
				}
			}
			return neg, nil
		}
	case allOf(Int):
		ints := make([]int64, len(vals))
		for i, v := range vals {
			ints[i] = v.n
		}
		return func(rec map[string]any) (bool, error) {
			var n int64
			switch x := f.get(rec).(type) {
			case int64:
				n = x
			case int:
				n = int64(x)
			case int32:
				n = int64(x)
			default:
				return generic(rec)
			}
			for _, k := range ints {
				if n == k {
					return !neg, nil
				}
			}
			return neg, nil
		}
	}
	return generic
}
