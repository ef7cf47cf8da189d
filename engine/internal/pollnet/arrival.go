package pollnet

import (
	"errors"
	"net"
)

// ErrWouldBlock is returned by ReadNow and WriteNow when the socket has
// nothing to read or no room to write.
var ErrWouldBlock = errors.New("pollnet: operation would block")

// OnArrival has Yield and Poll call f, on their caller's goroutine, when
// data arrives on c, a connection of this package, instead of only waking
// c's reader.
// f must not wait: it may read and write with ReadNow and WriteNow. It
// returns true if it dealt with all that arrived, and false to have the
// reader woken as usual. OnArrival(c, nil) stops the calls; f may still
// be running when it returns. On systems where Yield cannot see arrivals
// (all but Linux), f is never called.
func OnArrival(c net.Conn, f func() bool) {
	pc, ok := c.(*conn)
	if !ok {
		return
	}
	if f == nil {
		pc.arrival.Store(nil)
		return
	}
	pc.arrival.Store(&f)
}

// WaitReadable waits until c has data to read, its read deadline passes,
// or Yield wakes it (an OnArrival function declined); it may return
// early, so the caller checks for itself. It consumes nothing. Where that
// cannot be done without reading (all but Linux, and connections not of
// this package), it returns at once, and ReadNow waits instead.
func WaitReadable(c net.Conn) error {
	pc, ok := c.(*conn)
	if !ok {
		return nil
	}
	return pc.waitReadable()
}

// ReadNow reads what c has received, without waiting: ErrWouldBlock when
// there is nothing yet. Where WaitReadable cannot wait (see there), it
// reads as Read does, waiting for data.
func ReadNow(c net.Conn, p []byte) (int, error) {
	pc, ok := c.(*conn)
	if !ok {
		return c.Read(p)
	}
	return pc.readNow(p)
}

// WriteNow writes as much of p as c can take without waiting, and
// ErrWouldBlock if that is not all of it. Where it cannot avoid waiting
// (all but Linux, and connections not of this package), it writes as
// Write does.
func WriteNow(c net.Conn, p []byte) (int, error) {
	pc, ok := c.(*conn)
	if !ok {
		return c.Write(p)
	}
	return pc.writeNow(p)
}
