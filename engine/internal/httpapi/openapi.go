package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the OpenAPI 3 document of the whole HTTP API: every route
// the engine registers, with its parameters, bodies, answers and
// security. openapi_test.go checks that it is well formed, and the
// engine's TestOpenAPICoversRoutes that its paths are exactly the routes.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI serves the OpenAPI 3 document of the HTTP API as
// application/json, the same bytes on every call. The engine registers it
// for "GET /api/v1/openapi.json"; being under /api/, it then needs the API
// token (or the read token) when one is set. It is safe for concurrent use.
func OpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
}
