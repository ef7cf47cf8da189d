package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists field-level problems for a bad request.
	Errors []FieldError `json:"errors,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
}

// FieldError names one field and the rule it broke.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

// WriteProblem writes an application/problem+json answer. detail must not
// carry internal details (SQL, stack traces): it is shown to clients.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, detail string, fields ...FieldError) {
	p := Problem{Title: http.StatusText(status), Status: status, Detail: detail, Errors: fields}
	if r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON writes v as a JSON answer with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RetryAfter sets a Retry-After header of secs seconds.
func RetryAfter(w http.ResponseWriter, secs int) {
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
