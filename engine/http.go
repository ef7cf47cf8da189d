package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/billing-engine/billing/engine/internal/dashboard"
	"github.com/billing-engine/billing/engine/internal/httpapi"
)

// eventInterval is how often GET /api/v1/events sends the counts.
const eventInterval = time.Second

// routes returns the HTTP API: health, readiness, metrics, stats, the
// event stream and recent dead letters here; tables, CRUD and billing
// register their own routes.
func (e *Engine) routes() *httpapi.Server {
	api := httpapi.New(
		httpapi.WithToken(e.file.HTTP.APIToken),
		httpapi.WithReadToken(e.file.HTTP.APIReadToken),
		httpapi.WithObserver(func(r *http.Request, route string, status int, took time.Duration) {
			e.metrics.HTTPRequest(route, r.Method, status, took)
		}),
	)
	api.Handle("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	api.Handle("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-e.ready:
		default:
			httpapi.RetryAfter(w, 1)
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		if err := e.pingDatabase(r.Context()); err != nil {
			// The open endpoint says what is wrong, not where the database is.
			e.log.Warn("not ready: the database does not answer", "err", err)
			httpapi.RetryAfter(w, 1)
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
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
	api.Handle("GET /metrics", e.metrics.Handler().ServeHTTP)
	if e.router != nil {
		httpapi.RegisterTables(api, e.router)
	}
	e.registerCRUD(api)
	api.Handle("GET /api/v1/stats", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, e.stats.Snapshot())
	})
	api.Handle("GET /api/v1/events", e.events)
	api.Handle("GET /api/v1/dlq", func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > dlqKeep {
				httpapi.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("limit: want an integer from 1 to %d, got %q", dlqKeep, s))
				return
			}
			limit = n
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": e.stats.RecentDeadLetters(limit)})
	})
	api.Handle("GET /api/v1/openapi.json", httpapi.OpenAPI)
	// The live dashboard: the page at / and its assets, outside /api/ so
	// that they need no token (the page asks for it and sends it).
	dash := dashboard.Handler()
	api.Handle("GET /{$}", dash.ServeHTTP)
	api.Handle("GET "+dashboard.AssetPrefix+"{file}", dash.ServeHTTP)
	return api
}

// pingDatabase checks, within a second, that the database answers.
func (e *Engine) pingDatabase(ctx context.Context) error {
	if e.db == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return e.db.Ping(ctx)
}

// events streams the counts as server-sent events: an event "stats" with
// the View as JSON at once and then every second, until the client goes
// away or the engine stops.
func (e *Engine) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives the server's write timeout.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(eventInterval)
	defer t.Stop()
	for {
		b, err := json.Marshal(e.stats.View())
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: stats\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-e.stopping:
			return
		case <-t.C:
		}
	}
}
