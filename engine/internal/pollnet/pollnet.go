// Package pollnet provides TCP listeners and connections that notice a
// request within a fraction of a millisecond even when every CPU is busy.
//
// Go's scheduler learns that a socket became readable from the network
// poller, which it consults when a processor runs out of goroutines to run,
// or every 10 ms from its monitor thread. A process whose pipeline keeps
// every processor busy (the engine at full speed) therefore answers a query
// up to 10 ms late, per hop, although answering takes microseconds. A
// runtime timer, unlike the poller, is run by the processor that owns it at
// its next scheduling point, and the goroutine it wakes runs next. So a
// connection here that has seen traffic recently reads with a short
// deadline and, when the deadline passes, simply reads again: each read
// starts with a read(2), which finds data the poller has not reported yet.
//
// A connection polls for Linger after its last data, then waits for the
// poller as any connection does, so an idle connection costs nothing. The
// listener does the same after its last accepted connection. Deadlines set
// by the caller keep their meaning.
//
// Polling bounds the wait for a read, not the wait for a turn once the
// read is due: a woken goroutine still queues behind the garbage
// collector's workers and long-running goroutines. So, on Linux, the
// package also keeps the connections' sockets in an epoll set of its own,
// and Yield and Poll, which busy goroutines call between records, ask it
// without blocking: data that arrived runs the connection's OnArrival
// function right there (httpfront answers a lookup so), or wakes its
// reader. Handoff, for goroutines that may hold locks such a function
// could need (Pebble's flushes and compactions call it), only wakes the
// reader and yields the processor to it. WaitReadable, ReadNow and
// WriteNow let such a function and the connection's goroutine share the
// connection.
package pollnet

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Interval is how often a polling connection or listener looks for data
// itself.
const Interval = 100 * time.Microsecond

// Linger is how long after its last data a connection keeps polling (and a
// listener after its last connection).
const Linger = time.Second

// Listen announces on the TCP address addr.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &listener{TCPListener: ln.(*net.TCPListener)}, nil
}

type listener struct {
	*net.TCPListener
	last atomic.Int64 // unix nanos of the last accepted connection
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		poll := time.Since(time.Unix(0, l.last.Load())) < Linger
		var deadline time.Time
		if poll {
			deadline = time.Now().Add(Interval)
		}
		if err := l.TCPListener.SetDeadline(deadline); err != nil {
			return nil, err
		}
		c, err := l.TCPListener.AcceptTCP()
		if err == nil {
			l.last.Store(time.Now().UnixNano())
			return Wrap(c), nil
		}
		// If Close came after the deadline passed, the next SetDeadline
		// or AcceptTCP reports it.
		if poll && errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		return nil, err
	}
}

// DialContext connects to addr as a net.Dialer with a 30 s keep-alive
// does; with it as an http.Transport's DialContext, responses are noticed
// as Listen's connections notice requests.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return Wrap(tc), nil
	}
	return c, nil
}

var dialer = net.Dialer{KeepAlive: 30 * time.Second}

// Wrap returns c polling as described in the package documentation,
// starting now.
func Wrap(c *net.TCPConn) net.Conn {
	pc := &conn{tcp: c, fd: -1}
	pc.last.Store(time.Now().UnixNano())
	if notices != nil {
		notices.watch(pc)
	}
	return pc
}

// conn is a polling connection. It does not embed the TCP connection, so
// that io.Copy cannot reach its WriteTo and read around Read.
type conn struct {
	tcp  *net.TCPConn
	last atomic.Int64 // unix nanos of the last data read

	mu       sync.Mutex
	deadline time.Time // the caller's read deadline
	reading  bool      // a Read or WaitReadable is under way
	polling  bool      // a Read is waiting with its own short deadline
	kicked   bool      // Yield cut the Read's wait short: data has arrived
	unseen   bool      // Yield kicked while no Read was under way

	fd      int32                       // the socket in the epoll set Yield asks, or -1; guarded by notices.mu
	arrival atomic.Pointer[func() bool] // see OnArrival
}

func (c *conn) Read(p []byte) (int, error) {
	return c.await(func() (int, error) { return c.tcp.Read(p) }, false)
}

// await runs op, a read that waits for data within the read deadline,
// until it succeeds, fails otherwise than by the polling deadline, or the
// caller's deadline passes. With stopOnKick, a wait that Yield cut short
// ends too, with no error.
func (c *conn) await(op func() (int, error), stopOnKick bool) (int, error) {
	defer func() {
		c.mu.Lock()
		c.reading, c.polling, c.kicked = false, false, false
		c.mu.Unlock()
	}()
	for {
		now := time.Now()
		poll := now.Sub(time.Unix(0, c.last.Load())) < Linger
		c.mu.Lock()
		if stopOnKick && (c.unseen || c.kicked) {
			// A kick since the last look, while no wait was under way
			// or after the last one ended: it is not lost.
			c.unseen, c.kicked = false, false
			c.mu.Unlock()
			return 0, nil
		}
		c.unseen = false
		d := c.deadline
		if poll && (d.IsZero() || now.Add(Interval).Before(d)) {
			d = now.Add(Interval)
		}
		c.reading, c.polling, c.kicked = true, poll, false
		err := c.tcp.SetReadDeadline(d)
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := op()
		if err == nil {
			c.last.Store(time.Now().UnixNano())
		}
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		c.mu.Lock()
		d, kicked := c.deadline, c.kicked
		c.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return 0, err // the caller's own deadline passed
		}
		if !poll && !kicked {
			return 0, err // the caller's own deadline passed
		}
		if kicked && stopOnKick {
			return 0, nil
		}
	}
}

// kick cuts short the wait of a Read under way, which then reads again and
// finds the data that Yield saw arrive (or ends, see await). With no Read
// under way, the next await that stops on a kick ends at once.
func (c *conn) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reading {
		c.unseen = true
		return
	}
	if c.kicked {
		return
	}
	c.kicked = true
	kicks.Add(1)
	_ = c.tcp.SetReadDeadline(aLongTimeAgo)
}

// kicks counts the Reads that kick cut short.
var kicks atomic.Uint64

// aLongTimeAgo is a deadline in the past: it ends a wait at once.
var aLongTimeAgo = time.Unix(1, 0)

// SetReadDeadline sets the caller's read deadline. One that comes before
// a polling Read's own deadline (to interrupt it) takes effect at once.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.polling && (t.IsZero() || time.Now().Add(Interval).Before(t)) {
		return nil // the polling Read's deadline comes first, then it reads this one
	}
	if c.reading && c.kicked {
		return nil // the kick's past deadline stands; the wait then reads this one
	}
	return c.tcp.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.tcp.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *conn) Write(p []byte) (int, error) { return c.tcp.Write(p) }
func (c *conn) Close() error {
	if notices != nil {
		notices.unwatch(c)
	}
	return c.tcp.Close()
}

func (c *conn) CloseWrite() error                  { return c.tcp.CloseWrite() }
func (c *conn) LocalAddr() net.Addr                { return c.tcp.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.tcp.RemoteAddr() }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.tcp.SetWriteDeadline(t) }

var _ net.Conn = (*conn)(nil)
