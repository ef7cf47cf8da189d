package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
)

func TestListFiltersAndCursorPaging(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.client(t, "c-a")
		a.client(t, "c-b")
		type row struct{ id, client, status, created string }
		var rows []row
		statuses := []string{"APPROVED", "DECLINED"}
		for i := range 23 {
			client := []string{"c-a", "c-b"}[i%2]
			tx := a.transaction(t, fmt.Sprintf("t-%02d", i), client, statuses[i%3%2])
			rows = append(rows, row{tx["transaction_id"].(string), client, tx["status"].(string), tx["created_at"].(string)})
		}
		// Transactions 5 to 14, by created_at.
		from, to := rows[5].created, rows[15].created
		for _, tc := range []struct {
			query string
			want  func(row) bool
		}{
			{"", func(row) bool { return true }},
			{"client_id=c-b", func(r row) bool { return r.client == "c-b" }},
			{"status=DECLINED", func(r row) bool { return r.status == "DECLINED" }},
			{"client_id=c-a&status=APPROVED", func(r row) bool { return r.client == "c-a" && r.status == "APPROVED" }},
			{"created_from=" + from + "&created_to=" + to, func(r row) bool { return r.created >= from && r.created < to }},
			{"client_id=nobody", func(row) bool { return false }},
		} {
			for _, limit := range []int{1, 3, 50} {
				seen := map[string]int{}
				q := fmt.Sprintf("/api/v1/transactions?limit=%d", limit)
				if tc.query != "" {
					q += "&" + tc.query
				}
				next := q
				for pages := 0; next != ""; pages++ {
					if pages > 30 {
						t.Fatalf("%s: paging does not end", q)
					}
					body := a.must(t, http.StatusOK, "GET", next, "").json(t)
					items, _ := body["items"].([]any)
					if len(items) > limit {
						t.Errorf("%s: page of %d items", q, len(items))
					}
					for _, it := range items {
						seen[it.(map[string]any)["transaction_id"].(string)]++
					}
					next = ""
					if c, ok := body["next_cursor"].(string); ok {
						next = q + "&cursor=" + c
					}
				}
				for _, r := range rows {
					want := 0
					if tc.want(r) {
						want = 1
					}
					if seen[r.id] != want {
						t.Errorf("%s: %s seen %d times, want %d", q, r.id, seen[r.id], want)
					}
				}
			}
		}
		a.checkBad(t, []badInput{
			{"limit 0", "GET", "/api/v1/transactions?limit=0", "", 400, "limit", "from 1 to 500"},
			{"limit 501", "GET", "/api/v1/transactions?limit=501", "", 400, "limit", "from 1 to 500"},
			{"limit text", "GET", "/api/v1/transactions?limit=ten", "", 400, "limit", "integer"},
			{"bad cursor", "GET", "/api/v1/transactions?cursor=bm9wZQ", "", 400, "cursor", "next_cursor"},
			{"bad created_from", "GET", "/api/v1/transactions?created_from=yesterday", "", 400, "created_from", "RFC 3339"},
			{"empty range", "GET", "/api/v1/transactions?created_from=2026-01-02T00:00:00Z&created_to=2026-01-01T00:00:00Z", "", 400, "created_to", "later than"},
			{"bad status", "GET", "/api/v1/transactions?status=approved", "", 400, "status", "one of"},
			{"unknown parameter", "GET", "/api/v1/transactions?clientid=c-a", "", 400, "clientid", "unknown query parameter"},
			{"repeated parameter", "GET", "/api/v1/transactions?status=BILLED&status=DECLINED", "", 400, "status", "once"},
		})
	})
}
