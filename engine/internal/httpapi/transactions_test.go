package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func (a *api) client(t *testing.T, id string) {
	t.Helper()
	a.must(t, http.StatusCreated, "POST", "/api/v1/clients", fmt.Sprintf(`{"client_id":%q,"name":"N","email":"n@example.com"}`, id))
}

func (a *api) transaction(t *testing.T, id, client, status string) map[string]any {
	t.Helper()
	return a.must(t, http.StatusCreated, "POST", "/api/v1/transactions",
		fmt.Sprintf(`{"transaction_id":%q,"client_id":%q,"amount_minor":1999,"currency":"EUR","status":%q}`, id, client, status)).json(t)
}

func TestTransactions(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-1")
		r := a.must(t, http.StatusCreated, "POST", "/api/v1/transactions", `{"client_id":"c-1","amount_minor":1250,"currency":"JPY","description":"ramen"}`)
		tx := r.json(t)
		id, _ := tx["transaction_id"].(string)
		if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Errorf("server-generated id: got %q, want a UUIDv4", id)
		}
		want := map[string]any{"client_id": "c-1", "amount_minor": float64(1250), "currency": "JPY", "status": "APPROVED",
			"description": "ramen", "billed_at": nil, "billing_cycle_id": nil}
		for k, v := range want {
			if tx[k] != v {
				t.Errorf("created %s: got %v, want %v", k, tx[k], v)
			}
		}
		if got := r.header.Get("Location"); got != "/api/v1/transactions/"+id {
			t.Errorf("Location: got %q", got)
		}
		if got := a.must(t, http.StatusOK, "GET", "/api/v1/transactions/"+id, "").json(t); fmt.Sprint(got) != fmt.Sprint(tx) {
			t.Errorf("get: got %v, want %v", got, tx)
		}
		// An id from an upstream system is kept as given.
		upstream := a.transaction(t, "upstream:2026-01.A_7", "c-1", "DECLINED")
		if upstream["transaction_id"] != "upstream:2026-01.A_7" || upstream["status"] != "DECLINED" {
			t.Errorf("caller-supplied id: got %v", upstream)
		}
		a.must(t, http.StatusOK, "GET", "/api/v1/transactions/upstream:2026-01.A_7", "")
	})
}

func TestTransactionValidation(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-1")
		a.client(t, "c-closed")
		a.must(t, http.StatusOK, "PUT", "/api/v1/clients/c-closed", `{"status":"CLOSED"}`)
		a.transaction(t, "t-1", "c-1", "APPROVED")
		body := func(extra string) string {
			return `{"client_id":"c-1","amount_minor":100,"currency":"EUR"` + extra + `}`
		}
		post := func(name, b string, status int, field, rule string) badInput {
			return badInput{name, "POST", "/api/v1/transactions", b, status, field, rule}
		}
		a.checkBad(t, []badInput{
			post("empty", `{}`, 422, "client_id", "required"),
			post("no amount", `{"client_id":"c-1","currency":"EUR"}`, 422, "amount_minor", "required"),
			post("no currency", `{"client_id":"c-1","amount_minor":1}`, 422, "currency", "required"),
			post("zero amount", `{"client_id":"c-1","amount_minor":0,"currency":"EUR"}`, 422, "amount_minor", "positive integer"),
			post("negative amount", `{"client_id":"c-1","amount_minor":-5,"currency":"EUR"}`, 422, "amount_minor", "positive integer"),
			post("huge amount", `{"client_id":"c-1","amount_minor":1000000000001,"currency":"EUR"}`, 422, "amount_minor", "at most 1000000000000"),
			post("fractional amount", `{"client_id":"c-1","amount_minor":12.5,"currency":"EUR"}`, 400, "", `field "amount_minor"`),
			post("amount as string", `{"client_id":"c-1","amount_minor":"100","currency":"EUR"}`, 400, "", `field "amount_minor"`),
			post("amount beyond int64", `{"client_id":"c-1","amount_minor":99999999999999999999,"currency":"EUR"}`, 400, "", `field "amount_minor"`),
			post("lower-case currency", `{"client_id":"c-1","amount_minor":1,"currency":"eur"}`, 422, "currency", "ISO 4217"),
			post("made-up currency", `{"client_id":"c-1","amount_minor":1,"currency":"ABC"}`, 422, "currency", "ISO 4217"),
			post("withdrawn currency", `{"client_id":"c-1","amount_minor":1,"currency":"HRK"}`, 422, "currency", "ISO 4217"),
			post("4-letter currency", `{"client_id":"c-1","amount_minor":1,"currency":"EURO"}`, 422, "currency", "ISO 4217"),
			post("created BILLED", body(`,"status":"BILLED"`), 422, "status", "APPROVED or DECLINED"),
			post("unknown status", body(`,"status":"PENDING"`), 422, "status", "APPROVED or DECLINED"),
			post("long description", body(`,"description":"`+strings.Repeat("é", 1001)+`"`), 422, "description", "at most 1000"),
			post("bad id", body(`,"transaction_id":"a/b"`), 422, "transaction_id", "letters, digits"),
			post("long id", body(`,"transaction_id":"`+strings.Repeat("x", 65)+`"`), 422, "transaction_id", "1 to 64"),
			post("taken id", body(`,"transaction_id":"t-1"`), 409, "transaction_id", "must not be in use"),
			post("unknown client", `{"client_id":"nope","amount_minor":1,"currency":"EUR"}`, 422, "client_id", "existing client"),
			post("closed client", `{"client_id":"c-closed","amount_minor":1,"currency":"EUR"}`, 422, "client_id", "not CLOSED"),
			post("unknown field", body(`,"amount":1`), 400, "", `unknown field "amount"`),
			post("created_at not accepted", body(`,"created_at":"2026-01-01T00:00:00Z"`), 400, "", `unknown field "created_at"`),
			post("oversized body", oversized("description"), 413, "", "larger than"),
			{"get unknown", "GET", "/api/v1/transactions/nope", "", 404, "", "transaction nope not found"},
			{"get overlong id", "GET", "/api/v1/transactions/" + strings.Repeat("x", 65), "", 404, "", "not found"},
			{"put unknown", "PUT", "/api/v1/transactions/nope", `{"status":"BILLED"}`, 404, "", "not found"},
			{"delete unknown", "DELETE", "/api/v1/transactions/nope", "", 404, "", "not found"},
			{"put unknown status", "PUT", "/api/v1/transactions/t-1", `{"status":"LOST"}`, 422, "status", "APPROVED, DECLINED, REFUNDED or BILLED"},
			{"put other id", "PUT", "/api/v1/transactions/t-1", `{"transaction_id":"t-2"}`, 422, "transaction_id", "match the id"},
			{"put amount", "PUT", "/api/v1/transactions/t-1", `{"amount_minor":5}`, 422, "amount_minor", "immutable"},
			{"put currency", "PUT", "/api/v1/transactions/t-1", `{"currency":"USD"}`, 422, "currency", "immutable"},
			{"put client", "PUT", "/api/v1/transactions/t-1", `{"client_id":"c-closed"}`, 422, "client_id", "immutable"},
			{"put cycle without BILLED", "PUT", "/api/v1/transactions/t-1", `{"billing_cycle_id":"cy-1"}`, 422, "billing_cycle_id", "BILLED"},
			{"put unknown field", "PUT", "/api/v1/transactions/t-1", `{"billed_at":"2026-01-01T00:00:00Z"}`, 400, "", `unknown field "billed_at"`},
		})
		// Unchanged values may be repeated on PUT.
		a.must(t, http.StatusOK, "PUT", "/api/v1/transactions/t-1", `{"transaction_id":"t-1","client_id":"c-1","amount_minor":1999,"currency":"EUR","description":"same"}`)
	})
}

// TestStatusChanges walks the state machine over HTTP: legal changes
// answer 200, illegal ones 409 naming the status field and the rule.
func TestStatusChanges(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-1")
		statuses := []string{"APPROVED", "DECLINED", "REFUNDED", "BILLED"}
		legal := map[string]bool{
			"APPROVED->APPROVED": true, "APPROVED->BILLED": true, "APPROVED->DECLINED": true, "APPROVED->REFUNDED": true,
			"BILLED->BILLED": true, "BILLED->REFUNDED": true,
			"DECLINED->DECLINED": true, "REFUNDED->REFUNDED": true,
		}
		// Reach each starting status through legal changes.
		path := map[string][]string{
			"APPROVED": nil, "DECLINED": {"DECLINED"}, "BILLED": {"BILLED"}, "REFUNDED": {"BILLED", "REFUNDED"},
		}
		n := 0
		for _, from := range statuses {
			for _, to := range statuses {
				n++
				id := fmt.Sprintf("sm-%d", n)
				a.transaction(t, id, "c-1", "APPROVED")
				for _, s := range path[from] {
					a.must(t, http.StatusOK, "PUT", "/api/v1/transactions/"+id, `{"status":"`+s+`"}`)
				}
				r := a.do(t, "PUT", "/api/v1/transactions/"+id, `{"status":"`+to+`"}`)
				key := from + "->" + to
				switch {
				case legal[key] && r.status != http.StatusOK:
					t.Errorf("%s: got %d, want 200 (body %s)", key, r.status, r.body)
				case !legal[key] && r.status != http.StatusConflict:
					t.Errorf("%s: got %d, want 409 (body %s)", key, r.status, r.body)
				case !legal[key]:
					p := r.problem(t)
					if len(p.Errors) != 1 || p.Errors[0].Field != "status" || !strings.Contains(p.Errors[0].Rule, "illegal transition "+from+" -> "+to) {
						t.Errorf("%s: got %+v, want the status field and the illegal transition", key, p)
					}
				case to == "BILLED":
					got := r.json(t)
					if got["billed_at"] == nil {
						t.Errorf("%s: billed_at not set: %v", key, got)
					}
				}
			}
		}
		a.transaction(t, "b-1", "c-1", "APPROVED")
		got := a.must(t, http.StatusOK, "PUT", "/api/v1/transactions/b-1", `{"status":"BILLED","billing_cycle_id":"cy-2026-03"}`).json(t)
		if got["billing_cycle_id"] != "cy-2026-03" || got["billed_at"] == nil {
			t.Errorf("billed with a cycle: got %v", got)
		}
		p := a.must(t, http.StatusConflict, "DELETE", "/api/v1/transactions/b-1", "").problem(t)
		if !strings.Contains(p.Detail, "billed") {
			t.Errorf("delete billed: got %+v", p)
		}
		a.transaction(t, "d-1", "c-1", "DECLINED")
		a.must(t, http.StatusNoContent, "DELETE", "/api/v1/transactions/d-1", "")
		a.must(t, http.StatusNotFound, "GET", "/api/v1/transactions/d-1", "")
	})
}
