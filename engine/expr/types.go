package expr

import (
	"strconv"
	"strings"
)

// Type is the static type of a field or of an expression. The zero value
// is Any.
//
// A static type describes the non-null value: every field may still be
// null at run time, whatever its declared type.
type Type int

// The types of the language. Any means "not known until run time": an
// expression involving Any is accepted at compile time and checked when it
// runs.
const (
	Any    Type = iota // unknown; checked at run time
	Null               // the null literal
	Bool               // bool
	Int                // int64 (records may hold int, int8..int64, uint8..uint64)
	Float              // float64 (records may hold float32 or float64)
	String             // string
	Time               // time.Time
	List               // []any, []string, []int, []int64 or []float64
	Map                // map[string]any
)

var typeNames = [...]string{
	Any:    "any",
	Null:   "null",
	Bool:   "bool",
	Int:    "int",
	Float:  "float",
	String: "string",
	Time:   "time",
	List:   "list",
	Map:    "map",
}

// String returns the lower-case name of t as used in error messages
// ("any", "null", "bool", "int", "float", "string", "time", "list",
// "map"), or "Type(N)" for a value outside the declared constants.
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// valid reports whether t is one of the declared constants.
func (t Type) valid() bool { return t >= Any && t <= Map }

// Env describes the fields an expression may reference. Lookup receives a
// dotted field path exactly as written in the expression (for example
// "customer.email") and reports the field's static type and whether the
// field exists. A path for which Lookup reports false is a compile error
// ("unknown field"). A type outside the declared constants is treated as
// Any.
//
// Passing a nil Env to Compile means there is no schema: every field is
// allowed and has type Any, so field types are checked only at run time.
// Lookup is called only during Compile, never by a compiled Program.
type Env interface {
	Lookup(path string) (Type, bool)
}

// MapEnv is an Env backed by a map from dotted field path to type, e.g.
//
//	expr.MapEnv{"status": expr.String, "customer": expr.Map, "customer.email": expr.String}
//
// Lookup reports the type stored under the exact path. A path that is not
// stored is still accepted, with type Any, when its nearest stored ancestor
// has type Map or Any and no stored path lies below that ancestor: such an
// ancestor is an open map whose keys are unknown. An ancestor with stored
// children is a closed record, and any other path below it is unknown.
//
// An empty (or nil) MapEnv is a schema with no fields: every reference is
// an unknown field. Pass an untyped nil Env to Compile for "no schema".
type MapEnv map[string]Type

// Lookup implements Env as described on MapEnv.
func (m MapEnv) Lookup(path string) (Type, bool) {
	if t, ok := m[path]; ok {
		return t, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		prefix := path[:i]
		t, ok := m[prefix]
		if !ok {
			continue
		}
		if t != Map && t != Any {
			return Any, false
		}
		below := prefix + "."
		for k := range m {
			if strings.HasPrefix(k, below) {
				return Any, false
			}
		}
		return Any, true
	}
	return Any, false
}
