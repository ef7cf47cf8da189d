package pollnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hangTimeout bounds every wait in these tests; reaching it means a hang,
// not slowness.
const hangTimeout = 5 * time.Second

// tcpPair returns both ends of a real TCP connection on 127.0.0.1: the
// accepted end and the dialled end. Both are closed when the test ends.
func tcpPair(t testing.TB) (accepted, dialed *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a.(*net.TCPConn), d.(*net.TCPConn)
}

// newPolling returns a freshly wrapped connection, which polls for Linger,
// and the plain TCP connection at its other end.
func newPolling(t testing.TB) (*conn, *net.TCPConn) {
	t.Helper()
	a, peer := tcpPair(t)
	return Wrap(a).(*conn), peer
}

// idle sleeps until c has seen no data for longer than Linger, so that its
// next Read waits on the network poller instead of polling.
func idle(c *conn) {
	time.Sleep(time.Until(time.Unix(0, c.last.Load()).Add(Linger + 200*time.Millisecond)))
}

// isPolling reports whether a Read on c is currently polling.
func isPolling(c *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polling
}

// waitPolling waits until a Read on c is polling, failing the test after
// hangTimeout.
func waitPolling(t *testing.T, c *conn) {
	t.Helper()
	for start := time.Now(); !isPolling(c); time.Sleep(time.Millisecond) {
		if time.Since(start) > hangTimeout {
			t.Fatal("Read did not start polling")
		}
	}
}

// readResult is the outcome of one Read.
type readResult struct {
	data string
	err  error
	at   time.Time // when Read returned
}

// startRead calls c.Read in a new goroutine and returns a channel that
// receives its outcome.
func startRead(c net.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		ch <- readResult{string(buf[:n]), err, time.Now()}
	}()
	return ch
}

// await returns what ch receives, failing the test if nothing arrives
// within hangTimeout.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangTimeout):
		t.Fatalf("%s: no result after %v", what, hangTimeout)
		panic("unreachable")
	}
}

// checkDeadlineErr fails the test unless err reports an expired deadline
// both as os.ErrDeadlineExceeded and as a net.Error timeout.
func checkDeadlineErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v (%T), want a net.Error with Timeout() true", err, err)
	}
}

// checkTimedOut checks that r failed with a deadline error, and not
// before deadline.
func checkTimedOut(t *testing.T, r readResult, deadline time.Time) {
	t.Helper()
	checkDeadlineErr(t, r.err)
	if r.at.Before(deadline) {
		t.Errorf("Read returned %v before its deadline", deadline.Sub(r.at))
	}
}

// clearAndRead clears c's read deadline and checks that c reads msg
// written on peer.
func clearAndRead(t *testing.T, c, peer net.Conn, msg string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	writeAndRead(t, c, peer, msg)
}

// writeAndRead writes msg on peer and checks that the next Read on c,
// with no deadline set, returns it.
func writeAndRead(t *testing.T, c net.Conn, peer net.Conn, msg string) {
	t.Helper()
	ch := startRead(c)
	if _, err := peer.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch, "Read")
	if r.err != nil || r.data != msg {
		t.Fatalf("Read = %q, %v; want %q, nil", r.data, r.err, msg)
	}
}

func TestHTTPKeepAlive(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		request func(url string, i int) (*http.Request, error)
		want    func(i int) string
	}{
		{
			name: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "item %s", strings.TrimPrefix(r.URL.Path, "/item/"))
			},
			request: func(url string, i int) (*http.Request, error) {
				return http.NewRequest(http.MethodGet, fmt.Sprintf("%s/item/%d", url, i), nil)
			},
			want: func(i int) string { return fmt.Sprintf("item %d", i) },
		},
		{
			name: "POST echo",
			handler: func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				fmt.Fprintf(w, "echo %s", body)
			},
			request: func(url string, i int) (*http.Request, error) {
				return http.NewRequest(http.MethodPost, url+"/echo", strings.NewReader(fmt.Sprintf("payload %d", i)))
			},
			want: func(i int) string { return fmt.Sprintf("echo payload %d", i) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var accepted atomic.Int32
			srv := &http.Server{
				Handler: tt.handler,
				ConnState: func(_ net.Conn, s http.ConnState) {
					if s == http.StateNew {
						accepted.Add(1)
					}
				},
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if err := await(t, served, "Serve"); !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve = %v, want http.ErrServerClosed", err)
				}
			})

			var dials atomic.Int32
			tr := &http.Transport{
				// One connection at most: under load the client may dial a
				// second one rather than wait for the first to come back
				// to its pool, which says nothing of keep-alive.
				MaxConnsPerHost: 1,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return DialContext(ctx, network, addr)
				},
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: hangTimeout}
			url := "http://" + ln.Addr().String()

			for i := range 200 {
				req, err := tt.request(url, i)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("request %d: reading body: %v", i, err)
				}
				if resp.StatusCode != http.StatusOK || string(body) != tt.want(i) {
					t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, tt.want(i))
				}
			}
			if n := accepted.Load(); n != 1 {
				t.Errorf("server accepted %d connections, want 1", n)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("client dialled %d connections, want 1", n)
			}
		})
	}
}

func TestReadDeadline(t *testing.T) {
	tests := []struct {
		name  string
		idle  bool          // let the connection stop polling first
		after time.Duration // the read deadline, from now
	}{
		{"polling", false, 100 * time.Millisecond},
		{"polling, deadline within Interval", false, Interval / 2},
		{"idle", true, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, peer := newPolling(t)
			if tt.idle {
				idle(c)
			}
			deadline := time.Now().Add(tt.after)
			if err := c.SetReadDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			r := await(t, startRead(c), "Read with deadline")
			if r.data != "" {
				t.Fatalf("Read returned %q with no data sent", r.data)
			}
			checkTimedOut(t, r, deadline)

			// The connection still works once the deadline is cleared.
			clearAndRead(t, c, peer, "after deadline")
		})
	}
}

func TestSetReadDeadlineInterruptsRead(t *testing.T) {
	tests := []struct {
		name     string
		idle     bool          // let the connection stop polling first
		deadline time.Duration // the new read deadline, from now
	}{
		{"polling, past", false, -time.Second},
		{"polling, near future", false, 50 * time.Millisecond},
		{"idle, past", true, -time.Second},
		{"idle, near future", true, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, peer := newPolling(t)
			if tt.idle {
				idle(c)
			}
			ch := startRead(c)
			if tt.idle {
				time.Sleep(50 * time.Millisecond) // let Read block
				if isPolling(c) {
					t.Fatal("idle connection is polling")
				}
			} else {
				waitPolling(t, c)
			}
			deadline := time.Now().Add(tt.deadline)
			if err := c.SetReadDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			checkTimedOut(t, await(t, ch, "Read interrupted by SetReadDeadline"), deadline)

			clearAndRead(t, c, peer, "after interrupt")
		})
	}
}

func TestSetDeadline(t *testing.T) {
	tests := []struct {
		name   string
		during bool // call SetDeadline while a Read is polling
	}{
		{"before Read", false},
		{"during Read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := newPolling(t)
			past := time.Now().Add(-time.Second)
			var ch <-chan readResult
			if tt.during {
				ch = startRead(c)
				waitPolling(t, c)
			}
			if err := c.SetDeadline(past); err != nil {
				t.Fatal(err)
			}
			if !tt.during {
				ch = startRead(c)
			}
			r := await(t, ch, "Read after past SetDeadline")
			checkDeadlineErr(t, r.err)

			_, err := c.Write([]byte("x"))
			checkDeadlineErr(t, err)

			// Clearing both deadlines makes reads and writes work again.
			if err := c.SetDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
			writeAndRead(t, c, peer, "after SetDeadline")
			writeAndRead(t, peer, c, "reply")
		})
	}
}

func TestReadAfterLinger(t *testing.T) {
	tests := []struct {
		name    string
		traffic bool // exchange data before going idle
	}{
		{"fresh", false},
		{"after traffic", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, peer := newPolling(t)
			if tt.traffic {
				writeAndRead(t, c, peer, "warm up")
			}
			time.Sleep(Linger + 200*time.Millisecond)

			ch := startRead(c)
			time.Sleep(50 * time.Millisecond) // let Read block
			if isPolling(c) {
				t.Fatal("connection idle for longer than Linger is polling")
			}
			if _, err := peer.Write([]byte("late")); err != nil {
				t.Fatal(err)
			}
			if r := await(t, ch, "Read after Linger"); r.err != nil || r.data != "late" {
				t.Fatalf("Read = %q, %v; want %q, nil", r.data, r.err, "late")
			}

			// Having seen data, the connection polls again.
			ch = startRead(c)
			waitPolling(t, c)
			if _, err := peer.Write([]byte("again")); err != nil {
				t.Fatal(err)
			}
			if r := await(t, ch, "Read after data"); r.err != nil || r.data != "again" {
				t.Fatalf("Read = %q, %v; want %q, nil", r.data, r.err, "again")
			}
		})
	}
}

// acceptOne dials ln and accepts the connection, which starts ln polling.
func acceptOne(t *testing.T, ln net.Listener) {
	t.Helper()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func TestListenerCloseUnblocksAccept(t *testing.T) {
	tests := []struct {
		name    string
		polling bool          // accept a connection first
		wait    time.Duration // before Close
		runs    int
	}{
		{"not polling", false, 50 * time.Millisecond, 1},
		{"polling", true, 50 * time.Millisecond, 1},
		// Close at random points of the poll cycle.
		{"polling, random close", true, 3 * Interval, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for run := range tt.runs {
				ln, err := Listen("127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if tt.polling {
					acceptOne(t, ln)
				}
				accepted := make(chan error, 1)
				go func() {
					c, err := ln.Accept()
					if c != nil {
						c.Close()
					}
					accepted <- err
				}()
				wait := tt.wait
				if tt.runs > 1 {
					wait = rand.N(wait)
				}
				time.Sleep(wait)
				if err := ln.Close(); err != nil {
					t.Fatal(err)
				}
				err = await(t, accepted, "Accept after Close")
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("run %d: Accept after Close = %v, want net.ErrClosed", run, err)
				}
			}
		})
	}
}

func TestListenerAccepts(t *testing.T) {
	tests := []struct {
		name  string
		state func(t *testing.T, ln net.Listener)
	}{
		{"fresh", func(*testing.T, net.Listener) {}},
		{"polling", acceptOne},
		{"idle after Linger", func(t *testing.T, ln net.Listener) {
			acceptOne(t, ln)
			time.Sleep(Linger + 200*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			tt.state(t, ln)

			type acceptResult struct {
				c   net.Conn
				err error
			}
			ch := make(chan acceptResult, 1)
			go func() {
				c, err := ln.Accept()
				ch <- acceptResult{c, err}
			}()
			time.Sleep(20 * time.Millisecond) // let Accept block
			peer, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			r := await(t, ch, "Accept")
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			if _, ok := r.c.(*conn); !ok {
				t.Fatalf("Accept returned %T, want *conn", r.c)
			}
			if got, want := r.c.RemoteAddr().String(), peer.LocalAddr().String(); got != want {
				t.Errorf("RemoteAddr = %s, want %s", got, want)
			}
			writeAndRead(t, r.c, peer, "accepted")
		})
	}
}

func TestDialContext(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	unix, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()

	tests := []struct {
		network, addr string
		wrapped       bool
	}{
		{"tcp", tcp.Addr().String(), true},
		{"tcp4", tcp.Addr().String(), true},
		{"unix", unix.Addr().String(), false},
	}
	for _, tt := range tests {
		t.Run(tt.network, func(t *testing.T) {
			c, err := DialContext(context.Background(), tt.network, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*conn); ok != tt.wrapped {
				t.Errorf("DialContext returned %T, wrapped = %v, want %v", c, ok, tt.wrapped)
			}
		})
	}

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := DialContext(ctx, "tcp", tcp.Addr().String()); err == nil {
			c.Close()
			t.Fatal("DialContext with a canceled context succeeded")
		}
	})
}

func TestWrapPassThrough(t *testing.T) {
	a, peer := tcpPair(t)
	c := Wrap(a)

	addrs := []struct {
		name      string
		got, want net.Addr
	}{
		{"LocalAddr", c.LocalAddr(), a.LocalAddr()},
		{"LocalAddr is peer's RemoteAddr", c.LocalAddr(), peer.RemoteAddr()},
		{"RemoteAddr", c.RemoteAddr(), a.RemoteAddr()},
		{"RemoteAddr is peer's LocalAddr", c.RemoteAddr(), peer.LocalAddr()},
	}
	for _, tt := range addrs {
		if tt.got.Network() != tt.want.Network() || tt.got.String() != tt.want.String() {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// conn must not let io.Copy read around Read.
	if _, ok := c.(io.WriterTo); ok {
		t.Error("wrapped conn implements io.WriterTo")
	}

	if err := peer.SetReadDeadline(time.Now().Add(hangTimeout)); err != nil {
		t.Fatal(err)
	}
	const msg = "through Write"
	if n, err := c.Write([]byte(msg)); n != len(msg) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(msg))
	}

	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("wrapped conn %T has no CloseWrite", c)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer) // reads until io.EOF
	if err != nil || string(got) != msg {
		t.Fatalf("peer read %q, %v; want %q then io.EOF", got, err, msg)
	}
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer Read after CloseWrite = %d, %v; want 0, io.EOF", n, err)
	}

	// The read half stays open.
	writeAndRead(t, c, peer, "half open")

	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
}
