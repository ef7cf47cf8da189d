package avro

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"
)

// encoder turns a plain value into the native value goavro encodes (unions
// wrapped in single-entry maps, defaults filled in). A nil encoder passes
// the value through unchanged. Encoders never modify their argument.
type encoder func(v any) (any, error)

// recordEncoder encodes a plain record of one record type.
type recordEncoder struct {
	name   string
	fields []encField
}

type encField struct {
	name   string
	enc    encoder
	check  func(v any) error // validates a value passed through unchanged (enc == nil)
	def    any               // native default
	hasDef bool
}

func (e *recordEncoder) encode(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: want map[string]any, got %T", e.name, v)
	}
	return e.encodeMap(m)
}

func (e *recordEncoder) encodeMap(m map[string]any) (map[string]any, error) {
	// out stays nil, and m goes to goavro as is, unless a field needs a
	// default or a wrapped value; then out is a clone of m (cheaper than
	// building a map key by key) with those entries replaced.
	var out map[string]any
	seen := 0
	for i := range e.fields {
		f := &e.fields[i]
		v, ok := m[f.name]
		if !ok {
			if !f.hasDef {
				return nil, fmt.Errorf("record %s: missing required field %q", e.name, f.name)
			}
			if out == nil {
				out = maps.Clone(m)
			}
			out[f.name] = f.def
			continue
		}
		seen++
		if f.enc != nil {
			nv, err := f.enc(v)
			if err != nil {
				return nil, fmt.Errorf("record %s: field %q: %w", e.name, f.name, err)
			}
			if out == nil {
				out = maps.Clone(m)
			}
			out[f.name] = nv
		} else if f.check != nil {
			if err := f.check(v); err != nil {
				return nil, fmt.Errorf("record %s: field %q: %w", e.name, f.name, err)
			}
		}
	}
	if seen != len(m) {
		var unknown []string
		for k := range m {
			if !slices.ContainsFunc(e.fields, func(f encField) bool { return f.name == k }) {
				unknown = append(unknown, fmt.Sprintf("%q", k))
			}
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("record %s: unknown field(s) %s", e.name, strings.Join(unknown, ", "))
	}
	if out == nil {
		return m, nil
	}
	return out, nil
}

// goKind classifies a plain value's Go type for choosing a union branch.
type goKind uint8

const (
	gkOther goKind = iota
	gkString
	gkBytes
	gkBool
	gkInt32
	gkInt64
	gkInt
	gkFloat32
	gkFloat64
	gkTime
	gkDuration
	gkRat
	gkMap
	gkSlice
	numGoKinds
)

func kindOf(v any) goKind {
	switch v.(type) {
	case string:
		return gkString
	case []byte:
		return gkBytes
	case bool:
		return gkBool
	case int32:
		return gkInt32
	case int64:
		return gkInt64
	case int:
		return gkInt
	case float32:
		return gkFloat32
	case float64:
		return gkFloat64
	case time.Time:
		return gkTime
	case time.Duration:
		return gkDuration
	case *big.Rat:
		return gkRat
	case map[string]any:
		return gkMap
	case []any, []map[string]any:
		return gkSlice
	}
	return gkOther
}

// branchPreference lists, per Go kind, the union branch types that accept
// it, in tiers: the first branch (in union order) of the first tier present
// wins. Exact-width numbers beat widening ones.
var branchPreference = [numGoKinds][][]Type{
	gkString:   {{String, Enum}},
	gkBytes:    {{Bytes, Fixed}},
	gkBool:     {{Boolean}},
	gkInt32:    {{Int}, {Long}, {Timestamp}},
	gkInt64:    {{Long}, {Timestamp}, {Int}},
	gkInt:      {{Long, Int}, {Timestamp}},
	gkFloat32:  {{Float}, {Double}},
	gkFloat64:  {{Double}, {Float}},
	gkTime:     {{Timestamp, Date}},
	gkDuration: {{TimeOfDay}},
	gkRat:      {{Decimal}},
	gkMap:      {{Record, Map}},
	gkSlice:    {{Array}},
}

// encoders builds encoders for a type graph, sharing record encoders so
// recursive types terminate.
type encoders struct {
	records map[*node]*recordEncoder
}

func newRecordEncoder(n *node) (*recordEncoder, error) {
	b := &encoders{records: map[*node]*recordEncoder{}}
	return b.record(n)
}

func (b *encoders) record(n *node) (*recordEncoder, error) {
	if e, ok := b.records[n]; ok {
		return e, nil
	}
	e := &recordEncoder{name: n.name}
	b.records[n] = e
	for _, f := range n.fields {
		var enc encoder
		check := checkFor(f.typ)
		if check == nil {
			var err error
			if enc, err = b.build(f.typ); err != nil {
				return nil, err
			}
		}
		ef := encField{name: f.name, enc: enc, check: check, hasDef: f.hasDef}
		if f.hasDef {
			ef.def = f.def
			if enc != nil {
				var err error
				if ef.def, err = enc(f.def); err != nil {
					return nil, fmt.Errorf("record %s: field %q: default: %w", n.name, f.name, err)
				}
			}
		}
		e.fields = append(e.fields, ef)
	}
	return e, nil
}

// checkFor returns the Go type check for a plain value of n that goavro
// would otherwise accept too liberally: integer types (money is int64
// minor units) must not be given floats, which goavro silently truncates
// when they happen to be whole.
func checkFor(n *node) func(any) error {
	switch n.typ {
	case Int, Long:
		return checkInteger
	case Timestamp:
		return checkTimestamp
	}
	return nil
}

func checkInteger(v any) error {
	switch v.(type) {
	case int64, int32, int:
		return nil
	}
	return fmt.Errorf("want an integer (int64, int32 or int), got %T", v)
}

func checkTimestamp(v any) error {
	switch v.(type) {
	case time.Time, int64, int32, int:
		return nil
	}
	return fmt.Errorf("want a time.Time or integer, got %T", v)
}

// build returns the encoder for type n, or nil when goavro accepts the plain
// value directly.
func (b *encoders) build(n *node) (encoder, error) {
	if check := checkFor(n); check != nil {
		return func(v any) (any, error) { return v, check(v) }, nil
	}
	switch n.kind {
	case kRecord:
		e, err := b.record(n)
		if err != nil {
			return nil, err
		}
		return e.encode, nil
	case kArray:
		item, err := b.build(n.items)
		if err != nil {
			return nil, err
		}
		return func(v any) (any, error) {
			switch a := v.(type) {
			case []any:
				if item == nil {
					return a, nil
				}
				out := make([]any, len(a))
				for i, x := range a {
					y, err := item(x)
					if err != nil {
						return nil, fmt.Errorf("item %d: %w", i, err)
					}
					out[i] = y
				}
				return out, nil
			case []map[string]any:
				out := make([]any, len(a))
				for i, x := range a {
					var y any = x
					if item != nil {
						var err error
						if y, err = item(x); err != nil {
							return nil, fmt.Errorf("item %d: %w", i, err)
						}
					}
					out[i] = y
				}
				return out, nil
			}
			return nil, fmt.Errorf("want []any, got %T", v)
		}, nil
	case kMap:
		val, err := b.build(n.values)
		if err != nil || val == nil {
			return nil, err
		}
		return func(v any) (any, error) {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("want map[string]any, got %T", v)
			}
			out := make(map[string]any, len(m))
			for k, x := range m {
				y, err := val(x)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
				out[k] = y
			}
			return out, nil
		}, nil
	case kUnion:
		return b.union(n)
	}
	return nil, nil
}

func (b *encoders) union(n *node) (encoder, error) {
	type branch struct {
		key string
		enc encoder
	}
	branches := make([]branch, len(n.branches))
	for i, br := range n.branches {
		enc, err := b.build(br)
		if err != nil {
			return nil, err
		}
		branches[i] = branch{key: br.key, enc: enc}
	}
	var pick [numGoKinds]int8
	for k := range pick {
		pick[k] = -1
	tiers:
		for _, tier := range branchPreference[k] {
			for i, br := range n.branches {
				if slices.Contains(tier, br.typ) {
					pick[k] = int8(i)
					break tiers
				}
			}
		}
	}
	hasNull := n.nullIndex() >= 0
	desc := unionString(n)
	return func(v any) (any, error) {
		if v == nil {
			if !hasNull {
				return nil, fmt.Errorf("nil for union %s without null", desc)
			}
			return nil, nil
		}
		i := pick[kindOf(v)]
		if i < 0 {
			return nil, fmt.Errorf("no branch of union %s accepts a %T", desc, v)
		}
		br := &branches[i]
		if br.enc != nil {
			var err error
			if v, err = br.enc(v); err != nil {
				return nil, err
			}
		}
		return map[string]any{br.key: v}, nil
	}, nil
}
