//go:build linux

package pollnet

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// noticer is an epoll set of every polling connection's socket, separate
// from the runtime's network poller, that Yield asks without blocking.
type noticer struct {
	epfd int
	next atomic.Int64 // monotonic nanos before which Yield does not ask

	mu    sync.Mutex
	conns map[int32]*conn // by file descriptor
}

// notices is nil when the kernel refused an epoll set; connections then
// rely on their polling deadlines alone.
var notices = func() *noticer {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	return &noticer{epfd: fd, conns: map[int32]*conn{}}
}()

// epoch anchors the monotonic clock Yield reads.
var epoch = time.Now()

// askEvery is how often, at most, Yield asks the epoll set: often enough
// that a request waits a small fraction of Interval for it, rarely enough
// that the system calls cost nothing measurable.
const askEvery = 50 * time.Microsecond

// Yield yields the processor as runtime.Gosched does, first doing what
// Poll does: running the OnArrival function of each connection whose data
// has arrived, or waking the goroutine that waits to read from it, so that
// it runs next on this processor instead of waiting for its polling
// deadline and then for a turn. A busy loop that calls Yield
// regularly (the stream runtime does, every few records) so lets a query
// be read, answered and written within microseconds of its arrival, even
// while every processor is busy.
func Yield() {
	Poll()
	runtime.Gosched()
}

// Poll does what Yield does first, without yielding: it runs the OnArrival
// functions of connections whose data has arrived, and wakes the readers
// of the others. It costs a clock reading when there is nothing to do, and
// asks the kernel at most once per askEvery, so busy goroutines can call it
// for every record they pass on (the engine's Kafka clients do, through
// sarama's interceptors). Call it only where the goroutine holds no lock
// that an OnArrival function might take.
func Poll() {
	if n := notices; n != nil {
		n.wake(true)
	}
}

// Handoff does what Poll does without running any OnArrival function: it
// wakes the reader of each connection whose data has arrived and, when it
// woke one, yields the processor, so that the reader runs next on it and
// answers on its own goroutine. It is for goroutines that may hold locks an
// OnArrival function could need, such as a storage engine's background
// flushes and compactions between two writes; it costs what Poll costs
// when there is nothing to do.
func Handoff() {
	if n := notices; n != nil && n.wake(false) {
		runtime.Gosched()
	}
}

// wake wakes the reader of every registered connection with new data, at
// most once per askEvery; with inline, a connection's OnArrival function
// gets the arrival first. It reports whether it woke a reader.
func (n *noticer) wake(inline bool) bool {
	now := int64(time.Since(epoch))
	next := n.next.Load()
	if now < next || !n.next.CompareAndSwap(next, now+int64(askEvery)) {
		return false
	}
	woke := false
	for _, c := range n.arrived() {
		if f := c.arrival.Load(); inline && f != nil && (*f)() {
			continue
		}
		c.kick()
		woke = true
	}
	return woke
}

// arrived returns the registered connections whose data arrived since the
// last call, without waiting.
func (n *noticer) arrived() []*conn {
	var events [16]unix.EpollEvent
	k, err := unix.EpollWait(n.epfd, events[:], 0)
	if err != nil || k <= 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*conn, 0, k)
	for _, ev := range events[:k] {
		if c := n.conns[ev.Fd]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// watch adds c's socket to the epoll set, edge-triggered: each arrival of
// data is reported once.
func (n *noticer) watch(c *conn) {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}
		if unix.EpollCtl(n.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			return
		}
		n.mu.Lock()
		n.conns[int32(fd)] = c
		c.fd = int32(fd)
		n.mu.Unlock()
	})
}

// unwatch removes c's socket from the epoll set; c is about to close.
func (n *noticer) unwatch(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.fd < 0 || n.conns[c.fd] != c {
		return
	}
	_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	delete(n.conns, c.fd)
	c.fd = -1
}

func (c *conn) waitReadable() error {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return err
	}
	_, err = c.await(func() (int, error) {
		return 0, rc.Read(func(fd uintptr) bool {
			var one [1]byte
			for {
				_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
				if err == unix.EINTR {
					continue
				}
				// Data, the end of the stream or an error: ReadNow says which.
				return err != unix.EAGAIN
			}
		})
	}, true)
	return err
}

func (c *conn) readNow(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, err
	}
	// Control, not Read: the read deadline, which may have passed while
	// a wait was polling, does not apply to a read that does not wait.
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr == unix.EAGAIN:
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.tcp.LocalAddr(), Addr: c.tcp.RemoteAddr(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	c.last.Store(time.Now().UnixNano())
	return n, nil
}

func (c *conn) writeNow(p []byte) (int, error) {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, err
	}
	done := 0
	var werr error
	if err := rc.Control(func(fd uintptr) {
		for done < len(p) {
			n, err := unix.Write(int(fd), p[done:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return
			}
			done += n
		}
	}); err != nil {
		return done, err
	}
	switch {
	case errors.Is(werr, unix.EAGAIN):
		return done, ErrWouldBlock
	case werr != nil:
		return done, &net.OpError{Op: "write", Net: "tcp", Source: c.tcp.LocalAddr(), Addr: c.tcp.RemoteAddr(), Err: werr}
	}
	return done, nil
}
