package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/internal/query"
)

// routedEngine returns an Engine set up as Run sets it up before it serves
// HTTP, so that routes() registers every route (tables, CRUD and billing
// too), without a broker: the tables benchmark's pipeline file (no
// plugins), its state store and database (SQLite) in a temporary
// directory, and a query router over no tables.
func routedEngine(t *testing.T) *Engine {
	t.Helper()
	vars := map[string]string{"BILLING_DATA_DIR": t.TempDir()}
	e, err := New("testdata/bench/tables.yaml",
		WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	if e.state, err = e.openState(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.state.Close() })
	e.router = query.NewRouter(e.state, e.tracker, e.file.HTTP.Advertise, nil, nil)
	if e.db, err = e.openStore(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.db.Close() })
	return e
}

// TestOpenAPICoversRoutes checks that GET /api/v1/openapi.json is served,
// and that its paths and methods are exactly the routes the engine
// registers: every route is documented, every documented route exists.
func TestOpenAPICoversRoutes(t *testing.T) {
	var h http.Handler = routedEngine(t).routes()
	srv, ok := h.(*httpapi.Server)
	if !ok {
		t.Fatalf("routes(): got a %T, want an *httpapi.Server", h)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: got %d, want 200: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /api/v1/openapi.json: Content-Type %q, want application/json", ct)
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /api/v1/openapi.json: %v", err)
	}

	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, m) {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	registered := map[string]bool{}
	for _, p := range srv.Routes() {
		route, err := openAPIRoute(p)
		if err != nil {
			t.Error(err)
			continue
		}
		registered[route] = true
	}
	for _, r := range sortedRoutes(registered) {
		if !documented[r] {
			t.Errorf("route %s is registered but not in openapi.json", r)
		}
	}
	for _, r := range sortedRoutes(documented) {
		if !registered[r] {
			t.Errorf("openapi.json documents %s, which is not registered", r)
		}
	}

	// The shapes written by this package.
	matchSchema(t, doc.Components.Schemas, "DeadLetter", DeadLetter{})
	matchSchema(t, doc.Components.Schemas, "StatsEvent", View{})
}

var (
	methodAndPath = regexp.MustCompile(`^[A-Z]+ /`)
	wildcardRest  = regexp.MustCompile(`\{([^{}]+)\.\.\.\}`)
)

// openAPIRoute converts a ServeMux pattern to "METHOD path" as OpenAPI
// writes it: "GET /executeBillingCycle/{interval...}" becomes
// "GET /executeBillingCycle/{interval}", and "GET /{$}" becomes "GET /".
func openAPIRoute(pattern string) (string, error) {
	if !methodAndPath.MatchString(pattern) {
		return "", fmt.Errorf("route %q: want a method and a path, without a host", pattern)
	}
	method, path, _ := strings.Cut(pattern, " ")
	path = wildcardRest.ReplaceAllString(path, "{$1}")
	path = strings.ReplaceAll(path, "{$}", "")
	return method + " " + path, nil
}

func TestOpenAPIRoute(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"GET /api/v1/clients/{id}", "GET /api/v1/clients/{id}"},
		{"GET /executeBillingCycle/{interval...}", "GET /executeBillingCycle/{interval}"},
		{"GET /{$}", "GET /"},
		{"GET /dashboard/{file}", "GET /dashboard/{file}"},
	} {
		if got, err := openAPIRoute(tc.pattern); got != tc.want || err != nil {
			t.Errorf("openAPIRoute(%q): got %q, %v, want %q", tc.pattern, got, err, tc.want)
		}
	}
	for _, p := range []string{"/healthz", "example.com/healthz", "GET example.com/x"} {
		if _, err := openAPIRoute(p); err == nil {
			t.Errorf("openAPIRoute(%q): got no error", p)
		}
	}
}

func sortedRoutes(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// schema is the part of an OpenAPI schema matchSchema reads.
type schema struct {
	Ref        string            `json:"$ref"`
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
	Required   []string          `json:"required"`
}

// matchSchema checks that components/schemas/name has exactly the JSON
// fields of v's type, all required (the types checked here have no
// omitempty field), recursing into slices of structs.
func matchSchema(t *testing.T, schemas map[string]schema, name string, v any) {
	t.Helper()
	s, ok := schemas[name]
	if !ok {
		t.Errorf("openapi.json has no schema %s", name)
		return
	}
	matchFields(t, schemas, name, s, fieldsOf(v))
}

// field is a JSON field of a struct; elem is the fields of its elements
// when it is a slice of structs.
type field struct {
	name string
	elem []field
}

func matchFields(t *testing.T, schemas map[string]schema, where string, s schema, fields []field) {
	t.Helper()
	for s.Ref != "" {
		s = schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	want := make([]string, 0, len(fields))
	for _, f := range fields {
		want = append(want, f.name)
		p, ok := s.Properties[f.name]
		switch {
		case !ok:
			t.Errorf("%s: field %q is not documented", where, f.name)
		case f.elem != nil && p.Items == nil:
			t.Errorf("%s.%s: not documented as an array", where, f.name)
		case f.elem != nil:
			matchFields(t, schemas, where+"."+f.name, *p.Items, f.elem)
		}
	}
	got := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: properties %v, want the fields %v", where, got, want)
	}
	if req := slices.Sorted(slices.Values(s.Required)); !slices.Equal(req, want) {
		t.Errorf("%s: required %v, want every field %v", where, req, want)
	}
}

// fieldsOf returns the JSON fields of v's struct type.
func fieldsOf(v any) []field {
	return fieldsOfType(reflect.TypeOf(v))
}

func fieldsOfType(typ reflect.Type) []field {
	var out []field
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fd := field{name: name}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			fd.elem = fieldsOfType(f.Type.Elem())
		}
		out = append(out, fd)
	}
	return out
}
