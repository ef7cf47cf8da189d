package avro

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
)

// fastOp is what a fastType decodes: one Avro type, with the timestamp
// logical types as types of their own.
type fastOp uint8

const (
	opNull fastOp = iota
	opBoolean
	opInt
	opLong
	opFloat
	opDouble
	opBytes
	opString
	opEnum
	opTimestampMillis
	opTimestampMicros
	opRecord
	opUnion
)

// fastPrimitiveOps maps the primitive kinds without logical types other
// than long to their ops.
var fastPrimitiveOps = [...]fastOp{
	kNull: opNull, kBoolean: opBoolean, kInt: opInt, kFloat: opFloat,
	kDouble: opDouble, kBytes: opBytes, kString: opString,
}

// fastType is one node of a compiled direct decoder. It is read-only once
// compiled and shared by concurrent decodes.
type fastType struct {
	op       fastOp
	name     string      // record or enum full name, for errors
	symbols  []string    // enum
	fields   []fastField // record, in schema (wire) order
	branches []*fastType // union, by wire index
}

// fastField is one field of a compiled record.
type fastField struct {
	name string
	typ  *fastType
}

// fastDecoder decodes Avro binary bodies of one writer schema straight into
// the plain representation, producing exactly what goavro's decoding followed
// by the schema's own projection plan (Schema.self, which unwraps unions and
// copies bytes) produces, with far fewer allocations: no union wrapper maps,
// no intermediate []byte per string (strings are substrings of one string
// made from the body) and no error-path formatting unless decoding fails.
//
// It is only compiled (see newFastDecoder) for schemas whose every type is
// one it supports and whose interpretation by goavro is known to match this
// package's own node graph; every other schema keeps the goavro path.
type fastDecoder struct {
	root *fastType
}

// fastUnsupportedShortNames are names a named type must not have for the
// direct decoder to be used: goavro resolves a type name against its symbol
// table (primitives, then user types by full name) before the enclosing
// namespace, while this package's parser tries the primitives and the
// enclosing namespace first, so a named type that shadows one of these could
// make the two disagree on what a reference means.
var fastUnsupportedShortNames = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true, "float": true, "double": true,
	"bytes": true, "string": true, "record": true, "error": true, "enum": true, "fixed": true,
	"array": true, "map": true, "union": true,
}

// fastGoavroSymbols are the keys of goavro's initial symbol table that are
// valid Avro full names (a named type with one of these full names would
// replace goavro's built-in codec).
var fastGoavroSymbols = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true, "float": true, "double": true,
	"bytes": true, "string": true, "int.date": true,
}

// newFastDecoder compiles the direct decoder for the record schema root
// parsed by p, or returns nil when the schema is outside what it supports:
// arrays, maps, fixed, recursive types, any logical type other than
// timestamp-millis and timestamp-micros on a long, unions whose self
// projection maps a branch onto another one, and schemas goavro might read
// differently from this package's parser (see fastUnsupportedShortNames,
// field names with dots, a logicalType attribute on a field object).
func newFastDecoder(root *node, p *parser) *fastDecoder {
	if p.scan || p.logicalRef { // an array, a map, a recursive reference, or see logicalRef
		return nil
	}
	// goavro resolves a reference "X" in namespace ns as "X" before
	// "ns.X", this parser the other way round; they only disagree when two
	// named types share an unqualified name, or one shadows a built-in.
	shorts := make(map[string]bool, len(p.named))
	for full := range p.named {
		short := unqualified(full)
		if shorts[short] || fastUnsupportedShortNames[short] || fastGoavroSymbols[full] {
			return nil
		}
		shorts[short] = true
	}
	c := fastCompiler{done: map[*node]*fastType{}, open: map[*node]bool{}}
	t := c.compile(root)
	if t == nil || t.op != opRecord {
		return nil
	}
	return &fastDecoder{root: t}
}

// fastCompiler builds fastTypes from a node graph, sharing the compiled form
// of a named type referenced more than once.
type fastCompiler struct {
	done map[*node]*fastType
	open map[*node]bool // records being compiled: a reference back is recursion
}

// compile returns the fastType for n, or nil if n (or anything it contains)
// is not supported.
func (c *fastCompiler) compile(n *node) *fastType {
	if t, ok := c.done[n]; ok {
		return t
	}
	if c.open[n] {
		return nil // recursive; the parser flags these too, this is defence
	}
	var t *fastType
	switch n.kind {
	case kNull, kBoolean, kInt, kFloat, kDouble, kBytes, kString:
		if n.logical != "" || n.typ != kindType(n.kind) {
			return nil
		}
		t = &fastType{op: fastPrimitiveOps[n.kind]}
	case kLong:
		switch {
		case n.logical == "" && n.typ == Long:
			t = &fastType{op: opLong}
		case n.typ == Timestamp && n.logical == "timestamp-millis" && !n.micros:
			t = &fastType{op: opTimestampMillis}
		case n.typ == Timestamp && n.logical == "timestamp-micros" && n.micros:
			t = &fastType{op: opTimestampMicros}
		default:
			return nil
		}
	case kEnum:
		if n.logical != "" || len(n.symbols) == 0 {
			return nil
		}
		t = &fastType{op: opEnum, name: n.name, symbols: n.symbols}
	case kRecord:
		if n.logical != "" {
			return nil
		}
		c.open[n] = true
		t = &fastType{op: opRecord, name: n.name, fields: make([]fastField, len(n.fields))}
		for i, f := range n.fields {
			// goavro keys a field by the part of its name after the last
			// dot, and reads a logicalType attribute on the field object
			// itself when the field's type is a type name.
			if strings.ContainsRune(f.name, '.') || f.fieldLogical {
				return nil
			}
			ft := c.compile(f.typ)
			if ft == nil {
				return nil
			}
			t.fields[i] = fastField{name: f.name, typ: ft}
		}
		delete(c.open, n)
	case kUnion:
		if len(n.branches) == 0 {
			return nil
		}
		t = &fastType{op: opUnion, branches: make([]*fastType, len(n.branches))}
		for i, b := range n.branches {
			// The self plan reads each branch as the first branch that
			// best matches it; only the identity mapping is supported, and
			// only branches whose goavro union key is known to be b.key.
			if bestBranch(b, n.branches) != i || b.key != fastUnionKey(b) {
				return nil
			}
			if t.branches[i] = c.compile(b); t.branches[i] == nil {
				return nil
			}
		}
	default: // kArray, kMap, kFixed
		return nil
	}
	c.done[n] = t
	return t
}

// fastUnionKey returns the name goavro gives branch n in a decoded union
// value, for the types the direct decoder supports.
func fastUnionKey(n *node) string {
	switch {
	case n.kind == kRecord || n.kind == kEnum:
		return n.name
	case n.typ == Timestamp:
		return "long." + n.logical
	}
	return n.kind.String()
}

// fastReader is the state of one direct decode.
type fastReader struct {
	buf []byte
	off int // next byte of buf to read
	// str is buf[strBase:] as a string, made when the first non-empty
	// string is read; every string value is a substring of it.
	str     string
	strBase int
	haveStr bool
}

// decode decodes body, which must hold exactly one record, into its plain
// representation. Errors describe the problem (and the field path); the
// caller wraps them in ErrMalformed.
func (d *fastDecoder) decode(body []byte) (map[string]any, error) {
	r := fastReader{buf: body}
	rec, err := r.record(d.root)
	if err != nil {
		return nil, err
	}
	if left := len(body) - r.off; left != 0 {
		return nil, fmt.Errorf("%d trailing bytes", left)
	}
	return rec, nil
}

// record decodes the fields of record type t into a new map.
func (r *fastReader) record(t *fastType) (map[string]any, error) {
	m := make(map[string]any, len(t.fields))
	for i := range t.fields {
		f := &t.fields[i]
		v, err := r.value(f.typ)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.name, err)
		}
		m[f.name] = v
	}
	return m, nil
}

// value decodes one value of type t.
func (r *fastReader) value(t *fastType) (any, error) {
	switch t.op {
	case opNull:
		return nil, nil
	case opBoolean:
		if r.off >= len(r.buf) {
			return nil, errShort
		}
		c := r.buf[r.off]
		r.off++
		switch c {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, fmt.Errorf("boolean byte %#02x is neither 0 nor 1", c)
	case opInt:
		v, err := r.varint()
		if err != nil {
			return nil, err
		}
		// goavro truncates an int that does not fit 32 bits rather than
		// reject it; so does this, to decode exactly what goavro does.
		return int32(v), nil
	case opLong:
		v, err := r.varint()
		if err != nil {
			return nil, err
		}
		return v, nil
	case opTimestampMillis, opTimestampMicros:
		v, err := r.varint()
		if err != nil {
			return nil, err
		}
		return timestampFrom(v, t.op == opTimestampMicros), nil
	case opFloat:
		if len(r.buf)-r.off < 4 {
			return nil, errShort
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.off:]))
		r.off += 4
		return v, nil
	case opDouble:
		if len(r.buf)-r.off < 8 {
			return nil, errShort
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.off:]))
		r.off += 8
		return v, nil
	case opBytes:
		n, err := r.length()
		if err != nil {
			return nil, err
		}
		b := make([]byte, n) // never nil, as goavro's copy is not
		r.off += copy(b, r.buf[r.off:r.off+n])
		return b, nil
	case opString:
		n, err := r.length()
		if err != nil {
			return nil, err
		}
		return r.string(n), nil
	case opEnum:
		i, err := r.varint()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(t.symbols)) {
			return nil, fmt.Errorf("enum %s: index %d out of range", t.name, i)
		}
		return t.symbols[i], nil
	case opRecord:
		m, err := r.record(t)
		if err != nil {
			return nil, err
		}
		return m, nil
	case opUnion:
		i, err := r.varint()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(t.branches)) {
			return nil, fmt.Errorf("union index %d out of range", i)
		}
		v, err := r.value(t.branches[i])
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("no direct decoding for op %d", t.op)
}

// timestampFrom converts a timestamp-millis (or, if micros, -micros) value
// to a time.Time in UTC exactly as goavro does, so results compare equal
// with reflect.DeepEqual (same Location, no monotonic reading).
func timestampFrom(v int64, micros bool) time.Time {
	if micros {
		sec := v / 1e6
		return time.Unix(sec, (v-sec*1e6)*1e3).UTC()
	}
	sec := v / 1e3
	return time.Unix(sec, (v-sec*1e3)*1e6).UTC()
}

// varint reads a zig-zag encoded long (see varint in scan.go).
func (r *fastReader) varint() (int64, error) {
	if r.off < len(r.buf) {
		if c := r.buf[r.off]; c < 0x80 { // one byte: the common case
			r.off++
			return int64(c>>1) ^ -int64(c&1), nil
		}
	}
	in := r.buf[r.off:]
	v, rest, err := varint(in)
	if err != nil {
		return 0, err
	}
	r.off += len(in) - len(rest)
	return v, nil
}

// length reads the length of a bytes or string value and checks it against
// the bytes left, so nothing is allocated for a length the data cannot have.
func (r *fastReader) length() (int, error) {
	l, err := r.varint()
	if err != nil {
		return 0, err
	}
	if l < 0 {
		return 0, fmt.Errorf("negative length %d", l)
	}
	if left := len(r.buf) - r.off; l > int64(left) {
		return 0, fmt.Errorf("length %d exceeds the %d bytes left", l, left)
	}
	return int(l), nil
}

// string returns the next n bytes (already checked to be there) as a string
// sharing the record's one string copy of the body.
func (r *fastReader) string(n int) string {
	if n == 0 {
		return ""
	}
	if !r.haveStr {
		r.str, r.strBase, r.haveStr = string(r.buf[r.off:]), r.off, true
	}
	i := r.off - r.strBase
	r.off += n
	return r.str[i : i+n]
}
