package avro_test

import (
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/billing-engine/billing/engine/avro"
)

const schemasDir = "../../schemas"

var (
	created = time.Date(2024, 3, 1, 12, 30, 0, 123_000_000, time.UTC)
	updated = time.Date(2024, 3, 2, 8, 0, 0, 0, time.UTC)
	billed  = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
)

func loadSchemas(t testing.TB) *avro.Registry {
	t.Helper()
	reg, err := avro.LoadDir(schemasDir)
	if err != nil {
		t.Fatalf("LoadDir(%q): %v", schemasDir, err)
	}
	return reg
}

func mustSchema(t testing.TB, reg *avro.Registry, name string) *avro.Schema {
	t.Helper()
	s, err := reg.Schema(name)
	if err != nil {
		t.Fatalf("Schema(%q): %v", name, err)
	}
	return s
}

// v1Transaction returns the older (writer-only) version of billing.Transaction.
func v1Transaction(t testing.TB, reg *avro.Registry) *avro.Schema {
	t.Helper()
	cur := mustSchema(t, reg, "billing.Transaction")
	for _, s := range reg.Versions("billing.Transaction") {
		if s != cur {
			return s
		}
	}
	t.Fatal("no older version of billing.Transaction")
	return nil
}

func transaction() map[string]any {
	return map[string]any{
		"transaction_id":   "tx-0001",
		"client_id":        "client-42",
		"amount_minor":     int64(12_345),
		"currency":         "EUR",
		"status":           "BILLED",
		"description":      "Coffee beans, 1kg",
		"created_at":       created,
		"updated_at":       updated,
		"billed_at":        billed,
		"billing_cycle_id": "cycle-2024-03",
	}
}

func v1Record() map[string]any {
	return map[string]any{
		"transaction_id": "tx-0002",
		"client_id":      "client-7",
		"amount_minor":   int64(-500),
		"currency":       "JPY",
		"status":         "REFUNDED",
		"created_at":     created,
		"updated_at":     updated,
	}
}

func TestRoundTripTransaction(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")

	unbilled := transaction()
	unbilled["billed_at"] = nil
	unbilled["billing_cycle_id"] = nil
	millis := transaction()
	millis["billed_at"] = billed.UnixMilli() // int64 millis are accepted too
	noDescription := transaction()
	delete(noDescription, "description")

	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"billed", transaction(), transaction()},
		{"unbilled nulls", unbilled, unbilled},
		{"timestamp as int64 millis", millis, transaction()},
		{"missing field with default", noDescription, func() map[string]any {
			m := transaction()
			m["description"] = ""
			return m
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := maps.Clone(tt.in)
			b, err := tx.Encode(tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !reflect.DeepEqual(tt.in, in) {
				t.Errorf("Encode modified its input: got %v, want %v", tt.in, in)
			}
			fp, err := avro.Fingerprint(b)
			if err != nil || fp != tx.Fingerprint {
				t.Errorf("Fingerprint(encoded) = %x, %v; want %x, nil", fp, err, tx.Fingerprint)
			}
			got, err := reg.Decode(tx, b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(Encode(rec)):\n got %#v\nwant %#v", got, tt.want)
			}
			nilReader, err := reg.Decode(nil, b)
			if err != nil || !reflect.DeepEqual(nilReader, tt.want) {
				t.Errorf("Decode(nil reader) = %v, %v; want %v", nilReader, err, tt.want)
			}
		})
	}
}

func TestAppendEncode(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	prefix := []byte("key=")
	b, err := tx.AppendEncode(prefix, transaction())
	if err != nil {
		t.Fatalf("AppendEncode: %v", err)
	}
	if !strings.HasPrefix(string(b), "key=") {
		t.Fatalf("AppendEncode lost dst: got prefix %q, want %q", b[:4], "key=")
	}
	whole, err := tx.Encode(transaction())
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if got := b[len(prefix):]; string(got) != string(whole) {
		t.Errorf("AppendEncode appended %x, want %x", got, whole)
	}
	bad := transaction()
	delete(bad, "currency")
	out, err := tx.AppendEncode(prefix, bad)
	if err == nil || string(out) != "key=" {
		t.Errorf("AppendEncode(invalid) = %q, %v; want %q and an error", out, err, "key=")
	}
}

func TestDecodeOlderWriter(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "billing.Transaction")
	v1 := v1Transaction(t, reg)
	if v1.Fingerprint == tx.Fingerprint {
		t.Fatalf("v1 and current share fingerprint %x", tx.Fingerprint)
	}

	b, err := v1.Encode(v1Record())
	if err != nil {
		t.Fatalf("v1 Encode: %v", err)
	}
	got, err := reg.Decode(tx, b)
	if err != nil {
		t.Fatalf("Decode(v1 record as current): %v", err)
	}
	want := v1Record()
	want["description"] = ""
	want["billed_at"] = nil
	want["billing_cycle_id"] = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(v1 record as current):\n got %#v\nwant %#v", got, want)
	}

	// The other way round: the current writer read with v1 drops fields.
	b, err = tx.Encode(transaction())
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err = reg.Decode(v1, b)
	if err != nil {
		t.Fatalf("Decode(current record as v1): %v", err)
	}
	want = transaction()
	for _, f := range []string{"description", "billed_at", "billing_cycle_id"} {
		delete(want, f)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(current record as v1):\n got %#v\nwant %#v", got, want)
	}

	// Defaults are fresh per record: changing one decoded record must not
	// leak into the next.
	first, _ := reg.Decode(tx, mustEncode(t, v1, v1Record()))
	first["description"] = "changed"
	second, _ := reg.Decode(tx, mustEncode(t, v1, v1Record()))
	if second["description"] != "" {
		t.Errorf("second decode description = %q, want %q", second["description"], "")
	}
}

func mustEncode(t testing.TB, s *avro.Schema, rec map[string]any) []byte {
	t.Helper()
	b, err := s.Encode(rec)
	if err != nil {
		t.Fatalf("Encode(%s): %v", s.Name, err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	valid := mustEncode(t, tx, transaction())

	unknown := slices.Clone(valid)
	unknown[2] ^= 0xff // flip a fingerprint byte
	trailing := append(slices.Clone(valid), 0)
	badUnion := mustEncode(t, tx, transaction())
	// billing_cycle_id is the last field: union index 1 (zig-zag 2), then
	// the string. Make the index 5, which does not exist.
	idx := len(badUnion) - len("cycle-2024-03") - 2
	if badUnion[idx] != 2 {
		t.Fatalf("union index byte = %d, want 2 (layout changed?)", badUnion[idx])
	}
	badUnion[idx] = 10

	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"nil", nil, avro.ErrNotSingleObject},
		{"short", []byte{0xC3, 0x01, 1, 2, 3}, avro.ErrNotSingleObject},
		{"wrong magic", append([]byte{0xC3, 0x02}, valid[2:]...), avro.ErrNotSingleObject},
		{"plain JSON", []byte(`{"transaction_id":"x"}`), avro.ErrNotSingleObject},
		{"unknown fingerprint", unknown, avro.ErrUnknownFingerprint},
		{"header only", valid[:10], avro.ErrMalformed},
		{"truncated body", valid[:len(valid)-3], avro.ErrMalformed},
		{"trailing byte", trailing, avro.ErrMalformed},
		{"bad union index", badUnion, avro.ErrMalformed},
		{"different record", mustEncode(t, mustSchema(t, reg, "Client"), map[string]any{
			"client_id": "c", "name": "n", "email": "e", "status": "ACTIVE", "created_at": created, "updated_at": updated,
		}), avro.ErrIncompatible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reg.Decode(tx, tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Decode result = %v, want nil on error", got)
			}
			if !strings.HasPrefix(err.Error(), "avro: ") {
				t.Errorf("error %q lacks the %q prefix", err, "avro: ")
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    uint64
		wantErr bool
	}{
		{"header", []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 0x0807060504030201, false},
		{"header and body", []byte{0xC3, 0x01, 0xff, 0, 0, 0, 0, 0, 0, 0, 42}, 0xff, false},
		{"nine bytes", []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7}, 0, true},
		{"wrong marker", []byte{0x01, 0xC3, 1, 2, 3, 4, 5, 6, 7, 8}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := avro.Fingerprint(tt.in)
			if tt.wantErr {
				if !errors.Is(err, avro.ErrNotSingleObject) {
					t.Errorf("Fingerprint error = %v, want ErrNotSingleObject", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Fingerprint = %#x, %v; want %#x, nil", got, err, tt.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	inv := mustSchema(t, reg, "Invoice")
	with := func(k string, v any) map[string]any {
		m := transaction()
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := transaction()
		delete(m, k)
		return m
	}
	tests := []struct {
		name     string
		schema   *avro.Schema
		in       map[string]any
		wantText string // the error must mention this
	}{
		{"missing required", tx, without("amount_minor"), `"amount_minor"`},
		{"missing required timestamp", tx, without("created_at"), `"created_at"`},
		{"unknown field", tx, with("amount", int64(1)), `"amount"`},
		{"float money", tx, with("amount_minor", 12.34), `"amount_minor"`},
		{"whole float money", tx, with("amount_minor", 1200.0), `"amount_minor"`},
		{"float timestamp", tx, with("created_at", 1.7e12), `"created_at"`},
		{"string for long", tx, with("amount_minor", "12"), `"amount_minor"`},
		{"wrong union type", tx, with("billed_at", "yesterday"), `"billed_at"`},
		{"nested missing", inv, map[string]any{
			"invoice_id": "i", "invoice_number": "1", "client_id": "c", "billing_cycle_id": "b",
			"currency": "EUR", "period_start": created, "period_end": updated,
			"lines":          []any{map[string]any{"transaction_id": "t", "description": "d"}},
			"subtotal_minor": int64(0), "total_minor": int64(0), "created_at": created,
		}, `"amount_minor"`},
		{"nested float", inv, map[string]any{
			"invoice_id": "i", "invoice_number": "1", "client_id": "c", "billing_cycle_id": "b",
			"currency": "EUR", "period_start": created, "period_end": updated,
			"lines":          []any{map[string]any{"transaction_id": "t", "description": "d", "amount_minor": 5.0}},
			"subtotal_minor": int64(0), "total_minor": int64(0), "created_at": created,
		}, `"amount_minor"`},
		{"not a record", inv, map[string]any{
			"invoice_id": "i", "invoice_number": "1", "client_id": "c", "billing_cycle_id": "b",
			"currency": "EUR", "period_start": created, "period_end": updated,
			"lines": []any{"line"}, "subtotal_minor": int64(0), "total_minor": int64(0), "created_at": created,
		}, `"lines"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.schema.Encode(tt.in)
			if !errors.Is(err, avro.ErrInvalidRecord) {
				t.Fatalf("Encode = %x, %v; want an ErrInvalidRecord error", b, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Encode error %q does not mention %s", err, tt.wantText)
			}
		})
	}
}

func TestInvoiceRoundTrip(t *testing.T) {
	reg := loadSchemas(t)
	inv := mustSchema(t, reg, "Invoice")
	in := map[string]any{
		"invoice_id": "inv-1", "invoice_number": "2024-000123", "client_id": "client-42",
		"billing_cycle_id": "cycle-2024-03", "currency": "EUR",
		"period_start": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		"period_end":   time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC),
		"lines": []map[string]any{ // []map[string]any is accepted for arrays of records
			{"transaction_id": "tx-1", "description": "Beans", "amount_minor": int64(1500)},
			{"transaction_id": "tx-2", "description": "Refund", "amount_minor": int64(-200), "kind": "CREDIT"},
		},
		"subtotal_minor": int64(1300), "total_minor": int64(1300), "created_at": created,
	}
	got, err := reg.Decode(inv, mustEncode(t, inv, in))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := maps.Clone(in)
	want["credits_minor"] = int64(0)
	charge := maps.Clone(in["lines"].([]map[string]any)[0])
	charge["kind"] = "CHARGE" // the field's default fills a line that lacks it
	want["lines"] = []any{charge, in["lines"].([]map[string]any)[1]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("invoice round trip:\n got %#v\nwant %#v", got, want)
	}
}

func TestSchemaIntrospection(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	inv := mustSchema(t, reg, "Invoice")

	var names []string
	for _, f := range tx.Fields() {
		names = append(names, f.Name)
	}
	wantNames := []string{"transaction_id", "client_id", "amount_minor", "currency", "status",
		"description", "created_at", "updated_at", "billed_at", "billing_cycle_id"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("Transaction fields = %v, want %v", names, wantNames)
	}

	tests := []struct {
		schema *avro.Schema
		path   string
		want   avro.Field
		ok     bool
	}{
		{tx, "amount_minor", avro.Field{Name: "amount_minor", Type: avro.Long}, true},
		{tx, "description", avro.Field{Name: "description", Type: avro.String, Default: "", HasDefault: true}, true},
		{tx, "created_at", avro.Field{Name: "created_at", Type: avro.Timestamp, Logical: "timestamp-millis"}, true},
		{tx, "billed_at", avro.Field{Name: "billed_at", Type: avro.Timestamp, Nullable: true, Logical: "timestamp-millis", HasDefault: true}, true},
		{tx, "billing_cycle_id", avro.Field{Name: "billing_cycle_id", Type: avro.String, Nullable: true, HasDefault: true}, true},
		{tx, "nope", avro.Field{}, false},
		{tx, "amount_minor.x", avro.Field{}, false},
		{inv, "lines", avro.Field{Name: "lines", Type: avro.Array, Elem: avro.Record}, true},
		{inv, "lines.amount_minor", avro.Field{Name: "amount_minor", Type: avro.Long}, true},
		{inv, "lines.nope", avro.Field{}, false},
		{inv, "credits_minor", avro.Field{Name: "credits_minor", Type: avro.Long, Default: int64(0), HasDefault: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.schema.Name+"/"+tt.path, func(t *testing.T) {
			got, ok := tt.schema.Field(tt.path)
			got.Doc = "" // docs are checked below
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Field(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
	for _, s := range []*avro.Schema{tx, inv, mustSchema(t, reg, "Client")} {
		for _, f := range s.Fields() {
			if f.Doc == "" {
				t.Errorf("%s.%s has no doc", s.Name, f.Name)
			}
			if f.Type == avro.Float || f.Type == avro.Double {
				t.Errorf("%s.%s is a %s; money must never be a float", s.Name, f.Name, f.Type)
			}
		}
	}
	if got := avro.Timestamp.String(); got != "timestamp" {
		t.Errorf("Timestamp.String() = %q, want %q", got, "timestamp")
	}
}

func TestRegistryLookup(t *testing.T) {
	reg := avro.NewRegistry()
	a, err := reg.Add(`{"type":"record","name":"Event","namespace":"a","fields":[{"name":"id","type":"string"}]}`, true)
	if err != nil {
		t.Fatalf("Add a.Event: %v", err)
	}
	if _, err := reg.Add(`{"type":"record","name":"Event","namespace":"b","fields":[{"name":"id","type":"string"}]}`, true); err != nil {
		t.Fatalf("Add b.Event: %v", err)
	}
	if _, err := reg.Add(`{"type":"record","name":"Only","namespace":"a","fields":[]}`, true); err != nil {
		t.Fatalf("Add a.Only: %v", err)
	}
	again, err := reg.Add(`{"type":"record","name":"Event","namespace":"a","doc":"same shape","fields":[{"name":"id","type":"string"}]}`, true)
	if err != nil || again != a {
		t.Errorf("re-Add of same fingerprint = %v, %v; want the registered schema", again, err)
	}
	_, err = reg.Add(`{"type":"record","name":"Event","namespace":"a","fields":[{"name":"n","type":"int"}]}`, true)
	if !errors.Is(err, avro.ErrInvalidSchema) {
		t.Errorf("second current a.Event: got %v, want ErrInvalidSchema", err)
	}
	if _, err := reg.Add(`{"type":"record","name":"Event","namespace":"a","fields":[{"name":"n","type":"int"}]}`, false); err != nil {
		t.Errorf("older a.Event: %v", err)
	}

	tests := []struct {
		name    string
		want    string
		wantErr error
	}{
		{"a.Event", "a.Event", nil},
		{"b.Event", "b.Event", nil},
		{"Only", "a.Only", nil},
		{"Event", "", avro.ErrUnknownSchema}, // ambiguous
		{"c.Event", "", avro.ErrUnknownSchema},
		{"Missing", "", avro.ErrUnknownSchema},
	}
	for _, tt := range tests {
		s, err := reg.Schema(tt.name)
		if !errors.Is(err, tt.wantErr) || (err == nil && s.Name != tt.want) {
			t.Errorf("Schema(%q) = %v, %v; want %s, %v", tt.name, s, err, tt.want, tt.wantErr)
		}
	}
	if got, want := reg.Names(), []string{"a.Event", "a.Only", "b.Event"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if got := len(reg.Versions("a.Event")); got != 2 {
		t.Errorf("len(Versions(a.Event)) = %d, want 2", got)
	}
	if _, err := reg.Lookup(a.Fingerprint); err != nil {
		t.Errorf("Lookup(a.Event fingerprint): %v", err)
	}
	if _, err := reg.Lookup(1); !errors.Is(err, avro.ErrUnknownFingerprint) {
		t.Errorf("Lookup(1) error = %v, want ErrUnknownFingerprint", err)
	}

	var zero avro.Registry
	if _, err := zero.Decode(nil, []byte{0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, avro.ErrUnknownFingerprint) {
		t.Errorf("zero Registry Decode error = %v, want ErrUnknownFingerprint", err)
	}
}

func TestAddInvalid(t *testing.T) {
	tests := []struct {
		name   string
		schema string
	}{
		{"not JSON", `{"type":`},
		{"not a record", `"string"`},
		{"unknown type", `{"type":"record","name":"R","fields":[{"name":"a","type":"money"}]}`},
		{"bad default", `{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":"zero"}]}`},
		{"duplicate field", `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"a","type":"int"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := avro.NewRegistry().Add(tt.schema, true); !errors.Is(err, avro.ErrInvalidSchema) {
				t.Errorf("Add(%s) error = %v, want ErrInvalidSchema", tt.schema, err)
			}
		})
	}
}

// TestResolution covers the Avro resolution rules Decode applies between a
// writer and a reader schema.
func TestResolution(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
	}
	tests := []struct {
		name    string
		writer  string
		reader  string
		in      map[string]any
		want    map[string]any
		wantErr error
	}{
		{
			name:   "int to long, float to double",
			writer: rec(`{"name":"n","type":"int"},{"name":"x","type":"float"}`),
			reader: rec(`{"name":"n","type":"long"},{"name":"x","type":"double"}`),
			in:     map[string]any{"n": int32(7), "x": float32(1.5)},
			want:   map[string]any{"n": int64(7), "x": 1.5},
		},
		{
			name:   "T read as [null,T]",
			writer: rec(`{"name":"s","type":"string"},{"name":"n","type":"long"}`),
			reader: rec(`{"name":"s","type":["null","string"],"default":null},{"name":"n","type":["long","null"]}`),
			in:     map[string]any{"s": "x", "n": int64(3)},
			want:   map[string]any{"s": "x", "n": int64(3)},
		},
		{
			name:   "int read as [null,long]",
			writer: rec(`{"name":"n","type":"int"}`),
			reader: rec(`{"name":"n","type":["null","long"]}`),
			in:     map[string]any{"n": int32(3)},
			want:   map[string]any{"n": int64(3)},
		},
		{
			name:   "[null,T] read as T",
			writer: rec(`{"name":"s","type":["null","string"]}`),
			reader: rec(`{"name":"s","type":"string"}`),
			in:     map[string]any{"s": "x"},
			want:   map[string]any{"s": "x"},
		},
		{
			name:    "[null,T] null read as T",
			writer:  rec(`{"name":"s","type":["null","string"]}`),
			reader:  rec(`{"name":"s","type":"string"}`),
			in:      map[string]any{"s": nil},
			wantErr: avro.ErrIncompatible,
		},
		{
			name:   "long read as timestamp-millis",
			writer: rec(`{"name":"at","type":"long"}`),
			reader: rec(`{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}`),
			in:     map[string]any{"at": created.UnixMilli()},
			want:   map[string]any{"at": created},
		},
		{
			name:   "general union, branch by type",
			writer: rec(`{"name":"v","type":["null","int","string",{"type":"long","logicalType":"timestamp-micros"}]}`),
			reader: rec(`{"name":"v","type":["null","long","string",{"type":"long","logicalType":"timestamp-millis"}]}`),
			in:     map[string]any{"v": created},
			want:   map[string]any{"v": created},
		},
		{
			name:   "general union, int promoted",
			writer: rec(`{"name":"v","type":["null","int","string"]}`),
			reader: rec(`{"name":"v","type":["null","long","string"]}`),
			in:     map[string]any{"v": int32(-9)},
			want:   map[string]any{"v": int64(-9)},
		},
		{
			name:   "field renamed via alias, field dropped, default added",
			writer: rec(`{"name":"old","type":"string"},{"name":"gone","type":"int"}`),
			reader: rec(`{"name":"new","aliases":["old"],"type":"string"},{"name":"tags","type":{"type":"array","items":"string"},"default":["a"]}`),
			in:     map[string]any{"old": "v", "gone": int32(1)},
			want:   map[string]any{"new": "v", "tags": []any{"a"}},
		},
		{
			name:    "reader field without default",
			writer:  rec(`{"name":"a","type":"string"}`),
			reader:  rec(`{"name":"a","type":"string"},{"name":"b","type":"string"}`),
			in:      map[string]any{"a": "x"},
			wantErr: avro.ErrIncompatible,
		},
		{
			name:    "long read as int",
			writer:  rec(`{"name":"a","type":"long"}`),
			reader:  rec(`{"name":"a","type":"int"}`),
			in:      map[string]any{"a": int64(1)},
			wantErr: avro.ErrIncompatible,
		},
		{
			name:   "enum with reader default, enum to string",
			writer: rec(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},{"name":"s","type":{"type":"enum","name":"S","symbols":["X"]}}`),
			reader: rec(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","UNKNOWN"],"default":"UNKNOWN"}},{"name":"s","type":"string"}`),
			in:     map[string]any{"e": "C", "s": "X"},
			want:   map[string]any{"e": "UNKNOWN", "s": "X"},
		},
		{
			name:   "nested record and map of optional",
			writer: rec(`{"name":"in","type":{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}},{"name":"m","type":{"type":"map","values":["null","int"]}}`),
			reader: rec(`{"name":"in","type":{"type":"record","name":"In","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"d"}]}},{"name":"m","type":{"type":"map","values":["null","long"]}}`),
			in:     map[string]any{"in": map[string]any{"a": int32(1)}, "m": map[string]any{"x": int32(2), "y": nil}},
			want:   map[string]any{"in": map[string]any{"a": int64(1), "b": "d"}, "m": map[string]any{"x": int64(2), "y": nil}},
		},
		{
			name:   "bytes and string",
			writer: rec(`{"name":"b","type":"bytes"},{"name":"s","type":"string"}`),
			reader: rec(`{"name":"b","type":"string"},{"name":"s","type":"bytes"}`),
			in:     map[string]any{"b": []byte("hi"), "s": "yo"},
			want:   map[string]any{"b": "hi", "s": []byte("yo")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := avro.NewRegistry()
			w, err := reg.Add(tt.writer, false)
			if err != nil {
				t.Fatalf("Add writer: %v", err)
			}
			r, err := reg.Add(tt.reader, true)
			if err != nil {
				t.Fatalf("Add reader: %v", err)
			}
			b := mustEncode(t, w, tt.in)
			got, err := reg.Decode(r, b)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decode = %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeBytesDoNotAlias(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		in     map[string]any
		direct bool // decoded by the direct decoder rather than goavro
	}{
		{"goavro path", `{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"},{"name":"f","type":{"type":"fixed","name":"F","size":2}}]}`,
			map[string]any{"b": []byte("abc"), "f": []byte("xy")}, false},
		{"direct path", `{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"},{"name":"o","type":["null","bytes"]},
			{"name":"u","type":["string","bytes"]},{"name":"s","type":"string"},{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"b","type":"bytes"}]}}]}`,
			map[string]any{"b": []byte("abc"), "o": []byte("opt"), "u": []byte("union"), "s": "str", "n": map[string]any{"b": []byte("nested")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := avro.NewRegistry()
			s, err := reg.Add(tt.schema, true)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if got := avro.HasDirectDecoder(s); got != tt.direct {
				t.Fatalf("HasDirectDecoder = %v, want %v", got, tt.direct)
			}
			b := mustEncode(t, s, tt.in)
			got, err := reg.Decode(s, b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for i := range b {
				b[i] = 0
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Errorf("decoded values changed with the input buffer:\n got %#v\nwant %#v", got, tt.in)
			}
		})
	}
}

func TestEncodeUnionBranchChoice(t *testing.T) {
	reg := avro.NewRegistry()
	s, err := reg.Add(`{"type":"record","name":"U","fields":[
		{"name":"v","type":["null","int","long","double","string",{"type":"long","logicalType":"timestamp-millis"}]}]}`, true)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	tests := []struct {
		in, want any
	}{
		{nil, nil},
		{int32(1), int32(1)},
		{int64(1) << 40, int64(1) << 40},
		{3.5, 3.5},
		{"s", "s"},
		{created, created},
	}
	for _, tt := range tests {
		got, err := reg.Decode(s, mustEncode(t, s, map[string]any{"v": tt.in}))
		if err != nil || !reflect.DeepEqual(got["v"], tt.want) {
			t.Errorf("round trip of %T %v = %#v, %v; want %#v", tt.in, tt.in, got["v"], err, tt.want)
		}
	}
}

// TestHostileBlockCount checks that a tiny message claiming a huge array
// is rejected before goavro allocates for it.
func TestHostileBlockCount(t *testing.T) {
	reg := avro.NewRegistry()
	s, err := reg.Add(`{"type":"record","name":"A","fields":[{"name":"a","type":{"type":"array","items":"null"}},{"name":"m","type":{"type":"map","values":"null"}}]}`, true)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	header := mustEncode(t, s, map[string]any{"a": []any{}, "m": map[string]any{}})[:10]
	zigzag := func(v int64) []byte {
		u := uint64(v<<1) ^ uint64(v>>63)
		var b []byte
		for u >= 0x80 {
			b = append(b, byte(u)|0x80)
			u >>= 7
		}
		return append(b, byte(u))
	}
	tests := []struct {
		name string
		body []byte
	}{
		{"array count MaxInt32", append(zigzag(math.MaxInt32), 0, 0)},
		{"negative array count", append(append(zigzag(-math.MaxInt32), zigzag(1)...), 0, 0)},
		{"map count MaxInt32", append([]byte{0}, zigzag(math.MaxInt32)...)},
		{"MinInt64 count", append(zigzag(math.MinInt64), 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtimeMem
			before.read()
			_, err := reg.Decode(s, append(slices.Clone(header), tt.body...))
			after.read()
			if !errors.Is(err, avro.ErrMalformed) {
				t.Errorf("Decode error = %v, want ErrMalformed", err)
			}
			if grew := after.total - before.total; grew > 1<<20 {
				t.Errorf("Decode allocated %d bytes for a %d-byte message", grew, len(tt.body)+10)
			}
		})
	}
}

func TestConcurrentDecode(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	v1 := v1Transaction(t, reg)
	msgs := [][]byte{mustEncode(t, tx, transaction()), mustEncode(t, v1, v1Record())}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				rec, err := reg.Decode(tx, msgs[(g+i)%2])
				if err != nil {
					t.Errorf("Decode: %v", err)
					return
				}
				rec["status"] = "mutated" // results are owned by the caller
			}
		})
	}
	wg.Wait()
}

type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}

func TestRecursiveSchema(t *testing.T) {
	reg := avro.NewRegistry()
	s, err := reg.Add(`{"type":"record","name":"LongList","fields":[
		{"name":"value","type":"long"},{"name":"next","type":["null","LongList"],"default":null}]}`, true)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	list := map[string]any{"value": int64(1), "next": map[string]any{"value": int64(2), "next": map[string]any{"value": int64(3)}}}
	got, err := reg.Decode(s, mustEncode(t, s, list))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := map[string]any{"value": int64(1), "next": map[string]any{"value": int64(2), "next": map[string]any{"value": int64(3), "next": nil}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recursive round trip:\n got %#v\nwant %#v", got, want)
	}
	if f, ok := s.Field("next.next.value"); !ok || f.Type != avro.Long {
		t.Errorf("Field(next.next.value) = %+v, %v; want a long", f, ok)
	}

	// A hostile body nesting far deeper than any real list.
	header := mustEncode(t, s, map[string]any{"value": int64(0)})[:10]
	body := slices.Repeat([]byte{0, 2}, 100_000) // value 0, next: union branch 1
	body = append(body, 0, 0)                    // last value 0, next: null
	if _, err := reg.Decode(s, append(header, body...)); !errors.Is(err, avro.ErrMalformed) {
		t.Errorf("Decode(100000-deep list) error = %v, want ErrMalformed", err)
	}
}

// TestGoavroProducer checks that values written by goavro's own
// single-object encoder, whose fingerprint differs for schemas with
// logical types, still decode.
func TestGoavroProducer(t *testing.T) {
	reg := loadSchemas(t)
	tx := mustSchema(t, reg, "Transaction")
	src, err := os.ReadFile(filepath.Join(schemasDir, "transaction.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(string(src))
	if err != nil {
		t.Fatalf("goavro.NewCodec: %v", err)
	}
	if codec.Rabin == tx.Fingerprint {
		t.Fatalf("goavro fingerprint %x equals ours; the alias is no longer needed", codec.Rabin)
	}
	native := transaction()
	native["billed_at"] = goavro.Union("long.timestamp-millis", billed)
	native["billing_cycle_id"] = goavro.Union("string", "cycle-2024-03")
	b, err := codec.SingleFromNative(nil, native)
	if err != nil {
		t.Fatalf("goavro SingleFromNative: %v", err)
	}
	got, err := reg.Decode(tx, b)
	if err != nil {
		t.Fatalf("Decode(goavro-written value): %v", err)
	}
	if want := transaction(); !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(goavro-written value):\n got %#v\nwant %#v", got, want)
	}
}
