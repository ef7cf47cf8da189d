//go:build linux

package httpfront

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/pollnet"
)

// maxTries bounds the requests a test sends until one of them is answered
// on the yielding goroutine, which races the connection's own goroutine
// for each.
const maxTries = 500

// busyYielding has the test run on one processor, kept busy by a goroutine
// that calls pollnet.Yield in a loop as the stream runtime does between
// records, until the test ends. The runtime then learns of arrivals from
// Yield rather than from its network poller, as in the engine at full
// speed. Tests that call it must not be parallel.
func busyYielding(t *testing.T) {
	t.Helper()
	procs := runtime.GOMAXPROCS(1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				pollnet.Yield()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		runtime.GOMAXPROCS(procs)
	})
}

// onYield reports whether the calling goroutine is inside pollnet.Yield:
// a handler answering inline.
func onYield() bool {
	buf := make([]byte, 64<<10)
	return bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("pollnet.Yield("))
}

// startInline serves h through a front on a pollnet listener that answers
// inline the requests under prefix+"fast/".
func startInline(t *testing.T, h http.HandlerFunc) *front {
	t.Helper()
	return startFront(t, func() (net.Listener, error) { return pollnet.Listen("127.0.0.1:0") }, &Server{
		Std:      &http.Server{Handler: h},
		Prefixes: []string{prefix},
		Inline:   func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, prefix+"fast/") },
	})
}

// checkNothingMore checks that nothing follows the answers read on c, within
// a short wait: an absence check, not a speed one.
func checkNothingMore(t *testing.T, c *client) {
	t.Helper()
	if n := c.r.Buffered(); n > 0 {
		t.Fatalf("%d unexpected bytes after the last answer", n)
	}
	if err := c.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if b, err := c.r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the last answer = %q, %v; want a timeout", b, err)
	}
}

func TestInline(t *testing.T) {
	busyYielding(t)
	var inline, wrong atomic.Int32
	f := startInline(t, func(w http.ResponseWriter, r *http.Request) {
		if onYield() {
			inline.Add(1)
			if !strings.HasPrefix(r.URL.Path, prefix+"fast/") || r.Close {
				wrong.Add(1)
			}
		}
		echo(w, r)
	})
	c := dial(t, f.addr)
	sent := 0
	for i := 0; i < maxTries && inline.Load() < 3; i++ {
		sent++
		for _, kind := range []string{"fast", "slow"} {
			path := fmt.Sprintf("%s%s/%d", prefix, kind, i)
			c.send(get(path))
			c.readBody("GET " + path + " ")
		}
	}
	t.Logf("%d of %d fast requests answered on the yielding goroutine", inline.Load(), sent)
	if inline.Load() == 0 {
		t.Errorf("no request of %d was answered on the yielding goroutine", maxTries)
	}
	checkNothingMore(t, c)
	// Requests that close their connection wait for its goroutine too.
	for i := range 20 {
		c := dial(t, f.addr)
		path := fmt.Sprintf("%sfast/close/%d", prefix, i)
		c.send(get(path, "Connection: close"))
		c.readBody("GET " + path + " ")
		c.checkClosed()
	}
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d requests refused by Inline or closing their connection were answered on the yielding goroutine", n)
	}
	f.checkStdConns(t, 0)
}

func TestInlineDefer(t *testing.T) {
	busyYielding(t)
	var deferred, lost atomic.Int32
	f := startInline(t, func(w http.ResponseWriter, r *http.Request) {
		if Defer(r) {
			deferred.Add(1)
			if !onYield() {
				lost.Add(1)
			}
			fmt.Fprint(w, "must not be sent")
			return
		}
		echo(w, r)
	})
	c := dial(t, f.addr)
	sent := 0
	for i := 0; i < maxTries && deferred.Load() < 3; i++ {
		sent++
		// Each answer is the one to its own request: a deferred request
		// answered twice would shift them.
		path := fmt.Sprintf("%sfast/%d", prefix, i)
		c.send(get(path))
		c.readBody("GET " + path + " ")
	}
	t.Logf("%d of %d requests deferred from the yielding goroutine", deferred.Load(), sent)
	if deferred.Load() == 0 {
		t.Errorf("no request of %d was deferred from the yielding goroutine", maxTries)
	}
	if n := lost.Load(); n > 0 {
		t.Errorf("Defer returned true %d times off the yielding goroutine", n)
	}
	checkNothingMore(t, c)
	f.checkStdConns(t, 0)
}

// idleTries bounds the connections TestIdleTimeoutCountsInlineAnswers
// tries until one has its first request answered inline.
const idleTries = 3

// TestIdleTimeoutCountsInlineAnswers checks that a request answered on the
// yielding goroutine counts as activity for Std's IdleTimeout, although
// the connection's goroutine, waiting for data meanwhile, did not see it:
// a request sent after the idle timeout counted from the connection's
// start, but within it counted from that answer, is answered. The first
// request comes once the connection has stopped polling (after
// pollnet.Linger), so that its goroutine waits on the network poller,
// which does not wake it while the processor is busy: the request is
// answered inline, and the goroutine goes on waiting.
func TestIdleTimeoutCountsInlineAnswers(t *testing.T) {
	busyYielding(t)
	const (
		first  = pollnet.Linger + 200*time.Millisecond // from the dial to the first request
		idle   = pollnet.Linger + 500*time.Millisecond // Std's IdleTimeout
		second = idle + 200*time.Millisecond           // from the dial to the second request
	)
	// The connection's goroutine starts its idle timer a moment after the
	// dial: by second, it has run out, unless the first answer restarted it.
	var inline atomic.Int32
	f := startFront(t, func() (net.Listener, error) { return pollnet.Listen("127.0.0.1:0") }, &Server{
		Std: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if onYield() {
				inline.Add(1)
			}
			echo(w, r)
		}), IdleTimeout: idle},
		Prefixes: []string{prefix},
		Inline:   func(*http.Request) bool { return true },
	})
	for try := range idleTries {
		start := time.Now()
		c := dial(t, f.addr)
		time.Sleep(time.Until(start.Add(first)))
		before := inline.Load()
		sent := time.Now()
		c.send(get(prefix + "first"))
		c.readBody("GET /q/first ")
		if inline.Load() == before {
			t.Logf("try %d: the first request was answered on the connection's goroutine", try)
			continue
		}
		time.Sleep(time.Until(start.Add(second)))
		gap := time.Since(sent)
		if gap >= idle {
			t.Logf("try %d: too late for the second request (%v after the first)", try, gap)
			continue
		}
		c.send(get(prefix + "second"))
		if a, err := c.tryRead(); err != nil || a.body != "GET /q/second " {
			t.Fatalf("try %d: a request sent %v after one answered inline, with an idle timeout of %v: %s %q, %v; want an answer",
				try, gap.Round(time.Millisecond), idle, a.status, a.body, err)
		}
		return
	}
	t.Errorf("none of %d tries could tell (see the log)", idleTries)
}

// TestInlinePanicClosesConnection checks that a handler that panics on the
// yielding goroutine closes its connection without an answer, as one that
// panics on the connection's goroutine does (TestPanicClosesConnection),
// rather than leaving the client waiting on an open connection.
func TestInlinePanicClosesConnection(t *testing.T) {
	busyYielding(t)
	var logged syncBuffer
	var panicked atomic.Int32
	f := startFront(t, func() (net.Listener, error) { return pollnet.Listen("127.0.0.1:0") }, &Server{
		Std: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, prefix+"fast/panic/") && onYield() {
				panicked.Add(1)
				io.WriteString(w, "never sent")
				panic("inline boom")
			}
			echo(w, r)
		})},
		Prefixes: []string{prefix},
		Inline:   func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, prefix+"fast/") },
		Log:      slog.New(slog.NewTextHandler(&logged, nil)),
	})
	closed, sent := 0, 0
	c := dial(t, f.addr)
	for i := 0; i < maxTries && closed < 3; i++ {
		sent++
		// The handler panics only if it runs on the yielding goroutine;
		// on the connection's, it answers.
		path := fmt.Sprintf("%sfast/panic/%d", prefix, i)
		before := panicked.Load()
		c.send(get(path))
		a, err := c.tryRead()
		switch {
		case panicked.Load() == before:
			if err != nil || a.body != "GET "+path+" " {
				t.Fatalf("request %d, not answered inline: %s %q, %v; want 200 OK %q", i, a.status, a.body, err, "GET "+path+" ")
			}
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			closed++
			c = dial(t, f.addr)
		default:
			t.Fatalf("request %d, whose handler panicked inline: read %s %q, %v; want the connection closed", i, a.status, a.body, err)
		}
	}
	t.Logf("%d of %d requests panicked on the yielding goroutine", closed, sent)
	if closed == 0 {
		t.Errorf("no handler of %d panicked on the yielding goroutine", maxTries)
	}

	// The front keeps serving, inline or not.
	c.send(get(prefix + "fast/ok"))
	c.readBody("GET /q/fast/ok ")
	if out := logged.String(); !strings.Contains(out, "inline boom") {
		t.Errorf("the inline panic was not logged; log:\n%s", out)
	}
	f.checkStdConns(t, 0)
}

// TestInlineOneAnswerPerArrival sends lookups pipelined, several in one
// write: an arrival gets at most one answer on the yielding goroutine (a
// client sending many at once must not hold a goroutine of the pipeline),
// the connection's goroutine answers the rest, and every answer comes, in
// order.
func TestInlineOneAnswerPerArrival(t *testing.T) {
	busyYielding(t)
	const perWrite = 5
	var inline atomic.Int32
	f := startInline(t, func(w http.ResponseWriter, r *http.Request) {
		if onYield() {
			inline.Add(1)
		}
		echo(w, r)
	})
	c := dial(t, f.addr)
	writes := 0
	for i := 0; i < maxTries && inline.Load() < 3; i++ {
		writes++
		var reqs []string
		for j := range perWrite {
			reqs = append(reqs, get(fmt.Sprintf("%sfast/%d/%d", prefix, i, j)))
		}
		c.send(strings.Join(reqs, ""))
		for j := range perWrite {
			c.readBody(fmt.Sprintf("GET %sfast/%d/%d ", prefix, i, j))
		}
	}
	if inline.Load() == 0 {
		t.Errorf("no request of %d writes was answered on the yielding goroutine", writes)
	}
	if n := int(inline.Load()); n > writes {
		t.Errorf("%d answers on the yielding goroutine for %d writes: more than one per arrival", n, writes)
	}
	checkNothingMore(t, c)
	f.checkStdConns(t, 0)
}
