package avro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
)

// Type classifies the Avro type of a field as seen through the plain record
// representation (see the package documentation for the Go type of each).
type Type int

// The Type values. Logical types that change the Go representation get their
// own Type; other logical types (uuid, local-timestamp-millis, ...) are
// reported as their underlying type with Field.Logical set.
const (
	Invalid   Type = iota // not a valid type; the zero value
	Null                  // "null": nil
	Boolean               // "boolean": bool
	Int                   // "int": int32
	Long                  // "long": int64
	Float                 // "float": float32
	Double                // "double": float64
	Bytes                 // "bytes": []byte
	String                // "string": string
	Enum                  // "enum": string (the symbol)
	Fixed                 // "fixed": []byte of the fixed size
	Timestamp             // long with logicalType timestamp-millis or timestamp-micros: time.Time in UTC
	Date                  // int with logicalType date: time.Time (midnight UTC)
	TimeOfDay             // int time-millis or long time-micros: time.Duration since midnight
	Decimal               // bytes or fixed with logicalType decimal: *big.Rat
	Record                // "record": map[string]any
	Array                 // "array": []any
	Map                   // "map": map[string]any
	Union                 // a union that is not just an optional ("nullable") single type
)

var typeNames = [...]string{
	Invalid: "invalid", Null: "null", Boolean: "boolean", Int: "int", Long: "long",
	Float: "float", Double: "double", Bytes: "bytes", String: "string", Enum: "enum",
	Fixed: "fixed", Timestamp: "timestamp", Date: "date", TimeOfDay: "time", Decimal: "decimal",
	Record: "record", Array: "array", Map: "map", Union: "union",
}

// String returns the lower-case name of t ("long", "timestamp", "record", ...).
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Field describes one field of a record schema.
type Field struct {
	// Name is the field's own name (the last element of a dotted path).
	Name string
	// Type is the field's type. For an optional field (a union of null and
	// exactly one other type) it is the non-null type and Nullable is true.
	Type Type
	// Elem is the element type of an Array or the value type of a Map
	// (Invalid otherwise); an optional element reports its non-null type.
	Elem Type
	// Nullable reports whether the field's type is a union containing null,
	// that is whether its plain value may be nil.
	Nullable bool
	// Logical is the logicalType attribute of the (non-null) type, or "".
	Logical string
	// Doc is the field's "doc" attribute.
	Doc string
	// Default is the field's default in the plain representation (nil when
	// HasDefault is false or the default is null). It is shared: callers
	// must not modify a map, slice or []byte default.
	Default any
	// HasDefault reports whether the schema gives the field a default.
	HasDefault bool
}

// Schema is one parsed record schema. It is immutable and safe for concurrent
// use; create it with [Registry.Add] or [LoadDir].
type Schema struct {
	// Name is the record's full name, for example "billing.Transaction".
	Name string
	// Fingerprint is the CRC-64-AVRO (Rabin) fingerprint of the schema's
	// Parsing Canonical Form, as written in single-object encodings.
	Fingerprint uint64

	canonical  string
	resolution string // see resolutionForm
	source     string // file name or "" for Add
	codec      *goavro.Codec
	root       *node
	fields     []Field
	header     [headerLen]byte
	scan       bool // validate bodies before goavro decodes them (arrays, maps or recursion)

	self    *recordPlan  // projection onto itself: union unwrapping only
	fast    *fastDecoder // direct decoding with this schema as reader; nil if unsupported
	encoder *recordEncoder
	plans   sync.Map // writer *Schema -> *planEntry, projections onto this schema
}

// Canonical returns the schema's Avro Parsing Canonical Form, the text the
// fingerprint is computed from.
func (s *Schema) Canonical() string { return s.canonical }

// String returns the schema's full name and fingerprint.
func (s *Schema) String() string { return fmt.Sprintf("%s@%016x", s.Name, s.Fingerprint) }

// Fields returns the top-level fields in schema order. The slice is a copy;
// see Field.Default for what must not be modified.
func (s *Schema) Fields() []Field { return slices.Clone(s.fields) }

// Field returns the field at path. A path is a field name, or field names
// joined with dots to reach into nested records ("a.b"). A path may descend
// through an optional record, and through an array or map whose elements
// are records, in which case the result describes the field of each element
// ("lines.amount_minor" on billing.Invoice). It reports false if any element
// of the path does not exist.
func (s *Schema) Field(path string) (Field, bool) {
	n := s.root
	for {
		name, rest, more := strings.Cut(path, ".")
		f := n.field(name)
		if f == nil {
			return Field{}, false
		}
		if !more {
			return f.pub, true
		}
		if n = recordIn(f.typ); n == nil {
			return Field{}, false
		}
		path = rest
	}
}

// recordIn returns the record reached from n by unwrapping an optional union
// and array/map elements, or nil.
func recordIn(n *node) *node {
	for {
		switch n.kind {
		case kRecord:
			return n
		case kArray:
			n = n.items
		case kMap:
			n = n.values
		case kUnion:
			nn := n.nonNull()
			if nn == nil {
				return nil
			}
			n = nn
		default:
			return nil
		}
	}
}

// kind is the underlying Avro type of a node.
type kind uint8

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kFixed
	kUnion
)

var primitiveKinds = map[string]kind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

var kindNames = [...]string{
	kNull: "null", kBoolean: "boolean", kInt: "int", kLong: "long", kFloat: "float",
	kDouble: "double", kBytes: "bytes", kString: "string", kRecord: "record", kEnum: "enum",
	kArray: "array", kMap: "map", kFixed: "fixed", kUnion: "union",
}

func (k kind) String() string { return kindNames[k] }

// node is one type in a parsed schema graph. Named types are shared (and may
// be recursive); everything is read-only once parsing finishes.
type node struct {
	kind    kind
	typ     Type   // public classification (Union for every union)
	logical string // logicalType attribute, "" if none
	micros  bool   // Timestamp/TimeOfDay in microseconds rather than milliseconds
	scale   int    // Decimal scale
	name    string // full name of a record, enum or fixed
	aliases []string
	key     string // name goavro uses for this type as a union branch

	fields   []*fieldNode // record
	fieldIdx map[string]int
	items    *node   // array
	values   *node   // map
	branches []*node // union
	symbols  []string
	enumDef  string // enum default symbol ("" if none)
	size     int    // fixed
}

type fieldNode struct {
	name    string
	aliases []string
	doc     string
	typ     *node
	def     any // plain default
	hasDef  bool
	pub     Field
	rawDef  any // JSON default, parsed with UseNumber
	defDone bool
	// fieldLogical reports a logicalType attribute on the field object
	// itself (not on its type), which goavro honours when the field's
	// type is given by name and this parser ignores.
	fieldLogical bool
}

func (n *node) field(name string) *fieldNode {
	if i, ok := n.fieldIdx[name]; ok {
		return n.fields[i]
	}
	return nil
}

// nonNull returns the only non-null branch of a union, or nil if there is
// not exactly one.
func (n *node) nonNull() *node {
	var found *node
	for _, b := range n.branches {
		if b.kind == kNull {
			continue
		}
		if found != nil {
			return nil
		}
		found = b
	}
	return found
}

func (n *node) nullIndex() int {
	for i, b := range n.branches {
		if b.kind == kNull {
			return i
		}
	}
	return -1
}

// unqualified returns the part of a full name after the last dot.
func unqualified(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// describe returns the public classification of n for a Field.
func describe(n *node) (t Type, elem Type, nullable bool, logical string) {
	if n.kind == kUnion {
		nullable = n.nullIndex() >= 0
		switch nn := n.nonNull(); {
		case nn != nil:
			n = nn
		case len(n.branches) == 1 && nullable:
			return Null, Invalid, true, ""
		default:
			return Union, Invalid, nullable, ""
		}
	}
	switch n.kind {
	case kArray:
		elem, _, _, _ = describe(n.items)
	case kMap:
		elem, _, _, _ = describe(n.values)
	}
	return n.typ, elem, nullable, n.logical
}

// parser builds a node graph from a schema parsed with json.Decoder.UseNumber.
type parser struct {
	named  map[string]*node
	fields []*fieldNode // every field, to resolve defaults after the graph is built
	scan   bool         // graph has an array, a map or a recursive reference
	// logicalRef: a reference to a named type carries a logicalType
	// (see parseObject), which goavro may read otherwise.
	logicalRef bool
	open       map[*node]bool
}

func parseSchema(schemaJSON string) (*node, *parser, error) {
	dec := json.NewDecoder(strings.NewReader(schemaJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("parse JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, nil, fmt.Errorf("parse JSON: unexpected data after the schema")
	}
	p := &parser{named: map[string]*node{}, open: map[*node]bool{}}
	root, err := p.parse(v, "")
	if err != nil {
		return nil, nil, err
	}
	if root.kind != kRecord {
		return nil, nil, fmt.Errorf("top-level type is %s, want a record", root.kind)
	}
	for _, f := range p.fields {
		if err := f.resolveDefault(); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range p.fields {
		t, elem, nullable, logical := describe(f.typ)
		f.pub = Field{
			Name: f.name, Type: t, Elem: elem, Nullable: nullable, Logical: logical,
			Doc: f.doc, Default: f.def, HasDefault: f.hasDef,
		}
	}
	return root, p, nil
}

// fullName applies the Avro naming rules the way goavro does: a dotted name
// is already full, otherwise the namespace attribute (when non-empty) or
// the enclosing namespace qualifies it.
func fullName(name, namespace, enclosing string) string {
	switch {
	case strings.ContainsRune(name, '.'):
		return name
	case namespace != "":
		return namespace + "." + name
	case enclosing != "":
		return enclosing + "." + name
	default:
		return name
	}
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func (p *parser) lookup(name, ns string) *node {
	if !strings.ContainsRune(name, '.') && ns != "" {
		if n := p.named[ns+"."+name]; n != nil {
			return n
		}
	}
	return p.named[name]
}

func (p *parser) parse(v any, ns string) (*node, error) {
	switch v := v.(type) {
	case string:
		if k, ok := primitiveKinds[v]; ok {
			return primitive(k), nil
		}
		n := p.lookup(v, ns)
		if n == nil {
			return nil, fmt.Errorf("unknown type name %q", v)
		}
		if p.open[n] {
			p.scan = true // recursive reference: bound the decoding depth
		}
		return n, nil
	case []any:
		u := &node{kind: kUnion, typ: Union, key: "union"}
		for i, b := range v {
			bn, err := p.parse(b, ns)
			if err != nil {
				return nil, fmt.Errorf("union branch %d: %w", i+1, err)
			}
			if bn.kind == kUnion {
				return nil, fmt.Errorf("union branch %d: unions may not immediately contain unions", i+1)
			}
			u.branches = append(u.branches, bn)
		}
		return u, nil
	case map[string]any:
		return p.parseObject(v, ns)
	default:
		return nil, fmt.Errorf("schema must be a string, array or object, got %T", v)
	}
}

func primitive(k kind) *node {
	return &node{kind: k, typ: kindType(k), key: k.String()}
}

func kindType(k kind) Type {
	return [...]Type{
		kNull: Null, kBoolean: Boolean, kInt: Int, kLong: Long, kFloat: Float, kDouble: Double,
		kBytes: Bytes, kString: String, kRecord: Record, kEnum: Enum, kArray: Array, kMap: Map,
		kFixed: Fixed, kUnion: Union,
	}[k]
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func (p *parser) parseObject(m map[string]any, ns string) (*node, error) {
	t, ok := m["type"].(string)
	if !ok {
		if m["type"] == nil {
			return nil, fmt.Errorf("object schema without a type")
		}
		return p.parse(m["type"], ns)
	}
	logical := str(m, "logicalType")
	if k, ok := primitiveKinds[t]; ok {
		n := primitive(k)
		n.logical = logical
		switch {
		case k == kLong && (logical == "timestamp-millis" || logical == "timestamp-micros"):
			n.typ, n.micros, n.key = Timestamp, logical == "timestamp-micros", "long."+logical
		case k == kInt && logical == "date":
			n.typ, n.key = Date, "int.date"
		case k == kInt && logical == "time-millis", k == kLong && logical == "time-micros":
			n.typ, n.micros, n.key = TimeOfDay, logical == "time-micros", t+"."+logical
		case k == kBytes && logical == "decimal":
			scale, err := decimalScale(m)
			if err != nil {
				return nil, err
			}
			n.typ, n.scale, n.key = Decimal, scale, "bytes.decimal"
			if name := str(m, "name"); name != "" {
				n.key = fullName(name, str(m, "namespace"), ns)
			}
		case k == kString && logical == "validated-string":
			// goavro extension: a string checked against a pattern.
			n.key = "string.validated-string"
			if name := str(m, "name"); name != "" {
				n.key = fullName(name, str(m, "namespace"), ns)
			}
		}
		return n, nil
	}
	switch t {
	case "record", "error", "enum", "fixed":
	case "array":
		p.scan = true
		items, ok := m["items"]
		if !ok {
			return nil, fmt.Errorf("array without items")
		}
		in, err := p.parse(items, ns)
		if err != nil {
			return nil, fmt.Errorf("array items: %w", err)
		}
		return &node{kind: kArray, typ: Array, key: "array", items: in, logical: logical}, nil
	case "map":
		p.scan = true
		values, ok := m["values"]
		if !ok {
			return nil, fmt.Errorf("map without values")
		}
		vn, err := p.parse(values, ns)
		if err != nil {
			return nil, fmt.Errorf("map values: %w", err)
		}
		return &node{kind: kMap, typ: Map, key: "map", values: vn, logical: logical}, nil
	default:
		// A reference to a named type, written as an object. A logical
		// type here is ignored, but goavro may read the reference as
		// another named type ("Foo.x" for "Foo" with logicalType "x").
		if logical != "" {
			p.logicalRef = true
		}
		return p.parse(t, ns)
	}

	name := str(m, "name")
	if name == "" {
		return nil, fmt.Errorf("%s without a name", t)
	}
	full := fullName(name, str(m, "namespace"), ns)
	if _, dup := p.named[full]; dup {
		return nil, fmt.Errorf("type %q defined twice", full)
	}
	inner := namespaceOf(full)
	n := &node{name: full, key: full, logical: logical}
	if as, ok := m["aliases"].([]any); ok {
		for _, a := range as {
			if s, ok := a.(string); ok {
				n.aliases = append(n.aliases, fullName(s, "", inner))
			}
		}
	}
	p.named[full] = n
	switch t {
	case "enum":
		n.kind, n.typ = kEnum, Enum
		syms, _ := m["symbols"].([]any)
		for _, s := range syms {
			sym, ok := s.(string)
			if !ok {
				return nil, fmt.Errorf("enum %s: symbol %v is not a string", full, s)
			}
			n.symbols = append(n.symbols, sym)
		}
		if d, ok := m["default"].(string); ok {
			if !slices.Contains(n.symbols, d) {
				return nil, fmt.Errorf("enum %s: default %q is not a symbol", full, d)
			}
			n.enumDef = d
		}
	case "fixed":
		n.kind, n.typ = kFixed, Fixed
		size, err := jsonInt(m["size"])
		if err != nil || size < 0 {
			return nil, fmt.Errorf("fixed %s: bad size %v", full, m["size"])
		}
		n.size = int(size)
		if logical == "decimal" {
			scale, err := decimalScale(m)
			if err != nil {
				return nil, err
			}
			n.typ, n.scale = Decimal, scale
		}
	default: // record, error
		n.kind, n.typ = kRecord, Record
		fields, ok := m["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %s: fields must be an array", full)
		}
		p.open[n] = true
		n.fieldIdx = make(map[string]int, len(fields))
		for i, fv := range fields {
			fm, ok := fv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %s: field %d is not an object", full, i+1)
			}
			f := &fieldNode{name: str(fm, "name"), doc: str(fm, "doc"), fieldLogical: fm["logicalType"] != nil}
			if f.name == "" {
				return nil, fmt.Errorf("record %s: field %d has no name", full, i+1)
			}
			if _, dup := n.fieldIdx[f.name]; dup {
				return nil, fmt.Errorf("record %s: duplicate field %q", full, f.name)
			}
			if as, ok := fm["aliases"].([]any); ok {
				for _, a := range as {
					if s, ok := a.(string); ok {
						f.aliases = append(f.aliases, s)
					}
				}
			}
			ft, ok := fm["type"]
			if !ok {
				return nil, fmt.Errorf("record %s: field %q has no type", full, f.name)
			}
			typ, err := p.parse(ft, inner)
			if err != nil {
				return nil, fmt.Errorf("record %s: field %q: %w", full, f.name, err)
			}
			f.typ = typ
			f.rawDef, f.hasDef = fm["default"]
			n.fieldIdx[f.name] = len(n.fields)
			n.fields = append(n.fields, f)
			p.fields = append(p.fields, f)
		}
		delete(p.open, n)
	}
	return n, nil
}

func decimalScale(m map[string]any) (int, error) {
	if _, err := jsonInt(m["precision"]); err != nil {
		return 0, fmt.Errorf("decimal without a valid precision")
	}
	if m["scale"] == nil {
		return 0, nil
	}
	s, err := jsonInt(m["scale"])
	if err != nil || s < 0 {
		return 0, fmt.Errorf("decimal with a bad scale %v", m["scale"])
	}
	return int(s), nil
}

func jsonInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number: %v", v)
	}
	return n.Int64()
}

func (f *fieldNode) resolveDefault() error {
	if !f.hasDef || f.defDone {
		return nil
	}
	d, err := plainDefault(f.typ, f.rawDef)
	if err != nil {
		return fmt.Errorf("field %q: default: %w", f.name, err)
	}
	f.def, f.defDone = d, true
	return nil
}

// plainDefault converts a JSON default value to the plain representation of
// type n. A union's default belongs to its first branch.
func plainDefault(n *node, v any) (any, error) {
	switch n.kind {
	case kUnion:
		if len(n.branches) == 0 {
			return nil, fmt.Errorf("empty union has no default")
		}
		return plainDefault(n.branches[0], v)
	case kNull:
		if v != nil {
			return nil, fmt.Errorf("want null, got %v", v)
		}
		return nil, nil
	case kBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a boolean, got %v", v)
		}
		return b, nil
	case kInt, kLong:
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want an integer, got %v", v)
		}
		i, err := num.Int64()
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %v", v)
		}
		if n.kind == kInt && (i < math.MinInt32 || i > math.MaxInt32) {
			return nil, fmt.Errorf("%d overflows int", i)
		}
		if f := fromRaw(n); f != nil {
			return f(rawInt(n.kind, i)), nil
		}
		return rawInt(n.kind, i), nil
	case kFloat, kDouble:
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want a number, got %v", v)
		}
		x, err := num.Float64()
		if err != nil {
			return nil, fmt.Errorf("want a number, got %v", v)
		}
		if n.kind == kFloat {
			return float32(x), nil
		}
		return x, nil
	case kString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %v", v)
		}
		return s, nil
	case kEnum:
		s, ok := v.(string)
		if !ok || !slices.Contains(n.symbols, s) {
			return nil, fmt.Errorf("want one of the symbols %v, got %v", n.symbols, v)
		}
		return s, nil
	case kBytes, kFixed:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string of code points 0-255, got %v", v)
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 255 {
				return nil, fmt.Errorf("code point %U out of range 0-255", r)
			}
			b = append(b, byte(r))
		}
		if n.kind == kFixed && len(b) != n.size {
			return nil, fmt.Errorf("want %d bytes, got %d", n.size, len(b))
		}
		if n.typ == Decimal {
			return decimalFromBytes(b, n.scale), nil
		}
		return b, nil
	case kArray:
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want an array, got %v", v)
		}
		out := make([]any, len(a))
		for i, e := range a {
			d, err := plainDefault(n.items, e)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = d
		}
		return out, nil
	case kMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want an object, got %v", v)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			d, err := plainDefault(n.values, e)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = d
		}
		return out, nil
	case kRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want an object, got %v", v)
		}
		out := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			e, ok := m[f.name]
			if !ok {
				if err := f.resolveDefault(); err != nil {
					return nil, err
				}
				if !f.hasDef {
					return nil, fmt.Errorf("field %q missing and has no default", f.name)
				}
				out[f.name] = cloneValue(f.def)
				continue
			}
			d, err := plainDefault(f.typ, e)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.name, err)
			}
			out[f.name] = d
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", n.kind)
}

func rawInt(k kind, i int64) any {
	if k == kInt {
		return int32(i)
	}
	return i
}

func decimalFromBytes(b []byte, scale int) *big.Rat {
	i := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 { // two's complement negative
		i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return new(big.Rat).SetFrac(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
}

// fromRaw returns the conversion from a raw goavro value of n's underlying
// type (int32, int64, []byte) to n's plain value, or nil for the identity.
func fromRaw(n *node) func(any) any {
	switch n.typ {
	case Timestamp:
		if n.micros {
			return func(v any) any { return time.UnixMicro(v.(int64)).UTC() }
		}
		return func(v any) any { return time.UnixMilli(v.(int64)).UTC() }
	case Date:
		return func(v any) any { return time.Unix(int64(v.(int32))*86400, 0).UTC() }
	case TimeOfDay:
		if n.micros {
			return func(v any) any { return time.Duration(v.(int64)) * time.Microsecond }
		}
		return func(v any) any { return time.Duration(v.(int32)) * time.Millisecond }
	}
	return nil
}

// toRaw returns the conversion from n's plain value to the raw value of its
// underlying type (the inverse of fromRaw), or nil for the identity.
func toRaw(n *node) func(any) any {
	switch n.typ {
	case Timestamp:
		if n.micros {
			return func(v any) any { return v.(time.Time).UnixMicro() }
		}
		return func(v any) any { return v.(time.Time).UnixMilli() }
	case Date:
		return func(v any) any { return int32(v.(time.Time).Unix() / 86400) }
	case TimeOfDay:
		if n.micros {
			return func(v any) any { return int64(v.(time.Duration) / time.Microsecond) }
		}
		return func(v any) any { return int32(v.(time.Duration) / time.Millisecond) }
	}
	return nil
}

// cloneValue deep-copies the mutable parts (maps, slices, []byte) of a plain
// value; other values are returned as is.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case []byte:
		return bytes.Clone(v)
	case *big.Rat:
		return new(big.Rat).Set(v)
	}
	return v
}

// mutable reports whether a plain value has parts cloneValue would copy.
func mutable(v any) bool {
	switch v.(type) {
	case map[string]any, []any, []byte, *big.Rat:
		return true
	}
	return false
}

// canonicalForm writes the Avro Parsing Canonical Form of n (see the Avro
// specification, "Parsing Canonical Form for Schemas"). goavro's own
// CanonicalSchema is not used: it keeps {"type":"long"} for logical types
// and concatenates nested namespaces, which yields fingerprints other Avro
// implementations do not produce.
func canonicalForm(n *node) string {
	var b strings.Builder
	writeCanonical(&b, n, map[*node]bool{}, false)
	return b.String()
}

// resolutionForm is the canonical form plus every attribute that changes how
// values decode or resolve (logical types, defaults, aliases): two schemas
// with equal resolution forms are interchangeable.
func resolutionForm(n *node) string {
	var b strings.Builder
	writeCanonical(&b, n, map[*node]bool{}, true)
	return b.String()
}

func writeCanonical(b *strings.Builder, n *node, seen map[*node]bool, full bool) {
	switch n.kind {
	case kUnion:
		b.WriteByte('[')
		for i, br := range n.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen, full)
		}
		b.WriteByte(']')
	case kArray:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, n.items, seen, full)
		b.WriteByte('}')
	case kMap:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, n.values, seen, full)
		b.WriteByte('}')
	case kRecord, kEnum, kFixed:
		if seen[n] {
			writeJSONString(b, n.name)
			return
		}
		seen[n] = true
		b.WriteString(`{"name":`)
		writeJSONString(b, n.name)
		b.WriteString(`,"type":"`)
		b.WriteString(n.kind.String())
		b.WriteByte('"')
		switch n.kind {
		case kRecord:
			b.WriteString(`,"fields":[`)
			for i, f := range n.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":`)
				writeJSONString(b, f.name)
				b.WriteString(`,"type":`)
				writeCanonical(b, f.typ, seen, full)
				if full {
					writeExtra(b, "aliases", f.aliases)
					if f.hasDef {
						writeExtra(b, "default", f.rawDef)
					}
				}
				b.WriteByte('}')
			}
			b.WriteByte(']')
		case kEnum:
			b.WriteString(`,"symbols":[`)
			for i, s := range n.symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				writeJSONString(b, s)
			}
			b.WriteByte(']')
		case kFixed:
			b.WriteString(`,"size":`)
			b.WriteString(strconv.Itoa(n.size))
		}
		if full {
			writeExtra(b, "aliases", n.aliases)
			writeExtra(b, "default", n.enumDef)
			writeExtra(b, "logicalType", n.logical)
			writeExtra(b, "scale", n.scale)
		}
		b.WriteByte('}')
	default:
		if full && n.logical != "" {
			b.WriteString(`{"type":`)
			writeJSONString(b, n.kind.String())
			writeExtra(b, "logicalType", n.logical)
			writeExtra(b, "scale", n.scale)
			b.WriteByte('}')
			return
		}
		writeJSONString(b, n.kind.String())
	}
}

// writeExtra appends ,"key":value for a non-zero value.
func writeExtra(b *strings.Builder, key string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case int:
		if x == 0 {
			return
		}
	case []string:
		if len(x) == 0 {
			return
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		j = []byte(fmt.Sprintf("%q", fmt.Sprint(v)))
	}
	b.WriteString(`,"` + key + `":`)
	b.Write(j)
}

// writeJSONString writes s as a JSON string with UTF-8 left unescaped, as
// the canonical form requires. Avro names never need escaping; this is
// only defensive.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// rabinEmpty is the CRC-64-AVRO fingerprint of the empty string and the
// polynomial of the Avro specification.
const rabinEmpty uint64 = 0xc15d213aa4d7a795

var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// rabin returns the CRC-64-AVRO fingerprint of b.
func rabin(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}
