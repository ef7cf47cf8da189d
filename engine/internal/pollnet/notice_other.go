//go:build !linux

package pollnet

import "runtime"

// Yield yields the processor as runtime.Gosched does. On Linux it first
// wakes any goroutine whose polling connection has data; elsewhere such a
// goroutine waits for its polling deadline.
func Yield() { runtime.Gosched() }

// Poll does nothing: on Linux it runs OnArrival functions and wakes
// readers whose data has arrived.
func Poll() {}

// Handoff does nothing: on Linux it wakes readers whose data has arrived
// and yields to them.
func Handoff() {}

// noticer is absent where there is no epoll.
type noticer struct{}

var notices *noticer

func (*noticer) watch(*conn)   {}
func (*noticer) unwatch(*conn) {}

func (c *conn) waitReadable() error { return nil }

func (c *conn) readNow(p []byte) (int, error) { return c.Read(p) }

func (c *conn) writeNow(p []byte) (int, error) { return c.tcp.Write(p) }
