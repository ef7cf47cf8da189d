package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Server routes the API. Register handlers with Handle before serving;
// Server is then safe for concurrent use.
type Server struct {
	mux       *http.ServeMux
	token     string
	readToken string
}

// Option configures New.
type Option func(*Server)

// WithToken requires `Authorization: Bearer <token>` on every /api/ call.
// Default: no token required.
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithReadToken also accepts token for GET and HEAD calls on /api/.
func WithReadToken(token string) Option { return func(s *Server) { s.readToken = token } }

// New returns a Server with no routes.
func New(opts ...Option) *Server {
	s := &Server{mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handle registers h for a ServeMux pattern such as "GET /api/v1/clients/{id}".
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// ServeHTTP authenticates /api/ calls, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="billing"`)
		WriteProblem(w, r, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
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
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	return read && s.readToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.readToken)) == 1
}
