package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/billing-engine/billing/engine/internal/httpfront"
	"github.com/billing-engine/billing/engine/internal/query"
)

// StatusTable is the table behind GET /api/v1/transactions/{id}/status.
const StatusTable = "transaction_status"

// RegisterTables adds the interactive-query routes over r.
func RegisterTables(s *Server, r *query.Router) {
	s.Handle("GET /api/v1/tables", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"tables": r.Tables()})
	})
	s.Handle("GET /api/v1/tables/{table}/{key}", func(w http.ResponseWriter, req *http.Request) {
		lookup(w, req, r, req.PathValue("table"), req.PathValue("key"), nil)
	})
	s.Handle("GET /api/v1/transactions/{id}/status", func(w http.ResponseWriter, req *http.Request) {
		lookup(w, req, r, StatusTable, req.PathValue("id"), statusView)
	})
	s.Handle("GET /api/v1/tables/{table}", func(w http.ResponseWriter, req *http.Request) {
		list(w, req, r, req.PathValue("table"))
	})
}

// lookup answers locally when this instance owns the key (or the request
// was forwarded here), otherwise forwards it to the owner.
func lookup(w http.ResponseWriter, req *http.Request, r *query.Router, table, key string, view func(query.Answer) any) {
	// Once Owns says yes, nothing here waits on the network (Local checks
	// ownership again: a partition that moved meanwhile gets a 503), so
	// the HTTP front may answer on a goroutine that must not wait.
	if req.URL.Query().Get("local") != "1" && !r.Owns(table, key) {
		if httpfront.Defer(req) {
			return // forwarding waits: the connection's goroutine answers
		}
		owner, self, err := r.Owner(req.Context(), table, key)
		if err != nil {
			queryProblem(w, req, err)
			return
		}
		if !self {
			if err := r.Forward(req.Context(), w, owner, req.URL.Path, req.Header.Get("Authorization")); err != nil {
				WriteProblem(w, req, http.StatusBadGateway, "the instance owning this key did not answer")
			}
			return
		}
	}
	a, err := r.Local(table, key)
	if err != nil {
		queryProblem(w, req, err)
		return
	}
	if view != nil {
		WriteJSON(w, http.StatusOK, view(a))
		return
	}
	WriteJSON(w, http.StatusOK, a)
}

// IsLookup reports whether req asks for one key of a table (a
// transaction's status, or GET /api/v1/tables/{table}/{key}): answered
// from this instance's state store (Pebble, in memory or the page cache
// for recent rows), or forwarded after httpfront.Defer, and never after a
// wait on the network or the SQL database. The HTTP front may answer such
// a request on a goroutine of the pipeline (httpfront.Server.Inline).
func IsLookup(req *http.Request) bool {
	if req.Method != http.MethodGet {
		return false
	}
	p := req.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/api/v1/transactions/"); ok {
		id, tail, ok := strings.Cut(rest, "/")
		return ok && id != "" && tail == "status"
	}
	if rest, ok := strings.CutPrefix(p, "/api/v1/tables/"); ok {
		table, key, ok := strings.Cut(rest, "/")
		return ok && table != "" && key != "" && !strings.Contains(key, "/")
	}
	return false
}

// statusView is the seed's interactive query answer: the transaction's
// latest status, and the table row it came from.
func statusView(a query.Answer) any {
	var row map[string]any
	_ = json.Unmarshal(a.Value, &row)
	return map[string]any{
		"transaction_id": a.Key, "status": row["status"], "record": row,
		"partition": a.Partition, "served_by": a.ServedBy,
	}
}

func queryProblem(w http.ResponseWriter, req *http.Request, err error) {
	switch {
	case errors.Is(err, query.ErrUnknownTable):
		WriteProblem(w, req, http.StatusNotFound, "no such table")
	case errors.Is(err, query.ErrNotFound):
		WriteProblem(w, req, http.StatusNotFound, "no such key")
	case errors.Is(err, query.ErrRestoring):
		RetryAfter(w, 1)
		WriteProblem(w, req, http.StatusServiceUnavailable, "the table partition holding this key is restoring from its changelog")
	case errors.Is(err, query.ErrNoOwner):
		RetryAfter(w, 1)
		WriteProblem(w, req, http.StatusServiceUnavailable, "no instance owns this key's partition yet (rebalancing)")
	default:
		WriteProblem(w, req, http.StatusInternalServerError, "query failed")
	}
}

// list returns keys with a prefix, in key order, from every instance.
func list(w http.ResponseWriter, req *http.Request, r *query.Router, table string) {
	q := req.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			WriteProblem(w, req, http.StatusBadRequest, "limit: want an integer from 1 to 1000", FieldError{Field: "limit", Rule: "1..1000"})
			return
		}
		limit = n
	}
	prefix, after := q.Get("prefix"), q.Get("after")
	entries, err := r.ListLocal(table, prefix, after, limit)
	if err != nil {
		queryProblem(w, req, err)
		return
	}
	if q.Get("local") != "1" {
		peers, err := r.Peers(req.Context(), table)
		if err != nil {
			queryProblem(w, req, err)
			return
		}
		for _, p := range peers {
			more, err := fetchList(req, p, table, prefix, after, limit)
			if err != nil {
				WriteProblem(w, req, http.StatusBadGateway, "instance "+p+" did not answer")
				return
			}
			entries = append(entries, more...)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
		if len(entries) > limit {
			entries = entries[:limit]
		}
	}
	out := map[string]any{"table": table, "entries": entries}
	if len(entries) == limit {
		out["next_after"] = entries[len(entries)-1].Key
	}
	WriteJSON(w, http.StatusOK, out)
}

func fetchList(req *http.Request, peer, table, prefix, after string, limit int) ([]query.Entry, error) {
	u := peer + "/api/v1/tables/" + url.PathEscape(table) + "?" + url.Values{
		"prefix": {prefix}, "after": {after}, "limit": {strconv.Itoa(limit)}, "local": {"1"},
	}.Encode()
	r2, err := http.NewRequestWithContext(req.Context(), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if a := req.Header.Get("Authorization"); a != "" {
		r2.Header.Set("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(r2)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	var body struct {
		Entries []query.Entry `json:"entries"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.Entries, err
}
