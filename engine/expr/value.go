package expr

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// value is a run-time value. It is passed by value so that evaluating the
// common cases does not allocate.
type value struct {
	k Type    // Null, Bool, Int, Float, String, Time, List or Map; never Any
	n int64   // Int; Bool (0 or 1)
	f float64 // Float
	s string  // String
	x any     // Time (time.Time), List (a supported slice), Map (map[string]any)
}

var (
	nullVal  = value{k: Null}
	trueVal  = value{k: Bool, n: 1}
	falseVal = value{k: Bool}
)

func boolVal(b bool) value {
	if b {
		return trueVal
	}
	return falseVal
}

// fromGo converts a record value to a value. It reports false for a Go type
// the language does not support (including a uint or uint64 above
// math.MaxInt64).
func fromGo(v any) (value, bool) {
	switch x := v.(type) {
	case nil:
		return nullVal, true
	case string:
		return value{k: String, s: x}, true
	case bool:
		return boolVal(x), true
	case int64:
		return value{k: Int, n: x}, true
	case int:
		return value{k: Int, n: int64(x)}, true
	case int32:
		return value{k: Int, n: int64(x)}, true
	case float64:
		return value{k: Float, f: x}, true
	case float32:
		return value{k: Float, f: float64(x)}, true
	case time.Time:
		return value{k: Time, x: v}, true
	case map[string]any:
		return value{k: Map, x: v}, true
	case []any, []string, []int64, []int, []float64:
		return value{k: List, x: v}, true
	case int16:
		return value{k: Int, n: int64(x)}, true
	case int8:
		return value{k: Int, n: int64(x)}, true
	case uint8:
		return value{k: Int, n: int64(x)}, true
	case uint16:
		return value{k: Int, n: int64(x)}, true
	case uint32:
		return value{k: Int, n: int64(x)}, true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return value{k: Int, n: int64(x)}, true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return value{k: Int, n: int64(x)}, true
		}
	}
	return value{}, false
}

// unsupported describes a Go value fromGo rejected.
func unsupported(v any) string {
	switch v.(type) {
	case uint, uint64:
		return fmt.Sprintf("%T value %v out of int64 range", v, v)
	}
	return fmt.Sprintf("unsupported Go type %T", v)
}

// toGo converts a value to what Eval returns.
func toGo(v value) any {
	switch v.k {
	case Null:
		return nil
	case Bool:
		return v.n != 0
	case Int:
		return v.n
	case Float:
		return v.f
	case String:
		return v.s
	}
	return v.x
}

// goTypeName names the language type of a raw record value, for messages.
func goTypeName(v any) string {
	if x, ok := fromGo(v); ok {
		return x.k.String()
	}
	return fmt.Sprintf("%T", v)
}

func listLen(x any) int {
	switch l := x.(type) {
	case []any:
		return len(l)
	case []string:
		return len(l)
	case []int64:
		return len(l)
	case []int:
		return len(l)
	case []float64:
		return len(l)
	}
	return 0
}

// listAt returns element i (which must be in range) of a List's slice.
func listAt(x any, i int) (value, bool) {
	switch l := x.(type) {
	case []any:
		return fromGo(l[i])
	case []string:
		return value{k: String, s: l[i]}, true
	case []int64:
		return value{k: Int, n: l[i]}, true
	case []int:
		return value{k: Int, n: int64(l[i])}, true
	case []float64:
		return value{k: Float, f: l[i]}, true
	}
	return value{}, false
}

// cmpIntFloat compares i with f exactly (no rounding of i to float64).
// It reports false if f is NaN.
func cmpIntFloat(i int64, f float64) (int, bool) {
	if f != f {
		return 0, false
	}
	if f >= 0x1p63 {
		return -1, true
	}
	if f < -0x1p63 {
		return 1, true
	}
	t := math.Trunc(f)
	ti := int64(t)
	switch {
	case i < ti:
		return -1, true
	case i > ti:
		return 1, true
	case f > t:
		return -1, true
	case f < t:
		return 1, true
	}
	return 0, true
}

// eq reports whether a == b. ok is false when the kinds cannot be compared
// (mismatched types, or lists and maps, which have no equality). null
// equals only null and may be compared with anything.
func eq(a, b value) (res, ok bool) {
	if a.k == Null || b.k == Null {
		return a.k == b.k, true
	}
	if a.k == b.k {
		switch a.k {
		case Bool, Int:
			return a.n == b.n, true
		case Float:
			return a.f == b.f, true
		case String:
			return a.s == b.s, true
		case Time:
			return a.x.(time.Time).Equal(b.x.(time.Time)), true
		}
		return false, false
	}
	if a.k == Int && b.k == Float {
		c, ordered := cmpIntFloat(a.n, b.f)
		return ordered && c == 0, true
	}
	if a.k == Float && b.k == Int {
		c, ordered := cmpIntFloat(b.n, a.f)
		return ordered && c == 0, true
	}
	return false, false
}

// order compares a and b, neither null. ok is false when the kinds have no
// order; ordered is false when a float is NaN (every ordering is false).
func order(a, b value) (c int, ordered, ok bool) {
	switch a.k {
	case Int:
		switch b.k {
		case Int:
			switch {
			case a.n < b.n:
				return -1, true, true
			case a.n > b.n:
				return 1, true, true
			}
			return 0, true, true
		case Float:
			c, ordered = cmpIntFloat(a.n, b.f)
			return c, ordered, true
		}
	case Float:
		switch b.k {
		case Float:
			switch {
			case a.f < b.f:
				return -1, true, true
			case a.f > b.f:
				return 1, true, true
			case a.f == b.f:
				return 0, true, true
			}
			return 0, false, true
		case Int:
			c, ordered = cmpIntFloat(b.n, a.f)
			return -c, ordered, true
		}
	case String:
		if b.k == String {
			return strings.Compare(a.s, b.s), true, true
		}
	case Time:
		if b.k == Time {
			return a.x.(time.Time).Compare(b.x.(time.Time)), true, true
		}
	}
	return 0, false, false
}

// opAccepts reports whether operator op is defined on operands of type t
// (Any is accepted by every operator).
func opAccepts(op tokKind, t Type) bool {
	if t == Any {
		return true
	}
	switch op {
	case tEq, tNe, tIn, tNotIn:
		return t != List && t != Map
	case tLt, tLe, tGt, tGe:
		return t == Int || t == Float || t == String || t == Time
	case tPlus:
		return t == Int || t == Float || t == String
	case tMinus, tStar, tSlash:
		return t == Int || t == Float
	case tPercent:
		return t == Int
	}
	return false
}

func numeric(t Type) bool { return t == Int || t == Float }

// binTypeErr returns the message for applying binary operator op to
// operands of types l and r, or "" if the combination is valid. Any is
// compatible with everything; null may only be compared with == and !=.
// The same function checks static types at compile time and kinds at run
// time, so both report the same words.
func binTypeErr(op tokKind, l, r Type) string {
	name := opText[op]
	switch op {
	case tEq, tNe, tIn, tNotIn:
		if l == Null || r == Null {
			return ""
		}
	default:
		if l == Null || r == Null {
			return "operator " + name + " not defined on null"
		}
	}
	if !opAccepts(op, l) {
		return "operator " + name + " not defined on " + l.String()
	}
	if !opAccepts(op, r) {
		return "operator " + name + " not defined on " + r.String()
	}
	if l == Any || r == Any || l == r || (numeric(l) && numeric(r)) {
		return ""
	}
	return "mismatched types " + l.String() + " and " + r.String() + " for " + name
}

// arith applies + - * / % to non-null a and b. It returns an error message
// instead of a value when the operation is undefined or fails.
func arith(op tokKind, a, b value) (value, string) {
	if msg := binTypeErr(op, a.k, b.k); msg != "" {
		return value{}, msg
	}
	if a.k == Int && b.k == Int {
		x, y := a.n, b.n
		var r int64
		switch op {
		case tPlus:
			r = x + y
			if (x^r)&(y^r) < 0 {
				return value{}, "integer overflow"
			}
		case tMinus:
			r = x - y
			if (x^y)&(x^r) < 0 {
				return value{}, "integer overflow"
			}
		case tStar:
			if x == 0 || y == 0 {
				return value{k: Int}, ""
			}
			r = x * y
			if (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) || r/y != x {
				return value{}, "integer overflow"
			}
		case tSlash, tPercent:
			if y == 0 {
				return value{}, "division by zero"
			}
			if op == tPercent {
				if y == -1 {
					return value{k: Int}, ""
				}
				r = x % y
				break
			}
			if x == math.MinInt64 && y == -1 {
				return value{}, "integer overflow"
			}
			r = x / y
		}
		return value{k: Int, n: r}, ""
	}
	if a.k == String {
		return value{k: String, s: a.s + b.s}, ""
	}
	x, y := a.f, b.f
	if a.k == Int {
		x = float64(a.n)
	}
	if b.k == Int {
		y = float64(b.n)
	}
	var r float64
	switch op {
	case tPlus:
		r = x + y
	case tMinus:
		r = x - y
	case tStar:
		r = x * y
	case tSlash:
		if y == 0 {
			return value{}, "division by zero"
		}
		r = x / y
	}
	return value{k: Float, f: r}, ""
}
