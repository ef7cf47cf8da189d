package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// recordingCycles is a CycleRunner that runs nothing: it checks the
// interval it is given and answers a finished, empty cycle over it.
type recordingCycles struct {
	t   *testing.T // the current fuzz call's
	got []billing.Interval
}

func (c *recordingCycles) Run(_ context.Context, iv billing.Interval) (store.BillingCycle, error) {
	now := time.Now()
	start, end := iv.Period(now)
	if !start.Before(end) {
		c.t.Fatalf("cycle run over %q: empty period [%v, %v)", iv, start, end)
	}
	c.got = append(c.got, iv)
	return store.BillingCycle{ID: "bc_fuzz", Interval: iv.String(), PeriodStart: start, PeriodEnd: end,
		Status: store.CycleCompleted, CreatedAt: now, FinishedAt: now}, nil
}

// FuzzBillingCycleBody posts arbitrary bodies, with and without an
// Idempotency-Key, to POST /api/v1/billing-cycles and arbitrary intervals
// to GET /executeBillingCycle/{interval}: every answer is a known status
// with a JSON body (problem+json for errors), a cycle runs only over an
// interval billing.ParseInterval (or billing.Between) accepts, and a
// rejected interval names its field.
func FuzzBillingCycleBody(f *testing.F) {
	for _, s := range []struct{ body, key, path string }{
		{`{"interval":"24h"}`, "", "daily"},
		{`{"interval":"monthly"}`, "k-1", "weekly"},
		{march1, "", "2026-03-01T00:00:00Z/2026-03-02T00:00:00Z"},
		{`{"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z"}`, "", "-1h"},
		{`{"from":"2026-03-01T00:00:00.5+01:00"}`, "", "1e9h"},
		{`{"interval":"24h","from":"2026-03-01T00:00:00Z"}`, "k 2", "a/b/c"},
		{`{"interval":null,"to":null}`, "", "/"},
		{`{"interval":24}`, "", ""},
		{`{"period":"24h"}`, "", "%00"},
		{`{"interval":"1ms"} {}`, "", "8784h"},
		{``, "", "MONTHLY"},
		{`[]`, "k-1", "1ms"},
		{`{"interval":"weekly"}`, "k-1", "."},
		{`{"interval":"\u0000"}`, "", "24h/../daily"},
	} {
		f.Add(s.body, s.key, s.path)
	}
	db := storetest.Open(f, store.SQLite)
	cycles := &recordingCycles{}
	s := httpapi.New()
	httpapi.RegisterBilling(s, db, cycles)
	known := map[int]bool{200: true, 201: true, 400: true, 404: true, 405: true, 413: true, 422: true}
	fields := map[string]bool{"interval": true, "from": true, "to": true, "Idempotency-Key": true}
	f.Fuzz(func(t *testing.T, body, key, path string) {
		cycles.t, cycles.got = t, nil
		check := func(what string, w *httptest.ResponseRecorder) {
			t.Helper()
			if !known[w.Code] {
				t.Fatalf("%s: status %d: %s", what, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: body not JSON: %s", what, w.Body)
			}
			if w.Code < 400 {
				return
			}
			if w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: error %d without problem+json", what, w.Code)
			}
			var p httpapi.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Detail == "" {
				t.Fatalf("%s: problem %s: got %+v, %v", what, w.Body, p, err)
			}
			for _, fe := range p.Errors {
				if !fields[fe.Field] || fe.Rule == "" {
					t.Fatalf("%s: problem %s names field %q with rule %q", what, w.Body, fe.Field, fe.Rule)
				}
			}
		}

		req := httptest.NewRequest("POST", "/api/v1/billing-cycles", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		check("POST "+body, w)
		if w.Code == 201 && w.Header().Get("Idempotent-Replayed") == "" {
			if len(cycles.got) != 1 {
				t.Fatalf("POST %q: 201 after %d cycle runs, want 1", body, len(cycles.got))
			}
			var in struct{ Interval, From, To *string }
			if err := json.Unmarshal([]byte(body), &in); err != nil {
				t.Fatalf("POST %q: 201 for a body encoding/json rejects: %v", body, err)
			}
			if in.Interval != nil {
				if want, err := billing.ParseInterval(*in.Interval); err != nil || want != cycles.got[0] {
					t.Fatalf("POST %q: cycle over %v, ParseInterval gives %v, %v", body, cycles.got[0], want, err)
				}
			}
		} else if w.Code != 201 && len(cycles.got) > 0 {
			t.Fatalf("POST %q: answered %d after running a cycle", body, w.Code)
		}

		cycles.got = nil
		w = httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/executeBillingCycle/"+url.PathEscape(path), nil))
		if seg := "/" + path + "/"; w.Code/100 == 3 && (strings.Contains(seg, "/./") || strings.Contains(seg, "/../")) {
			return // ServeMux redirects to the cleaned path
		}
		check("GET /executeBillingCycle/"+path, w)
		if w.Code == 200 {
			if want, err := billing.ParseInterval(path); err != nil || len(cycles.got) != 1 || want != cycles.got[0] {
				t.Fatalf("GET %q: ran %v, ParseInterval gives %v, %v", path, cycles.got, want, err)
			}
		}
	})
}
