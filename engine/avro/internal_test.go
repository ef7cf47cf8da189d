package avro

import (
	"strings"
	"testing"
)

// Fingerprint vectors from the Avro specification's test suite
// (share/test/data/schema-tests.txt), as signed 64-bit values.
func TestRabinVectors(t *testing.T) {
	tests := []struct {
		canonical string
		want      int64
	}{
		{`"null"`, 7195948357588979594},
		{`"boolean"`, -6970731678124411036},
		{`"int"`, 8247732601305521295},
		{`"long"`, -3434872931120570953},
		{`"float"`, 5583340709985441680},
		{`"double"`, -8181574048448539266},
		{`"bytes"`, 5746618253357095269},
		{`"string"`, -8142146995180207161},
		{`[]`, -1241056759729112623},
		{`["int","boolean"]`, 5392556393470105090},
		{`{"type":"map","values":"string"}`, -8732877298790414990},
	}
	for _, tt := range tests {
		if got := int64(rabin([]byte(tt.canonical))); got != tt.want {
			t.Errorf("rabin(%s) = %d, want %d", tt.canonical, got, tt.want)
		}
	}
}

func TestCanonicalForm(t *testing.T) {
	tests := []struct {
		schema    string
		canonical string
		want      int64 // 0: not in the Avro test suite
	}{
		{`{"fields":[], "type":"record", "name":"foo"}`,
			`{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`,
			`{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
		{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`,
			`{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
		{`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`,
			`{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`,
			`{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
		{`{"fields":[{"type":"boolean","aliases":[],"name":"f1","default":true},{"order":"descending","name":"f2","doc":"Hello","type":"int"}],"type":"record","name":"foo"}`,
			`{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
		{`{"name":"PigValue","type":"record","fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
			`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
		// Logical types reduce to their primitive, as in the Java reference
		// implementation (goavro keeps {"type":"long"} here).
		{`{"type":"record","name":"T","namespace":"n","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`,
			`{"name":"n.T","type":"record","fields":[{"name":"at","type":"long"}]}`, 0},
		// A nested namespace replaces the enclosing one (goavro appends it).
		{`{"type":"record","name":"T","namespace":"a","fields":[{"name":"u","type":{"type":"record","name":"U","namespace":"b","fields":[]}},{"name":"v","type":"b.U"}]}`,
			`{"name":"a.T","type":"record","fields":[{"name":"u","type":{"name":"b.U","type":"record","fields":[]}},{"name":"v","type":"b.U"}]}`, 0},
		{`{"type":"record","name":"T","fields":[{"name":"e","type":{"type":"enum","name":"E","namespace":"x.y.z","symbols":["A1","A2"]}},{"name":"f","type":{"type":"fixed","name":"F","size":15}},{"name":"a","type":{"type":"array","items":{"type":"null"}}}]}`,
			`{"name":"T","type":"record","fields":[{"name":"e","type":{"name":"x.y.z.E","type":"enum","symbols":["A1","A2"]}},{"name":"f","type":{"name":"F","type":"fixed","size":15}},{"name":"a","type":{"type":"array","items":"null"}}]}`, 0},
	}
	for _, tt := range tests {
		s, err := newSchema(tt.schema, "")
		if err != nil {
			t.Errorf("newSchema(%s): %v", tt.schema, err)
			continue
		}
		if s.Canonical() != tt.canonical {
			t.Errorf("canonical form of %s:\n got %s\nwant %s", tt.schema, s.Canonical(), tt.canonical)
		}
		if tt.want != 0 && int64(s.Fingerprint) != tt.want {
			t.Errorf("fingerprint of %s = %d, want %d", tt.canonical, int64(s.Fingerprint), tt.want)
		}
		if want := rabin([]byte(tt.canonical)); s.Fingerprint != want {
			t.Errorf("fingerprint of %s = %x, want rabin(canonical) %x", tt.canonical, s.Fingerprint, want)
		}
	}
}

// TestPlanCached checks that the projection plan of a (writer, reader) pair
// is built once and that a schema reading itself needs no projection.
func TestPlanCached(t *testing.T) {
	r, err := LoadDir("../../schemas")
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := r.Schema("billing.Transaction")
	old := r.Versions("billing.Transaction")[1]
	p1, err1 := cur.planFor(old)
	p2, err2 := cur.planFor(old)
	if err1 != nil || err2 != nil || p1 != p2 {
		t.Errorf("planFor twice = %p, %v and %p, %v; want the same cached plan", p1, err1, p2, err2)
	}
	client, _ := r.Schema("billing.Client")
	if !client.self.noop() {
		t.Errorf("Client (no unions) self plan is not a no-op: %+v", client.self)
	}
	if len(cur.self.ops) != 2 || len(cur.self.drops)+len(cur.self.defaults) != 0 {
		t.Errorf("Transaction self plan = %+v; want only the two union fields unwrapped", cur.self)
	}
	if !strings.Contains(cur.Canonical(), `"billed_at","type":["null","long"]`) {
		t.Errorf("unexpected canonical form %s", cur.Canonical())
	}
}
