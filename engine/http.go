package engine

import (
	"net/http"

	"github.com/billing-engine/billing/engine/internal/httpapi"
)

// routes returns the HTTP API: health, readiness and stats here; tables,
// CRUD and billing register their own routes.
func (e *Engine) routes() http.Handler {
	api := httpapi.New(httpapi.WithToken(e.file.HTTP.APIToken))
	api.Handle("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	api.Handle("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-e.ready:
		default:
			httpapi.RetryAfter(w, 1)
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		owned := e.tracker.OwnedAll()
		if r := e.tracker.RestoringAll(); len(r) > 0 {
			httpapi.RetryAfter(w, 1)
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "restoring", "restoring": r, "partitions": owned})
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "partitions": owned})
	})
	if e.router != nil {
		httpapi.RegisterTables(api, e.router)
	}
	e.registerCRUD(api)
	api.Handle("GET /api/v1/stats", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, e.stats.Snapshot())
	})
	return api
}
