package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/internal/query"
)

// loadOpenAPI decodes the embedded document.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openAPIDoc))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

// operationMethods are the keys of an OpenAPI path item that hold an
// operation.
var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") && !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi: got %q, want 3.0.x or 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	for _, k := range []string{"title", "version"} {
		if s, _ := info[k].(string); s == "" {
			t.Errorf("info.%s: got %v, want a string", k, info[k])
		}
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("paths: got none")
	}

	var refs []string
	collectRefs(doc, &refs)
	if len(refs) == 0 {
		t.Error("no $ref: the shared schemas are not used")
	}
	for _, ref := range refs {
		if _, err := resolve(doc, ref); err != "" {
			t.Errorf("$ref %q: %s", ref, err)
		}
	}

	ids := map[string]string{}
	for _, path := range sortedKeys(paths) {
		item, _ := paths[path].(map[string]any)
		ops := 0
		for _, m := range operationMethods {
			o, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			ops++
			where := strings.ToUpper(m) + " " + path
			checkOperation(t, doc, where, item, o, ids)
		}
		if ops == 0 {
			t.Errorf("%s: no operation", path)
		}
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkOperation checks one operation: a unique operationId, responses
// with valid codes, and a declared path parameter for each {name} of the
// path.
func checkOperation(t *testing.T, doc map[string]any, where string, item, o map[string]any, ids map[string]string) {
	t.Helper()
	id, _ := o["operationId"].(string)
	switch {
	case id == "":
		t.Errorf("%s: no operationId", where)
	case ids[id] != "":
		t.Errorf("%s: operationId %q is also %s's", where, id, ids[id])
	default:
		ids[id] = where
	}
	responses, _ := o["responses"].(map[string]any)
	if len(responses) == 0 {
		t.Errorf("%s: no responses", where)
	}
	for code := range responses {
		if code != "default" && !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(code) {
			t.Errorf("%s: response code %q", where, code)
		}
	}
	declared := map[string]bool{}
	for _, list := range []any{item["parameters"], o["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			p := deref(doc, p)
			if p["in"] == "path" {
				declared[p["name"].(string)] = true
				if p["required"] != true {
					t.Errorf("%s: path parameter %v is not required", where, p["name"])
				}
			}
		}
	}
	path := where[strings.Index(where, " ")+1:]
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if !declared[m[1]] {
			t.Errorf("%s: path parameter %q is not declared", where, m[1])
		}
		delete(declared, m[1])
	}
	for name := range declared {
		t.Errorf("%s: parameter %q is not in the path", where, name)
	}
}

// collectRefs appends every $ref in v to refs.
func collectRefs(v any, refs *[]string) {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			*refs = append(*refs, r)
		}
		for _, c := range v {
			collectRefs(c, refs)
		}
	case []any:
		for _, c := range v {
			collectRefs(c, refs)
		}
	}
}

// resolve follows a local JSON pointer ref ("#/components/schemas/X") in
// doc; it returns a reason when it does not resolve.
func resolve(doc map[string]any, ref string) (any, string) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "not a local reference"
	}
	var cur any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "goes through a non-object before " + tok
		}
		if cur, ok = m[tok]; !ok {
			return nil, "has no " + tok
		}
	}
	return cur, ""
}

// deref returns v as an object, following a $ref, and unwrapping an allOf
// of one schema (the way the document adds a description to a $ref).
func deref(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	for range 10 {
		if r, ok := m["$ref"].(string); ok {
			target, _ := resolve(doc, r)
			m, _ = target.(map[string]any)
			continue
		}
		if all, ok := m["allOf"].([]any); ok && len(all) == 1 && m["properties"] == nil {
			m, _ = all[0].(map[string]any)
			continue
		}
		break
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestOpenAPISchemasMatchTypes checks each schema against the Go type the
// handlers decode or encode: the same fields, and for answers, required
// exactly when the field is always written (no omitempty).
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, tc := range []struct {
		schema string
		value  any
		body   bool // a request body: unknown fields are refused
	}{
		{"Problem", Problem{}, false},
		{"FieldError", FieldError{}, false},
		{"Client", clientJSON{}, false},
		{"ClientCreate", clientInput{}, true},
		{"ClientUpdate", clientInput{}, true},
		{"ClientPage", page[clientJSON]{}, false},
		{"Transaction", transactionJSON{}, false},
		{"TransactionCreate", transactionInput{}, true},
		{"TransactionUpdate", transactionUpdate{}, true},
		{"TransactionPage", page[transactionJSON]{}, false},
		{"BillingCycleCreate", cycleInput{}, true},
		{"BillingCycle", cycleJSON{}, false},
		{"Invoice", invoiceJSON{}, false},
		{"InvoicePage", page[invoiceJSON]{}, false},
		{"TableAnswer", query.Answer{}, false},
		{"TableEntry", query.Entry{}, false},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			s := deref(doc, map[string]any{"$ref": "#/components/schemas/" + tc.schema})
			if s == nil {
				t.Fatalf("no schema %s", tc.schema)
			}
			if tc.body && s["additionalProperties"] != false {
				t.Errorf("additionalProperties: got %v, want false (unknown fields are refused)", s["additionalProperties"])
			}
			matchType(t, doc, tc.schema, s, reflect.TypeOf(tc.value), !tc.body)
		})
	}
}

var marshaler = reflect.TypeFor[json.Marshaler]()

// matchType compares the properties of schema s with the JSON fields of
// struct type typ, and recurses into fields that are structs or slices of
// structs. With answer set, a field without omitempty must be required
// and one with omitempty must not.
func matchType(t *testing.T, doc map[string]any, where string, s map[string]any, typ reflect.Type, answer bool) {
	t.Helper()
	props, _ := s["properties"].(map[string]any)
	var required []string
	if rs, ok := s["required"].([]any); ok {
		for _, r := range rs {
			required = append(required, r.(string))
		}
	}
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		seen[name] = true
		p, ok := props[name]
		if !ok {
			t.Errorf("%s: field %q is not documented", where, name)
			continue
		}
		if answer {
			omit := strings.Contains(opts, "omitempty")
			if req := slices.Contains(required, name); req == omit {
				t.Errorf("%s.%s: required is %v, but the field has omitempty=%v", where, name, req, omit)
			}
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		ps := deref(doc, p)
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft, ps = ft.Elem(), deref(doc, ps["items"])
		}
		if ft.Kind() == reflect.Struct && !ft.Implements(marshaler) && !reflect.PointerTo(ft).Implements(marshaler) {
			matchType(t, doc, where+"."+name, ps, ft, answer)
		}
	}
	for name := range props {
		if !seen[name] {
			t.Errorf("%s: property %q is not a field of %v", where, name, typ)
		}
	}
}

func TestOpenAPIHandler(t *testing.T) {
	s := New(WithToken("write"), WithReadToken("read"))
	s.Handle("GET /api/v1/openapi.json", OpenAPI)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"read", http.StatusOK}, {"write", http.StatusOK}} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil)
		if tc.token != "" {
			r.Header.Set("Authorization", "Bearer "+tc.token)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("token %q: got %d, want %d", tc.token, w.Code, tc.want)
			continue
		}
		if tc.want != http.StatusOK {
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type: got %q, want application/json", ct)
		}
		if !bytes.Equal(w.Body.Bytes(), openAPIDoc) {
			t.Errorf("body: got %d bytes, want the %d of openapi.json", w.Body.Len(), len(openAPIDoc))
		}
	}
}
