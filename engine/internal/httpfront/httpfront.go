// Package httpfront serves HTTP/1.1 connections in front of a net/http
// server. It answers a connection's plain GET requests for chosen paths
// itself, and hands the connection to the net/http server, for the rest
// of its life, at its first request of any other kind.
//
// The point is latency when every processor is busy. net/http's server
// reads a request, starts a goroutine to watch the connection while the
// handler runs, and stops and awaits that goroutine before it reads the
// next request. Each such hand-off puts a goroutine in a run queue, and in
// a process whose processors are all busy (the engine at full speed) a
// goroutine in a run queue can wait milliseconds for its turn: Go's
// scheduler has no priorities, and its garbage collector's workers and
// long-running goroutines go first. The front answers on the connection's
// own goroutine, with no hand-off, and, for the requests Server.Inline
// allows, on whichever goroutine notices their arrival: the stream
// runtime and the Kafka clients call pollnet.Yield or pollnet.Poll between
// records, and those run the connection's OnArrival function (see package
// pollnet). Such a request waits for no turn at all: it is read, answered
// and written by a goroutine that is running anyway. One noticed by
// pollnet.Handoff instead (the state store's background writes) is answered
// by the connection's goroutine, which Handoff yields to.
//
// What the front answers it answers through the same http.Handler, with
// the same timeouts, so the answers are those net/http would give; it only
// buffers each answer whole and sends it with a Content-Length. It takes
// only GET requests of HTTP/1.1 for paths under its prefixes, without a
// body, whose head fits its buffer, so that streams, uploads, upgrades,
// HTTP/1.0 and anything unusual get net/http itself.
package httpfront

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/internal/pollnet"
)

// Server is an HTTP/1.1 front for Std. Set its fields before Serve.
type Server struct {
	// Std serves every connection handed over, and its Handler serves the
	// front's requests too. Its ReadHeaderTimeout, IdleTimeout (or
	// ReadTimeout) and WriteTimeout bound the front's connections as they
	// bound its own.
	Std *http.Server
	// Prefixes are the paths the front answers itself: a GET whose path
	// starts with one of them.
	Prefixes []string
	// Inline, if set, says which of the front's requests can be answered
	// without waiting (a lookup in local state, say): those may be
	// answered on the goroutine that notices their arrival in
	// pollnet.Yield or pollnet.Poll, so that they wait for no turn at
	// all. A handler that finds it must wait after all calls Defer. The
	// others wait for the connection's goroutine.
	Inline func(*http.Request) bool
	// Log reports handler panics; nil means slog.Default().
	Log *slog.Logger

	mu       sync.Mutex
	base     context.Context // the front's requests' context, with net/http's values
	ln       net.Listener
	handoff  *handoff
	conns    map[*frontConn]struct{}
	shutdown bool
	served   chan struct{} // closed when Std.Serve has returned
}

// bufSize is the read buffer of a front connection. A request whose head
// does not fit goes to Std, which applies its own header limit.
const bufSize = 8 << 10

// Serve accepts connections on ln until Shutdown, serving them as the
// package documentation says. It returns http.ErrServerClosed after
// Shutdown, or the error that stopped accepting.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handoff = &handoff{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.conns = map[*frontConn]struct{}{}
	s.served = make(chan struct{})
	base := context.Background()
	if s.Std.BaseContext != nil {
		base = s.Std.BaseContext(ln)
	}
	s.base = context.WithValue(base, http.ServerContextKey, s.Std)
	h := s.handoff
	s.mu.Unlock()
	go func() {
		defer close(s.served)
		_ = s.Std.Serve(h)
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return http.ErrServerClosed
			}
			if t, ok := err.(interface{ Temporary() bool }); ok && t.Temporary() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc := &frontConn{srv: s, c: c}
		if !s.track(fc, true) {
			c.Close()
			return http.ErrServerClosed
		}
		go fc.serve()
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// track adds c to the front's connections, or removes it; adding fails
// once Shutdown has begun.
func (s *Server) track(c *frontConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutdown {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown stops accepting, closes the front's idle connections, lets
// those answering finish their answer, and shuts Std down as
// http.Server.Shutdown does, all within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	var lnErr error
	if s.ln != nil {
		lnErr = s.ln.Close()
	}
	if s.handoff != nil {
		s.handoff.Close()
	}
	served := s.served
	s.mu.Unlock()
	err := s.Std.Shutdown(ctx)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		busy := 0
		for c := range s.conns {
			if !c.closeIfIdle() {
				busy++
			}
		}
		s.mu.Unlock()
		if busy == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if served != nil {
		<-served
	}
	if err == nil && lnErr != nil && !errors.Is(lnErr, net.ErrClosed) {
		err = lnErr
	}
	return err
}

// frontConn is a connection the front is serving.
type frontConn struct {
	srv *Server
	c   net.Conn

	// mu is held while reading, answering and writing, by the
	// connection's goroutine or by Yield's (see arrived).
	mu        sync.Mutex
	buf       []byte    // received and not yet answered: len is what is held
	out       []byte    // an answer arrived could not finish writing
	headSince time.Time // when the unfinished head in buf began, or zero
	handed    bool      // the connection went to Std
	doomed    bool      // answering inline ended the connection: its goroutine closes it
	ctx       context.Context
	idle      time.Duration // the idle timeout
	hr        *bufio.Reader
	head      bytes.Reader

	state sync.Mutex
	busy  bool // a request is being answered
	gone  bool // closed
}

// closeIfIdle closes fc unless it is answering, and reports whether it is
// closed now.
func (fc *frontConn) closeIfIdle() bool {
	fc.state.Lock()
	defer fc.state.Unlock()
	if fc.busy {
		return false
	}
	if !fc.gone {
		fc.gone = true
		fc.c.Close()
	}
	return true
}

// setBusy marks fc answering or not; it reports false when Shutdown
// closed fc meanwhile.
func (fc *frontConn) setBusy(b bool) bool {
	fc.state.Lock()
	defer fc.state.Unlock()
	if fc.gone {
		return false
	}
	fc.busy = b
	return true
}

// close closes fc and forgets it.
func (fc *frontConn) close() {
	pollnet.OnArrival(fc.c, nil)
	fc.state.Lock()
	if !fc.gone {
		fc.gone = true
		fc.c.Close()
	}
	fc.state.Unlock()
	fc.srv.track(fc, false)
}

// verdict is what serveBuffered leaves to do.
type verdict int

const (
	drained  verdict = iota // everything received is answered
	partial                 // a request is still arriving
	handOver                // the next request is for Std
	closing                 // the connection is done
	declined                // (answering on Yield's goroutine) left for the connection's goroutine
)

// serve answers fc's requests until it closes or goes to Std.
func (fc *frontConn) serve() {
	std := fc.srv.Std
	idle := cmp.Or(std.IdleTimeout, std.ReadTimeout)
	head := cmp.Or(std.ReadHeaderTimeout, std.ReadTimeout)
	fc.mu.Lock()
	fc.buf = make([]byte, 0, bufSize)
	fc.hr = bufio.NewReaderSize(&fc.head, 512)
	fc.idle = idle
	fc.ctx = fc.srv.base
	if std.ConnContext != nil {
		fc.ctx = std.ConnContext(fc.ctx, fc.c)
	}
	fc.mu.Unlock()
	if fc.srv.Inline != nil {
		pollnet.OnArrival(fc.c, fc.arrived)
	}
	for {
		// Under fc.mu: an answer given inline meanwhile sets the deadline too.
		fc.mu.Lock()
		var deadline time.Time
		switch since := fc.headSince; {
		case !since.IsZero() && head > 0:
			deadline = since.Add(head)
		case since.IsZero() && idle > 0:
			deadline = time.Now().Add(idle)
		}
		_ = fc.c.SetReadDeadline(deadline)
		fc.mu.Unlock()
		if err := pollnet.WaitReadable(fc.c); err != nil {
			fc.close()
			return
		}
		fc.mu.Lock()
		v := fc.step()
		if v == closing {
			fc.doomed = true // no inline answer in the moment before close
		}
		fc.mu.Unlock()
		switch v {
		case handOver:
			fc.handOver()
			return
		case closing:
			fc.close()
			return
		}
		if fc.srv.closing() && v == drained {
			fc.close()
			return
		}
	}
}

// step, with fc.mu held, finishes a pending answer, reads what arrived and
// answers what it can.
func (fc *frontConn) step() verdict {
	if len(fc.out) > 0 {
		fc.setWriteDeadline()
		if _, err := fc.c.Write(fc.out); err != nil {
			return closing
		}
		fc.out = nil
	}
	if fc.doomed {
		return closing
	}
	if len(fc.buf) < cap(fc.buf) {
		n, err := pollnet.ReadNow(fc.c, fc.buf[len(fc.buf):cap(fc.buf)])
		switch {
		case errors.Is(err, pollnet.ErrWouldBlock):
		case err != nil:
			// The end of the stream, or an error: answer what came
			// before it, as net/http does, then close.
			if v := fc.serveBuffered(false); v == handOver {
				return handOver
			}
			return closing
		}
		fc.buf = fc.buf[:len(fc.buf)+n]
	}
	return fc.serveBuffered(false)
}

// arrived is fc's OnArrival function: on the goroutine calling Yield, it
// answers the requests that arrived if they can be answered without
// waiting (Server.Inline), and declines otherwise.
func (fc *frontConn) arrived() bool {
	if !fc.mu.TryLock() {
		return false
	}
	defer fc.mu.Unlock()
	if fc.handed || fc.doomed || len(fc.out) > 0 || len(fc.buf) == cap(fc.buf) {
		return false
	}
	n, err := pollnet.ReadNow(fc.c, fc.buf[len(fc.buf):cap(fc.buf)])
	if err != nil {
		return false
	}
	fc.buf = fc.buf[:len(fc.buf)+n]
	switch fc.serveBuffered(true) {
	case drained:
		return true
	case closing:
		fc.doomed = true // the woken goroutine closes the connection
	}
	return false
}

// serveBuffered answers the complete requests in fc.buf, in order, with
// fc.mu held. On Yield's goroutine (inline) it answers only those that
// Server.Inline allows and writes without waiting; it declines the rest.
func (fc *frontConn) serveBuffered(inline bool) verdict {
	for {
		if len(fc.buf) == 0 {
			fc.headSince = time.Time{}
			return drained
		}
		end, v := fc.headEnd()
		if v != drained {
			if v == partial && fc.headSince.IsZero() {
				fc.headSince = time.Now()
			}
			if inline && v != partial {
				return declined
			}
			return v
		}
		fc.head.Reset(fc.buf[:end])
		fc.hr.Reset(&fc.head)
		req, err := http.ReadRequest(fc.hr)
		if err != nil {
			if inline {
				return declined
			}
			// As net/http answers a request it cannot parse.
			fc.setWriteDeadline()
			io.WriteString(fc.c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
			return closing
		}
		if !fc.plain(req, end) {
			if inline {
				return declined
			}
			return handOver // anything unusual is net/http's, from this request on
		}
		if inline && (req.Close || !fc.srv.Inline(req)) {
			return declined
		}
		fc.headSince = time.Time{}
		if !fc.setBusy(true) {
			return closing
		}
		v = fc.answer(req, end, inline)
		fc.setBusy(false)
		if v != drained {
			return v
		}
		if inline && len(fc.buf) > 0 {
			// One answer per arrival: a client that sends many at once
			// must not hold a goroutine of the pipeline; the
			// connection's goroutine answers the rest.
			return declined
		}
	}
}

// plain reports whether req, whose head is n bytes, is a request the front
// answers as net/http would: no body, no Expect or Upgrade, a Host of
// ordinary characters, header values without control characters, and a
// head within Std's MaxHeaderBytes. (http.ReadRequest has taken the Host
// header out into req.Host, as net/http's server does, and refused more
// than one.)
func (fc *frontConn) plain(req *http.Request, n int) bool {
	if req.ContentLength != 0 || len(req.TransferEncoding) > 0 || req.Header.Get("Expect") != "" || req.Header.Get("Upgrade") != "" {
		return false
	}
	if max := fc.srv.Std.MaxHeaderBytes; max > 0 && n > max {
		return false
	}
	if !ordinaryHost(req.Host) {
		return false
	}
	for _, vs := range req.Header {
		for _, v := range vs {
			for _, c := range []byte(v) {
				if c < ' ' && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// ordinaryHost reports whether h is a Host header of letters, digits and
// the punctuation of names, addresses and ports only.
func ordinaryHost(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range []byte(h) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// answer answers req, whose head is the first end bytes of fc.buf, and
// consumes it: drained if the connection may serve another request,
// closing if not, declined (leaving req in fc.buf) if the handler deferred
// it or (inline) the answer could not all be written at once.
func (fc *frontConn) answer(req *http.Request, end int, inline bool) verdict {
	req.RemoteAddr = fc.c.RemoteAddr().String()
	ctx := context.WithValue(fc.ctx, http.LocalAddrContextKey, fc.c.LocalAddr())
	var in *inlineState
	if inline {
		in = &inlineState{}
		ctx = context.WithValue(ctx, inlineKey{}, in)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req = req.WithContext(ctx)
	w := &response{header: http.Header{}}
	ok := fc.run(w, req)
	if in != nil && in.deferred {
		return declined
	}
	// The request is consumed whatever happens next.
	fc.buf = fc.buf[:copy(fc.buf, fc.buf[end:])]
	if !ok {
		return closing // as net/http: a handler that panicked gets no answer
	}
	keep := !req.Close && !hasToken(w.final().Get("Connection"), "close")
	answer := w.encode(keep)
	if inline {
		if n, err := pollnet.WriteNow(fc.c, answer); err != nil {
			fc.out = append([]byte(nil), answer[n:]...)
			if keep {
				return declined // the connection's goroutine writes the rest
			}
			fc.doomed = true
			return declined
		}
	} else {
		fc.setWriteDeadline()
		if _, err := fc.c.Write(answer); err != nil {
			return closing
		}
	}
	if !keep {
		return closing
	}
	// An answer counts as activity, for the idle timeout, even when the
	// connection's goroutine did not see it; and it ends the wait for a
	// head that its goroutine may have been timing.
	var t time.Time
	if fc.idle > 0 {
		t = time.Now().Add(fc.idle)
	}
	_ = fc.c.SetReadDeadline(t)
	return drained
}

// hasToken reports whether the comma-separated header value v holds token,
// ignoring case.
func hasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// headEnd returns the length of the request head at the start of fc.buf,
// with drained if the request is whole and for the front, partial if more
// must arrive to say, or handOver if it is not the front's: not a GET of
// HTTP/1.1 for a path under a prefix, or a head too long for the buffer
// (net/http applies its own limits). The head ends at its first empty
// line, with or without a carriage return.
func (fc *frontConn) headEnd() (int, verdict) {
	b := fc.buf
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) == cap(b) {
			return 0, handOver
		}
		return 0, partial
	}
	if !fc.wanted(bytes.TrimSuffix(b[:i], []byte("\r"))) {
		return 0, handOver
	}
	for i < len(b) {
		rest := b[i+1:]
		switch {
		case len(rest) > 0 && rest[0] == '\n':
			return i + 2, drained
		case len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n':
			return i + 3, drained
		}
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if len(b) == cap(b) {
		return 0, handOver
	}
	return 0, partial
}

// wanted reports whether the request line asks for the front.
func (fc *frontConn) wanted(line []byte) bool {
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(method) != http.MethodGet {
		return false
	}
	target, proto, ok := bytes.Cut(rest, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" {
		return false
	}
	for _, p := range fc.srv.Prefixes {
		if bytes.HasPrefix(target, []byte(p)) {
			return true
		}
	}
	return false
}

func (fc *frontConn) setWriteDeadline() {
	var t time.Time
	if d := fc.srv.Std.WriteTimeout; d > 0 {
		t = time.Now().Add(d)
	}
	_ = fc.c.SetWriteDeadline(t)
}

// handOver gives the connection, with what it has received, to Std.
func (fc *frontConn) handOver() {
	pollnet.OnArrival(fc.c, nil)
	fc.mu.Lock()
	fc.handed = true
	rest := fc.buf
	fc.mu.Unlock()
	fc.srv.track(fc, false)
	_ = fc.c.SetDeadline(time.Time{})
	rc := &replayConn{Conn: fc.c, r: io.MultiReader(bytes.NewReader(rest), fc.c)}
	h := fc.srv.handoff
	select {
	case h.conns <- rc:
	case <-h.done:
		fc.c.Close()
	}
}

// inlineKey is the context key of a request answered on Yield's goroutine.
type inlineKey struct{}

type inlineState struct{ deferred bool }

// Defer reports whether r is being answered on a goroutine that must not
// wait (see Server.Inline) and, if so, has it answered again on its
// connection's own goroutine once the handler returns; the handler then
// returns at once, writing nothing. A handler calls it before it would
// wait, for example to forward the request to another instance.
func Defer(r *http.Request) bool {
	in, ok := r.Context().Value(inlineKey{}).(*inlineState)
	if ok {
		in.deferred = true
	}
	return ok
}

// Deferred reports whether Defer was called for r, which is then answered
// again on its connection's goroutine: middleware that counts answers
// skips this one.
func Deferred(r *http.Request) bool {
	in, ok := r.Context().Value(inlineKey{}).(*inlineState)
	return ok && in.deferred
}

// run calls the handler, reporting false if it panicked.
func (fc *frontConn) run(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				log := fc.srv.Log
				if log == nil {
					log = slog.Default()
				}
				log.Error("http: panic serving "+req.RemoteAddr, "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	h := fc.srv.Std.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	h.ServeHTTP(w, req)
	return true
}

// response is the front's http.ResponseWriter: it keeps the whole answer,
// which answer then sends at once.
type response struct {
	header http.Header
	sent   http.Header // the header as it was when the status was set
	status int
	early  bytes.Buffer // 1xx answers, sent first
	body   bytes.Buffer
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader sets the status, as net/http's does: the first final status
// counts, and the header is taken as it is then; an informational (1xx)
// status other than 101 is sent ahead with the header as it is now.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 {
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			writeStatus(&w.early, code)
			w.header.Write(&w.early)
			w.early.WriteString("\r\n")
		}
		return
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// final returns the header the answer is sent with.
func (w *response) final() http.Header {
	if w.sent != nil {
		return w.sent
	}
	return w.header
}

// encode returns the answer as HTTP/1.1 bytes, with the headers net/http
// adds (Content-Type sniffed when unset, Content-Length, Date, and
// Connection: close unless keep) and without those it drops for a status
// that has no body.
func (w *response) encode(keep bool) []byte {
	status := cmp.Or(w.status, http.StatusOK)
	body := w.body.Bytes()
	h := w.final()
	switch {
	case status == http.StatusNotModified:
		body = nil
		h.Del("Content-Type")
		h.Del("Content-Length")
	case status == http.StatusNoContent:
		body = nil
		h.Del("Content-Length")
	default:
		if _, set := h["Content-Type"]; !set && len(body) > 0 {
			h.Set("Content-Type", http.DetectContentType(body))
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	h.Del("Transfer-Encoding")
	if _, set := h["Date"]; !set {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if !keep {
		h.Set("Connection", "close")
	}
	var out bytes.Buffer
	out.Grow(w.early.Len() + len(body) + 256)
	out.Write(w.early.Bytes())
	writeStatus(&out, status)
	h.Write(&out)
	out.WriteString("\r\n")
	out.Write(body)
	return out.Bytes()
}

// writeStatus writes an HTTP/1.1 status line, as net/http words it.
func writeStatus(b *bytes.Buffer, code int) {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	fmt.Fprintf(b, "HTTP/1.1 %03d %s\r\n", code, text)
}

// replayConn is a connection handed to Std: it reads what the front has
// received first.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite shuts the writing side down, as net/http does before closing
// a connection whose request it refused.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handoff is the listener Std serves: it accepts the connections the front
// hands over.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }
