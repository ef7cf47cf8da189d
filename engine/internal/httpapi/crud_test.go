package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// api is the CRUD API on a real store behind a real TCP server.
type api struct {
	url string
	db  *store.DB
}

// eachAPI runs fn as a subtest per dialect, with a fresh API whose clock
// starts at t0 and moves one millisecond per reading.
func eachAPI(t *testing.T, fn func(t *testing.T, a *api)) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, serve(t, db))
	})
}

func serve(t testing.TB, db *store.DB) *api {
	var n atomic.Int64
	clock := func() time.Time { return t0.Add(time.Duration(n.Add(1)) * time.Millisecond) }
	s := httpapi.New()
	httpapi.RegisterCRUD(s, db, httpapi.CRUDClock(clock))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &api{url: srv.URL, db: db}
}

// response is an answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// problem decodes a problem+json body.
func (r response) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type: got %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	return p
}

// do sends a request; headers come in name, value pairs.
func (a *api) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, a.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and fails the test unless the status is want.
func (a *api) must(t testing.TB, want int, method, path, body string, headers ...string) response {
	t.Helper()
	r := a.do(t, method, path, body, headers...)
	if r.status != want {
		t.Fatalf("%s %s: got %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	return r
}

// badInput is a request that must fail with a problem naming field and a
// rule containing rule.
type badInput struct {
	name   string
	method string
	path   string
	body   string
	status int
	field  string
	rule   string
}

func (a *api) checkBad(t *testing.T, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		r := a.do(t, tc.method, tc.path, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: got status %d, want %d (body %s)", tc.name, r.status, tc.status, r.body)
			continue
		}
		p := r.problem(t)
		if p.Status != tc.status || p.Title == "" || p.Instance == "" {
			t.Errorf("%s: problem %+v: want status %d, a title and the instance", tc.name, p, tc.status)
		}
		if tc.field == "" {
			if !strings.Contains(p.Detail, tc.rule) {
				t.Errorf("%s: detail %q, want it to contain %q", tc.name, p.Detail, tc.rule)
			}
			continue
		}
		found := false
		for _, fe := range p.Errors {
			if fe.Field == tc.field && strings.Contains(fe.Rule, tc.rule) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: got field errors %+v, want field %q with a rule containing %q", tc.name, p.Errors, tc.field, tc.rule)
		}
	}
}

func oversized(field string) string {
	var b bytes.Buffer
	b.WriteString(`{"` + field + `":"`)
	b.WriteString(strings.Repeat("a", httpapi.MaxBody))
	b.WriteString(`"}`)
	return b.String()
}

func TestClients(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		r := a.must(t, http.StatusCreated, "POST", "/api/v1/clients", `{"name":"Ada Lovelace","email":"ada@example.com"}`)
		c := r.json(t)
		id, _ := c["client_id"].(string)
		if len(id) != 36 || id[14] != '4' {
			t.Errorf("server-generated id: got %q, want a UUIDv4", id)
		}
		if got := r.header.Get("Location"); got != "/api/v1/clients/"+id {
			t.Errorf("Location: got %q, want /api/v1/clients/%s", got, id)
		}
		if c["status"] != "ACTIVE" || c["name"] != "Ada Lovelace" || c["created_at"] != "2026-03-01T12:00:00.001Z" || c["updated_at"] != c["created_at"] {
			t.Errorf("created: got %v", c)
		}
		got := a.must(t, http.StatusOK, "GET", "/api/v1/clients/"+id, "").json(t)
		if got["email"] != "ada@example.com" || got["created_at"] != c["created_at"] {
			t.Errorf("get: got %v, want %v", got, c)
		}
		a.must(t, http.StatusCreated, "POST", "/api/v1/clients", `{"client_id":"acme-1","name":"Acme","email":"billing@acme.example","status":"SUSPENDED"}`)

		up := a.must(t, http.StatusOK, "PUT", "/api/v1/clients/acme-1", `{"client_id":"acme-1","email":"ap@acme.example","status":"ACTIVE"}`).json(t)
		if up["email"] != "ap@acme.example" || up["status"] != "ACTIVE" || up["name"] != "Acme" || up["updated_at"] == up["created_at"] {
			t.Errorf("put: got %v", up)
		}
		list := a.must(t, http.StatusOK, "GET", "/api/v1/clients?status=ACTIVE", "").json(t)
		if items, _ := list["items"].([]any); len(items) != 2 || list["next_cursor"] != nil {
			t.Errorf("list: got %v, want both clients on one page", list)
		}

		long := strings.Repeat("x", store.MaxNameLen+1)
		a.checkBad(t, []badInput{
			{"missing name and email", "POST", "/api/v1/clients", `{}`, 422, "name", "required"},
			{"missing email", "POST", "/api/v1/clients", `{"name":"A"}`, 422, "email", "required"},
			{"bad email", "POST", "/api/v1/clients", `{"name":"A","email":"not-an-email"}`, 422, "email", "valid email"},
			{"email with display name", "POST", "/api/v1/clients", `{"name":"A","email":"A <a@example.com>"}`, 422, "email", "valid email"},
			{"email without a dot", "POST", "/api/v1/clients", `{"name":"A","email":"a@localhost"}`, 422, "email", "valid email"},
			{"empty name", "POST", "/api/v1/clients", `{"name":"  ","email":"a@example.com"}`, 422, "name", "must not be empty"},
			{"long name", "POST", "/api/v1/clients", `{"name":"` + long + `","email":"a@example.com"}`, 422, "name", "at most 200"},
			{"control character", "POST", "/api/v1/clients", `{"name":"A\u0007","email":"a@example.com"}`, 422, "name", "control"},
			{"bad status", "POST", "/api/v1/clients", `{"name":"A","email":"a@example.com","status":"GONE"}`, 422, "status", "ACTIVE, SUSPENDED or CLOSED"},
			{"bad id", "POST", "/api/v1/clients", `{"client_id":"has space","name":"A","email":"a@example.com"}`, 422, "client_id", "letters, digits"},
			{"taken id", "POST", "/api/v1/clients", `{"client_id":"acme-1","name":"A","email":"a@example.com"}`, 409, "client_id", "must not be in use"},
			{"unknown field", "POST", "/api/v1/clients", `{"name":"A","email":"a@example.com","vip":true}`, 400, "", `unknown field "vip"`},
			{"wrong type", "POST", "/api/v1/clients", `{"name":7,"email":"a@example.com"}`, 400, "", `field "name"`},
			{"malformed JSON", "POST", "/api/v1/clients", `{"name":`, 400, "", "malformed JSON"},
			{"two objects", "POST", "/api/v1/clients", `{"name":"A","email":"a@example.com"} {}`, 400, "", "unexpected data"},
			{"oversized body", "POST", "/api/v1/clients", oversized("name"), 413, "", "larger than"},
			{"get unknown", "GET", "/api/v1/clients/nope", "", 404, "", "client nope not found"},
			{"put unknown", "PUT", "/api/v1/clients/nope", `{"name":"B"}`, 404, "", "client nope not found"},
			{"put other id", "PUT", "/api/v1/clients/acme-1", `{"client_id":"other"}`, 422, "client_id", "match the id in the path"},
			{"put bad email", "PUT", "/api/v1/clients/acme-1", `{"email":"x@"}`, 422, "email", "valid email"},
			{"put unknown field", "PUT", "/api/v1/clients/acme-1", `{"created_at":"2026-01-01T00:00:00Z"}`, 400, "", `unknown field "created_at"`},
			{"delete unknown", "DELETE", "/api/v1/clients/nope", "", 404, "", "not found"},
			{"list bad status", "GET", "/api/v1/clients?status=ON", "", 400, "status", "one of"},
		})
		// curl -d sends a form Content-Type; the body is read as JSON.
		a.must(t, http.StatusCreated, "POST", "/api/v1/clients", `{"name":"A","email":"a@example.com"}`, "Content-Type", "application/x-www-form-urlencoded")

		a.must(t, http.StatusCreated, "POST", "/api/v1/transactions", `{"client_id":"acme-1","amount_minor":100,"currency":"EUR"}`)
		p := a.must(t, http.StatusConflict, "DELETE", "/api/v1/clients/acme-1", "").problem(t)
		if len(p.Errors) != 1 || p.Errors[0].Field != "client_id" || !strings.Contains(p.Detail, "has transactions") {
			t.Errorf("delete with transactions: got %+v", p)
		}
		a.must(t, http.StatusNoContent, "DELETE", "/api/v1/clients/"+id, "")
		a.must(t, http.StatusNotFound, "GET", "/api/v1/clients/"+id, "")
	})
}
