package avro

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// directSchemas are inline schemas the direct decoder must support, between
// them covering every type it decodes (namespace t, one record each).
var directSchemas = map[string]string{
	"primitives": `{"type":"record","name":"Primitives","namespace":"t","fields":[
		{"name":"n","type":"null"},
		{"name":"b","type":"boolean"},
		{"name":"i","type":"int"},
		{"name":"l","type":"long"},
		{"name":"f","type":"float"},
		{"name":"d","type":"double"},
		{"name":"by","type":"bytes"},
		{"name":"s","type":"string"},
		{"name":"tm","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"tu","type":{"type":"long","logicalType":"timestamp-micros"}}]}`,
	"nullable": `{"type":"record","name":"Nullable","namespace":"t","fields":[
		{"name":"b","type":["null","boolean"]},
		{"name":"i","type":["null","int"]},
		{"name":"l","type":["long","null"]},
		{"name":"f","type":["null","float"]},
		{"name":"d","type":["double","null"]},
		{"name":"by","type":["null","bytes"]},
		{"name":"s","type":["string","null"]},
		{"name":"tm","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
		{"name":"tu","type":[{"type":"long","logicalType":"timestamp-micros"},"null"]},
		{"name":"e","type":["null",{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}]},
		{"name":"r","type":["null",{"type":"record","name":"Point","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"]}]}]}]}`,
	"multi": `{"type":"record","name":"Multi","namespace":"t","fields":[
		{"name":"u","type":["null","boolean","int","long","float","double","bytes","string",
			{"type":"enum","name":"E","symbols":["A","B"]},
			{"type":"record","name":"In","fields":[{"name":"a","type":"long"}]},
			{"type":"long","logicalType":"timestamp-millis"},
			{"type":"record","name":"N","namespace":"other.ns","fields":[{"name":"v","type":["null","t.E"]}]}]},
		{"name":"nonull","type":["string","long","t.In"]},
		{"name":"um","type":["null","long",{"type":"long","logicalType":"timestamp-micros"},"string"]},
		{"name":"one","type":["string"]},
		{"name":"onlynull","type":["null"]}]}`,
	"enums": `{"type":"record","name":"Enums","namespace":"t","fields":[
		{"name":"e","type":{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS","DIAMONDS","CLUBS"],"default":"SPADES"}},
		{"name":"one","type":{"type":"enum","name":"Single","symbols":["ONLY"]}},
		{"name":"again","type":"Suit"},
		{"name":"oe","type":["null","Suit"]}]}`,
	"nested": `{"type":"record","name":"Nested","namespace":"t","fields":[
		{"name":"in","type":{"type":"record","name":"Inner","fields":[
			{"name":"a","type":"int"},
			{"name":"s","type":"string"},
			{"name":"deep","type":{"type":"record","name":"Deep","namespace":"t.deeper","fields":[
				{"name":"b","type":"bytes"},
				{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}}]}},
		{"name":"oin","type":["null","Inner"]},
		{"name":"twice","type":"Inner"},
		{"name":"odeep","type":["t.deeper.Deep","null"]},
		{"name":"empty","type":{"type":"record","name":"Empty","fields":[]}},
		{"name":"after","type":"string"}]}`,
	"empty": `{"type":"record","name":"Nothing","namespace":"t","fields":[]}`,
}

// indirectSchemas must keep the goavro path: each has one thing the direct
// decoder does not support.
var indirectSchemas = map[string]string{
	"fixed":           `{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"fixed","name":"F","size":2}}]}`,
	"array":           `{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"long"}}]}`,
	"map":             `{"type":"record","name":"R","fields":[{"name":"m","type":{"type":"map","values":"string"}}]}`,
	"bytes decimal":   `{"type":"record","name":"R","fields":[{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}`,
	"date":            `{"type":"record","name":"R","fields":[{"name":"d","type":{"type":"int","logicalType":"date"}}]}`,
	"time-millis":     `{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"int","logicalType":"time-millis"}}]}`,
	"time-micros":     `{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"time-micros"}}]}`,
	"uuid":            `{"type":"record","name":"R","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}`,
	"local ts":        `{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"local-timestamp-millis"}}]}`,
	"unknown logical": `{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"string","logicalType":"timestamp-millis"}}]}`,
	"recursive": `{"type":"record","name":"LongList","fields":[
		{"name":"value","type":"long"},{"name":"next","type":["null","LongList"],"default":null}]}`,
	"field-level logicalType": `{"type":"record","name":"R","fields":[{"name":"t","type":"long","logicalType":"timestamp-millis"}]}`,
	"dotted field name":       `{"type":"record","name":"R","fields":[{"name":"a.b","type":"long"}]}`,
	"same short name": `{"type":"record","name":"R","fields":[{"name":"u","type":["null",
		{"type":"record","name":"a.Foo","fields":[{"name":"x","type":"int"}]},
		{"type":"record","name":"b.Foo","fields":[{"name":"y","type":"string"}]}]}]}`,
	"two timestamp units": `{"type":"record","name":"R","fields":[{"name":"u","type":[
		{"type":"long","logicalType":"timestamp-millis"},{"type":"long","logicalType":"timestamp-micros"}]}]}`,
	"logical type on a named reference": `{"type":"record","name":"R","fields":[
		{"name":"a","type":{"type":"record","name":"x","namespace":"Foo","fields":[{"name":"i","type":"int"}]}},
		{"name":"b","type":{"type":"record","name":"Foo","fields":[{"name":"s","type":"string"}]}},
		{"name":"c","type":{"type":"Foo","logicalType":"x"}}]}`,
	"shadowing name": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":{"type":"record","name":"string","fields":[]}}]}`,
}

// directCase is a schema with the registry it is registered in.
type directCase struct {
	name string
	reg  *Registry
	s    *Schema
}

// directCases returns the repository's schemas the direct decoder supports
// and the inline directSchemas, in a fixed order.
func directCases(t testing.TB) []directCase {
	t.Helper()
	repo, err := LoadDir("../../schemas")
	if err != nil {
		t.Fatal(err)
	}
	var cases []directCase
	for _, name := range []string{"billing.Transaction", "billing.Client"} {
		for i, s := range repo.Versions(name) {
			cases = append(cases, directCase{fmt.Sprintf("%s#%d", name, i), repo, s})
		}
	}
	names := make([]string, 0, len(directSchemas))
	for name := range directSchemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		reg := NewRegistry()
		s, err := reg.Add(directSchemas[name], true)
		if err != nil {
			t.Fatalf("Add %s: %v", name, err)
		}
		cases = append(cases, directCase{name, reg, s})
	}
	for _, c := range cases {
		if c.s.fast == nil {
			t.Fatalf("schema %s (%s) has no direct decoder", c.name, c.s)
		}
	}
	return cases
}

// decodeBoth decodes body written with s through the direct decoder and
// through goavro and the self projection plan.
func decodeBoth(s *Schema, body []byte) (direct, viaGoavro map[string]any, directErr, goavroErr error) {
	direct, directErr = decodeBodyWith(s, nil, body, true)
	viaGoavro, goavroErr = decodeBodyWith(s, nil, body, false)
	return
}

// samePlain is reflect.DeepEqual except that floats compare by their bits,
// so that NaN equals the same NaN.
func samePlain(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !samePlain(v, w) {
				return false
			}
		}
		return true
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return reflect.DeepEqual(a, b)
}

// nativeGen generates random goavro native values of a node graph, with a
// good share of edge values.
type nativeGen struct {
	rng *rand.Rand
}

var (
	edgeLongs  = []int64{0, 1, -1, 63, -64, 64, -65, 127, 128, 255, 256, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	edgeInts   = []int32{0, 1, -1, 63, -64, 64, -65, 255, 256, math.MaxInt32, math.MinInt32, math.MaxInt32 - 1, math.MinInt32 + 1}
	edgeFloats = []float64{0, math.Copysign(0, -1), 1, -1.5, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, math.MaxFloat32, math.SmallestNonzeroFloat32, 1e-300}
	edgeStrs   = []string{"", "a", "héllo wörld ✓", "日本語のテキスト", "\x00\xff not UTF-8 \xc3", strings.Repeat("long string ", 30), "emoji 🧾💶"}
	edgeTimes  = []int64{0, -1, 1, 999, -999, 1000, -1001, 1_709_296_200_123, -62_135_596_800_000, 253_402_300_799_999, math.MaxInt64, math.MinInt64, math.MaxInt64 / 1000, math.MinInt64 / 1000}
)

func (g *nativeGen) edge() bool { return g.rng.IntN(3) == 0 }

func (g *nativeGen) value(n *node) any {
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		return g.rng.IntN(2) == 1
	case kInt:
		if g.edge() {
			return edgeInts[g.rng.IntN(len(edgeInts))]
		}
		return int32(g.rng.Uint32())
	case kLong:
		if n.typ == Timestamp && g.edge() {
			return edgeTimes[g.rng.IntN(len(edgeTimes))]
		}
		if g.edge() {
			return edgeLongs[g.rng.IntN(len(edgeLongs))]
		}
		return int64(g.rng.Uint64()) >> g.rng.IntN(64)
	case kFloat:
		if g.edge() {
			return float32(edgeFloats[g.rng.IntN(len(edgeFloats))])
		}
		return math.Float32frombits(g.rng.Uint32())
	case kDouble:
		if g.edge() {
			return edgeFloats[g.rng.IntN(len(edgeFloats))]
		}
		return math.Float64frombits(g.rng.Uint64())
	case kBytes:
		b := make([]byte, g.rng.IntN(40))
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		return b
	case kString:
		if g.edge() {
			return edgeStrs[g.rng.IntN(len(edgeStrs))]
		}
		return fmt.Sprintf("s-%d", g.rng.Int64())
	case kEnum:
		return n.symbols[g.rng.IntN(len(n.symbols))]
	case kRecord:
		m := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			m[f.name] = g.value(f.typ)
		}
		return m
	case kUnion:
		b := n.branches[g.rng.IntN(len(n.branches))]
		if b.kind == kNull {
			return nil
		}
		return goavro.Union(b.key, g.value(b))
	}
	panic("nativeGen: unsupported kind " + n.kind.String())
}

// randomBodies returns count goavro-encoded random bodies of s.
func randomBodies(t testing.TB, s *Schema, seed uint64, count int) [][]byte {
	t.Helper()
	g := nativeGen{rng: rand.New(rand.NewPCG(seed, uint64(len(s.Name))))}
	out := make([][]byte, 0, count)
	for range count {
		native := g.value(s.root)
		body, err := s.codec.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatalf("goavro encode %v: %v", native, err)
		}
		out = append(out, body)
	}
	return out
}

// TestDirectDecoderSupport checks which schemas get a direct decoder.
func TestDirectDecoderSupport(t *testing.T) {
	repo, err := LoadDir("../../schemas")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range repo.Names() {
		for _, s := range repo.Versions(name) {
			if want := name != "billing.Invoice"; (s.fast != nil) != want {
				t.Errorf("%s from %s: direct decoder %v, want %v", s, s.source, s.fast != nil, want)
			}
		}
	}
	for name, src := range directSchemas {
		s, err := newSchema(src, "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.fast == nil {
			t.Errorf("%s: no direct decoder, want one", name)
		}
	}
	for name, src := range indirectSchemas {
		s, err := newSchema(src, "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.fast != nil {
			t.Errorf("%s: has a direct decoder, want the goavro path", name)
		}
	}
}

// TestIndirectSchemasDecode checks that schemas without a direct decoder
// still decode, through goavro.
func TestIndirectSchemasDecode(t *testing.T) {
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		schema   string // key of indirectSchemas
		in, want map[string]any
	}{
		{"fixed", map[string]any{"f": []byte("xy")}, nil},
		{"array", map[string]any{"a": []any{int64(1), int64(-2)}}, nil},
		{"map", map[string]any{"m": map[string]any{"k": "v", "": ""}}, nil},
		{"date", map[string]any{"d": day}, nil},
		{"time-millis", map[string]any{"t": 1500 * time.Millisecond}, nil},
		{"time-micros", map[string]any{"t": 1500 * time.Microsecond}, nil},
		{"uuid", map[string]any{"u": "123e4567-e89b-12d3-a456-426614174000"}, nil},
		{"local ts", map[string]any{"t": int64(5)}, nil},
		{"unknown logical", map[string]any{"t": "x"}, nil},
		{"recursive", map[string]any{"value": int64(1), "next": map[string]any{"value": int64(2), "next": nil}}, nil},
		// goavro reads the field-level logicalType this package ignores.
		{"field-level logicalType", map[string]any{"t": int64(5)}, map[string]any{"t": time.UnixMilli(5).UTC()}},
		{"same short name", map[string]any{"u": map[string]any{"x": int32(1)}}, nil},
		{"two timestamp units", map[string]any{"u": day}, nil},
		{"shadowing name", map[string]any{"a": map[string]any{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			reg := NewRegistry()
			s, err := reg.Add(indirectSchemas[tt.schema], true)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if s.fast != nil {
				t.Fatalf("%s has a direct decoder", s)
			}
			msg, err := s.Encode(tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if got, err := reg.Decode(s, msg); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Decode = %#v, %v; want %#v", got, err, want)
			}
		})
	}
}

// TestDirectDecodeDifferential decodes many records of every supported
// shape through the direct decoder and through goavro and requires equal
// results.
func TestDirectDecodeDifferential(t *testing.T) {
	for i, c := range directCases(t) {
		t.Run(c.name, func(t *testing.T) {
			bodies := randomBodies(t, c.s, uint64(i), 500)
			for _, body := range bodies {
				direct, viaGoavro, err1, err2 := decodeBoth(c.s, body)
				if err1 != nil || err2 != nil {
					t.Fatalf("decode %x: direct error %v, goavro error %v", body, err1, err2)
				}
				if !samePlain(direct, viaGoavro) {
					t.Fatalf("decode %x:\ndirect %#v\ngoavro %#v", body, direct, viaGoavro)
				}
				// The public path takes the direct decoder.
				msg := slices.Concat(c.s.header[:], body)
				public, err := c.reg.Decode(c.s, msg)
				if err != nil || !samePlain(public, viaGoavro) {
					t.Fatalf("Decode(%x) = %#v, %v; want %#v", msg, public, err, viaGoavro)
				}
				if public, err = c.reg.Decode(nil, msg); err != nil || !samePlain(public, viaGoavro) {
					t.Fatalf("Decode(nil, %x) = %#v, %v; want %#v", msg, public, err, viaGoavro)
				}
			}
		})
	}
}

// TestDirectDecodeEncoded decodes records written with Schema.Encode, edge
// values included, and checks both paths give the expected plain record.
func TestDirectDecodeEncoded(t *testing.T) {
	at := time.Date(2024, 3, 1, 12, 30, 0, 123_000_000, time.UTC)
	atMicros := time.Date(2024, 3, 1, 12, 30, 0, 123_456_000, time.UTC)
	negative := time.Date(1969, 7, 20, 20, 17, 40, 999_000_000, time.UTC)
	epoch := time.Unix(0, 0).UTC()
	tests := []struct {
		schema string // key of directSchemas, or a repository schema name
		in     map[string]any
		want   map[string]any // nil: the same as in
	}{
		{"billing.Transaction", map[string]any{
			"transaction_id": "tx-1", "client_id": "c", "amount_minor": int64(math.MinInt64), "currency": "EUR",
			"status": "BILLED", "description": "", "created_at": epoch, "updated_at": negative,
			"billed_at": at, "billing_cycle_id": "cycle",
		}, nil},
		{"billing.Transaction", map[string]any{
			"transaction_id": "", "client_id": "ç", "amount_minor": int64(math.MaxInt64), "currency": "JPY",
			"status": "APPROVED", "created_at": at, "updated_at": at, "billed_at": nil, "billing_cycle_id": nil,
		}, map[string]any{
			"transaction_id": "", "client_id": "ç", "amount_minor": int64(math.MaxInt64), "currency": "JPY",
			"status": "APPROVED", "description": "", "created_at": at, "updated_at": at, "billed_at": nil, "billing_cycle_id": nil,
		}},
		{"billing.Client", map[string]any{
			"client_id": "c-1", "name": "Zoë Ñandú 株式会社", "email": "a@b", "status": "ACTIVE",
			"created_at": negative, "updated_at": epoch,
		}, nil},
		{"primitives", map[string]any{
			"n": nil, "b": true, "i": int32(math.MinInt32), "l": int64(math.MaxInt64),
			"f": float32(math.Inf(-1)), "d": math.NaN(), "by": []byte{}, "s": "",
			"tm": negative, "tu": atMicros,
		}, nil},
		{"primitives", map[string]any{
			"n": nil, "b": false, "i": int32(math.MaxInt32), "l": int64(math.MinInt64),
			"f": float32(math.NaN()), "d": math.Copysign(0, -1), "by": []byte{0, 0xff}, "s": "日本",
			"tm": epoch, "tu": negative,
		}, nil},
		{"nullable", map[string]any{
			"b": nil, "i": nil, "l": nil, "f": nil, "d": nil, "by": nil, "s": nil, "tm": nil, "tu": nil, "e": nil, "r": nil,
		}, nil},
		{"nullable", map[string]any{
			"b": true, "i": int32(-1), "l": int64(1) << 40, "f": float32(1.5), "d": math.Inf(1), "by": []byte("x"),
			"s": "", "tm": at, "tu": atMicros, "e": "BLUE", "r": map[string]any{"x": int32(3), "y": nil},
		}, nil},
		{"multi", map[string]any{"u": nil, "nonull": "s", "um": nil, "one": "", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": int32(7), "nonull": int64(-7), "um": int64(3), "one": "x", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": "str", "nonull": map[string]any{"a": int64(1)}, "um": atMicros, "one": "x", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": at, "nonull": "", "um": "x", "one": "x", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": []byte("raw"), "nonull": "", "um": "x", "one": "x", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": 2.5, "nonull": "", "um": "x", "one": "x", "onlynull": nil}, nil},
		{"multi", map[string]any{"u": map[string]any{"a": int64(9)}, "nonull": "", "um": "x", "one": "x", "onlynull": nil}, nil},
		{"enums", map[string]any{"e": "CLUBS", "one": "ONLY", "again": "SPADES", "oe": "HEARTS"}, nil},
		{"enums", map[string]any{"e": "SPADES", "one": "ONLY", "again": "DIAMONDS", "oe": nil}, nil},
		{"nested", map[string]any{
			"in":    map[string]any{"a": int32(1), "s": "é", "deep": map[string]any{"b": []byte("b"), "t": at}},
			"oin":   nil,
			"twice": map[string]any{"a": int32(-2), "s": "", "deep": map[string]any{"b": []byte{}, "t": negative}},
			"odeep": map[string]any{"b": []byte{1}, "t": epoch},
			"empty": map[string]any{}, "after": "end",
		}, nil},
		{"nested", map[string]any{
			"in":    map[string]any{"a": int32(1), "s": "é", "deep": map[string]any{"b": []byte("b"), "t": at}},
			"oin":   map[string]any{"a": int32(5), "s": "x", "deep": map[string]any{"b": []byte("c"), "t": at}},
			"twice": map[string]any{"a": int32(-2), "s": "", "deep": map[string]any{"b": []byte{}, "t": negative}},
			"odeep": nil, "empty": map[string]any{}, "after": "",
		}, nil},
		{"empty", map[string]any{}, nil},
	}
	cases := map[string]directCase{}
	for _, c := range directCases(t) {
		cases[strings.TrimSuffix(c.name, "#0")] = c
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tt.schema), func(t *testing.T) {
			c, ok := cases[tt.schema]
			if !ok {
				t.Fatalf("no schema %q", tt.schema)
			}
			msg, err := c.s.Encode(tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			direct, viaGoavro, err1, err2 := decodeBoth(c.s, msg[headerLen:])
			if err1 != nil || !samePlain(direct, want) {
				t.Errorf("direct decode = %#v, %v; want %#v", direct, err1, want)
			}
			if err2 != nil || !samePlain(viaGoavro, want) {
				t.Errorf("goavro decode = %#v, %v; want %#v", viaGoavro, err2, want)
			}
		})
	}
}

// zigzag appends the Avro encoding of v.
func zigzag(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// TestDirectDecodeMalformed checks that malformed bodies fail with
// ErrMalformed on the direct path, as they do through goavro.
func TestDirectDecodeMalformed(t *testing.T) {
	schemas := map[string]*Schema{}
	for _, c := range directCases(t) {
		schemas[c.name] = c.s
	}
	prim := schemas["primitives"]
	valid, err := prim.Encode(map[string]any{
		"n": nil, "b": true, "i": int32(1), "l": int64(2), "f": float32(1), "d": 2.0,
		"by": []byte("ab"), "s": "cd", "tm": time.UnixMilli(5).UTC(), "tu": time.UnixMicro(6).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	body := valid[headerLen:]
	// body: b(1) i(1) l(1) f(4) d(8) by(1+2) s(1+2) tm(1) tu(1)
	const (
		offB  = 0
		offI  = 1
		offBy = 15
		offS  = 18
	)
	if body[offBy] != 4 || body[offS] != 4 || len(body) != 23 {
		t.Fatalf("unexpected layout %x", body)
	}
	with := func(off int, repl ...byte) []byte {
		return slices.Concat(body[:off], repl, body[off+1:])
	}
	overlong := append(bytes.Repeat([]byte{0x80}, 10), 0)
	tests := []struct {
		name     string
		schema   string
		body     []byte
		wantText string
		goavroOK bool // goavro accepts it (the direct decoder is stricter)
	}{
		{"empty", "primitives", nil, "unexpected end of data", false},
		{"truncated string", "primitives", body[:offS+2], `field "s": length 2 exceeds the 1 bytes left`, false},
		{"truncated double", "primitives", body[:10], `field "d": unexpected end of data`, false},
		{"trailing byte", "primitives", append(slices.Clone(body), 0), "1 trailing bytes", false},
		{"boolean 2", "primitives", with(offB, 2), "boolean", false},
		{"int varint truncated", "primitives", slices.Concat(body[:offI], []byte{0x80}), `field "i": unexpected end of data`, false},
		{"varint 11 bytes", "primitives", slices.Concat(body[:offI], overlong, body[offI+1:]), "varint longer than 10 bytes", true},
		{"negative bytes length", "primitives", with(offBy, zigzag(nil, -1)...), "negative length -1", false},
		{"bytes length past end", "primitives", with(offBy, zigzag(nil, 100)...), "length 100 exceeds", false},
		{"string length MaxInt64", "primitives", with(offS, zigzag(nil, math.MaxInt64)...), "exceeds", false},
		{"string length MinInt64", "primitives", with(offS, zigzag(nil, math.MinInt64)...), "negative length", false},
		{"union index 2 of 2", "nullable", zigzag(nil, 2), "union index 2 out of range", false},
		{"union index -1", "nullable", zigzag(nil, -1), "union index -1 out of range", false},
		{"union index MaxInt64", "multi", zigzag(nil, math.MaxInt64), "out of range", false},
		{"enum index 4 of 4", "enums", zigzag(nil, 4), "enum t.Suit: index 4 out of range", false},
		{"enum index -1", "enums", zigzag(nil, -1), "index -1 out of range", false},
		{"nested enum index", "nullable", slices.Concat(
			zigzag(nil, 0), zigzag(nil, 0), zigzag(nil, 1), zigzag(nil, 0), zigzag(nil, 1), // b i l f d: null
			zigzag(nil, 0), zigzag(nil, 1), zigzag(nil, 0), zigzag(nil, 1), // by s tm tu: null
			zigzag(nil, 1), zigzag(nil, 3)), // e: branch 1, symbol 3 of 3
			`field "e": union branch 1: enum t.Color: index 3 out of range`, false},
		{"empty record, trailing", "empty", []byte{0}, "1 trailing bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schemas[tt.schema]
			direct, viaGoavro, err1, err2 := decodeBoth(s, tt.body)
			if !errors.Is(err1, ErrMalformed) || direct != nil {
				t.Fatalf("direct decode = %v, %v; want an ErrMalformed error", direct, err1)
			}
			if !strings.HasPrefix(err1.Error(), "avro: decode "+s.String()+": ") || !strings.Contains(err1.Error(), tt.wantText) {
				t.Errorf("direct error %q: want prefix %q and %q", err1, "avro: decode "+s.String()+": ", tt.wantText)
			}
			if tt.goavroOK != (err2 == nil) {
				t.Errorf("goavro decode = %v, %v; want success %v", viaGoavro, err2, tt.goavroOK)
			}
			if err2 != nil && !errors.Is(err2, ErrMalformed) {
				t.Errorf("goavro error %v does not wrap ErrMalformed", err2)
			}
		})
	}
}

// TestDirectDecodeMutations decodes every prefix and many one-byte
// mutations of valid bodies both ways and requires the same outcome.
func TestDirectDecodeMutations(t *testing.T) {
	for i, c := range directCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for _, body := range randomBodies(t, c.s, uint64(100+i), 20) {
				for n := range len(body) {
					checkAgree(t, c.s, body[:n])
				}
				for pos := range body {
					for _, v := range []byte{0, 1, 2, 3, 0x7f, 0x80, 0xff, body[pos] ^ 1} {
						m := slices.Clone(body)
						m[pos] = v
						checkAgree(t, c.s, m)
					}
				}
				checkAgree(t, c.s, append(slices.Clone(body), 0))
			}
		})
	}
}

// TestDirectDecodeNonCanonical covers encodings no Avro encoder writes but
// goavro reads: padded varints (up to 10 bytes both read them; longer ones
// only goavro, see checkAgree) and ints outside the int32 range (goavro
// keeps the low 32 bits, and so does the direct decoder).
func TestDirectDecodeNonCanonical(t *testing.T) {
	schemas := map[string]*Schema{}
	for _, c := range directCases(t) {
		schemas[c.name] = c.s
	}
	// pad re-encodes the varint at the start of b with extra redundant
	// continuation bytes.
	pad := func(b []byte, extra int) []byte {
		n := 0
		for b[n]&0x80 != 0 {
			n++
		}
		out := slices.Clone(b[:n+1])
		out[n] |= 0x80
		for range extra - 1 {
			out = append(out, 0x80)
		}
		return slices.Concat(out, []byte{0}, b[n+1:])
	}
	tx := schemas["billing.Transaction#0"]
	txBody := randomBodies(t, tx, 7, 1)[0]
	prim := schemas["primitives"]
	primMsg, err := prim.Encode(map[string]any{
		"n": nil, "b": true, "i": int32(-3), "l": int64(1) << 50, "f": float32(1), "d": 2.0,
		"by": []byte("ab"), "s": "cd", "tm": time.UnixMilli(5).UTC(), "tu": time.UnixMicro(6).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	primBody := primMsg[headerLen:]
	const offI = 1 // primitives: boolean, then the int (one byte)
	if primBody[offI] != 5 {
		t.Fatalf("unexpected layout %x", primBody)
	}
	for extra := 1; extra <= 14; extra++ {
		t.Run(fmt.Sprintf("string length padded by %d", extra), func(t *testing.T) {
			checkAgree(t, tx, pad(txBody, extra))
		})
		t.Run(fmt.Sprintf("int padded by %d", extra), func(t *testing.T) {
			checkAgree(t, prim, slices.Concat(primBody[:offI], pad(primBody[offI:], extra)))
		})
	}
	for _, v := range []int64{math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxUint32, 1 << 40, -1 << 40, math.MaxInt64, math.MinInt64} {
		t.Run(fmt.Sprintf("int %d", v), func(t *testing.T) {
			body := slices.Concat(primBody[:offI], zigzag(nil, v), primBody[offI+1:])
			rec, err := decodeBodyWith(prim, nil, slices.Clone(body), true)
			if err != nil || rec["i"] != int32(v) {
				t.Errorf("direct decode of int %d = %v, %v; want int32 %d", v, rec["i"], err, int32(v))
			}
			checkAgree(t, prim, body)
		})
	}
}

// checkAgree fails t unless the direct decoder and goavro agree on body:
// both fail (with ErrMalformed), or both succeed with equal values and the
// direct result does not alias body. The one allowed difference is a
// varint longer than 10 bytes, which goavro reads and the direct decoder
// rejects; then body with every varint rewritten in its shortest form must
// decode directly to goavro's value.
func checkAgree(t testing.TB, s *Schema, body []byte) {
	t.Helper()
	in := slices.Clone(body)
	direct, err1 := decodeBodyWith(s, nil, in, true)
	viaGoavro, err2 := decodeBodyWith(s, nil, body, false)
	switch {
	case err1 != nil && err2 != nil:
		if !errors.Is(err1, ErrMalformed) {
			t.Fatalf("direct decode %x: error %v does not wrap ErrMalformed", body, err1)
		}
		return
	case err1 != nil && errors.Is(err1, errVarintOverflow):
		short, ok := shortestVarints(s.root, body)
		if !ok {
			t.Fatalf("direct decode %x: %v; goavro accepts it but it has no overlong varint on goavro's path", body, err1)
		}
		if direct, err1 = decodeBodyWith(s, nil, short, true); err1 != nil || !samePlain(direct, viaGoavro) {
			t.Fatalf("direct decode %x (from %x) = %#v, %v; goavro read the original as %#v", short, body, direct, err1, viaGoavro)
		}
		return
	case err1 != nil || err2 != nil:
		t.Fatalf("decode %x: direct %#v, %v; goavro %#v, %v", body, direct, err1, viaGoavro, err2)
	}
	if !samePlain(direct, viaGoavro) {
		t.Fatalf("decode %x:\ndirect %#v\ngoavro %#v", body, direct, viaGoavro)
	}
	clear(in)
	if !samePlain(direct, viaGoavro) {
		t.Fatalf("decode %x: direct result changed with its input:\ndirect %#v\ngoavro %#v", body, direct, viaGoavro)
	}
}

// shortestVarints walks body as goavro reads a value of type n, with
// varints of any length, and returns it with every varint rewritten in its
// shortest form (the value goavro reads: bits past 64 dropped). ok is false
// if goavro would not read body or no varint needed rewriting.
func shortestVarints(n *node, body []byte) (out []byte, ok bool) {
	w := varintRewriter{in: body}
	if !w.value(n) || w.off != len(body) || !w.changed {
		return nil, false
	}
	return w.out, true
}

// varintRewriter is the state of shortestVarints.
type varintRewriter struct {
	in      []byte
	off     int
	out     []byte
	changed bool
}

// varint reads a varint of any length the way goavro's longNativeFromBinary
// does and appends its shortest encoding.
func (w *varintRewriter) varint() (int64, bool) {
	var u uint64
	var shift uint
	for start := w.off; w.off < len(w.in); {
		c := w.in[w.off]
		w.off++
		u |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			v := int64(u>>1) ^ -int64(u&1)
			w.out = zigzag(w.out, v)
			w.changed = w.changed || w.off-start > 10
			return v, true
		}
		shift += 7
	}
	return 0, false
}

// take copies n bytes.
func (w *varintRewriter) take(n int64) bool {
	if n < 0 || n > int64(len(w.in)-w.off) {
		return false
	}
	w.out = append(w.out, w.in[w.off:w.off+int(n)]...)
	w.off += int(n)
	return true
}

func (w *varintRewriter) value(n *node) bool {
	switch n.kind {
	case kNull:
		return true
	case kBoolean:
		return w.off < len(w.in) && w.in[w.off] <= 1 && w.take(1)
	case kInt, kLong:
		_, ok := w.varint()
		return ok
	case kFloat:
		return w.take(4)
	case kDouble:
		return w.take(8)
	case kBytes, kString:
		l, ok := w.varint()
		return ok && w.take(l)
	case kEnum:
		i, ok := w.varint()
		return ok && i >= 0 && i < int64(len(n.symbols))
	case kRecord:
		for _, f := range n.fields {
			if !w.value(f.typ) {
				return false
			}
		}
		return true
	case kUnion:
		i, ok := w.varint()
		return ok && i >= 0 && i < int64(len(n.branches)) && w.value(n.branches[i])
	}
	return false
}

// TestDirectDecodeAllocations checks the direct decoder's allocation count
// for a Transaction, the point of having it, and that a huge length read
// from the data allocates nothing.
func TestDirectDecodeAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	repo, err := LoadDir("../../schemas")
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := repo.Schema("billing.Transaction")
	at := time.Date(2024, 3, 1, 12, 30, 0, 0, time.UTC)
	msg, err := tx.Encode(map[string]any{
		"transaction_id": "tx-0001", "client_id": "client-42", "amount_minor": int64(12_345),
		"currency": "EUR", "status": "BILLED", "description": "Coffee beans, 1kg",
		"created_at": at, "updated_at": at, "billed_at": at, "billing_cycle_id": "cycle-2024-03",
	})
	if err != nil {
		t.Fatal(err)
	}
	body := msg[headerLen:]
	direct := testing.AllocsPerRun(100, func() { _, _ = decodeBodyWith(tx, nil, body, true) })
	viaGoavro := testing.AllocsPerRun(100, func() { _, _ = decodeBodyWith(tx, nil, body, false) })
	// 1 body string, 6 boxed strings, 1 boxed long, 3 boxed times, the map.
	if direct > 16 || direct >= viaGoavro/2 {
		t.Errorf("direct decode: %v allocations per Transaction, goavro %v; want at most 16", direct, viaGoavro)
	}

	huge := slices.Concat(zigzag(nil, math.MaxInt32), []byte("short"))
	s, err := newSchema(`{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"}]}`, "")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = decodeBodyWith(s, nil, huge, true)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("decode of a 2 GB bytes value in 10 bytes: error %v, want ErrMalformed", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<16 {
		t.Errorf("rejecting a huge length allocated %d bytes", grew)
	}
}

// FuzzDirectDecode checks that the direct decoder and goavro agree on
// arbitrary bodies (see checkAgree) for every supported test schema; which
// picks the schema.
func FuzzDirectDecode(f *testing.F) {
	cases := directCases(f)
	for i, c := range cases {
		for j, body := range randomBodies(f, c.s, uint64(1000+i), 4) {
			f.Add(uint8(i), body)
			if j == 0 {
				f.Add(uint8(i), body[:len(body)/2])
				f.Add(uint8(i), append(slices.Clone(body), 0))
			}
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), slices.Concat(bytes.Repeat([]byte{0xff}, 10), []byte{1}))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		checkAgree(t, cases[int(which)%len(cases)].s, body)
	})
}

// BenchmarkDecodeDirectVsGoavro decodes the BenchmarkDecode Transaction
// body through each path, so one run compares them.
func BenchmarkDecodeDirectVsGoavro(b *testing.B) {
	repo, err := LoadDir("../../schemas")
	if err != nil {
		b.Fatal(err)
	}
	tx, _ := repo.Schema("billing.Transaction")
	msg, err := tx.Encode(map[string]any{
		"transaction_id": "tx-0001", "client_id": "client-42", "amount_minor": int64(12_345),
		"currency": "EUR", "status": "BILLED", "description": "Coffee beans, 1kg",
		"created_at": time.Date(2024, 3, 1, 12, 30, 0, 123_000_000, time.UTC),
		"updated_at": time.Date(2024, 3, 2, 8, 0, 0, 0, time.UTC),
		"billed_at":  time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), "billing_cycle_id": "cycle-2024-03",
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, direct := range []bool{true, false} {
		name := map[bool]string{true: "direct", false: "goavro"}[direct]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeBodyWith(tx, nil, msg[headerLen:], direct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
