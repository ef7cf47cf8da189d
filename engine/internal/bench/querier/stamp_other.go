//go:build !linux

package main

import (
	"errors"
	"net"
	"time"
)

// stamper is Linux's; elsewhere a connection has none.
type stamper struct{}

// newStamper says that arrival stamps are not supported here: answers then
// count as arriving when the querier has read them.
func newStamper(*net.TCPConn) (*stamper, error) {
	return nil, errors.New("arrival stamps are implemented on Linux only")
}

func (*stamper) recv([]byte) (int, time.Time, error) {
	return 0, time.Time{}, errors.New("no arrival stamps")
}
