package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/pollnet"
)

// hangTimeout bounds every wait in these tests; reaching it means a hang,
// not slowness.
const hangTimeout = 5 * time.Second

// prefix is the path under which the fronts of these tests answer.
const prefix = "/q/"

// listenFunc announces on a free port of 127.0.0.1.
type listenFunc func() (net.Listener, error)

// listeners are the listeners a front serves: pollnet's, whose connections
// wait for data without reading it, and a plain one, whose connections
// wait in ReadNow instead.
var listeners = []struct {
	name   string
	listen listenFunc
}{
	{"pollnet", func() (net.Listener, error) { return pollnet.Listen("127.0.0.1:0") }},
	{"net", func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }},
}

// front is a Server under test and what the test observes of it.
type front struct {
	srv      *Server
	addr     string
	stdConns atomic.Int32 // connections Std accepted: those handed over

	served   chan struct{} // closed when Serve has returned
	serveErr error         // what Serve returned, once served is closed
	stopOnce sync.Once
}

// startFront serves srv on a listener from listen, counting the
// connections its Std accepts (srv.Std.ConnState is replaced). The front
// is shut down when the test ends.
func startFront(t *testing.T, listen listenFunc, srv *Server) *front {
	t.Helper()
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	f := &front{srv: srv, addr: ln.Addr().String(), served: make(chan struct{})}
	srv.Std.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.stdConns.Add(1)
		}
	}
	go func() {
		defer close(f.served)
		f.serveErr = srv.Serve(ln)
	}()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// newFront serves h on a listener from listen, through a front that
// answers the GETs under prefix itself.
func newFront(t *testing.T, listen listenFunc, h http.Handler) *front {
	t.Helper()
	return startFront(t, listen, &Server{Std: &http.Server{Handler: h}, Prefixes: []string{prefix}})
}

// stop shuts f down and checks that Shutdown returns nil and Serve
// http.ErrServerClosed. Calls after the first do nothing.
func (f *front) stop(t *testing.T) {
	t.Helper()
	f.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
		if err := f.waitServe(t); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	})
}

// waitServe returns what Serve returned, failing the test if it has not
// returned within hangTimeout.
func (f *front) waitServe(t *testing.T) error {
	t.Helper()
	select {
	case <-f.served:
		return f.serveErr
	case <-time.After(hangTimeout):
		t.Fatalf("Serve has not returned after %v", hangTimeout)
		return nil
	}
}

// checkStdConns checks how many connections Std has accepted.
func (f *front) checkStdConns(t *testing.T, want int32) {
	t.Helper()
	if got := f.stdConns.Load(); got != want {
		t.Errorf("Std accepted %d connections, want %d", got, want)
	}
}

// echo answers "<method> <path> <body>", reading the body whole.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}

// request returns the bytes of an HTTP/1.1 request with a Host header,
// the given header lines and, if body is not empty, a Content-Length.
func request(method, path, body string, header ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: front.test\r\n", method, path)
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// get returns the bytes of an HTTP/1.1 GET of path with the given header
// lines.
func get(path string, header ...string) string {
	return request(http.MethodGet, path, "", header...)
}

// client is one raw TCP connection to a server: the test writes the bytes
// of its requests itself, so it decides what is pipelined and kept alive.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects a client to addr; it is closed when the test ends.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes the requests, concatenated, in one Write.
func (c *client) send(reqs ...string) {
	c.t.Helper()
	if err := c.c.SetWriteDeadline(time.Now().Add(hangTimeout)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := io.WriteString(c.c, strings.Join(reqs, "")); err != nil {
		c.t.Fatalf("sending: %v", err)
	}
}

// answer is a response read whole.
type answer struct {
	status string // "200 OK"
	proto  string // "HTTP/1.1"
	header http.Header
	body   string
	close  bool // the server announced it closes the connection
}

// tryRead reads the next response, to a request other than HEAD, whole.
func (c *client) tryRead() (answer, error) {
	if err := c.c.SetReadDeadline(time.Now().Add(hangTimeout)); err != nil {
		return answer{}, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("reading the body: %w", err)
	}
	return answer{resp.Status, resp.Proto, resp.Header, string(body), resp.Close}, nil
}

// read reads the next response whole, failing the test if there is none.
func (c *client) read() answer {
	c.t.Helper()
	a, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	return a
}

// readBody reads the next response and checks that it is a 200 with body
// want.
func (c *client) readBody(want string) {
	c.t.Helper()
	if a := c.read(); a.status != "200 OK" || a.body != want {
		c.t.Fatalf("got %s %q, want 200 OK %q", a.status, a.body, want)
	}
}

// checkClosed checks that the server has closed the connection: the next
// read, with nothing left to read, reports io.EOF.
func (c *client) checkClosed() {
	c.t.Helper()
	if err := c.c.SetReadDeadline(time.Now().Add(hangTimeout)); err != nil {
		c.t.Fatal(err)
	}
	if b, err := c.r.ReadByte(); err != io.EOF {
		c.t.Fatalf("read after the last answer = %q, %v; want io.EOF", b, err)
	}
}

// exchange sends req on a new connection to addr and reads its answers:
// the informational (1xx) ones, if any, then the final one. It returns the
// connection, open, for more.
func exchange(t *testing.T, addr, req string) (c *client, early []answer, final answer) {
	t.Helper()
	c = dial(t, addr)
	c.send(req)
	for {
		a := c.read()
		if !strings.HasPrefix(a.status, "1") {
			return c, early, a
		}
		early = append(early, a)
	}
}

// checkSameAnswer fails the test unless got and want have the same status
// line, body and headers, Date aside: both have one, or neither has (as
// net/http's informational answers and those to requests it cannot serve).
func checkSameAnswer(t *testing.T, got, want answer) {
	t.Helper()
	if got.status != want.status || got.proto != want.proto {
		t.Errorf("status line %s %s, want %s %s", got.proto, got.status, want.proto, want.status)
	}
	if got.body != want.body {
		t.Errorf("body %q, want %q", got.body, want.body)
	}
	g, w := got.header.Clone(), want.header.Clone()
	if (g.Get("Date") == "") != (w.Get("Date") == "") {
		t.Errorf("Date %q where net/http's is %q: want both set or neither", g.Get("Date"), w.Get("Date"))
	}
	g.Del("Date")
	w.Del("Date")
	if !maps.EqualFunc(g, w, func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
		t.Errorf("headers %v, want %v", g, w)
	}
}

// checkAnswer checks a's status and its Content-Type and Content-Length
// headers; "" stands for a header that is absent.
func checkAnswer(t *testing.T, a answer, status, contentType, contentLength string) {
	t.Helper()
	if a.status != status {
		t.Errorf("status %q, want %q", a.status, status)
	}
	for _, h := range []struct{ key, want string }{
		{"Content-Type", contentType},
		{"Content-Length", contentLength},
	} {
		if got := strings.Join(a.header.Values(h.key), ", "); got != h.want {
			t.Errorf("%s %q, want %q", h.key, got, h.want)
		}
	}
}

// ctxKey is the type of the context keys that TestSameAnswersAsNetHTTP's
// BaseContext and ConnContext set.
type ctxKey string

func TestSameAnswersAsNetHTTP(t *testing.T) {
	handlers := []struct {
		name string
		h    http.HandlerFunc
		// req, if set, is the one request sent, instead of those of
		// requests; std, if set, configures both servers.
		req string
		std func(*http.Server)
		// What net/http answers, which the front must answer too: the
		// statuses of the informational answers, then the final one's
		// status, Content-Type and Content-Length ("" for a header that
		// is absent).
		early                              []string
		status, contentType, contentLength string
		// The front hands the connection to Std.
		handed bool
	}{
		{name: "sniffed text", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello, world")
		}, status: "200 OK", contentType: "text/plain; charset=utf-8", contentLength: "12"},
		{name: "sniffed HTML, written in parts", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<!DOCTYPE html><html>")
			io.WriteString(w, "<body>hi</body></html>")
		}, status: "200 OK", contentType: "text/html; charset=utf-8", contentLength: "43"},
		{name: "JSON", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":1,"path":"`+r.URL.Path+`"}`)
		}, status: "200 OK", contentType: "application/json", contentLength: "22"},
		{name: "404 problem", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"title":"Not Found","status":404}`)
		}, status: "404 Not Found", contentType: "application/problem+json", contentLength: "34"},
		{name: "http.Error", h: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "it broke", http.StatusInternalServerError)
		}, status: "500 Internal Server Error", contentType: "text/plain; charset=utf-8", contentLength: "9"},
		{name: "204 No Content", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, status: "204 No Content"},
		{name: "204 with a body written", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "dropped")
		}, status: "204 No Content"},
		{name: "writes nothing", h: func(w http.ResponseWriter, r *http.Request) {},
			status: "200 OK", contentLength: "0"},
		{name: "empty write", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write(nil)
		}, status: "200 OK", contentLength: "0"},
		{name: "custom headers", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "42")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "with headers")
		}, status: "200 OK", contentType: "text/plain; charset=utf-8", contentLength: "12"},
		{name: "status without text", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(299)
			io.WriteString(w, "odd")
		}, status: "299 status code 299", contentType: "text/plain; charset=utf-8", contentLength: "3"},
		{name: "WriteHeader twice", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
		}, status: "202 Accepted", contentLength: "0"},
		{name: "header set after Write", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Early", "sent")
			io.WriteString(w, "x")
			w.Header().Set("X-Late", "ignored")
			w.Header().Set("Content-Type", "application/json")
		}, status: "200 OK", contentType: "text/plain; charset=utf-8", contentLength: "1"},
		{name: "handler sets Connection: close", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}, status: "200 OK", contentType: "text/plain; charset=utf-8", contentLength: "3"},
		{name: "304 with Content-Type", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}, status: "304 Not Modified"},
		{name: "103 Early Hints, then 200", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/css")
			io.WriteString(w, "ok")
		}, early: []string{"103 Early Hints"}, status: "200 OK", contentType: "text/css", contentLength: "2"},
		{name: "BaseContext and ConnContext", h: func(w http.ResponseWriter, r *http.Request) {
			base, conn := r.Context().Value(ctxKey("base")), r.Context().Value(ctxKey("conn"))
			if base != "from BaseContext" || conn != "from ConnContext" {
				http.Error(w, fmt.Sprintf("context values %v, %v", base, conn), http.StatusInternalServerError)
				return
			}
			io.WriteString(w, "both")
		}, std: func(s *http.Server) {
			s.BaseContext = func(net.Listener) context.Context {
				return context.WithValue(context.Background(), ctxKey("base"), "from BaseContext")
			}
			s.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
				return context.WithValue(ctx, ctxKey("conn"), "from ConnContext")
			}
		}, status: "200 OK", contentType: "text/plain; charset=utf-8", contentLength: "4"},
		// Requests net/http refuses.
		{name: "no Host", h: echo, req: "GET /q/x HTTP/1.1\r\n\r\n",
			status: "400 Bad Request: missing required Host header", contentType: "text/plain; charset=utf-8", handed: true},
		{name: "malformed Host", h: echo, req: "GET /q/x HTTP/1.1\r\nHost: front test\r\n\r\n",
			status: "400 Bad Request: malformed Host header", contentType: "text/plain; charset=utf-8", handed: true},
		{name: "two Hosts", h: echo, req: "GET /q/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
			status: "400 Bad Request", contentType: "text/plain; charset=utf-8"},
		{name: "control character in a header value", h: echo, req: get(prefix+"x", "X-Ctl: a\x01b"),
			status: "400 Bad Request", contentType: "text/plain; charset=utf-8"},
		{name: "head over MaxHeaderBytes", h: echo, req: get(prefix+"x", "X-Pad: "+strings.Repeat("p", 6000)),
			std:    func(s *http.Server) { s.MaxHeaderBytes = 1 }, // net/http allows 4096 bytes more
			status: "431 Request Header Fields Too Large", contentType: "text/plain; charset=utf-8", handed: true},
	}
	requests := []struct{ name, req string }{
		{"keep-alive", get(prefix + "x")},
		{"Connection: close", get(prefix+"x", "Connection: close")},
	}
	for _, l := range listeners {
		for _, tt := range handlers {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ref := httptest.NewUnstartedServer(tt.h)
				ref.Config.ErrorLog = log.New(io.Discard, "", 0) // "superfluous WriteHeader"
				std := &http.Server{Handler: tt.h}
				if tt.std != nil {
					tt.std(ref.Config)
					tt.std(std)
				}
				ref.Start()
				t.Cleanup(ref.Close)
				f := startFront(t, l.listen, &Server{Std: std, Prefixes: []string{prefix}})
				reqs := requests
				if tt.req != "" {
					reqs = []struct{ name, req string }{{"request", tt.req}}
				}
				for _, rq := range reqs {
					t.Run(rq.name, func(t *testing.T) {
						wc, wantEarly, want := exchange(t, ref.Listener.Addr().String(), rq.req)
						gc, gotEarly, got := exchange(t, f.addr, rq.req)
						if len(gotEarly) != len(wantEarly) {
							t.Fatalf("%d informational answers, want %d as net/http's", len(gotEarly), len(wantEarly))
						}
						for i, e := range gotEarly {
							checkSameAnswer(t, e, wantEarly[i])
						}
						if want := len(tt.early); len(gotEarly) != want {
							t.Fatalf("%d informational answers, want %d", len(gotEarly), want)
						}
						for i, e := range gotEarly {
							if e.status != tt.early[i] {
								t.Errorf("informational answer %d: status %q, want %q", i, e.status, tt.early[i])
							}
						}
						checkSameAnswer(t, got, want)
						checkAnswer(t, got, tt.status, tt.contentType, tt.contentLength)
						// Both keep the connection, or both close it.
						if got.close != want.close {
							t.Errorf("the answer closes the connection: %v, want %v as net/http's", got.close, want.close)
						}
						if want.close {
							wc.checkClosed()
							gc.checkClosed()
						}
					})
				}
				var handed int32
				if tt.handed {
					handed = int32(len(reqs))
				}
				f.checkStdConns(t, handed)
			})
		}
	}
}

func TestKeepAlive(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			f := newFront(t, l.listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				echo(w, r)
			}))
			c := dial(t, f.addr)
			const n = 200
			for i := range n {
				path := fmt.Sprintf("%sitem/%d", prefix, i)
				c.send(get(path))
				a := c.read()
				if want := "GET " + path + " "; a.status != "200 OK" || a.body != want || a.close {
					t.Fatalf("request %d: %s %q (close %v), want 200 OK %q kept alive", i, a.status, a.body, a.close, want)
				}
			}
			if got := calls.Load(); got != n {
				t.Errorf("handler ran %d times, want %d", got, n)
			}
			f.checkStdConns(t, 0)
		})
	}
}

func TestHandOverMidConnection(t *testing.T) {
	steps := []struct {
		req      string
		want     string
		stdConns int32 // after the answer
	}{
		{get(prefix + "1"), "GET /q/1 ", 0},
		{get(prefix + "2"), "GET /q/2 ", 0},
		{request(http.MethodPost, "/echo", "payload"), "POST /echo payload", 1},
		{get("/other"), "GET /other ", 1},
		{get(prefix + "3"), "GET /q/3 ", 1},
		{request(http.MethodPost, prefix+"4", "more"), "POST /q/4 more", 1},
	}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			f := newFront(t, l.listen, http.HandlerFunc(echo))
			c := dial(t, f.addr)
			for i, s := range steps {
				c.send(s.req)
				if a := c.read(); a.status != "200 OK" || a.body != s.want {
					t.Fatalf("step %d: %s %q, want 200 OK %q", i, a.status, a.body, s.want)
				}
				if got := f.stdConns.Load(); got != s.stdConns {
					t.Fatalf("step %d: Std accepted %d connections, want %d", i, got, s.stdConns)
				}
			}
		})
	}
}

func TestPipelining(t *testing.T) {
	tests := []struct {
		name     string
		reqs     []string
		want     []string
		stdConns int32
	}{
		{
			name:     "front only",
			reqs:     []string{get(prefix + "1"), get(prefix + "2"), get(prefix + "3")},
			want:     []string{"GET /q/1 ", "GET /q/2 ", "GET /q/3 "},
			stdConns: 0,
		},
		{
			name:     "then POST",
			reqs:     []string{get(prefix + "1"), get(prefix + "2"), request(http.MethodPost, "/echo", "body")},
			want:     []string{"GET /q/1 ", "GET /q/2 ", "POST /echo body"},
			stdConns: 1,
		},
		{
			name:     "POST first",
			reqs:     []string{request(http.MethodPost, "/echo", "body"), get(prefix + "1")},
			want:     []string{"POST /echo body", "GET /q/1 "},
			stdConns: 1,
		},
		{
			name:     "other path between",
			reqs:     []string{get(prefix + "1"), get("/other"), get(prefix + "2")},
			want:     []string{"GET /q/1 ", "GET /other ", "GET /q/2 "},
			stdConns: 1,
		},
		{
			name:     "GET with a body between",
			reqs:     []string{get(prefix + "1"), request(http.MethodGet, prefix+"2", "body"), get(prefix + "3")},
			want:     []string{"GET /q/1 ", "GET /q/2 body", "GET /q/3 "},
			stdConns: 1,
		},
		// A head ends at its first empty line, whether its lines end with
		// CRLF or a bare LF, so the request behind it is answered too.
		{name: "LF, then CRLF", reqs: []string{lfGet(prefix + "1"), get(prefix + "2")}, want: []string{"GET /q/1 ", "GET /q/2 "}},
		{name: "CRLF, then LF", reqs: []string{get(prefix + "1"), lfGet(prefix + "2")}, want: []string{"GET /q/1 ", "GET /q/2 "}},
		{name: "LF, CRLF, LF", reqs: []string{lfGet(prefix + "1"), get(prefix + "2"), lfGet(prefix + "3")}, want: []string{"GET /q/1 ", "GET /q/2 ", "GET /q/3 "}},
		{name: "CRLF head ended by a bare LF, then CRLF", reqs: []string{"GET /q/1 HTTP/1.1\r\nHost: front.test\r\n\n", get(prefix + "2")}, want: []string{"GET /q/1 ", "GET /q/2 "}},
		{name: "LF head ended by CRLF, then LF", reqs: []string{"GET /q/1 HTTP/1.1\nHost: front.test\n\r\n", lfGet(prefix + "2")}, want: []string{"GET /q/1 ", "GET /q/2 "}},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := newFront(t, l.listen, http.HandlerFunc(echo))
				c := dial(t, f.addr)
				c.send(tt.reqs...)
				for _, want := range tt.want {
					c.readBody(want)
				}
				// The connection still serves.
				c.send(get(prefix + "after"))
				c.readBody("GET /q/after ")
				f.checkStdConns(t, tt.stdConns)
			})
		}
	}
}

// lfGet returns the bytes of an HTTP/1.1 GET of path with a Host header,
// its lines ended by a bare line feed, as net/http accepts.
func lfGet(path string) string {
	return "GET " + path + " HTTP/1.1\nHost: front.test\n\n"
}

func TestHandedToStd(t *testing.T) {
	long := strings.Repeat("a", bufSize+100)
	tests := []struct {
		name  string
		req   string
		want  string // the body of a 200 answer
		proto string
		close bool // the answer closes the connection
	}{
		{"HTTP/1.0", "GET /q/x HTTP/1.0\r\nHost: front.test\r\n\r\n", "GET /q/x ", "HTTP/1.0", true},
		{"body", request(http.MethodGet, prefix+"x", "hello"), "GET /q/x hello", "HTTP/1.1", false},
		{"chunked body", get(prefix+"x", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n", "GET /q/x hello", "HTTP/1.1", false},
		{"Expect", get(prefix+"x", "Expect: 100-continue"), "GET /q/x ", "HTTP/1.1", false},
		{"Upgrade", get(prefix+"x", "Upgrade: websocket"), "GET /q/x ", "HTTP/1.1", false},
		{"POST", request(http.MethodPost, prefix+"x", "data"), "POST /q/x data", "HTTP/1.1", false},
		{"DELETE", request(http.MethodDelete, prefix+"x", ""), "DELETE /q/x ", "HTTP/1.1", false},
		{"other path", get("/other"), "GET /other ", "HTTP/1.1", false},
		{"absolute form", get("http://front.test" + prefix + "x"), "GET /q/x ", "HTTP/1.1", false},
		{"head longer than the buffer", get(prefix+"x", "X-Long: "+long), "GET /q/x ", "HTTP/1.1", false},
		{"request line longer than the buffer", get(prefix + long), "GET /q/" + long + " ", "HTTP/1.1", false},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := newFront(t, l.listen, http.HandlerFunc(echo))
				c := dial(t, f.addr)
				c.send(tt.req)
				a := c.read()
				if a.status != "200 OK" || a.proto != tt.proto || a.body != tt.want {
					t.Fatalf("got %s %s %.40q, want %s 200 OK %.40q", a.proto, a.status, a.body, tt.proto, tt.want)
				}
				if a.close != tt.close {
					t.Errorf("answer closes the connection: %v, want %v", a.close, tt.close)
				}
				f.checkStdConns(t, 1)
				if tt.close {
					c.checkClosed()
					return
				}
				// Std keeps the connection, prefix GETs included.
				c.send(get(prefix + "after"))
				c.readBody("GET /q/after ")
				f.checkStdConns(t, 1)
			})
		}
	}
}

func TestFrontCloses(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		status string
		body   string
	}{
		{"Connection: close", get(prefix+"x", "Connection: close"), "200 OK", "GET /q/x "},
		{"malformed header line", "GET /q/x HTTP/1.1\r\nBad Header\r\n\r\n", "400 Bad Request", "400 Bad Request"},
		{"malformed, LF only", "GET /q/x HTTP/1.1\nHost: front.test\nBad Header\n\n", "400 Bad Request", "400 Bad Request"},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := newFront(t, l.listen, http.HandlerFunc(echo))
				c := dial(t, f.addr)
				c.send(tt.req)
				a := c.read()
				if a.status != tt.status || a.body != tt.body {
					t.Fatalf("got %s %q, want %s %q", a.status, a.body, tt.status, tt.body)
				}
				if !a.close {
					t.Error("the answer does not say Connection: close")
				}
				c.checkClosed()
				f.checkStdConns(t, 0)
			})
		}
	}
}

func TestTimeoutsClose(t *testing.T) {
	const short = 50 * time.Millisecond
	tests := []struct {
		name                   string
		idle, read, readHeader time.Duration // Std's timeouts
		send                   string
		answers                int // before the connection closes
	}{
		{"IdleTimeout", short, 0, 0, get(prefix + "x"), 1},
		{"ReadTimeout when idle", 0, short, 0, get(prefix + "x"), 1},
		{"ReadHeaderTimeout", 0, 0, short, "GET /q/x HTTP/1.1\r\nHost: fr", 0},
		{"ReadTimeout in a head", 0, short, 0, "GET /q/x HTTP/1.1\r\nHost: fr", 0},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				std := &http.Server{
					Handler:           http.HandlerFunc(echo),
					IdleTimeout:       tt.idle,
					ReadTimeout:       tt.read,
					ReadHeaderTimeout: tt.readHeader,
				}
				f := startFront(t, l.listen, &Server{Std: std, Prefixes: []string{prefix}})
				c := dial(t, f.addr)
				c.send(tt.send)
				for range tt.answers {
					c.readBody("GET /q/x ")
				}
				c.checkClosed()
				f.checkStdConns(t, 0)
			})
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use: a log written by
// the server and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPanicClosesConnection(t *testing.T) {
	tests := []struct {
		name   string
		value  any
		logged bool
	}{
		{"panic", "boom", true},
		{"http.ErrAbortHandler", http.ErrAbortHandler, false},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var logged syncBuffer
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == prefix+"panic" {
						io.WriteString(w, "never sent")
						panic(tt.value)
					}
					echo(w, r)
				})
				f := startFront(t, l.listen, &Server{
					Std:      &http.Server{Handler: h},
					Prefixes: []string{prefix},
					Log:      slog.New(slog.NewTextHandler(&logged, nil)),
				})
				c := dial(t, f.addr)
				c.send(get(prefix + "ok"))
				c.readBody("GET /q/ok ")
				c.send(get(prefix + "panic"))
				if a, err := c.tryRead(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("after a panic: read %s %q, %v; want the connection closed", a.status, a.body, err)
				}

				// The front keeps serving other connections.
				c2 := dial(t, f.addr)
				c2.send(get(prefix + "ok"))
				c2.readBody("GET /q/ok ")

				out := logged.String()
				if got := strings.Contains(out, "panic") && strings.Contains(out, fmt.Sprint(tt.value)); got != tt.logged {
					t.Errorf("panic logged: %v, want %v; log:\n%s", got, tt.logged, out)
				}
				f.checkStdConns(t, 0)
			})
		}
	}
}

// blocker is a handler that holds the requests for prefix+"block" until
// released and answers the others with echo.
type blocker struct {
	started chan struct{} // receives when a blocked request starts
	release chan struct{} // closing it lets blocked requests answer
}

// newBlocker returns a blocker whose blocked requests wait until the test
// closes its release channel.
func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != prefix+"block" {
		echo(w, r)
		return
	}
	b.started <- struct{}{}
	<-b.release
	io.WriteString(w, "released")
}

// waitStarted waits until a blocked request has started.
func (b *blocker) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-b.started:
	case <-time.After(hangTimeout):
		t.Fatal("the blocked request did not start")
	}
}

// shutdownAsync calls f's Shutdown with ctx on a new goroutine and returns
// a channel that receives what it returned.
func shutdownAsync(ctx context.Context, f *front) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(ctx) }()
	return done
}

// checkRefused checks that a new connection to addr is refused, or closed
// without an answer.
func checkRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangTimeout))
	io.WriteString(c, get(prefix+"late"))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a connection dialled after Shutdown was answered (%d bytes)", n)
	}
}

func TestShutdown(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			b := newBlocker()
			f := newFront(t, l.listen, b)

			idle := dial(t, f.addr)
			idle.send(get(prefix + "idle"))
			idle.readBody("GET /q/idle ")
			handed := dial(t, f.addr)
			handed.send(request(http.MethodPost, "/echo", "x"))
			handed.readBody("POST /echo x")
			busy := dial(t, f.addr)
			busy.send(get(prefix + "block"))
			b.waitStarted(t)

			ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
			defer cancel()
			done := shutdownAsync(ctx, f)
			// The idle connections, the front's and Std's, close while
			// the busy one answers.
			idle.checkClosed()
			handed.checkClosed()
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned %v while a request was being answered", err)
			case <-time.After(50 * time.Millisecond):
			}

			close(b.release)
			busy.readBody("released")
			busy.checkClosed()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Shutdown = %v, want nil", err)
				}
			case <-time.After(hangTimeout):
				t.Fatal("Shutdown did not return after the request was answered")
			}
			if err := f.waitServe(t); !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve = %v, want http.ErrServerClosed", err)
			}
			checkRefused(t, f.addr)
		})
	}
}

func TestShutdownDeadline(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			b := newBlocker()
			f := newFront(t, l.listen, b)
			busy := dial(t, f.addr)
			busy.send(get(prefix + "block"))
			b.waitStarted(t)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			select {
			case err := <-shutdownAsync(ctx, f):
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Shutdown with a busy connection = %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(hangTimeout):
				t.Fatal("Shutdown did not return at its deadline")
			}
			// The request in flight still gets its answer.
			close(b.release)
			busy.readBody("released")
			busy.checkClosed()
		})
	}
}

// TestShutdownLetsAnswerFinish checks that Shutdown waits while an answer
// is being written, and does not close its connection under it.
func TestShutdownLetsAnswerFinish(t *testing.T) {
	// Far more than the sockets' buffers hold: the front is still writing
	// when the client has read the head, and until it reads the rest.
	big := strings.Repeat("x", 16<<20)
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			f := newFront(t, l.listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, big)
			}))
			c := dial(t, f.addr)
			c.send(get(prefix + "big"))
			if err := c.c.SetReadDeadline(time.Now().Add(hangTimeout)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(c.r, nil)
			if err != nil {
				t.Fatalf("reading the head of the answer: %v", err)
			}
			defer resp.Body.Close()

			ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
			defer cancel()
			done := shutdownAsync(ctx, f)
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned %v while an answer was being written", err)
			case <-time.After(50 * time.Millisecond):
			}
			if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(len(big)) {
				t.Fatalf("the answer being written at Shutdown: %d of %d body bytes, %v", n, len(big), err)
			}
			c.checkClosed()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Shutdown = %v, want nil", err)
				}
			case <-time.After(hangTimeout):
				t.Fatal("Shutdown did not return after the answer was written")
			}
		})
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Std: &http.Server{}, Prefixes: []string{prefix}}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown before Serve = %v, want nil", err)
	}
	ln, err := pollnet.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v, want http.ErrServerClosed", err)
	}
}

func TestDeferOffInline(t *testing.T) {
	if Defer(httptest.NewRequest(http.MethodGet, prefix+"x", nil)) {
		t.Error("Defer of a request not served by a front = true, want false")
	}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			var deferred atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if Defer(r) {
					deferred.Add(1)
					return
				}
				echo(w, r)
			})
			f := startFront(t, l.listen, &Server{
				Std:      &http.Server{Handler: h},
				Prefixes: []string{prefix},
				Inline:   func(*http.Request) bool { return false },
			})
			c := dial(t, f.addr)
			c.send(get(prefix + "x"))
			c.readBody("GET /q/x ")
			if n := deferred.Load(); n != 0 {
				t.Errorf("Defer returned true %d times on the connection's goroutine, want 0", n)
			}
		})
	}
}
