package httpapi

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/billing-engine/billing/engine/internal/httpfront"
)

// Server routes the API. Register handlers with Handle before serving;
// Server is then safe for concurrent use. A request that no route matches
// is answered with a problem: 404, or 405 with an Allow header.
type Server struct {
	mux       *http.ServeMux
	token     string
	readToken string
	// guarded are path prefixes outside /api/ that need the token, and
	// not the read token, for every method (see RequireToken).
	guarded []string
	// patterns are the registered routes, in registration order.
	patterns []string
	// observe, when set, is told each answered request's route and status.
	observe func(r *http.Request, route string, status int, took time.Duration)
}

// Option configures New.
type Option func(*Server)

// WithToken requires `Authorization: Bearer <token>` on every /api/ call.
// Default: no token required.
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithReadToken also accepts token for GET and HEAD calls on /api/.
func WithReadToken(token string) Option { return func(s *Server) { s.readToken = token } }

// WithObserver calls f after each request with its route pattern (for
// example "GET /api/v1/clients/{id}", or "" when no route matched), the
// status answered and the time it took. f must be safe for concurrent use.
func WithObserver(f func(r *http.Request, route string, status int, took time.Duration)) Option {
	return func(s *Server) { s.observe = f }
}

// New returns a Server with no routes.
func New(opts ...Option) *Server {
	s := &Server{mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handle registers h for a ServeMux pattern such as "GET /api/v1/clients/{id}".
func (s *Server) Handle(pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// Routes returns the patterns registered with Handle, in order.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

// RequireToken makes every call whose path starts with prefix need the
// token of WithToken, as /api/ calls do, whatever its method; the read
// token of WithReadToken is not enough, even for GET. It is for routes
// outside /api/ that change things, such as GET /executeBillingCycle/.
// Call it before serving.
func (s *Server) RequireToken(prefix string) { s.guarded = append(s.guarded, prefix) }

// ServeHTTP authenticates /api/ calls and the prefixes of RequireToken,
// then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.observe == nil {
		s.serve(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := s.serve(sw, r)
	if httpfront.Deferred(r) {
		return // answered again, and observed, on the connection's goroutine
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	s.observe(r, route, sw.status, time.Since(start))
}

// serve answers r and returns the route pattern that matched it, "" for
// none.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) string {
	h, pattern := s.mux.Handler(r)
	guarded := s.isGuarded(r.URL.Path)
	if (guarded || strings.HasPrefix(r.URL.Path, "/api/")) && !s.authorized(r, guarded) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="billing"`)
		WriteProblem(w, r, http.StatusUnauthorized, "missing or invalid bearer token")
		return pattern
	}
	if pattern == "" {
		notRouted(w, r, h)
		return ""
	}
	s.mux.ServeHTTP(w, r)
	return pattern
}

func (s *Server) isGuarded(path string) bool {
	for _, p := range s.guarded {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// authorized checks the bearer token; the read token passes for GET and
// HEAD unless writeOnly.
func (s *Server) authorized(r *http.Request, writeOnly bool) bool {
	if s.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1 {
		return true
	}
	read := !writeOnly && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	return read && s.readToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.readToken)) == 1
}

// notRouted answers a request no route matches, given the ServeMux's own
// handler for it, with a problem: 405 with the Allow header when the path
// has routes for other methods, else 404.
func notRouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status != http.StatusMethodNotAllowed {
		WriteProblem(w, r, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
		return
	}
	allow := probe.header.Get("Allow")
	w.Header().Set("Allow", allow)
	WriteProblem(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow)
}

// statusProbe is a ResponseWriter that keeps the status and headers and
// drops the body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// statusWriter remembers the status a handler answered. It passes Flush
// through, so server-sent events still stream.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
